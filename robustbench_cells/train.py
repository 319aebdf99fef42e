"""The training recipe and loop: optimiser, schedules, early stopping, class weights, label smoothing,
transfer learning / fine-tuning, AugMix's Jensen-Shannon consistency loss, determinism,
``predict_proba`` and model artefacts (``model.keras`` + ``meta.json``).

The loop is a compiled TensorFlow step (one ``tf.function`` per phase) fed by
:class:`robustbench_cells.pipeline.TrainingBatches`; the models themselves are backend-agnostic
Keras. Learning-rate schedules are evaluated once per epoch in NumPy, which keeps them testable on
their own (:func:`learning_rate_at`, :class:`PlateauSchedule`).

Determinism: :func:`train_cell` calls ``keras.utils.set_random_seed(seed)`` and enables TensorFlow op
determinism, so within a process the same seed gives the same weights and scores on CPU. Across
processes TF's multi-threaded CPU kernels differ in the last bits unless TF runs single-threaded
(``TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1``); see docs/models.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from robustbench_cells.atomic import atomic_path
from robustbench_cells.errors import CellbenchError, did_you_mean

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "step", "exponential", "cosine", "plateau")
MONITORS = ("val_loss", "val_accuracy")
_EPS = 1e-7


class TrainingDiverged(Exception):
    """The training loss became NaN or infinite."""


# ---------------------------------------------------------------------------------------------
# Recipe
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recipe:
    """How to train one cell (the matrix's ``[train]`` table). Every field has a sensible default."""

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0           # decoupled weight decay (AdamW's default when 0 is 0.004)
    momentum: float = 0.9               # SGD only
    batch_size: int = 64
    epochs: int = 10
    schedule: str = "constant"
    step_size: int = 10                 # step: epochs between decays
    decay_rate: float = 0.1             # step: factor per step; exponential: factor per epoch
    min_learning_rate: float = 0.0      # cosine floor; plateau floor
    warmup_epochs: int = 0              # linear warm-up before any schedule
    plateau_patience: int = 2
    plateau_factor: float = 0.5
    early_stopping_patience: int | None = None   # None: off; best weights are restored when on
    early_stopping_monitor: str = "val_loss"
    class_weight: str | None = None     # None | "balanced"
    label_smoothing: float = 0.0
    balance: bool = False               # oversample rare classes in TrainingBatches
    weights: str | None = None          # None | "imagenet" | path
    freeze_base: bool = False
    fine_tune_layers: int = 0
    fine_tune_epochs: int = 0
    fine_tune_learning_rate: float = 1e-5
    jsd: bool = False
    jsd_weight: float = 12.0            # AugMix paper's lambda

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, where: str = "[train]") -> Recipe:
        """Validate a ``[train]`` table: unknown keys and bad values raise CellbenchError naming *where*."""
        d = dict(d or {})
        names = [f.name for f in fields(cls)]
        for key in d:
            if key not in names:
                raise CellbenchError(f"{where}: unknown key {key!r}{did_you_mean(key, names)}")
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in d:
                values[f.name] = _coerce(f.name, d[f.name], f.default, where)
        recipe = cls(**values)
        recipe.validate(where)
        return recipe

    def validate(self, where: str = "[train]") -> None:
        """Check value ranges and choices; raise CellbenchError naming *where* and the key."""
        def bad(key: str, why: str) -> CellbenchError:
            return CellbenchError(f"{where}: {key} = {getattr(self, key)!r} {why}")

        for key, choices in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES),
                             ("early_stopping_monitor", MONITORS)):
            if getattr(self, key) not in choices:
                raise bad(key, f"is not one of {', '.join(choices)}{did_you_mean(str(getattr(self, key)), choices)}")
        if self.class_weight not in (None, "balanced"):
            raise bad("class_weight", "must be 'balanced' or 'none'")
        for key in ("learning_rate", "fine_tune_learning_rate", "decay_rate", "plateau_factor"):
            if not getattr(self, key) > 0:
                raise bad(key, "must be > 0")
        for key in ("batch_size", "epochs", "step_size"):
            if getattr(self, key) < 1:
                raise bad(key, "must be >= 1")
        for key in ("weight_decay", "momentum", "min_learning_rate", "warmup_epochs", "plateau_patience",
                    "fine_tune_layers", "fine_tune_epochs", "jsd_weight"):
            if getattr(self, key) < 0:
                raise bad(key, "must be >= 0")
        if not 0 <= self.label_smoothing < 1:
            raise bad("label_smoothing", "must be in [0, 1)")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise bad("early_stopping_patience", "must be >= 1 (or 'none' to turn it off)")
        if self.fine_tune_layers and not self.fine_tune_epochs:
            raise bad("fine_tune_layers", "needs fine_tune_epochs >= 1")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (what the store and meta.json record)."""
        return dataclasses.asdict(self)


_NULLABLE = {"early_stopping_patience", "class_weight", "weights"}


def _coerce(key: str, value: Any, default: Any, where: str) -> Any:
    """Convert a TOML value to the field's type (TOML has no null: 'none' means None)."""
    if key in _NULLABLE and (value is None or (isinstance(value, str) and value.strip().lower() in ("none", ""))):
        return None
    if key in _NULLABLE and key != "early_stopping_patience":
        if not isinstance(value, str):
            raise CellbenchError(f"{where}: {key} must be a string, got {value!r}")
        return value
    if key == "early_stopping_patience" or (isinstance(default, int) and not isinstance(default, bool)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
            raise CellbenchError(f"{where}: {key} must be an integer, got {value!r}")
        return int(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise CellbenchError(f"{where}: {key} must be true or false, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CellbenchError(f"{where}: {key} must be a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise CellbenchError(f"{where}: {key} must be a string, got {value!r}")
    return value.strip().lower()


# ---------------------------------------------------------------------------------------------
# Schedules, class weights
# ---------------------------------------------------------------------------------------------
def learning_rate_at(recipe: Recipe, epoch: int, base_lr: float | None = None, epochs: int | None = None) -> float:
    """The learning rate for 0-based *epoch* under the recipe's (non-plateau) schedule, with warm-up."""
    lr = recipe.learning_rate if base_lr is None else base_lr
    epochs = recipe.epochs if epochs is None else epochs
    if recipe.warmup_epochs and epoch < recipe.warmup_epochs:
        return lr * (epoch + 1) / (recipe.warmup_epochs + 1)
    t = epoch - recipe.warmup_epochs
    span = max(1, epochs - recipe.warmup_epochs)
    if recipe.schedule == "step":
        return lr * recipe.decay_rate ** (t // recipe.step_size)
    if recipe.schedule == "exponential":
        return lr * recipe.decay_rate ** t
    if recipe.schedule == "cosine":
        floor = min(recipe.min_learning_rate, lr)
        return floor + 0.5 * (lr - floor) * (1 + math.cos(math.pi * t / span))
    return lr  # constant, and plateau's starting value


class PlateauSchedule:
    """Reduce-on-plateau: multiply the rate by ``factor`` after ``patience`` epochs without improvement."""

    def __init__(self, lr: float, *, factor: float, patience: int, min_lr: float = 0.0, mode: str = "min") -> None:
        self.lr, self.factor, self.patience, self.min_lr, self.mode = lr, factor, patience, min_lr, mode
        self.best = math.inf if mode == "min" else -math.inf
        self.wait = 0

    def step(self, value: float) -> float:
        """Record this epoch's monitored *value*; return the learning rate for the next epoch."""
        better = value < self.best if self.mode == "min" else value > self.best
        if better:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.lr, self.wait = max(self.min_lr, self.lr * self.factor), 0
        return self.lr


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``n_samples / (n_classes * count_c)`` per class (scikit-learn's "balanced"); absent classes get 1."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.ones(num_classes, dtype=np.float64)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)


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


# ---------------------------------------------------------------------------------------------
# Prediction
# ---------------------------------------------------------------------------------------------
_PREDICT_FNS: dict[int, Callable] = {}


def _predict_fn(model: Any) -> Callable:
    """One compiled inference function per model (batch dimension left open: no retracing)."""
    key = id(model)
    fn = _PREDICT_FNS.get(key)
    if fn is None:
        import tensorflow as tf

        ref = weakref.ref(model)
        shape = (None, *model.input_shape[1:])

        @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)])
        def fn(x: Any) -> Any:
            return ref()(x, training=False)

        _PREDICT_FNS[key] = fn
        weakref.finalize(model, _PREDICT_FNS.pop, key, None)
    return fn


def model_input_size(model: Any) -> tuple[int, int]:
    """The (height, width) a model expects."""
    shape = model.input_shape
    return int(shape[1]), int(shape[2])


def predict_proba(model: Any, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities float32 ``(N, C)`` for uint8 images ``(N, H, W, 3)`` (resized to the model's input)."""
    from robustbench_cells.data.resize import resize_images

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise CellbenchError(f"predict: images must be (N, H, W, 3), got {images.shape}")
    size = model_input_size(model)
    if images.shape[1:3] != size and None not in size:
        images = resize_images(images.astype(np.uint8, copy=False), size)
    fn = _predict_fn(model)
    num_classes = int(model.output_shape[-1])
    out = np.empty((len(images), num_classes), dtype=np.float32)
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].astype(np.float32)
        out[start:start + len(batch)] = np.asarray(fn(batch))
    return out


# ---------------------------------------------------------------------------------------------
# Artefacts
# ---------------------------------------------------------------------------------------------
MODEL_FILE = "model.keras"
META_FILE = "meta.json"


def versions() -> dict[str, str]:
    """Versions that matter for reproducing a trained cell."""
    import keras

    from robustbench_cells import __version__

    out = {"cellbench": __version__, "python": platform.python_version(), "numpy": np.__version__,
           "keras": keras.__version__, "backend": keras.backend.backend()}
    try:
        import tensorflow as tf

        out["tensorflow"] = tf.__version__
    except ImportError:
        pass
    return out


def model_meta(model_name: str, train: Any, *, augmentation: Any, recipe: Recipe, seed: int,
               model_options: Mapping[str, Any] | None = None, result: TrainResult | None = None,
               **extra: Any) -> dict[str, Any]:
    """The metadata saved next to a trained model (class names, input size, preprocessing, provenance)."""
    from robustbench_cells import plugins

    spec = plugins.models().get(model_name)
    meta = {
        "model": model_name, "model_options": dict(model_options or {}), "class_names": list(train.class_names),
        "input_size": list(train.images.shape[1:3]), "preprocessing": spec.preprocessing,
        "input": "float32 RGB 0..255 (preprocessing is inside the model)",
        "augmentation": augmentation, "recipe": recipe.to_dict(), "seed": int(seed),
        "data_source": getattr(train, "source", ""), "data_fingerprint": train.fingerprint(),
        "n_train": len(train), "versions": versions(),
    }
    if result is not None:
        meta.update(epochs=result.epochs, train_seconds=round(result.train_seconds, 2), params=result.params,
                    best_epoch=result.best_epoch, history=result.history)
    meta.update(extra)
    return meta


def save_model(model: Any, meta: Mapping[str, Any], folder: str | os.PathLike) -> Path:
    """Write ``folder/model.keras`` and ``folder/meta.json`` atomically (temp file + rename); return the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / MODEL_FILE, ".keras") as tmp:
        model.save(tmp)
    with atomic_path(folder / META_FILE) as tmp, open(tmp, "w") as fh:
        json.dump(dict(meta), fh, indent=2, default=_json_default)
    return folder


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def load_model(path: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """Load ``(model, meta)`` from a run folder or a ``.keras`` file, in Keras' safe mode.

    ``meta`` is ``{}`` when there is no ``meta.json`` next to the model. Missing or corrupt files
    raise CellbenchError naming the file.
    """
    import keras

    import robustbench_cells.models.layers  # noqa: F401  (registers cellbench's custom layers)

    path = Path(path)
    model_file = path / MODEL_FILE if path.is_dir() else path
    if not model_file.is_file():
        raise CellbenchError(f"model {model_file}: no such file (expected a run folder with {MODEL_FILE} or a .keras file)")
    if model_file.suffix != ".keras":
        raise CellbenchError(f"model {model_file}: not a .keras file")
    try:
        model = keras.saving.load_model(model_file, compile=False, safe_mode=True)
    except Exception as exc:
        raise CellbenchError(f"model {model_file}: cannot load ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
    meta_file = model_file.parent / META_FILE
    meta: dict[str, Any] = {}
    if meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CellbenchError(f"model metadata {meta_file}: not valid JSON ({exc})") from None
    return model, meta
