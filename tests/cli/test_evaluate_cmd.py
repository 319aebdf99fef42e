"""``cellbench evaluate``: a model trained elsewhere scored into a run that ``report`` reads."""

from __future__ import annotations

import json

import pytest

DATA = "synthetic:64"


def _save(model, path):
    model.save(path)
    return path


@pytest.fixture(scope="module")
def size_and_classes():
    from robustbench_cells.data.specs import load_dataset

    ds = load_dataset(DATA)
    return ds.images.shape[1], list(ds.class_names)


def classifier(size, classes, name="tiny"):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, strides=4)(inputs))
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x), name=name)


def test_evaluate_writes_a_run_report_reads(cli, tmp_path, size_and_classes):
    size, names = size_and_classes
    model = _save(classifier(size, len(names)), tmp_path / "mine.keras")
    run = tmp_path / "run"
    code, out, err = cli("evaluate", model, "--data", DATA, "--shifts", "gaussian_noise,defocus_blur",
                         "--severities", "1,3", "--preprocess", "unit", "--classes", ",".join(names), "--out", run)
    assert code == 0, err
    assert "mine.keras" in out and (run / "results.sqlite").is_file()
    code, out, err = cli("report", run, "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    rows = report["cells"][0]["scores"] if "scores" in report["cells"][0] else report["cells"][0]["rows"]
    shifted = {(r["shift"], r["severity"]) for r in rows if r["split"] == "test" and r["shift"] != "clean"}
    assert shifted == {("gaussian_noise", 1), ("gaussian_noise", 3), ("defocus_blur", 1), ("defocus_blur", 3)}


def test_evaluate_reads_a_savedmodel(cli, tmp_path, size_and_classes):
    size, names = size_and_classes
    classifier(size, len(names)).export(str(tmp_path / "sm"), format="tf_saved_model", verbose=False)
    code, out, err = cli("evaluate", tmp_path / "sm", "--data", DATA, "--shifts", "gaussian_noise",
                         "--severities", "2")
    assert code == 0, err
    assert "external" in out


def _not_a_classifier(size):
    import keras

    inputs = keras.Input((size, size, 3))
    return keras.Model(inputs, keras.layers.Conv2D(2, 3, padding="same")(inputs))


def _with_lambda(size, classes):
    import keras

    inputs = keras.Input((size, size, 3))
    x = keras.layers.Lambda(lambda t: t / 255.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x))


@pytest.mark.parametrize("make, extra, message", [
    (lambda s, k: classifier(s, k + 1), [], "outputs 9 classes, the data set has 8"),
    (lambda s, k: _not_a_classifier(s), [], "not a classifier"),
    (lambda s, k: _with_lambda(s, k), [], "Lambda"),
    (lambda s, k: classifier(s, k), ["--preprocess", "caffe"], "--preprocess caffe: not one of"),
    (lambda s, k: classifier(s, k), ["--classes", "a,b"], "--classes: 2 names for a model with 8 outputs"),
    (lambda s, k: classifier(s, k), ["--severities", "7"], "--severities 7: must be integers 1..5"),
    (lambda s, k: classifier(s, k), ["--shifts", "blurr"], "shift pattern 'blurr' matches nothing"),
])
def test_bad_models_and_options_get_one_line(cli, tmp_path, size_and_classes, make, extra, message):
    size, names = size_and_classes
    if "9 classes" in message:
        message = f"outputs {len(names) + 1} classes, the data set has {len(names)}"
    if "8 outputs" in message:
        message = f"--classes: 2 names for a model with {len(names)} outputs"
    model = _save(make(size, len(names)), tmp_path / "m.keras")
    code, _, err = cli("evaluate", model, "--data", DATA, "--shifts", "gaussian_noise", "--severities", "1", *extra)
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_model_is_one_line(cli, tmp_path):
    code, _, err = cli("evaluate", tmp_path / "nope.keras", "--data", DATA)
    assert code == 2 and "no such file" in err
