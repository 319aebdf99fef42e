"""``cellbench export``: a cell written as .keras / SavedModel / ONNX that loads where cellbench is absent."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robustbench_cells import plugins


@pytest.fixture
def legacy_cell(tmp_path):
    """A cell saved the way older versions did: with the custom ``Preprocess`` layer inside."""
    import keras

    from robustbench_cells.models.layers import Preprocess
    from robustbench_cells.training.artefacts import save_model

    inputs = keras.Input((8, 8, 3), name="image")
    x = Preprocess("unit", name="preprocess")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(x))
    return save_model(model, {"model": "legacy", "class_names": ["a", "b", "c"]}, tmp_path / "cell"), model


def test_export_keras_loads_without_cellbench(cli, legacy_cell, tmp_path):
    spec = importlib.util.spec_from_file_location("plain_keras", Path(__file__).parents[1] / "models" / "plain_keras.py")
    plain_keras = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plain_keras)
    plain_keras_predict = plain_keras.plain_keras_predict
    cell, model = legacy_cell
    out = tmp_path / "sub" / "model.keras"
    code, _, err = cli("export", cell, "--format", "keras", "--out", out)
    assert code == 0, err
    images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(plain_keras_predict(out, images, tmp_path), np.asarray(model(images)), atol=1e-5)
    meta = json.loads((tmp_path / "sub" / "model.keras.meta.json").read_text())
    assert meta["class_names"] == ["a", "b", "c"] and meta["input_size"] == [8, 8]


def test_export_savedmodel_serves_probabilities(cli, tmp_path):
    from robustbench_cells.training.artefacts import save_model

    model = plugins.models().get("simple_cnn").build((16, 16, 3), 2, None)
    cell = save_model(model, {"model": "simple_cnn"}, tmp_path / "cell")
    code, _, err = cli("export", cell, "--format", "savedmodel", "--out", tmp_path / "sm")
    assert code == 0, err
    code_ = ("import sys, numpy as np, tensorflow as tf; m = tf.saved_model.load(sys.argv[1]); "
             "p = m.serve(np.full((1, 16, 16, 3), 128, np.float32)).numpy(); "
             "assert not any(k.startswith('robustbench_cells') for k in sys.modules); print(p.shape, round(float(p.sum()), 4))")
    out = subprocess.run([sys.executable, "-I", "-c", code_, str(tmp_path / "sm")], capture_output=True, text=True,
                         env={"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-3:] == ["(1,", "2)", "1.0"]
    assert (tmp_path / "sm" / "meta.json").is_file()


@pytest.mark.parametrize("args, message", [
    (["--format", "tflite", "--out", "x.keras"], "--format tflite: not one of keras, savedmodel, onnx"),
    (["--format", "keras", "--out", "x.h5"], "must end in .keras"),
    (["--format", "onnx", "--out", "x.keras"], "--out x.keras: an ONNX file must end in .onnx"),
])
def test_export_bad_options_are_one_line(cli, legacy_cell, tmp_path, args, message):
    cell, _ = legacy_cell
    code, _, err = cli("export", cell, *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_export_missing_cell_is_one_line(cli, tmp_path):
    code, _, err = cli("export", tmp_path / "nope", "--out", tmp_path / "m.keras")
    assert code == 2 and "no such file" in err and "Traceback" not in err


@pytest.mark.parametrize("which", ["legacy", "simple_cnn"])
def test_export_onnx_scores_as_the_keras_model(cli, legacy_cell, tmp_path, which):
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    pytest.importorskip("tf2onnx", reason="the [onnx] extra is not installed")
    from robustbench_cells.onnx_model import OnnxClassifier
    from robustbench_cells.training.artefacts import save_model

    if which == "legacy":  # the custom preprocessing layer is rewritten into built-ins first
        cell, model = legacy_cell
    else:
        model = plugins.models().get("simple_cnn").build((16, 16, 3), 2, None)
        cell = save_model(model, {"model": "simple_cnn", "class_names": ["a", "b"]}, tmp_path / "cnn")
    out = tmp_path / "sub" / "model.onnx"
    code, _, err = cli("export", cell, "--format", "onnx", "--out", out)
    assert code == 0, err
    assert err.strip().splitlines() == [f"wrote {out} (metadata: {out}.meta.json)"]  # no tf2onnx noise
    size = model.input_shape[1:3]
    images = np.random.default_rng(0).integers(0, 256, (5, *size, 3)).astype(np.uint8)
    onnx = OnnxClassifier(out)  # what `cellbench evaluate model.onnx` scores with
    np.testing.assert_allclose(onnx(images), np.asarray(model(images.astype(np.float32))), atol=1e-5)
    meta = json.loads((tmp_path / "sub" / "model.onnx.meta.json").read_text())
    assert meta["format"] == "onnx" and meta["input_size"] == list(size)


def test_export_onnx_without_tf2onnx_names_the_extra(cli, legacy_cell, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # as if the extra were not installed
    cell, _ = legacy_cell
    code, _, err = cli("export", cell, "--format", "onnx", "--out", tmp_path / "m.onnx")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--format onnx: needs tf2onnx and onnx (pip install 'robustbench-cells[onnx]')" in err
    assert not (tmp_path / "m.onnx").exists()
