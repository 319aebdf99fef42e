"""Score-only cells: a model trained elsewhere scored beside the trained cells of a matrix.

A matrix entry ``models = [{ path = "my.keras", preprocess = "unit", classes = [...] }]`` trains
nothing: its cell (config kind ``score``) loads the model (:func:`robustbench_cells.evaluation.open_model`,
``.keras`` in Keras' safe mode, a cell folder or a SavedModel folder), fits it to the run's data
exactly as ``cellbench evaluate`` does (:func:`~robustbench_cells.evaluation.ready_model`:
preprocessing, softmax for logits and the class order built into the model with built-in layers),
saves that model with a ``meta.json`` (training statistics included, so adapted cells can use it
as their base) and scores it on every set a trained cell is scored on: clean val and test, every
shifted set, every target. Its probabilities and score rows are stored like any cell's.

Config (the cell key hashes it)::

    {"kind": "score", "path": "/abs/my.keras", "digest": "<sha256 of the model's bytes>",
     "preprocess": "unit", "classes": [...] or None, "seed": 0,
     "image_size": 96, "data": "<data fingerprint>", "split": {"seed": 0, "fractions": [...]}}

:func:`score_config` builds the first six keys (checked before any data loads); the expansion adds
the run's ``image_size``, ``data`` and ``split`` as it does for training cells.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robustbench_cells.bench.cellrun import (
    PROBS_FILENAME,
    CellOutcome,
    PreparedData,
    evaluation_sets,
    save_probs_atomic,
    score_rows,
)
from robustbench_cells.bench.store import Cell
from robustbench_cells.errors import CellbenchError, one_line

if TYPE_CHECKING:
    from robustbench_cells.bench.matrix import Matrix

#: The augmentation label of a score-only cell in the run's tables (as ``cellbench evaluate`` runs show).
SCORE_AUGMENTATION = "external"


def model_digest(path: str | os.PathLike) -> str:
    """sha256 over the model's bytes (a file, or every file of a folder by relative path): a changed
    model is a new cell, not a resumed one."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path) if f != path else f.name).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def score_config(path: str | os.PathLike, *, preprocess: str = "none", classes: Sequence[str] | None = None,
                 seed: int = 0, where: str = "models[0]", base_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """The run-independent part of a score cell's config, checked without loading the model or data.

    *path* is relative to *base_dir* (the matrix file's folder) unless absolute. Errors are one
    line naming *where* (e.g. ``matrix.toml: models[2].path``).
    """
    from robustbench_cells.evaluation import PREPROCESS

    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise CellbenchError(f"{where}.path: must be a model file or folder, got {path!r}")
    full = Path(path).expanduser()
    if not full.is_absolute() and base_dir is not None:
        full = Path(base_dir) / full
    if not full.exists():
        raise CellbenchError(f"{where}.path: {full}: no such file or folder")
    if full.is_file() and full.suffix != ".keras":
        raise CellbenchError(f"{where}.path: {full}: not a .keras file (or a cell / SavedModel folder)")
    if preprocess not in PREPROCESS:
        raise CellbenchError(f"{where}.preprocess: {preprocess!r} is not one of {', '.join(PREPROCESS)}")
    if classes is not None and (isinstance(classes, str) or not all(isinstance(c, str) for c in classes)
                                or len(set(classes)) != len(classes)):
        raise CellbenchError(f"{where}.classes: must be a list of distinct class names, got {classes!r}")
    return {"kind": "score", "path": str(full.resolve()), "digest": model_digest(full), "preprocess": preprocess,
            "classes": None if classes is None else list(classes), "seed": int(seed)}


def score_label(config: dict[str, Any]) -> str:
    """The model label of a score cell: the model's file or folder name."""
    return Path(config["path"]).name


def score_cell(cell: Cell, data: PreparedData, matrix: Matrix, run_dir: Path) -> CellOutcome:
    """Fit *cell*'s model to the run's data, save it and score it on every set; a failure is a ``failed`` outcome.

    Reads ``matrix.shift_sets``, ``.shift_seed`` and ``.predict_batch_size``; the shifted
    sets must already be in the shift cache (the runner's ``build_shift_sets``), as for trained cells.
    """
    from robustbench_cells.adapters import META_KEY
    from robustbench_cells.evaluation import external_meta, open_model, ready_model
    from robustbench_cells.training.artefacts import MODEL_FILE, save_model

    cfg = cell.config
    t0 = time.perf_counter()
    try:
        if model_digest(cfg["path"]) != cfg["digest"]:
            raise CellbenchError(f"model {cfg['path']}: changed since the run started (its digest differs)")
        raw, meta, _name, _size = open_model(cfg["path"])
        if not hasattr(raw, "input_shape"):
            raise CellbenchError(f"model {cfg['path']}: not a Keras model")
        probe = data.val.images if len(data.val) else data.test.images
        ext = ready_model(raw, meta, score_label(cfg), data.class_names, classes=cfg.get("classes"),
                          preprocess=cfg.get("preprocess", "none"), probe=probe[:32],
                          batch_size=matrix.predict_batch_size)
        # the run's training statistics, as a trained cell saves them: adapted cells need them
        saved_meta = external_meta(ext.name, ext.meta, ext.preprocess, data, **{META_KEY: data.training_stats()},
                                   evaluated_by="cellbench run (score-only cell)", source_path=cfg["path"],
                                   cell_key=cell.key)
        cell_dir = run_dir / "cells" / cell.key
        model_path = save_model(ext.keras_model, saved_meta, cell_dir) / MODEL_FILE
        probs = {key: np.asarray(ext.predict(images), dtype=np.float32)
                 for key, _label, images in evaluation_sets(data, matrix.shift_sets, matrix.shift_seed)}
        save_probs_atomic(cell_dir / PROBS_FILENAME, probs)
        return CellOutcome(cell.key, "done", score_rows(cell.key, probs, data), params=int(raw.count_params()),
                           model_path=str(model_path), train_seconds=None,
                           eval_seconds=time.perf_counter() - t0, epochs=None)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - a model that does not fit is recorded, the matrix goes on
        return CellOutcome(cell.key, "failed", error=one_line(exc))


__all__ = ["SCORE_AUGMENTATION", "model_digest", "score_cell", "score_config", "score_label"]
