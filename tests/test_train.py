"""The training recipe, its parts on their own, and short real training runs on tiny data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from robustbench_cells import train as T
from robustbench_cells.data.dataset import CELL_CLASSES, Dataset
from robustbench_cells.errors import CellbenchError


def _toy(n: int = 128, size: int = 24, seed: int = 0) -> Dataset:
    """A learnable toy set: the class sets the red level of an otherwise noisy image."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 8
    images = rng.integers(0, 40, (n, size, size, 3)).astype(np.uint8)
    images[..., 0] += (labels * 25).astype(np.uint8)[:, None, None]
    return Dataset(images, labels, CELL_CLASSES, source=f"toy{seed}")


@pytest.fixture(scope="module")
def toy():
    return _toy(128), _toy(64, seed=1)


# -- Recipe ------------------------------------------------------------------------------------
def test_recipe_defaults_and_toml_values():
    r = T.Recipe.from_dict({"optimizer": "AdamW", "learning_rate": 3e-4, "epochs": 5, "schedule": "cosine",
                            "class_weight": "balanced", "early_stopping_patience": "none", "weights": "none",
                            "label_smoothing": 0.1, "balance": True}, where="m.toml [train]")
    assert r.optimizer == "adamw" and r.epochs == 5 and r.early_stopping_patience is None and r.weights is None
    assert T.Recipe.from_dict(None) == T.Recipe()
    assert T.Recipe.from_dict(r.to_dict()) == r  # what the store records reloads to the same recipe
    json.dumps(r.to_dict())


def test_recipe_unknown_key_names_where_and_close_match():
    with pytest.raises(CellbenchError, match=r"m\.toml \[train\]: unknown key 'learning_rat'.*learning_rate"):
        T.Recipe.from_dict({"learning_rat": 0.1}, where="m.toml [train]")


@pytest.mark.parametrize("bad, match", [
    ({"optimizer": "adagrad"}, "optimizer.*one of adam, adamw, sgd"),
    ({"schedule": "cosin"}, "did you mean: cosine"),
    ({"learning_rate": 0}, "learning_rate.*> 0"),
    ({"epochs": 2.5}, "epochs must be an integer"),
    ({"batch_size": True}, "batch_size must be an integer"),
    ({"label_smoothing": 1.0}, r"label_smoothing.*\[0, 1\)"),
    ({"class_weight": "inverse"}, "class_weight"),
    ({"jsd": "yes"}, "jsd must be true or false"),
    ({"fine_tune_layers": 10}, "needs fine_tune_epochs"),
])
def test_recipe_bad_values(bad, match):
    with pytest.raises(CellbenchError, match=match):
        T.Recipe.from_dict(bad, where="[train]")


# -- schedules, class weights, losses -----------------------------------------------------------
def test_learning_rate_schedules():
    lr = lambda **kw: [T.learning_rate_at(T.Recipe(learning_rate=1.0, epochs=4, **kw), e) for e in range(4)]  # noqa: E731
    assert lr() == [1.0] * 4
    assert lr(schedule="step", step_size=2, decay_rate=0.1) == pytest.approx([1, 1, 0.1, 0.1])
    assert lr(schedule="exponential", decay_rate=0.5) == pytest.approx([1, 0.5, 0.25, 0.125])
    assert lr(schedule="cosine") == pytest.approx([1, 0.5 * (1 + math.cos(math.pi / 4)), 0.5,
                                                   0.5 * (1 + math.cos(3 * math.pi / 4))])
    assert lr(warmup_epochs=1)[:2] == pytest.approx([0.5, 1.0])


def test_plateau_schedule_reduces_after_patience():
    p = T.PlateauSchedule(1.0, factor=0.5, patience=2, min_lr=0.2)
    assert [p.step(v) for v in (1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95)] == \
        pytest.approx([1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.2])


