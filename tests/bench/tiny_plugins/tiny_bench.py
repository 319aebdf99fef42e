"""Tiny test plugins for the runner tests: a 1-conv model, two cheap shifts, a flip augmentation.

Loaded with ``--plugins-dir tests/bench/tiny_plugins``; small enough that a cell trains in a second.
"""

from __future__ import annotations

import numpy as np

from robustbench_cells.hookspecs import hookimpl
from robustbench_cells.data.dataset import CELL_CLASSES, Dataset
from robustbench_cells.registry import AugmentationSpec, DatasetSpec, ModelSpec, ShiftSpec


def _build_tiny(input_shape, num_classes, weights, width=4, fail=False):
    import keras

    if fail:
        raise RuntimeError("tiny model asked to fail")
    inputs = keras.Input(input_shape)
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(width, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def _dim(images, factor, rng):
    return (images.astype(np.float32) * (1 - factor)).astype(np.uint8)


def _noise(images, sigma, rng):
    noisy = images.astype(np.float32) + rng.normal(0, sigma, images.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _flip_factory():
    def flip(images, rng):
        out = images.copy()
        mask = rng.random(len(images)) < 0.5
        out[mask] = out[mask, :, ::-1]
        return out

    return flip


def _blobs(arg):
    """``tinyblobs[:N]``: 16x16 images whose colour and brightness depend on the class (learnable fast)."""
    n = int(arg or 240)
    rng = np.random.default_rng(123)
    labels = np.arange(n) % len(CELL_CLASSES)
    base = np.stack([(labels * 37) % 256, (labels * 91) % 256, (255 - labels * 29) % 256], axis=1)
    images = base[:, None, None, :] + rng.normal(0, 12, (n, 16, 16, 3))
    return Dataset(np.clip(images, 0, 255).astype(np.uint8), labels, CELL_CLASSES, source=f"tinyblobs:{n}")


@hookimpl
def register_datasets(register):
    register(DatasetSpec("tinyblobs", _blobs, "test blobs", "tinyblobs:240"))


@hookimpl
def register_models(register):
    register(ModelSpec("tiny_cnn", "test", _build_tiny, default_input_size=16, min_input_size=8, params=None,
                       options={"width": 4, "fail": False}))


@hookimpl
def register_shifts(register):
    register(ShiftSpec("tiny_dim", "photometric", _dim, (0.1, 0.2, 0.3, 0.4, 0.5)))
    register(ShiftSpec("tiny_noise", "noise", _noise, (5.0, 10.0, 20.0, 40.0, 80.0)))


@hookimpl
def register_augmentations(register):
    register(AugmentationSpec("tiny_flip", "geometric", "image", _flip_factory))
