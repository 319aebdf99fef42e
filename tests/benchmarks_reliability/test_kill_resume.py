"""benchmarks/reliability/kill_resume.py: its store check catches what a bad resume leaves behind.

(The script itself runs real runs for minutes; here only its verdict on a store is tested.)
"""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "reliability" / "kill_resume.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("kill_resume", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _store(path: Path, script, duplicate: bool = False, accuracy: float = 0.5, runs: int = 1) -> Path:
    """A results store with the tables and columns the check reads, every cell done."""
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY)")
    con.execute("CREATE TABLE cells (key TEXT, model TEXT, augmentation TEXT, seed INT, status TEXT)")
    con.execute("CREATE TABLE scores (cell_key TEXT, split TEXT, shift TEXT, severity INT, accuracy REAL,"
                " balanced_accuracy REAL, per_class_json TEXT, mean_confidence REAL, ece REAL, n INT)")
    con.executemany("INSERT INTO runs VALUES (?)", [(i,) for i in range(runs)])
    pairs = [("val", "clean", 0), ("test", "clean", 0)] + [("test", s, v) for s in ("a", "b") for v in (1, 3)]
    assert len(pairs) == script.ROWS_PER_CELL
    for c in range(script.N_CELLS):
        con.execute("INSERT INTO cells VALUES (?, 'simple_cnn', ?, 0, 'done')", (f"k{c}", f"aug{c}"))
        for split, shift, sev in pairs + (pairs[-1:] if duplicate and c == 0 else []):
            con.execute("INSERT INTO scores VALUES (?, ?, ?, ?, ?, 0.5, '{}', 0.9, 0.1, 64)",
                        (f"k{c}", split, shift, sev, accuracy))
    con.commit()
    con.close()
    return path


def test_an_intact_store_passes_and_each_fault_is_named(tmp_path, script):
    reference = script._rows(_store(tmp_path / "ref.sqlite", script))
    assert script._check_store(_store(tmp_path / "same.sqlite", script), reference) == []
    dup = script._check_store(_store(tmp_path / "dup.sqlite", script, duplicate=True), reference)
    assert "1 (cell, split, shift, severity) rows stored more than once" in dup
    changed = script._check_store(_store(tmp_path / "acc.sqlite", script, accuracy=0.25), reference)
    assert changed == [f"{len(reference)} score rows differ from the unkilled run"]
    assert script._check_store(_store(tmp_path / "two.sqlite", script, runs=2), reference) == ["2 run rows"]
    assert script._check_store(tmp_path / "missing.sqlite", reference) == ["no results.sqlite"]
