"""Every cellbench augmentation inside your own Keras / ``tf.data`` training pipeline.

Two forms, both wrapping the NumPy augmentation through ``tf.numpy_function`` (so the bytes are
exactly what ``cellbench run`` trains on)::

    from robustbench_cells.keras_layers import AugmentationLayer, augmentation_map

    # 1. a layer in the model (active only when training=True; identity at inference)
    model = keras.Sequential([keras.Input((96, 96, 3)), AugmentationLayer("augmix", seed=0), ...])

    # 2. a tf.data map function on (images, one-hot labels) batches; batch augmentations
    #    (mixup, cutmix) mix the labels too
    ds = ds.batch(64).map(augmentation_map(["simple", "mixup"], seed=0))

Seed semantics: each wrapper owns a call counter; call ``k`` augments its batch with
``np.random.default_rng([seed, k])``. So the same seed, batches and call order give the same bytes
in any process, and every epoch draws new parameters. ``tf.data`` keeps that order when the map
runs sequentially (``num_parallel_calls=None``, the default) or with ``deterministic=True`` and a
single parallel call; with several parallel calls the counter order, and so the bytes, can change
between runs (the augmentations stay valid). ``seed=None`` draws a seed from the OS.

Images may be uint8 or float on the 0..255 scale (what cellbench models take); the result has the
input's dtype. The layer runs eagerly-wrapped Python, so it is not part of a portable saved model:
keep it in the ``tf.data`` pipeline, or drop it before ``model.save`` for a submission.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import keras  # the layer class needs its base at import; this module is for Keras users anyway
import numpy as np

from robustbench_cells.errors import CellbenchError

AugmentationArg = str | Mapping[str, Any] | Sequence[str | Mapping[str, Any]]


class _Counter:
    """The per-wrapper call counter behind the seed semantics (thread safe: tf.data may call from threads)."""

    def __init__(self, seed: int | None) -> None:
        self.seed = int(np.random.SeedSequence().entropy % (2**63)) if seed is None else int(seed)
        self._next = 0
        self._lock = threading.Lock()

    def rng(self) -> np.random.Generator:
        with self._lock:
            k, self._next = self._next, self._next + 1
        return np.random.default_rng([self.seed, k])


def _steps(augmentation: AugmentationArg) -> list[Any]:
    from robustbench_cells.pipeline import resolve_augmentation

    return resolve_augmentation(augmentation)


def _as_uint8(x: np.ndarray) -> np.ndarray:
    return x if x.dtype == np.uint8 else np.clip(np.rint(x), 0, 255).astype(np.uint8)


class NumpyAugmentation:
    """The plain-NumPy form both wrappers call: ``(images, labels or None) -> (images, labels)``."""

    def __init__(self, augmentation: AugmentationArg, seed: int | None = 0) -> None:
        self.steps = _steps(augmentation)
        self.counter = _Counter(seed)

    @property
    def has_batch_steps(self) -> bool:
        return any(s.spec.kind == "batch" for s in self.steps)

    def __call__(self, images: np.ndarray, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        from robustbench_cells.pipeline import apply_batch_steps, apply_image_steps

        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise CellbenchError(f"augmentation: images must be a batch (N, H, W, 3), got {images.shape}")
        rng = self.counter.rng()
        out = apply_image_steps(self.steps, _as_uint8(images), rng)
        if self.has_batch_steps:
            if labels is None:
                raise CellbenchError("augmentation: mixup/cutmix mix labels; use augmentation_map on (images, labels)")
            x, y = apply_batch_steps(self.steps, out.astype(np.float32), np.asarray(labels, np.float32), rng)
            return x.astype(images.dtype) if images.dtype != np.uint8 else _as_uint8(x), y
        return out.astype(images.dtype, copy=False), labels


def augmentation_map(augmentation: AugmentationArg, seed: int | None = 0) -> Any:
    """A ``tf.data`` map function ``(images, labels) -> (images, labels)`` (labels one-hot float for mixup/cutmix)."""
    import tensorflow as tf

    op = NumpyAugmentation(augmentation, seed)

    def _np(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = op(images, labels)
        return x, np.asarray(y, dtype=labels.dtype)

    def fn(images: Any, labels: Any) -> tuple[Any, Any]:
        x, y = tf.numpy_function(_np, [images, labels], [images.dtype, labels.dtype], stateful=True)
        x.set_shape(images.shape)
        y.set_shape(labels.shape)
        return x, y

    fn.augmentation = op  # for inspection and tests
    return fn


class AugmentationLayer(keras.layers.Layer):
    """A Keras layer applying a cellbench per-image augmentation when ``training=True``.

    Batch augmentations (mixup, cutmix) need the labels, which a layer never sees: use
    :func:`augmentation_map` for those.
    """

    def __init__(self, augmentation: AugmentationArg = "simple", seed: int | None = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.augmentation = augmentation
        self.seed = seed
        self._op = NumpyAugmentation(augmentation, seed)
        if self._op.has_batch_steps:
            raise CellbenchError("AugmentationLayer: mixup/cutmix mix labels; use augmentation_map in tf.data")

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not training:
            return inputs
        import tensorflow as tf

        out = tf.numpy_function(lambda x: self._op(x)[0], [inputs], inputs.dtype, stateful=True)
        out.set_shape(inputs.shape)
        return out

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "augmentation": self.augmentation, "seed": self.seed}
