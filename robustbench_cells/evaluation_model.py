"""A model cellbench did not train, brought to cellbench's convention for one data set.

:func:`open_model` loads it (a Keras model, a ``.keras`` file / cell folder / SavedModel folder, an
``.onnx`` file, or a predict function) and checks it is a square-input image classifier;
:func:`ready_model` fits it to the data's classes (:func:`match_classes`), preprocessing and softmax
(:func:`conform_model`: built-in Keras layers only, so the saved model loads without cellbench).
Shared by :func:`robustbench_cells.evaluation.evaluate` and score-only matrix cells
(:mod:`robustbench_cells.bench.scoring_cells`); :mod:`robustbench_cells.evaluation` re-exports the
public names, so both import paths work.
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
