"""Scoring a model cellbench did not train: the clean splits, the shift suite and targets, as a run.

:func:`evaluate` is what :func:`robustbench_cells.api.evaluate` and ``cellbench evaluate`` call. A
model is a Keras model, a ``.keras`` file / cell folder / SavedModel folder, or any
``predict_fn(uint8 images (N, H, W, 3)) -> probabilities (N, C)``. Keras models are brought to
cellbench's convention (float32 RGB 0..255 in, probabilities out) with built-in layers in front
(:func:`conform_model`), so the run's saved model is scored by ``explain`` exactly as here.

The data are prepared as the runner prepares a matrix's (resize to the model's input, split with
the same seed and fractions, a fixed stratified shift subset), so the stored run config lets
``report``, ``compare`` and ``explain`` rebuild them unchanged. Scores, probability files and the
store are the runner's own (:mod:`robustbench_cells.bench`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robustbench_cells.errors import CellbenchError

#: ``--preprocess`` modes: what the model expects of float32 RGB images given on the 0..255 scale.
PREPROCESS = ("none", "unit", "symmetric", "imagenet")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
#: The split rows for ``targets`` (labelled data sets from another lab) are stored under.
TARGET_SPLIT = "target"

PredictFn = Callable[[np.ndarray], np.ndarray]


# -- models ----------------------------------------------------------------------------------------
def _preprocess_layer(mode: str) -> Any:
    import keras

    if mode == "unit":
        return keras.layers.Rescaling(1.0 / 255.0, name="external_preprocess")
    if mode == "symmetric":
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="external_preprocess")
    # imagenet: (x/255 - mean) / std per channel, as torchvision and timm models expect
    scale = [1.0 / (255.0 * s) for s in _IMAGENET_STD]
    offset = [-m / s for m, s in zip(_IMAGENET_MEAN, _IMAGENET_STD)]
    return keras.layers.Rescaling(scale, offset=offset, name="external_preprocess")


def check_classifier(model: Any, where: str) -> tuple[int, int, int]:
    """``(height, width, classes)`` of an image classifier, or one clear error saying why it is not one."""
    try:
        in_shape, out_shape = tuple(model.input_shape), tuple(model.output_shape)
    except (AttributeError, ValueError) as exc:
        raise CellbenchError(f"model {where}: not a single-input, single-output model ({exc})") from None
    if len(in_shape) != 4 or in_shape[-1] != 3:
        raise CellbenchError(f"model {where}: input shape {in_shape} is not (None, H, W, 3) RGB images")
    if len(out_shape) != 2 or not out_shape[-1] or out_shape[-1] < 2:
        raise CellbenchError(f"model {where}: output shape {out_shape} is not (None, classes): not a classifier")
    return in_shape[1], in_shape[2], int(out_shape[-1])


def conform_model(model: Any, preprocess: str = "none", softmax: bool = False) -> Any:
    """*model* taking float32 0..255 RGB and giving probabilities: built-in preprocessing in front, softmax behind."""
    import keras

    if preprocess not in PREPROCESS:
        raise CellbenchError(f"--preprocess {preprocess}: not one of {', '.join(PREPROCESS)}")
    if preprocess == "none" and not softmax:
        return model
    inputs = keras.Input(shape=tuple(model.input_shape[1:]), name="image")
    x = inputs if preprocess == "none" else _preprocess_layer(preprocess)(inputs)
    x = model(x)
    if softmax:
        x = keras.layers.Softmax(name="external_softmax")(x)
    return keras.Model(inputs, x, name=f"{model.name}_cellbench")


def _savedmodel_as_keras(folder: Path) -> Any:
    """A SavedModel folder as a Keras model (its serving signature wrapped in a ``TFSMLayer``)."""
    import keras
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(folder))
        endpoint = "serving_default" if "serving_default" in loaded.signatures else next(iter(loaded.signatures))
        spec = list(loaded.signatures[endpoint].structured_input_signature[1].values())
    except Exception as exc:  # a folder that is not a SavedModel, or one without signatures
        raise CellbenchError(f"model {folder}: not a loadable SavedModel ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:160]})") from None
    if len(spec) != 1:
        raise CellbenchError(f"model {folder}: the serving signature takes {len(spec)} inputs, not one image batch")
    inputs = keras.Input(shape=tuple(spec[0].shape[1:]), name="image")
    out = keras.layers.TFSMLayer(str(folder), call_endpoint=endpoint)(inputs)
    if isinstance(out, dict):
        if len(out) != 1:
            raise CellbenchError(f"model {folder}: the serving signature has {len(out)} outputs, not one")
        out = next(iter(out.values()))
    return keras.Model(inputs, out, name="savedmodel")


def load_any_model(path: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """``(model, meta)`` from a ``.keras`` file, a cell folder or a SavedModel folder (safe mode for .keras)."""
    from robustbench_cells.training.artefacts import MODEL_FILE, load_model

    path = Path(path)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        meta_file = path / "meta.json"
        import json

        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        return _savedmodel_as_keras(path), meta
    if path.is_dir() and not (path / MODEL_FILE).is_file():
        raise CellbenchError(f"model {path}: a folder without {MODEL_FILE} or saved_model.pb")
    if not path.exists():
        raise CellbenchError(f"model {path}: no such file")
    return load_model(path)


# -- data ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataOptions:
    """How the data are split and which shifts are scored (stored in the run config)."""

    split_seed: int = 0
    split_fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    max_shift_images: int | None = None
    shift_seed: int = 0


def prepare(dataset: Any, size: tuple[int, int] | None, options: DataOptions) -> tuple[Any, str]:
    """Resize, split and pick the shift subset, in the runner's order.

    Returns ``(PreparedData, fingerprint of the resized data set)`` (what a run row records).
    """
    from robustbench_cells.bench.executors import PreparedData
    from robustbench_cells.bench.runner import stratified_subset
    from robustbench_cells.data.resize import resize_images
    from robustbench_cells.data.splits import split_dataset

    if size is not None and dataset.image_size != tuple(size):
        if size[0] != size[1]:
            raise CellbenchError(f"model input {size[0]}x{size[1]}: cellbench scores square images only")
        dataset = type(dataset)(resize_images(dataset.images, size[0]), dataset.labels, dataset.class_names,
                                source=dataset.source, split=dataset.split, paths=dataset.paths,
                                meta=dict(dataset.meta))
    parts = split_dataset(dataset, options.split_seed, options.split_fractions)
    test = parts["test"]
    idx = (stratified_subset(test.labels, options.max_shift_images, options.shift_seed)
           if options.max_shift_images else np.arange(len(test)))
    base = test.subset(idx, "[shift subset]")
    return PreparedData(parts["train"], parts["val"], test, base, base.fingerprint()), dataset.fingerprint()


def match_classes(model_classes: Sequence[str] | None, data_classes: Sequence[str], num_outputs: int,
                  where: str) -> np.ndarray | None:
    """Column order that maps the model's outputs onto the data's classes (``None``: already aligned)."""
    if model_classes is None:
        if num_outputs != len(data_classes):
            raise CellbenchError(f"model {where}: outputs {num_outputs} classes, the data set has "
                                 f"{len(data_classes)} ({', '.join(data_classes)})")
        return None
    model_classes = list(model_classes)
    if len(model_classes) != num_outputs:
        raise CellbenchError(f"--classes: {len(model_classes)} names for a model with {num_outputs} outputs")
    if sorted(model_classes) != sorted(data_classes):
        missing = sorted(set(data_classes) - set(model_classes))
        extra = sorted(set(model_classes) - set(data_classes))
        raise CellbenchError(f"--classes: do not match the data set's classes (missing: {', '.join(missing) or '-'}; "
                             f"unknown: {', '.join(extra) or '-'})")
    order = np.array([model_classes.index(c) for c in data_classes])
    return None if (order == np.arange(len(order))).all() else order


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
    data: Any                          # PreparedData
    cells: list[EvalCell]              # one per adapter chain ("none" first when asked for)
    config: dict[str, Any] = field(default_factory=dict)
    model: Any = None                  # the conformed Keras model, when there is one
    meta: dict[str, Any] = field(default_factory=dict)
    eval_seconds: float = 0.0
    targets: dict[str, Any] = field(default_factory=dict)  # spec -> Dataset
    run_dir: Path | None = None


def _softmax_needed(probs: np.ndarray) -> bool:
    """True when outputs look like logits (negative values or rows not summing to 1)."""
    return bool(len(probs)) and (probs.min() < -1e-6 or np.abs(probs.sum(1) - 1).max() > 1e-3)


def _scorer(model: Any, order: np.ndarray | None, batch_size: int) -> PredictFn:
    from robustbench_cells.training.artefacts import predict_proba

    def predict(images: np.ndarray) -> np.ndarray:
        if hasattr(model, "input_shape"):  # a Keras model: batched, compiled, resized to its input
            p = predict_proba(model, images, batch_size)
        else:
            p = np.asarray(model(images), dtype=np.float32)
        if len(p) != len(images):
            raise CellbenchError(f"predict function returned {len(p)} rows for {len(images)} images")
        if p.ndim != 2:
            raise CellbenchError(f"predict function returned shape {p.shape}, not (N, classes)")
        return p if order is None else p[:, order]

    return predict


def evaluate(model: Any, data: Any, *, shifts: Sequence[str], severities: Sequence[int],
             targets: Sequence[str] = (), adapters: Sequence[str] = ("none",),
             classes: Sequence[str] | None = None, preprocess: str = "none",
             options: DataOptions | None = None, batch_size: int = 256, name: str = "evaluate",
             progress: Callable[[str], None] | None = None) -> Evaluation:
    """Score *model* on *data* (a spec or a Dataset) clean, under *shifts* x *severities*, and on *targets*."""
    import time

    from robustbench_cells.bench.executors import SHIFT_SPLIT, probs_key
    from robustbench_cells.bench.shiftsets import shift_images
    from robustbench_cells.data.specs import load_dataset

    say = progress or (lambda _m: None)
    options = options or DataOptions()
    dataset = load_dataset(data) if isinstance(data, str) else data
    spec = data if isinstance(data, str) else (getattr(dataset, "source", "") or "")
    meta: dict[str, Any] = {}
    model_name = "predict_fn"
    if isinstance(model, (str, os.PathLike)):
        model_name = Path(model).name
        model, meta = load_any_model(model)
    keras_model = hasattr(model, "input_shape")
    if not keras_model and not callable(model):
        raise CellbenchError(f"evaluate: {type(model).__name__} is neither a Keras model, a path nor a predict function")
    if keras_model:
        model_name = meta.get("model") or (model_name if model_name != "predict_fn" else model.name)
        h, w, num_outputs = check_classifier(model, model_name)
        size = (h, w) if h and w else None
    else:
        size, num_outputs = None, None
    classes = classes if classes is not None else meta.get("class_names")
    prepared, fingerprint = prepare(dataset, size, options)
    if keras_model:
        order = match_classes(classes, prepared.class_names, num_outputs, model_name)
        model = conform_model(model, preprocess)
        probe = _scorer(model, None, batch_size)(prepared.val.images[:32])
        if _softmax_needed(probe):
            model = conform_model(model, "none", softmax=True)
    else:
        if preprocess != "none":
            raise CellbenchError("--preprocess: only applies to Keras models (a predict function preprocesses itself)")
        order = None if classes is None else match_classes(classes, prepared.class_names, len(classes), model_name)
    predict = _scorer(model, order, batch_size)
    sets: list[tuple[str, np.ndarray]] = [(probs_key(split), getattr(prepared, split).images) for split in ("val", "test")]
    for shift in shifts:  # shifted once, scored by every adapter
        for severity in severities:
            say(f"shifting {shift} s{severity}")
            sets.append((probs_key(SHIFT_SPLIT, shift, int(severity)),
                         shift_images(prepared.shift_base.images, shift, int(severity), options.shift_seed)))
    target_sets = {}
    for target in targets:
        tset = load_dataset(target)
        if tuple(tset.class_names) != tuple(prepared.class_names):
            raise CellbenchError(f"target {target}: classes {', '.join(tset.class_names)} differ from the data set's")
        target_sets[target] = tset
        sets.append((probs_key(TARGET_SPLIT, target), tset.images))
    started = time.perf_counter()
    cells = []
    for chain in adapters:
        fn = predict if chain == "none" else _adapted(chain, model if keras_model else None, meta, prepared, order)
        probs: dict[str, np.ndarray] = {}
        for key, images in sets:
            say(f"{key.replace('|', ' ')}" + ("" if chain == "none" else f" [{chain}]"))
            probs[key] = np.asarray(fn(images), np.float32)
            if probs[key].shape[1] != len(prepared.class_names):
                raise CellbenchError(f"model {model_name}: outputs {probs[key].shape[1]} classes, the data set has "
                                     f"{len(prepared.class_names)}")
        cells.append(EvalCell(chain, probs, _score(probs, prepared, target_sets)))
    config = {
        "name": name, "kind": "evaluate", "data": spec, "image_size": int(prepared.test.image_size[0]),
        "seeds": [0], "models": [{"name": model_name}], "augmentations": [], "train": {},
        "split": {"seed": options.split_seed, "fractions": list(options.split_fractions)},
        "shifts": {"names": list(shifts), "severities": [int(s) for s in severities],
                   "max_images": options.max_shift_images, "seed": options.shift_seed},
        "ensembles": [], "targets": list(targets), "adapters": list(adapters), "preprocess": preprocess,
        "data_fingerprint": fingerprint,
    }
    return Evaluation(name, model_name, spec, prepared, cells, config, model if keras_model else None, meta,
                      time.perf_counter() - started, target_sets)


def _score(probs: dict[str, np.ndarray], prepared: Any, targets: dict[str, Any]) -> list[Any]:
    """Score rows (cell key left empty) for the runner's sets and the targets."""
    from robustbench_cells.bench.executors import score_rows
    from robustbench_cells.bench.scoring import score_probabilities
    from robustbench_cells.bench.store import Score

    own = {k: p for k, p in probs.items() if not k.startswith(TARGET_SPLIT + "|")}
    rows = score_rows("", own, prepared)
    for key, p in probs.items():
        if key in own:
            continue
        target = key.split("|")[1]
        s = score_probabilities(p, targets[target].labels, len(prepared.class_names))
        rows.append(Score("", TARGET_SPLIT, target, 0, s.accuracy, s.balanced_accuracy, s.per_class,
                          s.mean_confidence, s.ece, s.n))
    return rows


