"""Shared fixtures. Installed third-party plugins are never auto-loaded unless a test asks for them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ["CELLBENCH_NO_ENTRY_POINTS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

from robustbench_cells import plugins  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
PBC_ROOT = REPO_ROOT.parent / "shared" / "data" / "pbc96"


@pytest.fixture(autouse=True)
def _fresh_plugins(monkeypatch):
    """Every test starts with a plugin host built from built-ins only."""
    monkeypatch.delenv("CELLBENCH_PLUGINS_DIR", raising=False)
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def cli(capsys):
    """Run ``cellbench ARGS...`` in-process; returns ``(exit_code, stdout, stderr)``."""
    from robustbench_cells.cli.main import run_cli

    def run(*args: str) -> tuple[int, str, str]:
        code = run_cli([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def pbc_root() -> Path:
    """The shared PBC data set; tests that need it are skipped where ../shared is absent."""
    if not (PBC_ROOT / "SPLITS.csv").is_file():
        pytest.skip("../shared/data/pbc96 is not present on this machine")
    return PBC_ROOT


@pytest.fixture(scope="session")
def pbc_sample(pbc_root) -> np.ndarray:
    """256 real PBC test images (uint8, 96x96), 32 per class, loaded once per session."""
    import csv

    import cv2

    rows = list(csv.DictReader(open(pbc_root / "SPLITS.csv")))
    picked: dict[str, list[str]] = {}
    for row in rows:
        if row["split"] == "test" and len(picked.setdefault(row["label"], [])) < 32:
            picked[row["label"]].append(row["path"])
    paths = [p for label in sorted(picked) for p in picked[label]]
    images = [cv2.cvtColor(cv2.imread(str(pbc_root / p)), cv2.COLOR_BGR2RGB) for p in paths]
    return np.stack(images)
