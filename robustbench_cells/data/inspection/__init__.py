"""Data inspection: class balance, exact and near duplicates, outliers, and a cleaned copy.

:func:`~robustbench_cells.data.inspection.report.inspect_dataset` runs everything on a
:class:`~robustbench_cells.data.dataset.Dataset`; the modules can also be used one by one:
``balance`` (counts, imbalance ratio), ``duplicates`` (exact and near-duplicate groups),
``outliers`` (features, robust scores, threshold), ``figures`` (PNGs), ``clean`` (de-duplicated,
outlier-free copy) and ``planted`` (defects with known answers, for tests and benchmarks).
"""

from __future__ import annotations

from robustbench_cells.data.inspection.report import InspectionReport, inspect_dataset

__all__ = ["InspectionReport", "inspect_dataset"]
