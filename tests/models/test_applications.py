"""Keras applications: minimum input size, preprocessing inside the graph, norm swap, weights."""

from __future__ import annotations

import time

import numpy as np
import pytest

from robustbench_cells.errors import CellbenchError
from robustbench_cells.models.applications import APPLICATIONS, build_application, find_base


def test_small_input_is_resized_up_inside_the_graph():
    model = build_application("xception", (48, 48, 3), 8)
    assert model.get_layer("resize_to_min").get_config()["height"] == 71
    assert find_base(model).input_shape[1:3] == (71, 71)
    assert model.input_shape[1:3] == (48, 48)


def test_mobilenetv2_preprocesses_and_predicts():
    model = build_application("mobilenetv2", (32, 32, 3), 8)
    assert model.get_layer("preprocess").mode == "tf"
    assert find_base(model) is not None and model.count_params() == APPLICATIONS["mobilenetv2"].params
    probs = np.asarray(model(np.zeros((2, 32, 32, 3), np.float32), training=False))
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)


def test_resnet50_group_norm_has_no_batchnorm():
    import keras

    model = build_application("resnet50", (32, 32, 3), 8, norm="group")
    base = find_base(model)
    assert model.get_layer("preprocess").mode == "caffe"
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in base.layers)
    assert sum(isinstance(layer, keras.layers.GroupNormalization) for layer in base.layers) == 53


def test_imagenet_offline_fails_fast_naming_the_cache_file():
    from robustbench_cells.models.weights import keras_cache_dir

    cached = list(keras_cache_dir().glob("mobilenet_v2*no_top*.h5")) if keras_cache_dir().is_dir() else []
    if cached:
        pytest.skip("ImageNet weights are cached on this machine, nothing to download")
    started = time.perf_counter()
    with pytest.raises(CellbenchError) as info:
        build_application("mobilenetv2", (32, 32, 3), 8, weights="imagenet")
    assert time.perf_counter() - started < 30
    message = str(info.value)
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels" in message and "no_top" in message
    assert str(keras_cache_dir()) in message and "\n" not in message
