"""`cellbench shifts preview`: a grid PNG with one row per shift and columns for severities 0..5."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from robustbench_cells import plugins
from tests.images import smear_cells

PLUGIN = '''
import numpy as np
from robustbench_cells import hookimpl
from robustbench_cells.data.dataset import Dataset, CELL_CLASSES
from robustbench_cells.registry import DatasetSpec

def load(arg):
    data = np.load(arg)
    return Dataset(data["images"], data["labels"], CELL_CLASSES, source="tiny:" + arg)

@hookimpl
def register_datasets(register):
    register(DatasetSpec(name="tiny", loader=load))
'''


def _cells(n: int = 8, size: int = 64) -> np.ndarray:
    """Pink smear with a purple disc per image (the command must not depend on ../shared being there)."""
    return smear_cells(n, size, (235, 200, 190), (110, 60, 150), noise=5)


@pytest.fixture
def tiny_data(tmp_path):
    """Eight images, one per class, served through a local plugin data set (`--plugins-dir`)."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "tinydata.py").write_text(PLUGIN)
    npz = tmp_path / "tiny.npz"
    np.savez(npz, images=_cells(), labels=np.arange(8))
    return tmp_path / "plugins", npz


def test_preview_writes_grid(cli, tmp_path, tiny_data):
    plugins_dir, npz = tiny_data
    out = tmp_path / "grid.png"
    code, stdout, err = cli("--plugins-dir", plugins_dir, "shifts", "preview", "--data", f"tiny:{npz}",
                            "--shifts", "*blur*", "--out", out)
    assert code == 0, err
    blurs = len(plugins.shifts().list("*blur*"))  # defocus, gaussian, glass, motion, zoom
    assert f"{blurs} shifts" in stdout
    width, height = Image.open(out).size
    # a row per blur x 6 columns (clean + severities 1..5) of 1-inch cells, plus label margins
    assert abs(width / height - (6 + 1.6) / (blurs + 0.4)) < 0.15
    code, _, err = cli("--plugins-dir", plugins_dir, "shifts", "preview", "--data", f"tiny:{npz}",
                       "--shifts", "noise", "--index", "3", "--out", tmp_path / "noise.png")
    assert code == 0, err


@pytest.mark.parametrize("args,message", [
    (["--shifts", "nothing_like_this", "--out", "g.png"], "matches no shift"),
    (["--out", "grid.jpg"], "must be a .png"),
    (["--index", "99", "--out", "g.png"], "--index 99"),
])
def test_preview_user_errors(cli, tmp_path, tiny_data, args, message):
    plugins_dir, npz = tiny_data
    args = [str(tmp_path / a) if a.endswith((".png", ".jpg")) else a for a in args]
    code, _, err = cli("--plugins-dir", plugins_dir, "shifts", "preview", "--data", f"tiny:{npz}", *args)
    assert code == 2
    assert message in err and "Traceback" not in err
