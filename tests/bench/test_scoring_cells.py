"""Score-only cells: a model trained elsewhere scored in a matrix run exactly as ``cellbench evaluate`` scores it."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from robustbench_cells.bench.cells import cell_key
from robustbench_cells.bench.scoring_cells import score_cell, score_config
from robustbench_cells.bench.store import Cell
from robustbench_cells.errors import CellbenchError

DATA = "synthetic:64"
TARGET = "synthetic:40"


@pytest.fixture(scope="module")
def prepared():
    from robustbench_cells.evaluation import DataOptions, prepare

    data, _facts = prepare(DATA, 96, DataOptions(), targets=[TARGET])
    return data


def unit_model(classes: int, logits: bool = True):
    """A classifier that expects [0, 1] input and gives logits: preprocess and softmax are needed."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((96, 96, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, strides=4)(inputs))
    return keras.Model(inputs, keras.layers.Dense(classes, activation=None if logits else "softmax")(x))


def _cell(config: dict) -> Cell:
    config = {**config, "image_size": 96, "data": "fp", "split": {"seed": 0, "fractions": [0.7, 0.1, 0.2]}}
    return Cell(cell_key(config), Path(config["path"]).name, "external", 0, recipe={}, config=config)


MATRIX = SimpleNamespace(shifts=["gaussian_noise"], severities=[1, 4], shift_sets=(("gaussian_noise", 1), ("gaussian_noise", 4)),
                         shift_seed=0, predict_batch_size=32)


def test_score_cell_scores_like_evaluate_and_saves_a_portable_model(prepared, tmp_path, monkeypatch):
    import keras

    import robustbench_cells as cb

    monkeypatch.setenv("CELLBENCH_CACHE", str(tmp_path / "cache"))
    names = list(reversed(prepared.class_names))  # the model's output 0 is the data's last class
    path = tmp_path / "mine.keras"
    unit_model(len(names)).save(path)
    cell = _cell(score_config(path, preprocess="unit", classes=names))
    outcome = score_cell(cell, prepared, MATRIX, tmp_path / "run")
    assert outcome.status == "done", outcome.error
    sets = {(s.split, s.shift, s.severity) for s in outcome.scores}
    assert sets == {("val", "clean", 0), ("test", "clean", 0), ("test", "gaussian_noise", 1),
                    ("test", "gaussian_noise", 4), ("target", TARGET, 0)}
    cell_dir = tmp_path / "run" / "cells" / cell.key
    with np.load(cell_dir / "probs.npz") as f:
        stored = {k: f[k] for k in f.files}
    # the same numbers `cellbench evaluate` stores for this model, data, classes and preprocess
    ev = cb.evaluate(str(path), DATA, shifts="gaussian_noise", severities=(1, 4), targets=[TARGET],
                     classes=names, preprocess="unit", progress=False)
    for key, p in ev.probabilities().items():
        np.testing.assert_allclose(stored[key], p, atol=1e-6)
    expected = {(r["split"], r["shift"], r["severity"]): r["accuracy"] for r in ev.records()}
    assert {(s.split, s.shift, s.severity): s.accuracy for s in outcome.scores} == pytest.approx(expected)
    # the saved model is plain Keras, takes 0..255 and answers in the data's class order
    model = keras.models.load_model(outcome.model_path, safe_mode=True)
    np.testing.assert_allclose(model.predict(prepared.test.images.astype("float32"), verbose=0),
                               stored["test|clean|0"], atol=1e-5)
    meta = json.loads((cell_dir / "meta.json").read_text())
    assert meta["class_names"] == list(prepared.class_names) and "train_stats" in meta


def test_an_adapter_chain_runs_on_a_score_cell(prepared, tmp_path, monkeypatch):
    from robustbench_cells.adapters import AdaptContext, adapt_predict

    monkeypatch.setenv("CELLBENCH_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "m.keras"
    unit_model(len(prepared.class_names), logits=False).save(path)
    cell = _cell(score_config(path, preprocess="unit"))
    assert score_cell(cell, prepared, MATRIX, tmp_path / "run").status == "done"
    context = AdaptContext.from_cell(tmp_path / "run" / "cells" / cell.key)  # what adapted cells load
    p = adapt_predict("stain_norm", context, prepared.test.images[:8])
    assert p.shape == (8, len(prepared.class_names))


def test_a_model_that_does_not_fit_the_data_is_a_failed_cell(prepared, tmp_path, monkeypatch):
    monkeypatch.setenv("CELLBENCH_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "three.keras"
    unit_model(3).save(path)
    outcome = score_cell(_cell(score_config(path)), prepared, MATRIX, tmp_path / "run")
    assert outcome.status == "failed"
    assert f"outputs 3 classes, the data set has {len(prepared.class_names)}" in outcome.error
    assert "\n" not in outcome.error


def test_a_model_changed_after_the_run_started_is_refused(prepared, tmp_path, monkeypatch):
    monkeypatch.setenv("CELLBENCH_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "m.keras"
    unit_model(len(prepared.class_names)).save(path)
    cell = _cell(score_config(path, preprocess="unit"))
    unit_model(len(prepared.class_names), logits=False).save(path)  # retrained in place
    outcome = score_cell(cell, prepared, MATRIX, tmp_path / "run")
    assert outcome.status == "failed" and "changed since the run started" in outcome.error


@pytest.mark.parametrize("kwargs, message", [
    ({"path": "nope.keras"}, "models[1].path: {tmp}/nope.keras: no such file or folder"),
    ({"path": "m.h5"}, "not a .keras file"),
    ({"preprocess": "caffe"}, "models[1].preprocess: 'caffe' is not one of none, unit, symmetric, imagenet"),
    ({"classes": "a,b"}, "models[1].classes: must be a list of distinct class names"),
    ({"classes": ["a", "a"]}, "models[1].classes: must be a list of distinct class names"),
])
def test_score_config_checks_the_entry_before_any_data(tmp_path, kwargs, message):
    (tmp_path / "m.keras").write_bytes(b"not loaded here")
    (tmp_path / "m.h5").write_bytes(b"")
    kwargs = {"path": "m.keras", **kwargs}
    with pytest.raises(CellbenchError) as err:
        score_config(kwargs.pop("path"), where="models[1]", base_dir=tmp_path, **kwargs)
    assert message.format(tmp=tmp_path) in str(err.value)


def test_score_config_resolves_relative_paths_and_hashes_the_model(tmp_path):
    (tmp_path / "m.keras").write_bytes(b"one")
    a = score_config("m.keras", base_dir=tmp_path)
    assert a["path"] == str((tmp_path / "m.keras").resolve()) and a["kind"] == "score"
    (tmp_path / "m.keras").write_bytes(b"two")
    assert score_config("m.keras", base_dir=tmp_path)["digest"] != a["digest"]  # a new model is a new cell
