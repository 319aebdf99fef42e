"""load_backgrounds: the shipped set (with its MANIFEST, from the top-level backgrounds/ folder) and user folders."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from robustbench_cells.data.backgrounds import load_backgrounds, shipped_background_files, shipped_folder
from robustbench_cells.errors import CellbenchError


def test_shipped_backgrounds_are_many_varied_and_in_the_manifest():
    bgs = load_backgrounds(size=64)
    assert bgs.dtype == np.uint8 and bgs.shape[1:] == (64, 64, 3) and len(bgs) >= 30
    assert len({b.tobytes() for b in bgs}) == len(bgs)
    folder = shipped_folder()
    rows = list(csv.DictReader(folder.joinpath("MANIFEST.csv").open()))
    assert {r["file"] for r in rows} == set(shipped_background_files())
    assert all(r["licence"] and r["how_made"] for r in rows)
    assert {r["kind"] for r in rows} >= {"photo", "cartoon", "texture", "gradient", "pattern"}
    total = sum(len(folder.joinpath(n).read_bytes()) for n in shipped_background_files())
    assert total < 2_000_000


def test_user_folder_is_cropped_and_resized(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((50, 80, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "b.jpg"), np.full((200, 100, 3), 255, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    bgs = load_backgrounds(tmp_path, size=32)
    assert bgs.shape == (2, 32, 32, 3)
    assert bgs[0].max() == 0 and bgs[1].min() > 240


def test_bad_folders_name_the_folder(tmp_path):
    with pytest.raises(CellbenchError, match="nope.*not a directory"):
        load_backgrounds(tmp_path / "nope")
    with pytest.raises(CellbenchError, match="no images"):
        load_backgrounds(tmp_path)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(CellbenchError, match="bad.png"):
        load_backgrounds(tmp_path)


ROOT = Path(__file__).resolve().parents[2]


def test_shipped_set_is_the_top_level_backgrounds_folder():
    files = sorted(p.name for p in (ROOT / "backgrounds").iterdir() if p.suffix in (".png", ".jpg"))
    assert files == shipped_background_files()
    assert (ROOT / "backgrounds" / "make_backgrounds.py").is_file()  # the generator lives beside its output


def test_pyproject_lists_every_package():
    # pyproject lists the packages (find cannot map backgrounds/ into the package): a new package
    # folder that is not listed would be missing from the wheel without any error.
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "robustbench_cells").rglob("__init__.py")}
    assert set(config["packages"]) == found | {"robustbench_cells.backgrounds"}
    assert config["package-dir"] == {"robustbench_cells.backgrounds": "backgrounds"}