def test_balanced_class_weights_match_sklearn_formula():
    w = T.balanced_class_weights(np.array([0, 0, 0, 1, 2, 2]), 4)
    np.testing.assert_allclose(w, [6 / (3 * 3), 6 / (3 * 1), 6 / (3 * 2), 1.0], rtol=1e-6)
    assert w.dtype == np.float32


def test_cross_entropy_label_smoothing_and_jsd():
    y = np.array([[1.0, 0.0]], np.float32)
    p = np.array([[0.8, 0.2]], np.float32)
    assert float(T.cross_entropy(y, p)[0]) == pytest.approx(-math.log(0.8), rel=1e-5)
    smoothed = -(0.95 * math.log(0.8) + 0.05 * math.log(0.2))
    assert float(T.cross_entropy(y, p, 0.1)[0]) == pytest.approx(smoothed, rel=1e-5)
    assert float(T.jensen_shannon(p, p, p)[0]) == pytest.approx(0.0, abs=1e-6)
    q = np.array([[0.2, 0.8]], np.float32)
    js = float(T.jensen_shannon(p, q, q)[0])
    assert 0 < js < math.log(2)


# -- training -------------------------------------------------------------------------------------
def _weights_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))


def test_same_seed_same_weights_and_scores(toy):
    train, val = toy
    recipe = T.Recipe(epochs=2, batch_size=32, class_weight="balanced", label_smoothing=0.1)
    runs = [T.train_cell("simple_cnn", train, val, augmentation="simple", recipe=recipe, seed=3) for _ in range(2)]
    assert _weights_equal(runs[0].model, runs[1].model)
    assert runs[0].history == runs[1].history
    other = T.train_cell("simple_cnn", train, val, augmentation="simple", recipe=recipe, seed=4)
    assert not _weights_equal(runs[0].model, other.model)
    r = runs[0]
    assert r.epochs == 2 and r.params == r.model.count_params() and r.train_seconds > 0
    assert set(r.history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}


def test_training_learns_and_reports_each_epoch(toy):
    train, val = toy
    seen = []
    r = T.train_cell("simple_cnn", train, val, augmentation="none", seed=0,
                     recipe=T.Recipe(epochs=6, batch_size=16, learning_rate=3e-3, schedule="exponential",
                                     decay_rate=0.8),
                     on_epoch=lambda e, logs: seen.append((e, logs["loss"])))
    assert [e for e, _ in seen] == list(range(6))
    assert r.history["loss"][-1] < r.history["loss"][0]
    assert r.history["learning_rate"] == pytest.approx([3e-3 * 0.8 ** e for e in range(6)])
    assert r.history["accuracy"][-1] > 0.5


def test_early_stopping_restores_best_weights(toy):
    train, val = toy
    # A rate this high makes validation loss bounce, so patience 1 stops early.
    recipe = T.Recipe(epochs=12, batch_size=16, learning_rate=0.05, optimizer="sgd", early_stopping_patience=1)
    r = T.train_cell("simple_cnn", train, val, augmentation="none", recipe=recipe, seed=0)
    assert r.epochs < 12
    best = int(np.argmin(r.history["val_loss"]))
    assert r.best_epoch == best
    assert T.evaluate(r.model, val)["loss"] == pytest.approx(r.history["val_loss"][best], rel=1e-4)


def test_nan_loss_raises_training_diverged(toy):
    train, val = toy

    class NaNBatches:
        def __len__(self):
            return 1

        def epoch(self, i):
            yield np.full((8, 24, 24, 3), np.nan, np.float32), np.eye(8, dtype=np.float32)

    with pytest.raises(T.TrainingDiverged, match="epoch 1"):
        T.train_cell("simple_cnn", train, val, augmentation="none", recipe=T.Recipe(epochs=2), seed=0,
                     batches=NaNBatches())


