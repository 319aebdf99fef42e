"""Model artefacts: prediction (:func:`predict_proba`), ``model.keras`` + ``meta.json`` saving and
loading, and the metadata written beside a trained model.

This is all that explain, predict and evaluate need: it imports neither the recipe nor the loop
at run time (nor TensorFlow until a model is used).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robustbench_cells.atomic import atomic_path
from robustbench_cells.errors import CellbenchError

if TYPE_CHECKING:
    from robustbench_cells.training.loop import TrainResult
    from robustbench_cells.training.recipe import Recipe

#: Probability floor for logs (shared with the loop's losses).
EPS = 1e-7


# ---------------------------------------------------------------------------------------------
# Prediction
# ---------------------------------------------------------------------------------------------
_PREDICT_FNS: dict[int, Callable] = {}


def _predict_fn(model: Any) -> Callable:
    """One compiled inference function per model (batch dimension left open: no retracing)."""
    key = id(model)
    fn = _PREDICT_FNS.get(key)
    if fn is None:
        import tensorflow as tf

        ref = weakref.ref(model)
        shape = (None, *model.input_shape[1:])

        @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)])
        def fn(x: Any) -> Any:
            return ref()(x, training=False)

        _PREDICT_FNS[key] = fn
        weakref.finalize(model, _PREDICT_FNS.pop, key, None)
    return fn


def model_input_size(model: Any) -> tuple[int, int]:
    """The (height, width) a model expects."""
    shape = model.input_shape
    return int(shape[1]), int(shape[2])


def predict_proba(model: Any, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities float32 ``(N, C)`` for uint8 images ``(N, H, W, 3)`` (resized to the model's input)."""
    from robustbench_cells.data.resize import resize_images

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise CellbenchError(f"predict: images must be (N, H, W, 3), got {images.shape}")
    size = model_input_size(model)
    if images.shape[1:3] != size and None not in size:
        images = resize_images(images.astype(np.uint8, copy=False), size)
    fn = _predict_fn(model)
    num_classes = int(model.output_shape[-1])
    out = np.empty((len(images), num_classes), dtype=np.float32)
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].astype(np.float32)
        out[start:start + len(batch)] = np.asarray(fn(batch))
    return out


# ---------------------------------------------------------------------------------------------
# Artefacts
# ---------------------------------------------------------------------------------------------
MODEL_FILE = "model.keras"
META_FILE = "meta.json"


#: Installed distributions whose versions decide the numbers (besides cellbench, Python and Keras).
VERSIONED_DISTRIBUTIONS = ("numpy", "opencv-python-headless", "albumentations")


def versions() -> dict[str, str]:
    """Versions that decide the numbers: cellbench, Python, the platform, Keras and its backend, the libraries.

    The one list: every trained cell's ``meta.json`` records it, and every run row (through
    :func:`robustbench_cells.bench.runner.versions`, which adds the shift suite's version).
    """
    import keras

    from robustbench_cells import __version__

    out = {"cellbench": __version__, "python": platform.python_version(), "platform": platform.platform(),
           "keras": keras.__version__, "backend": keras.backend.backend()}
    try:
        import tensorflow as tf

        out["tensorflow"] = tf.__version__
    except ImportError:
        pass
    for dist in VERSIONED_DISTRIBUTIONS:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def model_meta(model_name: str, train: Any, *, augmentation: Any, recipe: Recipe, seed: int,
               model_options: Mapping[str, Any] | None = None, result: TrainResult | None = None,
               **extra: Any) -> dict[str, Any]:
    """The metadata saved next to a trained model (class names, input size, preprocessing, provenance)."""
    from robustbench_cells import plugins

    spec = plugins.models().get(model_name)
    meta = {
        "model": model_name, "model_options": dict(model_options or {}), "class_names": list(train.class_names),
        "input_size": list(train.images.shape[1:3]), "preprocessing": spec.preprocessing,
        "input": "float32 RGB 0..255 (preprocessing is inside the model)",
        "augmentation": augmentation, "recipe": recipe.to_dict(), "seed": int(seed),
        "data_source": getattr(train, "source", ""), "data_fingerprint": train.fingerprint(),
        "n_train": len(train), "versions": versions(),
    }
    if result is not None:
        meta.update(epochs=result.epochs, train_seconds=round(result.train_seconds, 2), params=result.params,
                    best_epoch=result.best_epoch, history=result.history)
    meta.update(extra)
    return meta


def save_model(model: Any, meta: Mapping[str, Any], folder: str | os.PathLike) -> Path:
    """Write ``folder/model.keras`` and ``folder/meta.json`` atomically (temp file + rename); return the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / MODEL_FILE, ".keras") as tmp:
        model.save(tmp)
    with atomic_path(folder / META_FILE) as tmp, open(tmp, "w") as fh:
        json.dump(dict(meta), fh, indent=2, default=_json_default)
    return folder


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def load_model(path: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """Load ``(model, meta)`` from a run folder or a ``.keras`` file, in Keras' safe mode.

    ``meta`` is ``{}`` when there is no ``meta.json`` next to the model. Missing or corrupt files
    raise CellbenchError naming the file.
    """
    import keras

    import robustbench_cells.models.layers  # noqa: F401  (registers cellbench's custom layers)

    path = Path(path)
    model_file = path / MODEL_FILE if path.is_dir() else path
    if not model_file.is_file():
        raise CellbenchError(f"model {model_file}: no such file (expected a run folder with {MODEL_FILE} or a .keras file)")
    if model_file.suffix != ".keras":
        raise CellbenchError(f"model {model_file}: not a .keras file")
    try:
        model = keras.saving.load_model(model_file, compile=False, safe_mode=True)
    except Exception as exc:
        raise CellbenchError(f"model {model_file}: cannot load ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
    meta_file = model_file.parent / META_FILE
    meta: dict[str, Any] = {}
    if meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CellbenchError(f"model metadata {meta_file}: not valid JSON ({exc})") from None
    return model, meta
