"""The training loop: optimiser, early stopping, transfer learning / fine-tuning, AugMix's
Jensen-Shannon consistency loss and determinism.

The loop is a compiled TensorFlow step (one ``tf.function`` per phase) fed by
:class:`robustbench_cells.pipeline.TrainingBatches`; the models themselves are backend-agnostic
Keras.

Determinism: :func:`train_cell` calls ``keras.utils.set_random_seed(seed)`` and enables TensorFlow op
determinism, so within a process the same seed gives the same weights and scores on CPU. Across
processes TF's multi-threaded CPU kernels differ in the last bits unless TF runs single-threaded
(``TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1``); see docs/models.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robustbench_cells.errors import CellbenchError
from robustbench_cells.training.artefacts import EPS as _EPS, predict_proba
from robustbench_cells.training.recipe import PlateauSchedule, Recipe, balanced_class_weights, learning_rate_at


class TrainingDiverged(Exception):
    """The training loss became NaN or infinite."""


# ---------------------------------------------------------------------------------------------
# Losses (backend ops, used inside the compiled step)
# ---------------------------------------------------------------------------------------------
def cross_entropy(y_true: Any, probs: Any, label_smoothing: float = 0.0) -> Any:
    """Per-sample categorical cross-entropy on probabilities, with label smoothing."""
    from keras import ops

    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / ops.cast(ops.shape(y_true)[-1], "float32")
    return -ops.sum(y_true * ops.log(ops.clip(probs, _EPS, 1.0)), axis=-1)


def jensen_shannon(p_clean: Any, p_aug1: Any, p_aug2: Any) -> Any:
    """Per-sample Jensen-Shannon divergence of three predictive distributions (AugMix, Hendrycks et al. 2020)."""
    from keras import ops

    mixture = ops.clip((p_clean + p_aug1 + p_aug2) / 3.0, _EPS, 1.0)
    log_m = ops.log(mixture)

    def kl(p: Any) -> Any:
        p = ops.clip(p, _EPS, 1.0)
        return ops.sum(p * (ops.log(p) - log_m), axis=-1)

    return (kl(p_clean) + kl(p_aug1) + kl(p_aug2)) / 3.0


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """What :func:`train_cell` returns."""

    model: Any
    history: dict[str, list[float]]
    epochs: int
    train_seconds: float
    params: int
    best_epoch: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def set_determinism(seed: int) -> None:
    """Seed Python, NumPy and the backend, and make TensorFlow ops deterministic."""
    import keras

    keras.utils.set_random_seed(int(seed))
    try:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    except Exception:  # another backend, or TF refusing after initialisation: seeds still apply
        pass


def make_optimizer(recipe: Recipe, learning_rate: float) -> Any:
    """The Keras optimiser the recipe names."""
    import keras

    decay = recipe.weight_decay or None
    if recipe.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate, weight_decay=decay)
    if recipe.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=recipe.weight_decay or 0.004)
    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=recipe.momentum, weight_decay=decay)


def _make_train_step(model: Any, optimizer: Any, recipe: Recipe, class_weights: np.ndarray | None) -> Callable:
    """One compiled optimisation step ``(x, y) -> (loss, correct)``; x may be a 3-tuple of JSD views."""
    import tensorflow as tf

    cw = None if class_weights is None else tf.constant(class_weights, dtype=tf.float32)
    smoothing = float(recipe.label_smoothing)
    jsd_weight = float(recipe.jsd_weight)
    variables = model.trainable_variables
    optimizer.build(variables)

    def sample_weight(y: Any) -> Any:
        # Soft labels (MixUp/CutMix) get the label-weighted mix of their classes' weights.
        return None if cw is None else tf.reduce_sum(y * cw, axis=-1)

    def weighted_mean(losses: Any, y: Any) -> Any:
        w = sample_weight(y)
        return tf.reduce_mean(losses) if w is None else tf.reduce_sum(losses * w) / tf.reduce_sum(w)

    @tf.function(reduce_retracing=True)
    def step(x: Any, y: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            if isinstance(x, (tuple, list)):
                n = tf.shape(x[0])[0]
                probs_all = model(tf.concat(list(x), axis=0), training=True)
                probs, p1, p2 = probs_all[:n], probs_all[n:2 * n], probs_all[2 * n:]
                loss = weighted_mean(cross_entropy(y, probs, smoothing), y)
                loss = loss + jsd_weight * tf.reduce_mean(jensen_shannon(probs, p1, p2))
            else:
                probs = model(x, training=True)
                loss = weighted_mean(cross_entropy(y, probs, smoothing), y)
            if model.losses:
                loss = loss + tf.add_n(model.losses)
        grads = tape.gradient(loss, variables)
        optimizer.apply(grads, variables)
        correct = tf.reduce_sum(tf.cast(tf.argmax(probs, -1) == tf.argmax(y, -1), tf.float32))
        return loss, correct

    return step


def _make_batches(train: Any, augmentation: Any, recipe: Recipe, seed: int) -> Any:
    from robustbench_cells.pipeline import TrainingBatches

    return TrainingBatches(train, augmentation, batch_size=recipe.batch_size, seed=seed,
                           balance=recipe.balance, jsd_views=recipe.jsd)


def evaluate(model: Any, dataset: Any, batch_size: int = 256) -> dict[str, float]:
    """Clean loss and accuracy of *model* on a Dataset (no smoothing, no weights)."""
    probs = predict_proba(model, dataset.images, batch_size=batch_size)
    p = np.clip(probs[np.arange(len(probs)), dataset.labels], _EPS, 1.0)
    return {"loss": float(-np.log(p).mean()), "accuracy": float((probs.argmax(1) == dataset.labels).mean())}


class _EarlyStopping:
    """Track the best epoch and its weights; say when to stop."""

    def __init__(self, monitor: str, patience: int | None) -> None:
        self.monitor, self.patience = monitor, patience
        self.best = math.inf if monitor == "val_loss" else -math.inf
        self.best_weights: list[np.ndarray] | None = None
        self.best_epoch: int | None = None
        self.wait = 0

    def update(self, epoch: int, logs: Mapping[str, float], model: Any) -> bool:
        """Record *logs*; return True when training should stop."""
        value = logs[self.monitor]
        better = value < self.best if self.monitor == "val_loss" else value > self.best
        if better:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            self.best_weights = [np.array(w) for w in model.get_weights()] if self.patience else None
            return False
        self.wait += 1
        return self.patience is not None and self.wait >= self.patience

    def restore(self, model: Any) -> None:
        if self.best_weights is not None:
            model.set_weights(self.best_weights)


def _run_phase(model: Any, batches: Any, val: Any, recipe: Recipe, class_weights: np.ndarray | None, *,
               epochs: int, base_lr: float, start_epoch: int, history: dict[str, list[float]],
               on_epoch: Callable[[int, dict], None] | None, constant_lr: bool = False) -> int:
    """Train *epochs* epochs; returns the number of epochs run (early stopping may cut it short)."""
    optimizer = make_optimizer(recipe, base_lr)
    step = _make_train_step(model, optimizer, recipe, class_weights)
    plateau = PlateauSchedule(base_lr, factor=recipe.plateau_factor, patience=recipe.plateau_patience,
                              min_lr=recipe.min_learning_rate,
                              mode="min" if recipe.early_stopping_monitor == "val_loss" else "max")
    stopper = _EarlyStopping(recipe.early_stopping_monitor, recipe.early_stopping_patience)
    lr = base_lr
    ran = 0
    for epoch in range(epochs):
        if not constant_lr and recipe.schedule != "plateau":
            lr = learning_rate_at(recipe, epoch, base_lr, epochs)
        optimizer.learning_rate = lr
        total_loss, total_correct, seen = 0.0, 0.0, 0
        # iterate() prepares the next batches in a background thread while TF runs the step.
        source = batches.iterate(start_epoch + epoch) if hasattr(batches, "iterate") else batches.epoch(start_epoch + epoch)
        for x, y in source:
            loss, correct = step(x, y)
            loss = float(loss)
            if not math.isfinite(loss):
                raise TrainingDiverged(f"training loss became {loss} in epoch {start_epoch + epoch + 1}")
            n = len(y)
            total_loss += loss * n
            total_correct += float(correct)
            seen += n
        logs = {"loss": total_loss / max(seen, 1), "accuracy": total_correct / max(seen, 1), "learning_rate": lr}
        if val is not None and len(val):
            scores = evaluate(model, val)
            logs.update(val_loss=scores["loss"], val_accuracy=scores["accuracy"])
        for key, value in logs.items():
            history.setdefault(key, []).append(float(value))
        ran += 1
        if on_epoch is not None:
            on_epoch(start_epoch + epoch, dict(logs))
        if "val_loss" in logs:
            if recipe.schedule == "plateau" and not constant_lr:
                lr = plateau.step(logs[recipe.early_stopping_monitor])
            if stopper.update(epoch, logs, model):
                break
    if recipe.early_stopping_patience and "val_loss" in history:
        stopper.restore(model)
        history.setdefault("best_epoch", []).append(float(start_epoch + (stopper.best_epoch or 0)))
    return ran


def _unfreeze_top(model: Any, base: Any, n_layers: int) -> None:
    """Make the top *n_layers* layers of *base* trainable; BatchNorm layers stay frozen (inference mode)."""
    import keras

    base.trainable = True
    layers = base.layers
    cut = max(0, len(layers) - n_layers)
    for i, layer in enumerate(layers):
        layer.trainable = i >= cut and not isinstance(layer, keras.layers.BatchNormalization)


def build_model(model_name: str, input_shape: tuple[int, int, int], num_classes: int,
                weights: str | None = None, model_options: Mapping[str, Any] | None = None) -> Any:
    """Build a registered model (names what users type: ``simple_cnn``, ``mobilenetv2``, ...)."""
    from robustbench_cells import plugins

    spec = plugins.models().get(model_name)
    return spec.build(tuple(int(s) for s in input_shape), int(num_classes), weights, **dict(model_options or {}))


def train_cell(model_name: str, train: Any, val: Any, *, augmentation: Any, recipe: Recipe, seed: int,
               model_options: dict | None = None, on_epoch: Callable[[int, dict], None] | None = None,
               batches: Any = None) -> TrainResult:
    """Build *model_name* for ``train``'s image size and train it with *recipe*.

    Data are expected at the model's working size already (the runner resizes once to
    ``max(data size, spec.min_input_size)``); a model still resizes smaller input up inside its
    graph. ``batches`` overrides the :class:`~robustbench_cells.pipeline.TrainingBatches` built
    from ``train``/``augmentation`` (anything with ``len()`` and ``epoch(i)``).
    Raises :class:`TrainingDiverged` on a NaN loss.
    """
    from robustbench_cells.models.applications import find_base

    set_determinism(seed)
    started = time.perf_counter()
    model = build_model(model_name, train.images.shape[1:], train.num_classes, recipe.weights, model_options)
    base = find_base(model)
    if (recipe.freeze_base or recipe.fine_tune_layers) and base is None:
        raise CellbenchError(f"[train] freeze_base/fine_tune_layers: model {model_name!r} has no pretrained base "
                             "(only Keras applications do)")
    if recipe.freeze_base:
        base.trainable = False  # also puts its BatchNorm layers in inference mode (Keras 3)
    if batches is None:
        batches = _make_batches(train, augmentation, recipe, seed)
    class_weights = balanced_class_weights(train.labels, train.num_classes) if recipe.class_weight else None
    history: dict[str, list[float]] = {}
    epochs = _run_phase(model, batches, val, recipe, class_weights, epochs=recipe.epochs,
                        base_lr=recipe.learning_rate, start_epoch=0, history=history, on_epoch=on_epoch)
    if recipe.fine_tune_layers and recipe.fine_tune_epochs:
        _unfreeze_top(model, base, recipe.fine_tune_layers)
        epochs += _run_phase(model, batches, val, recipe, class_weights, epochs=recipe.fine_tune_epochs,
                             base_lr=recipe.fine_tune_learning_rate, start_epoch=epochs, history=history,
                             on_epoch=on_epoch, constant_lr=True)
    best = history.pop("best_epoch", None)
    return TrainResult(model=model, history=history, epochs=epochs, train_seconds=time.perf_counter() - started,
                       params=int(model.count_params()), best_epoch=int(best[-1]) if best else None)