def test_jsd_loss_trains_on_augmix_views(toy):
    train, val = toy
    # One step (batch = the whole set), same seed: the same views and start, so the two losses differ
    # by exactly jsd_weight x the views' Jensen-Shannon divergence, which is > 0 for distinct views.
    runs = {w: T.train_cell("simple_cnn", train, val, augmentation="augmix", seed=0,
                            recipe=T.Recipe.from_dict({"epochs": 1, "batch_size": 128, "jsd": True, "jsd_weight": w}))
            for w in (0, 12)}
    assert math.isfinite(runs[0].history["loss"][0])
    assert runs[12].history["loss"][0] > runs[0].history["loss"][0]
    assert not _weights_equal(runs[0].model, runs[12].model)  # the consistency term moves the weights
    recipe = T.Recipe.from_dict({"epochs": 1, "batch_size": 32, "jsd": True, "jsd_weight": 12})
    with pytest.raises(CellbenchError, match="jsd_views cannot be combined"):
        T.train_cell("simple_cnn", train, val, augmentation="mixup", recipe=recipe, seed=0)


def test_freeze_base_then_fine_tune_top_layers_keeps_batchnorm_frozen():
    import keras

    from robustbench_cells.models.applications import find_base

    train, val = _toy(48, size=32), _toy(16, size=32, seed=1)
    recipe = T.Recipe(epochs=1, batch_size=16, freeze_base=True, fine_tune_layers=12, fine_tune_epochs=1,
                      fine_tune_learning_rate=1e-4)
    r = T.train_cell("mobilenetv3small", train, val, augmentation="none", recipe=recipe, seed=0)
    base = find_base(r.model)
    trainable = [layer for layer in base.layers if layer.trainable]
    assert trainable and all(layer in base.layers[-12:] for layer in trainable)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in trainable)
    assert r.epochs == 2 and r.history["learning_rate"] == pytest.approx([1e-3, 1e-4])


def test_freeze_base_on_own_cnn_is_a_user_error(toy):
    train, val = toy
    with pytest.raises(CellbenchError, match="no pretrained base"):
        T.train_cell("simple_cnn", train, val, augmentation="none", recipe=T.Recipe(freeze_base=True), seed=0)


# -- prediction and artefacts ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(toy):
    train, val = toy
    recipe = T.Recipe(epochs=1, batch_size=32)
    r = T.train_cell("simple_cnn", train, val, augmentation="none", recipe=recipe, seed=0)
    return r, T.model_meta("simple_cnn", train, augmentation="none", recipe=recipe, seed=0, result=r)


def test_predict_proba_is_batch_size_independent_and_resizes(trained, toy):
    r, _ = trained
    images = toy[1].images
    a = T.predict_proba(r.model, images, batch_size=7)
    b = T.predict_proba(r.model, images, batch_size=256)
    assert a.shape == (64, 8) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a.sum(1), 1, atol=1e-5)
    big = np.repeat(np.repeat(images, 2, axis=1), 2, axis=2)  # 48x48 -> resized to the model's 24x24
    assert T.predict_proba(r.model, big).shape == (64, 8)


def test_save_load_round_trip(trained, toy, tmp_path):
    r, meta = trained
    folder = T.save_model(r.model, meta, tmp_path / "cell")
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "model.keras"]
    model, loaded_meta = T.load_model(folder)
    np.testing.assert_array_equal(T.predict_proba(model, toy[1].images), T.predict_proba(r.model, toy[1].images))
    assert loaded_meta["class_names"] == list(CELL_CLASSES)
    assert loaded_meta["input_size"] == [24, 24] and loaded_meta["seed"] == 0
    assert loaded_meta["data_fingerprint"] == toy[0].fingerprint()
    assert loaded_meta["recipe"]["epochs"] == 1 and loaded_meta["versions"] == T.versions()
    assert {"cellbench", "python", "keras", "numpy"} <= set(loaded_meta["versions"])
    model2, meta2 = T.load_model(folder / "model.keras")
    assert meta2 == loaded_meta


def test_load_model_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CellbenchError, match="nowhere.*no such file"):
        T.load_model(tmp_path / "nowhere")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(CellbenchError, match="bad.keras: cannot load"):
        T.load_model(bad)
