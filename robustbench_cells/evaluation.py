"""Scoring a model cellbench did not train: the clean splits, the shift suite and targets, as a run.

:func:`evaluate` is what :func:`robustbench_cells.api.evaluate` and ``cellbench evaluate`` call. A
model is a Keras model, a ``.keras`` file / cell folder / SavedModel folder, an ``.onnx`` file
(onnxruntime, the ``[onnx]`` extra: :mod:`robustbench_cells.onnx_model`), or any
``predict_fn(uint8 images (N, H, W, 3)) -> probabilities (N, C)``. Keras models are brought to
cellbench's convention (float32 RGB 0..255 in, probabilities in the data's class order out) with
built-in layers around it (:func:`conform_model`), so the run's saved model is scored by
``explain`` and adapters exactly as here.

The data go through the runner's one path, :func:`robustbench_cells.bench.rundata.prepare_run_data`
(resize to the model's input, split with the same seed and fractions, a fixed stratified shift
subset; targets by :func:`~robustbench_cells.bench.rundata.load_target`), so the stored run config
lets ``report``, ``compare`` and ``explain`` rebuild them unchanged. Scores, probability files and
the store are the runner's own (:mod:`robustbench_cells.bench`). The model side (:func:`open_model`,
:func:`ready_model`, :func:`conform_model`, shared with score-only matrix cells in
:mod:`robustbench_cells.bench.scoring_cells`) is :mod:`robustbench_cells.evaluation_model`, re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robustbench_cells.errors import CellbenchError
# The model half lives in evaluation_model; these names stay importable from here (scoring cells,
# onnx_model, tests and benchmarks import them from robustbench_cells.evaluation).
from robustbench_cells.evaluation_model import (PREPROCESS, ExternalModel, PredictFn, check_classifier,
                                                conform_model, external_meta, load_any_model, match_classes,
                                                open_model, preprocess_scale_offset, ready_model)

__all__ = ["PREPROCESS", "DataOptions", "EvalCell", "Evaluation", "ExternalModel", "PredictFn", "ProgressFn",
           "check_classifier", "conform_model", "evaluate", "external_meta", "load_any_model", "match_classes",
           "open_model", "prepare", "preprocess_scale_offset", "ready_model", "save_run"]


# -- data ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataOptions:
    """How the data are split and which shifts are scored (stored in the run config)."""

    split_seed: int = 0
    split_fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    max_shift_images: int | None = None
    shift_seed: int = 0


def prepare(data: Any, size: int | None, options: DataOptions, targets: Sequence[str] = ()) -> tuple[Any, dict]:
    """The run's data through :func:`robustbench_cells.bench.rundata.prepare_run_data` (the runner's path).

    *data* is a spec or a Dataset, *size* the model's square input (``None``: as it is). Targets
    are labelled specs, loaded at the same size with their classes matched by name
    (:func:`~robustbench_cells.bench.rundata.load_target`). Returns ``(PreparedData, facts)``,
    the facts being what a run row records (``RunData.facts()`` plus ``targets``).
    """
    from robustbench_cells.bench.cellrun import PreparedData
    from robustbench_cells.bench.rundata import load_target, prepare_run_data, target_facts

    run_data = prepare_run_data(data, size, options.split_seed, options.split_fractions,
                                options.max_shift_images, options.shift_seed)
    prepared = PreparedData.from_run_data(run_data)
    facts = run_data.facts()
    if len(prepared.test) == 0:
        raise CellbenchError(f"{run_data.dataset.source or 'data'}: the test split is empty, nothing to score")
    if targets:
        prepared.targets = {t: load_target(t, size, facts["class_names"], where=f"target {t}") for t in targets}
        facts["targets"] = target_facts(prepared.targets)
    return prepared, facts


# -- results ---------------------------------------------------------------------------------------
@dataclass
class EvalCell:
    """The scores of the model under one adapter chain: a cell of the stored run."""

    adapter: str
    probs: dict[str, np.ndarray]       # probs_key -> (N, C), the runner's probs.npz layout
    scores: list[Any]                  # bench.store.Score rows (cell key filled in when saved)

    @property
    def augmentation(self) -> str:
        """The label the run's tables show in the augmentation column."""
        return "external" if self.adapter == "none" else f"external+adapt:{self.adapter}"


