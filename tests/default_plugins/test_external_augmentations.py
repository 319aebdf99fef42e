"""``keras_layer`` and ``albumentations``: the user's own pipelines as cellbench augmentations."""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_cells import plugins
from robustbench_cells.errors import CellbenchError


def _images(n: int = 4, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_keras_layer_runs_the_named_layer_with_its_args():
    fn = plugins.augmentations().get("keras_layer").build(layer="keras.layers.RandomFlip",
                                                          args={"mode": "horizontal"})
    images = _images(16)
    out = fn(images, np.random.default_rng(0))
    flipped = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images)]
    unchanged = [np.array_equal(o, i) for o, i in zip(out, images)]
    assert all(f or u for f, u in zip(flipped, unchanged)) and any(flipped) and any(unchanged)


def test_keras_layer_deterministic_layer_without_seed():
    fn = plugins.augmentations().get("keras_layer").build(layer="keras.layers.CenterCrop",
                                                          args={"height": 32, "width": 32})
    images = _images()
    np.testing.assert_array_equal(fn(images, np.random.default_rng(0)), images)


@pytest.mark.parametrize("options, message", [
    ({"layer": "os.system"}, "option 'layer' must be a dotted path starting with keras."),
    ({"layer": "keras.layers.NoSuchLayer"}, "option 'layer' = 'keras.layers.NoSuchLayer' cannot be imported"),
    ({"layer": "keras.ops.add"}, "is not a Keras layer class"),
    ({"layer": "keras.layers.RandomContrast", "args": {"factr": 0.3}}, "option 'args' do not fit"),
])
def test_keras_layer_refuses_bad_options_at_build(options, message):
    with pytest.raises(CellbenchError, match=message.replace(".", r"\.").replace("(", r"\(")):
        plugins.augmentations().get("keras_layer").build(**options)


def test_albumentations_compose_of_tables_is_seeded():
    fn = plugins.augmentations().get("albumentations").build(
        transform=[{"name": "HorizontalFlip", "p": 0.5}, {"name": "RandomBrightnessContrast", "p": 1.0}])
    images = _images(8)
    a = fn(images, np.random.default_rng(3))
    assert a.dtype == np.uint8 and a.shape == images.shape and not np.array_equal(a, images)
    np.testing.assert_array_equal(a, fn(images, np.random.default_rng(3)))


@pytest.mark.parametrize("options, message", [
    ({"transform": "NoSuch"}, "option 'transform' = 'NoSuch' is not an albumentations transform"),
    ({"transform": "Compose"}, "is not an albumentations transform"),
    ({"transform": "HorizontalFlip", "args": {"p": "often"}}, "option 'args' do not fit HorizontalFlip"),
    ({"transform": ["HorizontalFlip"], "args": {"p": 1.0}}, "apply to a single transform"),
])
def test_albumentations_refuses_bad_options_at_build(options, message):
    with pytest.raises(CellbenchError, match=message):
        plugins.augmentations().get("albumentations").build(**options)


def test_a_shape_changing_transform_is_one_clear_error():
    fn = plugins.augmentations().get("albumentations").build(transform="Resize", args={"height": 8, "width": 8})
    with pytest.raises(CellbenchError, match="changed the image shape"):
        fn(_images(), np.random.default_rng(0))
