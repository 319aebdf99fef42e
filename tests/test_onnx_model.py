"""ONNX models through onnxruntime (the ``[onnx]`` extra): scored like the Keras model they came from."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from robustbench_cells.errors import CellbenchError

DATA = "synthetic:64"


def unit_logits_model(classes: int = 8):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((96, 96, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, strides=4)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(classes)(x))  # logits, expects [0, 1]
    model.predict(np.zeros((1, 96, 96, 3), np.float32), verbose=0)  # Keras exports only a called model
    return model


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    pytest.importorskip("tf2onnx", reason="the [onnx] extra is not installed")
    model = unit_logits_model()
    path = tmp_path_factory.mktemp("onnx") / "mine.onnx"
    model.export(str(path), format="onnx", verbose=False)
    return model, path


def test_an_onnx_model_scores_as_its_keras_original(onnx_file):
    import robustbench_cells as cb

    model, path = onnx_file
    kwargs = dict(shifts="gaussian_noise", severities=(2,), preprocess="unit", progress=False)
    from_onnx = cb.evaluate(str(path), DATA, **kwargs)
    from_keras = cb.evaluate(model, DATA, **kwargs)
    for key, p in from_keras.probabilities().items():
        np.testing.assert_allclose(from_onnx.probabilities()[key], p, atol=1e-5)  # softmax added to the logits
    assert from_onnx._ev.model_name == "mine.onnx"


def test_cellbench_evaluate_an_onnx_file(cli, onnx_file, tmp_path):
    _model, path = onnx_file
    code, out, err = cli("evaluate", path, "--data", DATA, "--shifts", "gaussian_noise", "--severities", "1",
                         "--preprocess", "unit", "--out", tmp_path / "run")
    assert code == 0, err
    assert "mine.onnx" in out
    code, out, err = cli("report", tmp_path / "run")
    assert code == 0, err


def test_onnx_models_get_one_line_errors(cli, onnx_file, tmp_path):
    _model, path = onnx_file
    code, _, err = cli("evaluate", path, "--data", DATA, "--shifts", "", "--adapter", "stain_norm")
    assert code == 2 and "adapters need a Keras model, not an ONNX model" in err
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    code, _, err = cli("evaluate", bad, "--data", DATA, "--shifts", "")
    assert code == 2 and "not a loadable ONNX model" in err and len(err.strip().splitlines()) == 1


def test_without_onnxruntime_the_error_names_the_extra(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the extra were not installed
    path = tmp_path / "m.onnx"
    path.write_bytes(b"")
    code, _, err = cli("evaluate", path, "--data", DATA)
    assert code == 2
    assert "ONNX models need onnxruntime (pip install 'robustbench-cells[onnx]')" in err
