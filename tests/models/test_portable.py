"""Portable artefacts: cellbench models hold only built-in Keras layers, so a saved cell loads with
plain ``keras.models.load_model`` in an interpreter that never imports robustbench_cells."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robustbench_cells import plugins

_spec = importlib.util.spec_from_file_location("plain_keras", Path(__file__).with_name("plain_keras.py"))
plain_keras = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plain_keras)
plain_keras_predict = plain_keras.plain_keras_predict


def test_saved_cell_loads_and_predicts_without_cellbench(tmp_path):
    from robustbench_cells.training.artefacts import MODEL_FILE, predict_proba, save_model

    model = plugins.models().get("simple_cnn").build((32, 32, 3), 4, None, norm="group")
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    folder = save_model(model, {"model": "simple_cnn"}, tmp_path / "cell")
    plain = plain_keras_predict(folder / MODEL_FILE, images, tmp_path)
    np.testing.assert_allclose(plain, predict_proba(model, images), atol=1e-5)


@pytest.mark.parametrize("mode", ["unit", "tf", "caffe"])
def test_builtin_preprocessing_equals_the_custom_layer(mode):
    import keras

    from robustbench_cells.models.layers import Preprocess, apply_preprocess

    inputs = keras.Input((2, 2, 3))
    builtin = keras.Model(inputs, apply_preprocess(inputs, mode))
    x = np.random.default_rng(1).uniform(0, 255, (2, 2, 2, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(builtin(x)), np.asarray(Preprocess(mode)(x)), atol=1e-4)
    assert not any(isinstance(layer, Preprocess) for layer in builtin.layers)
    assert builtin.trainable_weights == []  # the caffe reordering must not be learnt away


def test_portable_clone_replaces_the_legacy_layer_and_keeps_weights():
    import keras

    from robustbench_cells.models.layers import Preprocess, portable_clone

    inputs = keras.Input((4, 4, 3), name="image")
    x = Preprocess("caffe", name="preprocess")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    legacy = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="predictions")(x))
    clone = portable_clone(legacy)
    assert not any(isinstance(layer, Preprocess) for layer in clone.layers)
    x = np.random.default_rng(2).uniform(0, 255, (3, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(clone(x)), np.asarray(legacy(x)), atol=1e-5)


def test_artefacts_module_does_not_import_the_training_loop():
    code = ("import sys; import robustbench_cells.training.artefacts; "
            "print('robustbench_cells.training.loop' in sys.modules, 'robustbench_cells.training.recipe' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
