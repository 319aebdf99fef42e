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
the store are the runner's own (:mod:`robustbench_cells.bench`). :func:`open_model` and
:func:`ready_model` are shared with score-only matrix cells (:mod:`robustbench_cells.bench.scoring_cells`).
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

PredictFn = Callable[[np.ndarray], np.ndarray]


# -- models ----------------------------------------------------------------------------------------
def preprocess_scale_offset(mode: str) -> tuple[Any, Any]:
    """``(scale, offset)`` of ``--preprocess`` *mode*: the model gets ``x * scale + offset`` for x in 0..255.

    Per channel (lists of 3) for ``imagenet``; the one definition behind the Keras layer and ONNX.
    """
    if mode not in PREPROCESS:
        raise CellbenchError(f"--preprocess {mode}: not one of {', '.join(PREPROCESS)}")
    if mode == "unit":
        return 1.0 / 255.0, 0.0
    if mode == "symmetric":
        return 1.0 / 127.5, -1.0
    if mode == "imagenet":  # (x/255 - mean) / std per channel, as torchvision and timm models expect
        return ([1.0 / (255.0 * s) for s in _IMAGENET_STD], [-m / s for m, s in zip(_IMAGENET_MEAN, _IMAGENET_STD)])
    return 1.0, 0.0


def _preprocess_layer(mode: str) -> Any:
    import keras

    scale, offset = preprocess_scale_offset(mode)
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


def conform_model(model: Any, preprocess: str = "none", softmax: bool = False,
                  order: Sequence[int] | None = None) -> Any:
    """*model* taking float32 0..255 RGB and giving probabilities in the data's class order.

    Built-in layers only, so the result saves and loads without cellbench: the preprocessing in
    front (:data:`PREPROCESS`), a softmax behind when the model gives logits, and a fixed 0/1
    ``Dense`` that reorders the outputs (column ``j`` = model output ``order[j]``) when the model's
    class order is not the data's.
    """
    import keras

    if preprocess not in PREPROCESS:
        raise CellbenchError(f"--preprocess {preprocess}: not one of {', '.join(PREPROCESS)}")
    if preprocess == "none" and not softmax and order is None:
        return model
    inputs = keras.Input(shape=tuple(model.input_shape[1:]), name="image")
    x = inputs if preprocess == "none" else _preprocess_layer(preprocess)(inputs)
    x = model(x)
    if softmax:
        x = keras.layers.Softmax(name="external_softmax")(x)
    if order is not None:
        n = int(model.output_shape[-1])
        reorder = keras.layers.Dense(n, use_bias=False, trainable=False, name="external_class_order")
        x = reorder(x)
        # exact: each output is one input times 1.0 plus zeros
        reorder.set_weights([np.eye(n, dtype=np.float32)[:, list(order)]])
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
    """``(model, meta)`` from a ``.keras`` file, a cell folder or a SavedModel folder (safe mode for
    .keras), or an ``.onnx`` file (an :class:`~robustbench_cells.onnx_model.OnnxClassifier`)."""
    from robustbench_cells.onnx_model import OnnxClassifier, is_onnx
    from robustbench_cells.training.artefacts import MODEL_FILE, load_model

    path = Path(path)
    if is_onnx(path):
        if not path.is_file():
            raise CellbenchError(f"model {path}: no such file")
        return OnnxClassifier(path), {}
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


def prepare(data: Any, size: int | None, options: DataOptions, targets: Sequence[str] = ()) -> tuple[Any, dict]:
    """The run's data through :func:`robustbench_cells.bench.rundata.prepare_run_data` (the runner's path).

    *data* is a spec or a Dataset, *size* the model's square input (``None``: as it is). Targets
    are labelled specs, loaded at the same size with their classes matched by name
    (:func:`~robustbench_cells.bench.rundata.load_target`). Returns ``(PreparedData, facts)``,
    the facts being what a run row records (``RunData.facts()`` plus ``targets``).
    """
    from robustbench_cells.bench.executors import PreparedData
    from robustbench_cells.bench.rundata import load_target, prepare_run_data, target_facts

    run_data = prepare_run_data(data, size, options.split_seed, options.split_fractions,
                                options.max_shift_images, options.shift_seed)
    base = run_data.shift_base
    prepared = PreparedData(run_data.train, run_data.val, run_data.test, base, base.fingerprint())
    facts = run_data.facts()
    if len(prepared.test) == 0:
        raise CellbenchError(f"{run_data.dataset.source or 'data'}: the test split is empty, nothing to score")
    if targets:
        prepared.targets = {t: load_target(t, size, facts["class_names"], where=f"target {t}") for t in targets}
        facts["targets"] = target_facts(prepared.targets)
    return prepared, facts


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


