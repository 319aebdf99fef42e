"""``evaluation``: a model from elsewhere on the runner's one data path, conformed with built-in layers."""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_cells.errors import CellbenchError

DATA = "synthetic:64"


def model(size: int, classes: int, *, logits: bool = False, width: int | None = None):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, width or size, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, strides=4)(inputs))
    return keras.Model(inputs, keras.layers.Dense(classes, activation=None if logits else "softmax")(x))


def test_data_are_what_the_run_config_rebuilds(tmp_path):
    """Resized to the model's input before the split and the shift subset, as the runner does, so
    report/explain rebuild the very images from the stored config."""
    from robustbench_cells.bench.rundata import run_data_from_config
    from robustbench_cells.evaluation import DataOptions, evaluate

    ev = evaluate(model(48, 8), DATA, shifts=["gaussian_noise"], severities=[2], preprocess="unit",
                  options=DataOptions(max_shift_images=8, shift_seed=3))
    assert ev.data.test.image_size == (48, 48) and len(ev.data.shift_base) == 8
    again = run_data_from_config(ev.config)
    assert again.test.fingerprint() == ev.data.test.fingerprint()
    assert again.shift_base.fingerprint() == ev.data.shift_base.fingerprint()
    assert ev.config["data_facts"] == again.facts()
    assert ev.config["data_fingerprint"] == again.dataset.fingerprint()


def test_targets_load_at_the_model_size_with_classes_matched_by_name(tmp_path):
    from robustbench_cells.data.specs import load_dataset
    from robustbench_cells.evaluation import evaluate

    ds = load_dataset("synthetic:40")
    keep = ds.labels >= 4  # another lab's set with only some of the classes, in its own numbering
    names = np.array(ds.class_names[4:])
    np.savez(tmp_path / "lab.npz", images=ds.images[keep], labels=ds.labels[keep] - 4, class_names=names)
    target = f"npz:{tmp_path / 'lab.npz'}"
    ev = evaluate(model(48, 8), DATA, shifts=[], severities=[], targets=[target], preprocess="unit")
    t = ev.targets[target]
    assert t.image_size == (48, 48)
    np.testing.assert_array_equal(t.labels, ds.labels[keep])  # renumbered to the data's classes
    row = next(s for s in ev.cells[0].scores if s.split == "target")
    assert row.shift == target and row.n == int(keep.sum())
    assert ev.config["data_facts"]["targets"][target]["images"] == int(keep.sum())
    np.savez(tmp_path / "odd.npz", images=ds.images[:4], labels=np.arange(4) % 2, class_names=np.array(["a", "b"]))
    with pytest.raises(CellbenchError, match="'a', 'b' are not among the training classes"):
        evaluate(model(48, 8), DATA, shifts=[], severities=[], targets=[f"npz:{tmp_path / 'odd.npz'}"])


def test_conform_model_reorders_classes_exactly_with_built_in_layers(tmp_path):
    import keras

    from robustbench_cells.evaluation import conform_model

    raw = model(32, 4, logits=True)
    order = [3, 0, 2, 1]
    conformed = conform_model(raw, "unit", softmax=True, order=order)
    x = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3)).astype("float32")
    expected = np.asarray(keras.ops.softmax(raw(x / 255.0)))[:, order]
    np.testing.assert_allclose(np.asarray(conformed(x)), expected, atol=1e-6)
    conformed.save(tmp_path / "c.keras")  # built-in layers only: loads in safe mode without cellbench
    loaded = keras.models.load_model(tmp_path / "c.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(x)), expected, atol=1e-6)
    assert conform_model(raw) is raw  # nothing to add: the model itself


def test_a_saved_run_model_answers_in_the_data_class_order(tmp_path):
    """The model a run stores is what explain and adapters load: its columns must be the run's classes."""
    import keras

    from robustbench_cells.evaluation import evaluate, save_run

    raw = model(96, 8)
    from robustbench_cells.data.specs import load_dataset

    names = list(reversed(load_dataset(DATA).class_names))
    ev = evaluate(raw, DATA, shifts=[], severities=[], classes=names, preprocess="unit")
    run = save_run(ev, tmp_path / "run")
    saved = keras.models.load_model(next((run / "cells").glob("*/model.keras")), safe_mode=True)
    p = saved.predict(ev.data.test.images.astype("float32"), verbose=0)
    np.testing.assert_allclose(p, ev.cells[0].probs["test|clean|0"], atol=1e-5)
    np.testing.assert_allclose(p[:, ::-1], raw.predict(ev.data.test.images / 255.0, verbose=0), atol=1e-5)


def test_open_model_refuses_non_square_and_non_models():
    from robustbench_cells.evaluation import open_model

    with pytest.raises(CellbenchError, match="input 32x48: cellbench scores square images only"):
        open_model(model(32, 8, width=48))
    with pytest.raises(CellbenchError, match="neither a Keras model, a path nor a predict function"):
        open_model(42)
    fn = lambda images: images  # noqa: E731
    assert open_model(fn) == (fn, {}, "predict_fn", None)


def test_progress_counts_every_step_to_the_total():
    from robustbench_cells.evaluation import evaluate

    calls = []
    evaluate(model(48, 8), DATA, shifts=["gaussian_noise"], severities=[1, 2], preprocess="unit",
             progress=lambda done, total, what: calls.append((done, total, what)))
    assert {t for _, t, _ in calls} == {2 + 4}  # 2 shifted sets made, 4 sets scored
    assert [d for d, _, _ in calls] == sorted(d for d, _, _ in calls) and calls[-1][:2] == (6, 6)
    assert calls[0][2] == "shifting gaussian_noise s1" and calls[2][2] == "scoring val clean 0"