@dataclass
class Evaluation:
    """What :func:`evaluate` computed: score rows, probabilities and what is needed to store them."""

    name: str
    model_name: str
    data_spec: str
    data: Any                          # PreparedData (its ``targets`` hold the target sets)
    cells: list[EvalCell]              # one per adapter chain ("none" first when asked for)
    config: dict[str, Any] = field(default_factory=dict)
    model: Any = None                  # the conformed Keras model, when there is one
    meta: dict[str, Any] = field(default_factory=dict)
    eval_seconds: float = 0.0
    run_dir: Path | None = None

    @property
    def targets(self) -> dict[str, Any]:
        """Target spec -> its Dataset (at the run's size, the run's class numbering)."""
        return self.data.targets


#: ``progress(done, total, what)``: called before each step (shifting a set, scoring a set).
ProgressFn = Callable[[int, int, str], None]


def evaluate(model: Any, data: Any, *, shifts: Sequence[str], severities: Sequence[int],
             targets: Sequence[str] = (), adapters: Sequence[str] = ("none",),
             classes: Sequence[str] | None = None, preprocess: str = "none",
             options: DataOptions | None = None, batch_size: int = 256, name: str = "evaluate",
             progress: ProgressFn | None = None) -> Evaluation:
    """Score *model* on *data* (a spec or a Dataset) clean, under *shifts* x *severities*, and on *targets*."""
    import time

    from robustbench_cells.bench.cellrun import evaluation_sets, score_rows
    from robustbench_cells.bench.shiftsets import shift_images

    say = progress or (lambda _d, _t, _m: None)
    options = options or DataOptions()
    spec = data if isinstance(data, str) else (getattr(data, "source", "") or "")
    raw, meta, model_name, size = open_model(model)
    if preprocess not in PREPROCESS:  # before any data loads
        raise CellbenchError(f"--preprocess {preprocess}: not one of {', '.join(PREPROCESS)}")
    if any(chain != "none" for chain in adapters) and not hasattr(raw, "input_shape"):
        kind = "an ONNX model" if hasattr(raw, "session") else "a predict function"
        raise CellbenchError(f"adapter {next(c for c in adapters if c != 'none')!r}: adapters need a Keras model, "
                             f"not {kind}")
    prepared, facts = prepare(data, size, options, targets)
    probe = prepared.val.images if len(prepared.val) else prepared.test.images
    ext = ready_model(raw, meta, model_name, prepared.class_names, classes=classes, preprocess=preprocess,
                      probe=probe[:32], batch_size=batch_size)
    shift_sets = [(s, int(v)) for s in shifts for v in severities]
    total, done = len(shift_sets) + (2 + len(shift_sets) + len(prepared.targets)) * len(adapters), 0

    def shifted(shift: str, severity: int) -> np.ndarray:
        nonlocal done
        say(done, total, f"shifting {shift} s{severity}")
        images = shift_images(prepared.shift_base.images, shift, severity, options.shift_seed)
        done += 1
        return images

    # the sets a run cell is scored on, shifted once in memory and scored by every adapter chain
    sets = {key: images for key, _label, images in evaluation_sets(prepared, shift_sets, options.shift_seed,
                                                                   shifted=shifted)}
    keys = list(sets)
    started = time.perf_counter()
    cells = []
    adapted = any(chain != "none" for chain in adapters)
    for chain in adapters:
        fn = ext.predict if chain == "none" else _adapted(chain, ext, prepared)
        probs: dict[str, np.ndarray] = {}
        for key in keys:
            say(done, total, "scoring " + key.replace("|", " ") + ("" if chain == "none" else f" [{chain}]"))
            probs[key] = np.asarray(fn(sets[key]), np.float32)
            done += 1
        cells.append(EvalCell(chain, probs, score_rows("", probs, prepared)))
    say(done, total, "done")
    config = {
        "name": name, "kind": "evaluate", "data": spec, "image_size": int(prepared.test.image_size[0]),
        "seeds": [0], "models": [{"name": model_name}], "augmentations": [], "train": {},
        "split": {"seed": options.split_seed, "fractions": list(options.split_fractions)},
        "shifts": {"names": list(shifts), "severities": [int(s) for s in severities],
                   "max_images": options.max_shift_images, "seed": options.shift_seed},
        "ensembles": [], "targets": list(targets), "adapters": list(adapters), "preprocess": preprocess,
        "data_fingerprint": facts["data_fingerprint"], "data_facts": facts,
    }
    if adapted:  # saved with the model, so the run's cell can be adapted again later
        from robustbench_cells.adapters import META_KEY

        ext.meta = {**ext.meta, META_KEY: prepared.training_stats()}
    return Evaluation(name, model_name, spec, prepared, cells, config, ext.keras_model, ext.meta,
                      time.perf_counter() - started)


