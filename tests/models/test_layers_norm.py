"""Preprocess layer (values, safe-mode round trip) and the norm option helpers."""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_cells.errors import CellbenchError
from robustbench_cells.models.norm import check_norm, group_count, swap_batchnorm


def test_preprocess_modes_map_0_255_as_documented():
    from robustbench_cells.models.layers import Preprocess

    x = np.array([[[[0.0, 127.5, 255.0]]]], dtype=np.float32)
    np.testing.assert_allclose(np.asarray(Preprocess("unit")(x)), [[[[0, 0.5, 1]]]], atol=1e-6)
    np.testing.assert_allclose(np.asarray(Preprocess("tf")(x)), [[[[-1, 0, 1]]]], atol=1e-6)
    # caffe: RGB minus means, then channel order reversed to BGR
    np.testing.assert_allclose(np.asarray(Preprocess("caffe")(x)),
                               [[[[255 - 103.939, 127.5 - 116.779, 0 - 123.68]]]], atol=1e-4)
    with pytest.raises(ValueError, match="mode"):
        Preprocess("torch")


def test_preprocess_layer_survives_safe_mode_round_trip(tmp_path):
    import keras

    from robustbench_cells.models.layers import Preprocess

    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, Preprocess("caffe")(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-5)


def test_group_count_divides_channels():
    assert group_count(64) == 8
    assert group_count(24) == 8
    assert group_count(20) == 5
    assert group_count(7) == 7
    assert group_count(13, max_groups=8) == 1


def test_check_norm_names_model_and_suggests():
    assert check_norm("group", "m") == "group"
    with pytest.raises(CellbenchError, match="'m'.*norm='grop'.*did you mean: group"):
        check_norm("grop", "m")


def test_swap_batchnorm_replaces_and_keeps_conv_weights():
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(16, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    grouped = swap_batchnorm(model, "group")
    assert isinstance(grouped.get_layer("bn"), keras.layers.GroupNormalization)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in grouped.layers)
    np.testing.assert_array_equal(grouped.get_layer("conv").get_weights()[0], model.get_layer("conv").get_weights()[0])
    frozen = swap_batchnorm(model, "frozen_batch")
    assert isinstance(frozen.get_layer("bn"), keras.layers.BatchNormalization)
    assert frozen.get_layer("bn").trainable is False
    assert swap_batchnorm(model, "batch") is model
