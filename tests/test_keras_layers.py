"""Cellbench augmentations as a Keras layer and a tf.data map function, with the documented seeds."""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_cells.errors import CellbenchError


def _images(n: int = 8, size: int = 32) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_layer_augments_in_training_only_and_follows_the_seed():
    from robustbench_cells.keras_layers import AugmentationLayer
    from robustbench_cells.pipeline import apply_image_steps, resolve_augmentation

    x = _images().astype(np.float32)
    layer = AugmentationLayer("simple", seed=4)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    first = np.asarray(layer(x, training=True))
    second = np.asarray(layer(x, training=True))
    assert first.dtype == np.float32 and first.shape == x.shape and not np.array_equal(first, x)
    assert not np.array_equal(first, second)  # call k uses rng [seed, k]: each batch new parameters
    # exactly the numpy op with np.random.default_rng([seed, 0]) -- the bytes `cellbench run` trains on
    expected = apply_image_steps(resolve_augmentation("simple"), x.astype(np.uint8), np.random.default_rng([4, 0]))
    np.testing.assert_array_equal(first, expected.astype(np.float32))
    again = np.asarray(AugmentationLayer("simple", seed=4)(x, training=True))
    np.testing.assert_array_equal(again, first)


def test_layer_refuses_label_mixing_augmentations():
    from robustbench_cells.keras_layers import AugmentationLayer

    with pytest.raises(CellbenchError, match="augmentation_map"):
        AugmentationLayer(["simple", "mixup"])


def test_map_function_in_tf_data_mixes_labels_deterministically():
    import tensorflow as tf

    from robustbench_cells.keras_layers import augmentation_map

    images = _images(8)
    labels = np.eye(4, dtype=np.float32)[np.arange(8) % 4]

    def run() -> list[tuple[np.ndarray, np.ndarray]]:
        ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4).map(augmentation_map(["simple", "mixup"], seed=1))
        return [(x.numpy(), y.numpy()) for x, y in ds]

    a, b = run(), run()
    for (xa, ya), (xb, yb) in zip(a, b):
        assert xa.dtype == np.uint8 and xa.shape == (4, 32, 32, 3)
        np.testing.assert_allclose(ya.sum(1), 1.0, atol=1e-6)
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[0][1], labels[:4])  # mixup changed the labels


def test_layer_trains_inside_model_fit():
    import keras

    from robustbench_cells.keras_layers import AugmentationLayer

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), AugmentationLayer("augmix", seed=0),
                              keras.layers.Rescaling(1 / 255), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(_images(8).astype(np.float32), np.arange(8) % 2, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
