"""The Python API exported from ``robustbench_cells`` (one test or more per name)."""

from __future__ import annotations

import numpy as np
import pytest

import robustbench_cells as cb
from robustbench_cells.errors import CellbenchError

DATA = "synthetic:64"


@pytest.fixture(scope="module")
def data():
    return cb.load_dataset(DATA)


def tiny_model(size: int, classes: int, *, logits: bool = False, seed: int = 0):
    """A small trained-elsewhere Keras classifier that takes inputs in [0, 1] (so preprocess="unit")."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, strides=4)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation=None if logits else "softmax")(x))


def test_list_functions_name_registered_plugins():
    assert "gaussian_noise" in cb.list_shifts("*")
    assert cb.list_shifts("noise") == [n for n in cb.list_shifts() if n.endswith("_noise")]
    assert set(cb.list_shifts("jpeg*,gaussian_blur")) >= {"gaussian_blur"}
    assert "augmix" in cb.list_augmentations() and "simple_cnn" in cb.list_models()
    assert cb.list_adapters()[0] == "none"
    with pytest.raises(CellbenchError, match="shift pattern 'blurr' matches nothing"):
        cb.list_shifts("blurr")


def test_shift_is_deterministic_and_changes_images(data):
    images = data.images[:8]
    a = cb.shift(images, "gaussian_noise", 3, seed=1)
    assert a.dtype == np.uint8 and a.shape == images.shape and not np.array_equal(a, images)
    assert np.array_equal(a, cb.shift(images, "gaussian_noise", 3, seed=1))
    assert not np.array_equal(a, cb.shift(images, "gaussian_noise", 3, seed=2))
    with pytest.raises(CellbenchError, match="severity must be 0..5"):
        cb.shift(images, "gaussian_noise", 6)


def test_augment_seeds_and_refuses_batch_augmentations(data):
    images = data.images[:8]
    a = cb.augment(images, "simple", seed=3)
    assert a.shape == images.shape and np.array_equal(a, cb.augment(images, "simple", seed=3))
    with pytest.raises(CellbenchError, match="mixes labels"):
        cb.augment(images, "mixup")
    with pytest.raises(CellbenchError, match="unknown option"):
        cb.augment(images, "simple", strength=2)


def test_load_dataset_returns_a_dataset(data):
    assert len(data) == 64 and data.images.dtype == np.uint8 and len(data.class_names) >= 2


def test_evaluate_records_table_and_save_are_a_run_report_reads(data, tmp_path, cli):
    size = data.images.shape[1]
    model = tiny_model(size, len(data.class_names))
    results = cb.evaluate(model, DATA, shifts="gaussian_noise,defocus_blur", severities=(1, 5), preprocess="unit")
    rows = results.records()
    sets = {(r["split"], r["shift"], r["severity"]) for r in rows}
    assert sets == {("val", "clean", 0), ("test", "clean", 0)} | {
        ("test", s, v) for s in ("gaussian_noise", "defocus_blur") for v in (1, 5)}
    assert all(0 <= r["accuracy"] <= 1 and r["n"] > 0 for r in rows)
    assert {r["family"] for r in rows} == {"clean", "noise", "blur"}
    # The probabilities are what the model gives on [0, 1] input (preprocess="unit" was applied).
    test_p = results.probabilities()["test|clean|0"]
    assert test_p.shape[1] == len(data.class_names)
    run = results.save(tmp_path / "run")
    code, out, err = cli("report", run)
    assert code == 0, err
    assert "external" in out
    summary = results.table()
    assert summary.done[0].mean_shifted == pytest.approx(
        np.mean([r["accuracy"] for r in rows if r["split"] == "test" and r["shift"] != "clean"]))


def test_evaluate_applies_preprocess_and_softmax_to_logits(data):
    size = data.images.shape[1]
    model = tiny_model(size, len(data.class_names), logits=True)
    results = cb.evaluate(model, DATA, shifts=(), preprocess="unit")
    p = results.probabilities()["val|clean|0"]
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-5)
    import keras

    from robustbench_cells.data.splits import split_dataset

    val = split_dataset(data)["val"]
    expected = np.asarray(keras.ops.softmax(model(val.images.astype("float32") / 255.0)))
    np.testing.assert_allclose(p, expected, atol=1e-5)


def test_evaluate_a_predict_function_and_bad_inputs(data):
    k = len(data.class_names)

    def always_first(images):
        return np.tile(np.eye(k, dtype=np.float32)[0], (len(images), 1))

    results = cb.evaluate(always_first, data, shifts="gaussian_noise", severities=(2,))
    clean = next(r for r in results.records() if r["split"] == "test" and r["shift"] == "clean")
    labels = results._ev.data.test.labels
    assert clean["accuracy"] == pytest.approx(float((labels == 0).mean()))
    with pytest.raises(CellbenchError, match="outputs 3 classes, the data set has"):
        cb.evaluate(tiny_model(data.images.shape[1], 3), data, shifts=())
    with pytest.raises(CellbenchError, match="unknown adapter 'tentt'"):
        cb.evaluate(always_first, data, shifts=(), adapters=("tentt",))
    with pytest.raises(CellbenchError, match="--classes: do not match"):
        cb.evaluate(always_first, data, shifts=(), classes=[f"x{i}" for i in range(k)])


def test_classes_reorder_the_model_outputs(data):
    k = len(data.class_names)

    def always_first(images):
        return np.tile(np.eye(k, dtype=np.float32)[0], (len(images), 1))

    reversed_names = list(reversed(data.class_names))  # output 0 is the data's last class
    results = cb.evaluate(always_first, data, shifts=(), classes=reversed_names)
    assert results.probabilities()["test|clean|0"][:, -1].min() == 1.0


def test_explain_on_results(data, tmp_path):
    import cv2

    size = data.images.shape[1]
    results = cb.evaluate(tiny_model(size, len(data.class_names)), DATA, shifts="gaussian_noise",
                          severities=(1, 3), preprocess="unit")
    target = cb.shift(data.images[:24], "gaussian_noise", 3)
    folder = tmp_path / "hidden"
    folder.mkdir()
    for i, image in enumerate(target):  # an unlabeled flat folder, as a hidden test set arrives
        cv2.imwrite(str(folder / f"{i:03d}.png"), image[..., ::-1])
    out = cb.explain(results, str(folder), reference_images=16)
    assert results.run_dir is not None  # saved to a temporary run on the way
    assert [c["key"] for c in out["cells"]] and out["cells"][0]["model"] == results._ev.model_name
    assert callable(cb.explain)  # importing the explain subpackage did not replace the API function


def test_adapters_become_cells_of_the_run(data, tmp_path, cli):
    size = data.images.shape[1]
    model = tiny_model(size, len(data.class_names))
    results = cb.evaluate(model, DATA, shifts="gaussian_noise", severities=(3,), preprocess="unit",
                          adapters=("none", "stain_norm"))
    assert results.adapters == ["none", "stain_norm"]
    plain, adapted = results.probabilities("none"), results.probabilities("stain_norm")
    assert plain.keys() == adapted.keys()
    assert not np.allclose(plain["test|gaussian_noise|3"], adapted["test|gaussian_noise|3"])
    assert {r["adapter"] for r in results.records()} == {"none", "stain_norm"}
    code, out, err = cli("report", results.save(tmp_path / "run"))
    assert code == 0, err
    assert "adapt:stain_norm" in out
    with pytest.raises(CellbenchError, match="adapters need a Keras model"):
        cb.evaluate(lambda x: np.full((len(x), len(data.class_names)), 1 / len(data.class_names), np.float32),
                    data, shifts=(), adapters=("stain_norm",))


def _uniform(k):
    return lambda images: np.full((len(images), k), 1 / k, np.float32)


def test_progress_false_prints_nothing(data, capsys):
    cb.evaluate(_uniform(len(data.class_names)), data, shifts="gaussian_noise", severities=(1, 2), progress=False)
    assert capsys.readouterr() == ("", "")


@pytest.fixture
def without_tqdm(monkeypatch):
    """The rich fallback (rich is a dependency; tqdm is used only where it is installed)."""
    import sys

    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)


def test_progress_without_a_tty_ends_with_the_full_count(data, capsys, without_tqdm):
    cb.evaluate(_uniform(len(data.class_names)), data, shifts="gaussian_noise", severities=(1, 2))
    out, err = capsys.readouterr()  # captured streams are not terminals
    assert out == ""
    assert "cellbench evaluate" in err and "6/6" in err  # 2 shifted sets made + 4 sets scored
    with pytest.raises(CellbenchError, match="--classes"):  # fails before the first step: only the error
        cb.evaluate(_uniform(len(data.class_names)), data, shifts=(), classes=["x"] * len(data.class_names))
    assert capsys.readouterr().err == ""


def test_progress_in_jupyter_without_ipywidgets_prints_a_few_lines(data, capsys, monkeypatch, without_tqdm):
    import sys

    import rich.console

    monkeypatch.setattr(rich.console, "_is_jupyter", lambda: True)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    cb.evaluate(_uniform(len(data.class_names)), data, shifts="gaussian_noise", severities=(1, 2, 3, 4, 5))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("cellbench evaluate:")]
    assert lines[0].startswith("cellbench evaluate: 0/12") and lines[-1] == "cellbench evaluate: 12/12 done"
    assert len(lines) <= 11  # one per 10 %, not one per set


def test_progress_with_tqdm(data, capsys):
    pytest.importorskip("tqdm", reason="tqdm is not installed: the rich bar is used (tested above)")
    cb.evaluate(_uniform(len(data.class_names)), data, shifts="gaussian_noise", severities=(1, 2))
    assert "6/6" in capsys.readouterr().err
