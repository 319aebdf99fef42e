"""Training, split by job: :mod:`.recipe` (the ``[train]`` table and schedules), :mod:`.loop` (the
compiled training loop) and :mod:`.artefacts` (predict, save, load, metadata).

Callers that only score or load models (explain, predict, evaluate, export) import
:mod:`robustbench_cells.training.artefacts` alone. :mod:`robustbench_cells.train` re-exports all
three for existing callers.
"""
