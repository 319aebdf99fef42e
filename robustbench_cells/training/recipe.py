"""The training recipe: the matrix's ``[train]`` table as a validated :class:`Recipe`, the
learning-rate schedules it names (evaluated per epoch in NumPy, so they are testable on their own:
:func:`learning_rate_at`, :class:`PlateauSchedule`) and balanced class weights.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from robustbench_cells.errors import CellbenchError, did_you_mean

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "step", "exponential", "cosine", "plateau")
MONITORS = ("val_loss", "val_accuracy")


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