def _adapted(chain: str, model: Any, meta: dict[str, Any], prepared: Any, order: np.ndarray | None) -> PredictFn:
    """Predictions through adapter *chain* (each evaluation set adapted on its own, without labels)."""
    from robustbench_cells.adapters import AdaptContext, adapt_predict, check_chain, train_stats

    if model is None:
        raise CellbenchError(f"adapter {chain!r}: adapters need a Keras model, not a predict function")
    check_chain(chain)
    context = AdaptContext(model, {**meta, "class_names": list(prepared.class_names)},
                           train_stats(prepared.train.images))

    def predict(images: np.ndarray) -> np.ndarray:
        p = adapt_predict(chain, context, images, seed=0)
        return p if order is None else p[:, order]

    return predict


def save_run(ev: Evaluation, run_dir: str | os.PathLike) -> Path:
    """Write *ev* as a run folder (``results.sqlite``, the cell's model, ``probs.npz``, samples)."""
    import dataclasses

    from robustbench_cells.bench.executors import PROBS_FILENAME, save_probs_atomic
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

                meta = {**ev.meta, "model": ev.model_name, "class_names": list(ev.data.class_names),
                        "input_size": list(ev.data.test.image_size), "input": "float32 RGB 0..255",
                        "evaluated_by": "cellbench evaluate", "preprocess": ev.config.get("preprocess"),
                        "adapter": cell.adapter}
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
