"""Data set specs: parsing, plugin-added sources, and the CLI error path (one line, exit 2, no traceback)."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from robustbench_cells import plugins
from robustbench_cells.data.specs import load_dataset, parse_spec
from robustbench_cells.errors import CellbenchError


@pytest.mark.parametrize("spec, expected", [
    ("synthetic", ("synthetic", None)),
    (" synthetic:100 ", ("synthetic", "100")),
    ("npz:/data/x.npz", ("npz", "/data/x.npz")),
    ("folder:C:/data", ("folder", "C:/data")),  # only the first colon separates
    ("bloodmnist:28", ("bloodmnist", "28")),
])
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


def test_bare_paths_are_understood(tmp_path):
    assert parse_spec(str(tmp_path)) == ("folder", str(tmp_path))
    assert parse_spec("some/where/train.npz") == ("npz", "some/where/train.npz")


@pytest.mark.parametrize("spec, message", [
    ("", "data set spec is empty"),
    ("synthetc", "unknown data set 'synthetc' \\(did you mean: synthetic\\?\\)"),
    ("foldr:/x", "unknown data set 'foldr' \\(did you mean: folder\\?\\)"),
    ("npz", "needs a path: npz:PATH"),
    ("folder:", "needs a path: folder:PATH"),
])
def test_bad_specs(spec, message):
    with pytest.raises(CellbenchError, match=message):
        load_dataset(spec)


PLUGIN = '''
import numpy as np
from robustbench_cells import hookimpl
from robustbench_cells.data.dataset import Dataset
from robustbench_cells.registry import DatasetSpec

def _load(arg):
    n = int(arg or 4)
    return Dataset(images=np.zeros((n, 8, 8, 3), np.uint8), labels=np.arange(n) % 2, class_names=("a", "b"))

@hookimpl
def register_datasets(register):
    register(DatasetSpec(name="toy", loader=_load, example="toy:4", description="zeros"))
    register(DatasetSpec(name="broken", loader=lambda arg: "not a dataset"))
'''


def test_a_plugin_can_add_a_data_set_format(tmp_path):
    (tmp_path / "toyplug.py").write_text(textwrap.dedent(PLUGIN))
    plugins.configure(plugins_dirs=[tmp_path])
    ds = load_dataset("toy:6")
    assert len(ds) == 6 and ds.class_names == ("a", "b") and ds.source == "toy:6"
    assert plugins.datasets().get("toy").plugin == "toyplug"
    with pytest.raises(CellbenchError, match="data set plugin 'broken' returned str, not a Dataset"):
        load_dataset("broken")


def test_builtins_are_listed(cli):
    code, out, err = cli("ls", "datasets")
    assert code == 0, err
    for name in ("synthetic", "npz", "folder", "bloodmnist"):
        assert name in out


@pytest.mark.parametrize("make, spec, message", [
    (None, "npz:{tmp}/missing.npz", "missing.npz: file not found"),
    (lambda tmp: (tmp / "notes.npz").write_text("hello"), "npz:{tmp}/notes.npz", "not an npz file"),
    (lambda tmp: np.savez(tmp / "f.npz", images=np.zeros((2, 4, 4, 3), np.float64), labels=np.zeros(2, int)),
     "npz:{tmp}/f.npz", "must be uint8 images, got dtype float64"),
    (lambda tmp: (tmp / "cls" / "empty").mkdir(parents=True), "folder:{tmp}/cls", "class folder 'empty' has no images"),
    (None, "synthetc:10", "did you mean: synthetic"),
    (None, "synthetic:10:blurr=1", "did you mean: blur"),
])
def test_cli_reports_bad_data_in_one_line(cli, tmp_path, monkeypatch, make, spec, message):
    monkeypatch.chdir(tmp_path)
    if make is not None:
        make(tmp_path)
    code, out, err = cli("data", "inspect", spec.format(tmp=tmp_path), "--out", str(tmp_path / "report"))
    assert code == 2
    assert message in err and err.startswith("error: ")
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1


def test_cli_skips_a_corrupt_image_with_a_one_line_warning(cli, tmp_path):
    import cv2

    rng = np.random.default_rng(0)
    for cls in ("ig", "platelet"):
        (tmp_path / "cells" / cls).mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(tmp_path / "cells" / cls / f"{i}.png"), rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    (tmp_path / "cells" / "ig" / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    code, out, err = cli("data", "inspect", f"folder:{tmp_path / 'cells'}", "--out", str(tmp_path / "report"), "--json")
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(lines) == 1 and "skipped 1 unreadable image file(s)" in lines[0] and "bad.jpg" in lines[0]