def _adapted(chain: str, ext: ExternalModel, prepared: Any) -> PredictFn:
    """Predictions through adapter *chain* (each evaluation set adapted on its own, without labels)."""
    from robustbench_cells.adapters import AdaptContext, adapt_predict, check_chain

    if ext.keras_model is None:
        raise CellbenchError(f"adapter {chain!r}: adapters need a Keras model, not a predict function")
    check_chain(chain)
    # the conformed model already gives the data's class order: no reordering after the adapter
    context = AdaptContext(ext.keras_model, {**ext.meta, "class_names": list(prepared.class_names)},
                           prepared.training_stats())  # computed once per evaluation, then kept

    def predict(images: np.ndarray) -> np.ndarray:
        return adapt_predict(chain, context, images, seed=0)

    return predict


def save_run(ev: Evaluation, run_dir: str | os.PathLike) -> Path:
    """Write *ev* as a run folder (``results.sqlite``, the cell's model, ``probs.npz``, samples)."""
    import dataclasses

    from robustbench_cells.bench.cellrun import PROBS_FILENAME, save_probs_atomic
    from robustbench_cells.bench.matrix import cell_key
    from robustbench_cells.bench.runner import versions
    from robustbench_cells.bench.samples import save_samples
    from robustbench_cells.bench.store import STORE_FILENAME, Cell, ResultStore

    run_dir = Path(run_dir)
    if (run_dir / STORE_FILENAME).exists():
        raise CellbenchError(f"--out {run_dir}: already holds a run; pick another folder")
    with ResultStore(run_dir, create=True) as store:
        run = store.create_run(ev.name, ev.config, versions(), ev.data_spec, ev.config["data_fingerprint"],
                               ev.data.class_names)
        for position, cell in enumerate(ev.cells):
            cell_config = {"kind": "evaluate", "model": ev.model_name, "data": ev.data_spec, "adapter": cell.adapter,
                           "data_fingerprint": ev.config["data_fingerprint"], "preprocess": ev.config.get("preprocess")}
            key = cell_key(cell_config)
            cell_dir = run_dir / "cells" / key
            cell_dir.mkdir(parents=True, exist_ok=True)
            model_path = params = None
            if ev.model is not None:
                from robustbench_cells.training.artefacts import MODEL_FILE, save_model

                meta = external_meta(ev.model_name, ev.meta, ev.config.get("preprocess", "none"), ev.data,
                                     evaluated_by="cellbench evaluate", adapter=cell.adapter)
                model_path = str(save_model(ev.model, meta, cell_dir) / MODEL_FILE)
                params = int(ev.model.count_params())
            save_probs_atomic(cell_dir / PROBS_FILENAME, cell.probs)
            store.add_cells(run.id, [Cell(key, ev.model_name, cell.augmentation, 0, {}, cell_config,
                                          position=position)])
            store.finish_cell(key, [dataclasses.replace(s, cell_key=key) for s in cell.scores], params=params,
                              model_path=model_path, train_seconds=None, eval_seconds=ev.eval_seconds,
                              epochs=None)
    save_samples(run_dir, ev.data.shift_base)
    ev.run_dir = run_dir
    return run_dir
