"""The SQLite results store: run/cell/score round trip, atomic finish, resume semantics, bad files."""

from __future__ import annotations

import sqlite3

import pytest

from robustbench_cells.bench.store import Cell, ResultStore, Score
from robustbench_cells.errors import CellbenchError


def _score(key, shift="clean", severity=0, acc=0.9):
    return Score(key, "test", shift, severity, acc, acc - 0.05, [acc] * 8, 0.8, 0.05, 100)


def test_round_trip_and_resume_keeps_status(tmp_path):
    store = ResultStore(tmp_path, create=True)
    run = store.create_run("quick", {"a": 1}, {"keras": "3"}, "synthetic", "abc", ["x", "y"])
    assert store.run().name == "quick" and store.run().class_names == ["x", "y"]
    cells = [Cell("k1", "simple_cnn", "none", 0, position=0), Cell("k2", "simple_cnn", "simple", 0, position=1)]
    store.add_cells(run.id, cells)
    store.mark_running("k1")
    store.finish_cell("k1", [_score("k1"), _score("k1", "gaussian_noise", 3, 0.5)], params=50_000,
                      model_path="cells/k1/model.keras", train_seconds=1.0, eval_seconds=0.5, epochs=2)
    store.add_cells(run.id, cells)  # re-adding (as --resume does) keeps the finished status
    assert {c.key: c.status for c in store.cells()} == {"k1": "done", "k2": "pending"}
    assert store.scores("k1") == [_score("k1"), _score("k1", "gaussian_noise", 3, 0.5)]  # every field round-trips
    assert store.scores("k2") == [] and store.scores(split="val") == []
    assert store.cell("k2").augmentation == "simple"
    store.close()


def test_failed_finish_leaves_no_rows(tmp_path):
    store = ResultStore(tmp_path, create=True)
    run = store.create_run("r", {}, {}, "synthetic", "fp", ["a"])
    store.add_cells(run.id, [Cell("k", "m", "none", 0)])
    with pytest.raises(sqlite3.IntegrityError):
        store.finish_cell("k", [_score("k"), _score("k")], params=1, model_path=None,  # duplicate primary key
                          train_seconds=None, eval_seconds=None, epochs=None)
    assert store.scores("k") == [] and store.cell("k").status == "pending"


def test_not_a_run_folder_is_a_clear_error(tmp_path):
    with pytest.raises(CellbenchError, match="not a cellbench run folder"):
        ResultStore(tmp_path)
    (tmp_path / "results.sqlite").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(CellbenchError, match="not a readable results store"):
        ResultStore(tmp_path)


def test_scored_rows_are_stored_as_computed(tmp_path):
    """What scoring computes is what the store gives back, absent classes (None) included."""
    import numpy as np

    from robustbench_cells.bench.scoring import score_probabilities

    probs = np.array([[0.9, 0.1, 0.0], [0.3, 0.7, 0.0], [0.6, 0.4, 0.0]])
    row = score_probabilities(probs, np.array([0, 1, 1]), 3, cell_key="k", split="test", shift="blur", severity=2)
    assert row.per_class[2] is None
    store = ResultStore(tmp_path, create=True)
    run = store.create_run("r", {}, {}, "synthetic", "fp", ["a", "b", "c"])
    store.add_cells(run.id, [Cell("k", "m", "none", 0)])
    store.finish_cell("k", [row], params=1, model_path=None, train_seconds=None, eval_seconds=None, epochs=None)
    assert store.scores("k") == [row]
    store.close()