# -- a model from elsewhere, ready to score --------------------------------------------------------
@dataclass
class ExternalModel:
    """A model from elsewhere brought to cellbench's convention for one data set.

    ``predict(uint8 images (N, H, W, 3)) -> float32 probabilities (N, C)`` in the data's class
    order. For a Keras model, ``keras_model`` is the conformed model (preprocessing, softmax and
    class order built in) that a run saves and ``explain``/adapters load; ``None`` for a function.
    """

    name: str
    predict: PredictFn
    meta: dict[str, Any] = field(default_factory=dict)
    keras_model: Any = None
    preprocess: str = "none"


def open_model(model: Any) -> tuple[Any, dict[str, Any], str, int | None]:
    """``(model or predict function, meta, display name, square input size or None)``.

    *model* is a Keras model, a model path (:func:`load_any_model`) or a predict function. The size
    is what the data are resized to before splitting (``None``: a function, or a model without a
    fixed input size). Bad models (not a classifier, not square) fail here, before data loads.
    """
    from robustbench_cells.onnx_model import OnnxClassifier

    meta: dict[str, Any] = {}
    name = "predict_fn"
    if isinstance(model, (str, os.PathLike)):
        name = Path(model).name
        model, meta = load_any_model(model)
    if isinstance(model, OnnxClassifier):
        h, w = model.height, model.width
        if h and w and h != w:
            raise CellbenchError(f"model {name}: input {h}x{w}: cellbench scores square images only")
        return model, meta, name, int(h) if h and w else None
    if not hasattr(model, "input_shape"):
        if not callable(model):
            raise CellbenchError(f"evaluate: {type(model).__name__} is neither a Keras model, a path nor a predict "
                                 "function")
        return model, meta, name, None
    name = meta.get("model") or (name if name != "predict_fn" else model.name)
    h, w, _ = check_classifier(model, name)
    if h and w and h != w:
        raise CellbenchError(f"model {name}: input {h}x{w}: cellbench scores square images only")
    return model, meta, name, int(h) if h and w else None


def ready_model(model: Any, meta: dict[str, Any], name: str, class_names: Sequence[str], *,
                classes: Sequence[str] | None = None, preprocess: str = "none", probe: np.ndarray | None = None,
                batch_size: int = 256) -> ExternalModel:
    """*model* (from :func:`open_model`) fitted to data with *class_names*.

    *classes*: the model's class names in output order (default: the meta's, else the data's
    order). *probe*: a few uint8 images whose outputs decide whether the model gives logits
    (then a softmax is added).
    """
    if preprocess not in PREPROCESS:
        raise CellbenchError(f"--preprocess {preprocess}: not one of {', '.join(PREPROCESS)}")
    from robustbench_cells.onnx_model import OnnxClassifier

    classes = classes if classes is not None else meta.get("class_names")
    if isinstance(model, OnnxClassifier):  # preprocessing and softmax in NumPy, around onnxruntime
        order = match_classes(classes, class_names, model.num_outputs, name)
        model.preprocess, model.batch_size = preprocess, batch_size
        if probe is not None and len(probe):
            model.softmax = _softmax_needed(model(probe[:32]))
        return ExternalModel(name, _scorer(model, order, batch_size, len(class_names), name), meta,
                             preprocess=preprocess)
    if not hasattr(model, "input_shape"):
        if preprocess != "none":
            raise CellbenchError("--preprocess: only applies to Keras models (a predict function preprocesses itself)")
        order = None if classes is None else match_classes(classes, class_names, len(classes), name)
        return ExternalModel(name, _scorer(model, order, batch_size, len(class_names), name), meta)
    order = match_classes(classes, class_names, int(model.output_shape[-1]), name)
    softmax = False
    if probe is not None and len(probe):
        softmax = _softmax_needed(_scorer(conform_model(model, preprocess), None, batch_size)(probe[:32]))
    conformed = conform_model(model, preprocess, softmax=softmax, order=None if order is None else order.tolist())
    return ExternalModel(name, _scorer(conformed, None, batch_size, len(class_names), name), meta, conformed,
                         preprocess)


