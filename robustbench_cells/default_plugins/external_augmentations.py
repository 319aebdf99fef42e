"""Augmentations from the pipelines users already have: Keras preprocessing layers and albumentations.

Registered through ``register_augmentations`` like any plugin, so they pass the same contract
(uint8 in and out, seeded by the ``rng`` they are given, global RNGs untouched).

- ``keras_layer``: a Keras 3 (or KerasCV / KerasHub, when installed) layer class by dotted path
  with its constructor arguments in ``args``:
  ``{ name = "keras_layer", layer = "keras.layers.RandomContrast", args = { factor = 0.3 } }``.
  The arguments go in a table of their own because an augmentation's options are a fixed, checked
  set (a misspelt option must fail at matrix validation, not be passed on). Random layers are
  rebuilt per batch with a seed drawn from ``rng``, so a seed gives the same bytes in any process.
  Only ``keras.``, ``keras_cv.`` and ``keras_hub.`` paths are accepted: a matrix file must not be
  able to import arbitrary modules. KerasCV (the ``[kerascv]`` extra, keras-cv 0.9 runs on Keras 3)
  is no longer maintained, and its random layers (RandAugment, AugMix, RandomHue, ...) draw from
  TensorFlow's stateful RNG, so the seed does not fix their output (a ``KerasCVWarning`` says so);
  they are also slow (RandAugment: 18 images/s against 2,935 for the built-in ``randaugment``,
  512 PBC images on 2 busy cores, ``benchmarks/perf/kerascv_randaugment.py``). Prefer
  ``keras.layers`` or a built-in.
  Cost: the layer runs eagerly per batch (~85-95 ms per 256 images of 96 px on 2 busy CPU cores,
  against ~28 ms for ``simple`` and ~12 ms for ``albumentations``' RandomBrightnessContrast).
- ``albumentations``: a transform by name with ``args``, or a ``Compose`` of several given as a
  list of ``{ name = ..., ... }`` tables:
  ``{ name = "albumentations", transform = [{ name = "HorizontalFlip", p = 0.5 }, { name = "CLAHE" }] }``.
  Each batch reseeds the pipeline from ``rng`` (albumentations >= 2 keeps its own generators).
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from robustbench_cells.errors import CellbenchError
from robustbench_cells.hookspecs import hookimpl
from robustbench_cells.registry import AugmentationSpec

#: Module prefixes a ``keras_layer`` path may name.
KERAS_PREFIXES = ("keras.", "keras_cv.", "keras_hub.")
#: How to install the optional libraries a path may name.
OPTIONAL_EXTRAS = {"keras_cv": "pip install 'robustbench-cells[kerascv]'", "keras_hub": "pip install keras-hub"}


class KerasCVWarning(UserWarning):
    """A ``keras_layer`` names a KerasCV layer: it runs, but its output does not follow the seed."""


def _bad(name: str, option: str, problem: str) -> CellbenchError:
    return CellbenchError(f"augmentation {name!r}: option {option!r} {problem}")


def _args(name: str, args: Any) -> dict[str, Any]:
    if not isinstance(args, Mapping) or not all(isinstance(k, str) for k in args):
        raise _bad(name, "args", f"must be a table of constructor arguments, got {type(args).__name__}")
    return dict(args)


def _to_uint8(x: Any) -> np.ndarray:
    return np.clip(np.rint(np.asarray(x, dtype=np.float32)), 0, 255).astype(np.uint8)


# -- keras_layer -----------------------------------------------------------------------------------
def _layer_class(path: Any) -> type:
    if not isinstance(path, str) or not path.startswith(KERAS_PREFIXES) or "." not in path:
        raise _bad("keras_layer", "layer", f"must be a dotted path starting with {', '.join(KERAS_PREFIXES)}, "
                                           f"got {path!r}")
    module, _, attr = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        top = path.split(".")[0]
        if isinstance(exc, ImportError) and top in OPTIONAL_EXTRAS and (exc.name or "").split(".")[0] == top:
            raise _bad("keras_layer", "layer", f"= {path!r} needs {top} ({OPTIONAL_EXTRAS[top]})") from None
        raise _bad("keras_layer", "layer", f"= {path!r} cannot be imported ({type(exc).__name__}: {exc})") from None
    import keras

    if not (inspect.isclass(cls) and issubclass(cls, keras.layers.Layer)):
        raise _bad("keras_layer", "layer", f"= {path!r} is not a Keras layer class")
    return cls


def keras_layer(layer: str = "keras.layers.RandomContrast", args: Mapping[str, Any] | None = None) -> Callable:
    """Factory: ``fn(images uint8, rng) -> uint8`` running Keras layer *layer* (in training mode)."""
    cls = _layer_class(layer)
    if layer.startswith("keras_cv."):
        # measured (benchmarks/perf/kerascv_randaugment.py): most KerasCV layers draw from TF's stateful
        # RNG inside map_fn, so the seed cellbench passes does not fix their output
        warnings.warn(f"keras_layer {layer}: KerasCV layers are not reproducible under a seed (the same seed "
                      "gives different images) and KerasCV is unmaintained; prefer keras.layers or a built-in",
                      KerasCVWarning, stacklevel=2)
    kwargs = _args("keras_layer", {"factor": 0.3} if args is None and layer.endswith("RandomContrast") else args or {})
    seeded = "seed" in inspect.signature(cls.__init__).parameters
    try:
        fixed = None if seeded else cls(**kwargs)
        if seeded:
            cls(**kwargs, seed=0)  # refuse bad arguments now, at matrix validation, not in a cell
    except (TypeError, ValueError) as exc:
        raise _bad("keras_layer", "args", f"do not fit {layer} ({exc})") from None

    def apply(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        instance = cls(**kwargs, seed=int(rng.integers(2**31 - 1))) if seeded else fixed
        out = instance(np.asarray(images, dtype=np.float32), training=True)
        out = _to_uint8(out)
        if out.shape != images.shape:
            raise CellbenchError(f"augmentation 'keras_layer': {layer} changed the image shape "
                                 f"{images.shape} -> {out.shape}")
        return out

    return apply


# -- albumentations --------------------------------------------------------------------------------
def _album_transform(entry: Any, args: Mapping[str, Any]) -> Any:
    import albumentations as A

    if isinstance(entry, Mapping):
        args = {k: v for k, v in entry.items() if k != "name"}
        entry = entry.get("name")
    cls = getattr(A, entry, None) if isinstance(entry, str) and not entry.startswith("_") else None
    if not (inspect.isclass(cls) and issubclass(cls, A.BasicTransform)):
        raise _bad("albumentations", "transform", f"= {entry!r} is not an albumentations transform")
    try:
        return cls(**dict(args))
    except Exception as exc:  # albumentations validates with pydantic: its errors are ValueErrors and others
        text = " ".join(str(exc).split())[:200]
        raise _bad("albumentations", "args", f"do not fit {entry} ({type(exc).__name__}: {text})") from None


def albumentations(transform: Any = "RandomBrightnessContrast", args: Mapping[str, Any] | None = None) -> Callable:
    """Factory: ``fn(images uint8, rng) -> uint8`` through an albumentations transform or ``Compose``."""
    import albumentations as A

    kwargs = _args("albumentations", args or {})
    if isinstance(transform, (str, Mapping)):
        transforms = [_album_transform(transform, kwargs)]
    elif isinstance(transform, Sequence) and transform:
        if kwargs:
            raise _bad("albumentations", "args", "apply to a single transform; give each list entry its own options")
        transforms = [_album_transform(t, {}) for t in transform]
    else:
        raise _bad("albumentations", "transform", f"must be a name or a list of {{name = ...}} tables, got {transform!r}")
    pipeline = A.Compose(transforms, seed=0)

    def apply(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        pipeline.set_random_seed(int(rng.integers(2**31 - 1)))
        out = np.empty_like(images)
        for i, image in enumerate(images):
            result = pipeline(image=np.ascontiguousarray(image))["image"]
            if result.shape != image.shape:
                raise CellbenchError(f"augmentation 'albumentations': {transform!r} changed the image shape "
                                     f"{image.shape} -> {result.shape} (crop/resize transforms need a fixed size)")
            out[i] = _to_uint8(result)
        return out

    return apply


SPECS = (
    AugmentationSpec("keras_layer", "external", "image", keras_layer,
                     "a Keras preprocessing layer by dotted path (layer = 'keras.layers.X', args = {...})"),
    AugmentationSpec("albumentations", "external", "image", albumentations,
                     "an albumentations transform or a list of them (transform = 'Name' or [{name = ...}])"),
)


@hookimpl
def register_augmentations(register) -> None:
    """Register ``keras_layer`` and ``albumentations``."""
    for spec in SPECS:
        register(spec)
