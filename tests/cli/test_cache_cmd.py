"""`cellbench cache info|clear`: what the shift cache holds, and removing stale or all sets."""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_cells.bench import shiftsets
from robustbench_cells.bench.shiftsets import ShiftCache

IMAGES = np.random.default_rng(2).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A cache (via $CELLBENCH_CACHE) with one stale set (older suite version) and two current ones."""
    monkeypatch.setenv("CELLBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(shiftsets, "SUITE_VERSION", shiftsets.SUITE_VERSION - 1)
    stale = ShiftCache().ensure(IMAGES, "fp", "gaussian_noise", 1)
    monkeypatch.undo()
    monkeypatch.setenv("CELLBENCH_CACHE", str(tmp_path))
    current = [ShiftCache().ensure(IMAGES, "fp", "gaussian_noise", 1), ShiftCache().ensure(IMAGES, "fp", "pixelate", 2)]
    return tmp_path / "shifts", stale, current


def test_info_lists_shifts_sizes_and_why_files_are_stale(cli, cache_dir):
    root, stale, current = cache_dir
    code, out, err = cli("cache", "info")
    assert code == 0, err
    assert f"shift cache: {root} ($CELLBENCH_CACHE)" in out
    assert "gaussian_noise" in out and "pixelate" in out
    assert "total: 3 files" in out and "stale (never used again by this installation): 1 file," in out
    assert f"suite_version {shiftsets.SUITE_VERSION - 1} (now {shiftsets.SUITE_VERSION})" in out
    assert "cellbench cache clear --stale" in out
    code, out, _ = cli("cache", "info", "--shifts", "pix*")
    assert "total: 1 file," in out and "gaussian_noise" not in out


def test_clear_stale_keeps_current_sets(cli, cache_dir):
    _, stale, current = cache_dir
    code, out, err = cli("cache", "clear", "--stale", "--yes")
    assert code == 0, err
    assert "removed 1 stale file," in out
    assert not stale.exists() and all(p.exists() for p in current)
    fresh = ShiftCache()
    fresh.get(IMAGES, "fp", "pixelate", 2)
    assert fresh.hits == 1 and fresh.generated == 0  # still served from the cache
    code, out, _ = cli("cache", "clear", "--stale", "--yes")
    assert code == 0 and "no stale files to remove" in out


def test_clear_all_needs_confirmation_off_a_terminal(cli, cache_dir):
    root, stale, current = cache_dir
    code, out, err = cli("cache", "clear")  # pytest's stdin is not a terminal
    assert code == 2
    assert err.strip().splitlines() == [err.strip()] and "add --yes" in err and "3 files" in err
    assert "Traceback" not in err and stale.exists() and all(p.exists() for p in current)
    code, out, err = cli("cache", "clear", "-y")
    assert code == 0, err
    assert "removed 3 files" in out and not any(root.rglob("*.bin"))


def test_empty_cache(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("CELLBENCH_CACHE", str(tmp_path / "new"))
    code, out, _ = cli("cache", "info")
    assert code == 0 and "empty" in out
    code, out, _ = cli("cache", "clear", "--yes")
    assert code == 0 and "no files to remove" in out
