"""Training and model artefacts, re-exported from :mod:`robustbench_cells.training` for existing callers.

The code lives in three modules with one job each: :mod:`~robustbench_cells.training.recipe`
(``Recipe``, schedules, class weights), :mod:`~robustbench_cells.training.loop` (``train_cell``,
losses, determinism) and :mod:`~robustbench_cells.training.artefacts` (``predict_proba``,
``save_model``, ``load_model``, ``model_meta``). New code should import from those.
"""

from __future__ import annotations

from robustbench_cells.training.artefacts import (
    META_FILE, MODEL_FILE, load_model, model_input_size, model_meta, predict_proba, save_model, versions,
)
from robustbench_cells.training.loop import (
    TrainingDiverged, TrainResult, build_model, cross_entropy, evaluate, jensen_shannon, make_optimizer,
    set_determinism, train_cell,
)
from robustbench_cells.training.recipe import (
    MONITORS, OPTIMIZERS, SCHEDULES, PlateauSchedule, Recipe, balanced_class_weights, learning_rate_at,
)

__all__ = [
    "META_FILE", "MODEL_FILE", "MONITORS", "OPTIMIZERS", "SCHEDULES", "PlateauSchedule", "Recipe", "TrainResult",
    "TrainingDiverged", "balanced_class_weights", "build_model", "cross_entropy", "evaluate", "jensen_shannon",
    "learning_rate_at", "load_model", "make_optimizer", "model_input_size", "model_meta", "predict_proba",
    "save_model", "set_determinism", "train_cell", "versions",
]