def external_meta(name: str, meta: dict[str, Any], preprocess: str, data: Any, **extra: Any) -> dict[str, Any]:
    """``meta.json`` of a conformed model saved into a run (what explain, predict and adapters read)."""
    return {**meta, "model": name, "class_names": list(data.class_names), "input_size": list(data.test.image_size),
            "input": "float32 RGB 0..255", "preprocess": preprocess, **extra}


def _softmax_needed(probs: np.ndarray) -> bool:
    """True when outputs look like logits (negative values or rows not summing to 1)."""
    return bool(len(probs)) and (probs.min() < -1e-6 or np.abs(probs.sum(1) - 1).max() > 1e-3)


def _scorer(model: Any, order: np.ndarray | None, batch_size: int, num_classes: int | None = None,
            where: str = "") -> PredictFn:
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
        if num_classes is not None and p.shape[1] != num_classes:
            raise CellbenchError(f"model {where}: outputs {p.shape[1]} classes, the data set has {num_classes}")
        return p if order is None else p[:, order]

    return predict


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

    from robustbench_cells.bench.executors import SHIFT_SPLIT, TARGET_SPLIT, probs_key, score_rows
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
    keys = [probs_key(split) for split in ("val", "test")]
    keys += [probs_key(SHIFT_SPLIT, s, v) for s, v in shift_sets]
    keys += [probs_key(TARGET_SPLIT, t) for t in prepared.targets]
    total, done = len(shift_sets) + len(keys) * len(adapters), 0
    sets: dict[str, np.ndarray] = {keys[0]: prepared.val.images, keys[1]: prepared.test.images}
    for shift, severity in shift_sets:  # shifted once, scored by every adapter
        say(done, total, f"shifting {shift} s{severity}")
        sets[probs_key(SHIFT_SPLIT, shift, severity)] = shift_images(prepared.shift_base.images, shift, severity,
                                                                     options.shift_seed)
        done += 1
    sets.update({probs_key(TARGET_SPLIT, t): ds.images for t, ds in prepared.targets.items()})
    started = time.perf_counter()
    cells = []
    stats = prepared.training_stats() if any(chain != "none" for chain in adapters) else None
    for chain in adapters:
        fn = ext.predict if chain == "none" else _adapted(chain, ext, prepared, stats)
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
    if stats is not None:  # saved with the model, so the run's cell can be adapted again later
        from robustbench_cells.adapters import META_KEY

        ext.meta = {**ext.meta, META_KEY: stats}
    return Evaluation(name, model_name, spec, prepared, cells, config, ext.keras_model, ext.meta,
                      time.perf_counter() - started)


def _adapted(chain: str, ext: ExternalModel, prepared: Any, stats: dict[str, Any] | None) -> PredictFn:
    """Predictions through adapter *chain* (each evaluation set adapted on its own, without labels)."""
    from robustbench_cells.adapters import AdaptContext, adapt_predict, check_chain

    if ext.keras_model is None:
        raise CellbenchError(f"adapter {chain!r}: adapters need a Keras model, not a predict function")
    check_chain(chain)
    # the conformed model already gives the data's class order: no reordering after the adapter
    context = AdaptContext(ext.keras_model, {**ext.meta, "class_names": list(prepared.class_names)},
                           stats if stats is not None else prepared.training_stats())

    def predict(images: np.ndarray) -> np.ndarray:
        return adapt_predict(chain, context, images, seed=0)

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
