"""Keras applications: minimum input size, preprocessing inside the graph, norm swap, weights."""

from __future__ import annotations

import time

import numpy as np
import pytest

from robustbench_cells.errors import CellbenchError
from robustbench_cells.models.applications import APPLICATIONS, build_application, find_base
from robustbench_cells.models.layers import preprocess_mode


def test_small_input_is_resized_up_inside_the_graph():
    model = build_application("xception", (48, 48, 3), 8)
    assert model.get_layer("resize_to_min").get_config()["height"] == 71
    assert find_base(model).input_shape[1:3] == (71, 71)
    assert model.input_shape[1:3] == (48, 48)


def test_mobilenetv2_preprocesses_and_predicts():
    model = build_application("mobilenetv2", (32, 32, 3), 8)
    assert preprocess_mode(model.get_layer("preprocess")) == "tf"
    assert find_base(model) is not None and model.count_params() == APPLICATIONS["mobilenetv2"].params
    probs = np.asarray(model(np.zeros((2, 32, 32, 3), np.float32), training=False))
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)


def test_resnet50_group_norm_has_no_batchnorm():
    import keras

    model = build_application("resnet50", (32, 32, 3), 8, norm="group")
    base = find_base(model)
    assert preprocess_mode(model.get_layer("preprocess")) == "caffe"
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in base.layers)
    assert sum(isinstance(layer, keras.layers.GroupNormalization) for layer in base.layers) == 53


def test_imagenet_offline_fails_fast_naming_the_cache_file():
    from robustbench_cells.models.weights import keras_cache_dir

    cached = list(keras_cache_dir().glob("mobilenet_v2*no_top*.h5")) if keras_cache_dir().is_dir() else []
    if cached:
        pytest.skip("ImageNet weights are cached on this machine, nothing to download")
    started = time.perf_counter()
    build_application("mobilenetv2", (32, 32, 3), 8, weights=None)
    build_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with pytest.raises(CellbenchError) as info:
        build_application("mobilenetv2", (32, 32, 3), 8, weights="imagenet")
    # The build itself plus at most the 5 s network probe (generous margin for a loaded machine).
    assert time.perf_counter() - started < 2 * build_seconds + 10
    message = str(info.value)
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels" in message and "no_top" in message
    assert str(keras_cache_dir()) in message and "\n" not in message


def test_imagenet_weights_found_in_the_cache_are_used_without_network(tmp_path, monkeypatch):
    """A file placed in Keras' cache by hand is what Keras loads (no download attempted)."""
    import keras

    from robustbench_cells.models import weights as W

    monkeypatch.setattr(W, "keras_cache_dir", lambda: tmp_path / "models")
    calls = []

    def fake_original(fname=None, origin=None, *args, **kwargs):
        calls.append(fname)
        return str(tmp_path / "models" / fname)

    from keras.src.utils import file_utils

    monkeypatch.setattr(file_utils, "get_file", fake_original)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "w.h5").write_bytes(b"")
    with W.imagenet_download_guard("m"):
        assert file_utils.get_file("w.h5", "http://unreachable.invalid/w.h5", cache_subdir="models").endswith("w.h5")
    assert calls == ["w.h5"] and file_utils.get_file is fake_original
    with pytest.raises(CellbenchError, match="'m'.*place x.h5 in .*models"):
        with W.imagenet_download_guard("m", timeout_s=2):
            file_utils.get_file("x.h5", "http://unreachable.invalid/x.h5", cache_subdir="models")
    assert calls == ["w.h5"]  # the unreachable download never reached Keras
