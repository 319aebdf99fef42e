"""Adapted cells: a trained cell's model scored through a test-time adapter chain on every set.

An adapted cell (matrix ``adapters = [...]``, config kind ``adapt``) trains nothing: it loads the
trained model of its base cell, and for each evaluation set on its own (clean val and test, every
shifted set, every target) runs :func:`robustbench_cells.adapters.adapt_predict` on the unlabeled
images. Its probabilities and score rows are stored like any cell's, so report, compare and
explain see it as one more row (model label ``model+chain``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from robustbench_cells.bench.cellrun import (
    PROBS_FILENAME,
    CellOutcome,
    PreparedData,
    evaluation_sets,
    save_probs_atomic,
    score_rows,
)
from robustbench_cells.bench.store import Cell, ResultStore
from robustbench_cells.errors import one_line

if TYPE_CHECKING:
    from robustbench_cells.bench.matrix import Matrix


def adapt_cell(cell: Cell, store: ResultStore, data: PreparedData, matrix: "Matrix", run_dir: Path) -> CellOutcome:
    """Score *cell*'s base model through its adapter chain; a failure becomes a ``failed`` outcome."""
    from robustbench_cells.adapters import AdaptContext, adapt_predict

    cfg = cell.config
    base = store.cell(cfg["base"])
    if base is None or base.status != "done":
        return CellOutcome(cell.key, "failed", error=f"base cell {cfg['base_label']} is not done")
    t0 = time.perf_counter()
    try:
        context = AdaptContext.from_cell(run_dir / "cells" / base.key)
        seed = int(cfg["seed"])
        sets = evaluation_sets(data, matrix.shift_sets, matrix.shift_seed)
        # each set is adapted on its own: an adapter never pools evaluation sets
        probs = {key: np.asarray(adapt_predict(cfg["adapter"], context, images, seed=seed), dtype=np.float32)
                 for key, _label, images in sets}
        cell_dir = run_dir / "cells" / cell.key
        cell_dir.mkdir(parents=True, exist_ok=True)
        save_probs_atomic(cell_dir / PROBS_FILENAME, probs)
        notes = sorted(set(context.notes))
        if notes:
            (cell_dir / "notes.txt").write_text("\n".join(notes) + "\n", encoding="utf-8")
        return CellOutcome(cell.key, "done", score_rows(cell.key, probs, data), params=base.params,
                           model_path=base.model_path, train_seconds=0.0,
                           eval_seconds=time.perf_counter() - t0, epochs=None)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - a failing adapter is recorded, the matrix goes on
        return CellOutcome(cell.key, "failed", error=one_line(exc))
