"""Run every inspection on a data set and collect the findings in one report."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robustbench_cells.data.dataset import Dataset
from robustbench_cells.data.inspection.balance import ClassBalance, class_balance
from robustbench_cells.data.inspection.duplicates import (
    NearDuplicates, exact_duplicate_groups, label_conflicts, near_duplicates,
)
from robustbench_cells.data.inspection.outliers import DEFAULT_FENCE, OutlierResult, find_outliers


@dataclass
class InspectionReport:
    """What :func:`inspect_dataset` found. Indices refer to the data set in the order it was loaded."""

    source: str
    n_images: int
    balance: ClassBalance
    exact_groups: list[list[int]]
    near: NearDuplicates
    outliers: OutlierResult
    exact_conflicts: list[list[int]] = field(default_factory=list)
    near_conflicts: list[list[int]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def near_groups(self) -> list[list[int]]:
        return self.near.groups

    def removal_plan(self) -> dict[int, str]:
        """Index -> reason, for a de-duplicated, outlier-free copy.

        The first image of each duplicate group is kept; outliers are removed. An image both
        duplicated and an outlier gets the duplicate reason (the first one found).
        """
        plan: dict[int, str] = {}
        conflicts = {tuple(g) for g in self.exact_conflicts + self.near_conflicts}
        for kind, groups in (("exact duplicate", self.exact_groups), ("near duplicate", self.near.groups)):
            for g in groups:
                note = " (label conflict)" if tuple(g) in conflicts else ""
                for i in g[1:]:
                    plan.setdefault(i, f"{kind} of #{g[0]}{note}")
        for i in self.outliers.flagged:
            i = int(i)
            plan.setdefault(i, f"outlier (score {self.outliers.scores[i]:.1f} > {self.outliers.threshold:.1f})")
        return plan

    def to_json(self, max_outliers: int | None = None) -> dict[str, Any]:
        """The machine-readable report (the ``--json`` output)."""
        ratio = self.balance.imbalance_ratio
        flagged = self.outliers.flagged if max_outliers is None else self.outliers.flagged[:max_outliers]
        return {
            "source": self.source,
            "n_images": self.n_images,
            "classes": [{"name": n, "count": c} for n, c in zip(self.balance.names, self.balance.counts)],
            "imbalance_ratio": None if not np.isfinite(ratio) else round(ratio, 3),
            "exact_duplicates": self.exact_groups,
            "near_duplicates": self.near.groups,
            "label_conflicts": {"exact": self.exact_conflicts, "near": self.near_conflicts},
            "outliers": [{"index": int(i), "score": round(float(self.outliers.scores[i]), 3)} for i in flagged],
            "outlier_threshold": (None if not np.isfinite(self.outliers.threshold)
                                  else round(float(self.outliers.threshold), 3)),
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }


def inspect_dataset(dataset: Dataset, fence: float = DEFAULT_FENCE,
                    progress: Callable[[str], None] | None = None) -> InspectionReport:
    """Class balance, exact and near duplicates (with label conflicts) and outliers of *dataset*."""
    say = progress or (lambda _msg: None)
    seconds: dict[str, float] = {}
    images, labels = dataset.images, dataset.labels

    t = time.perf_counter()
    balance = class_balance(labels, dataset.class_names)
    say(f"hashing {len(images)} images for exact duplicates")
    exact = exact_duplicate_groups(images)
    seconds["exact_duplicates"] = time.perf_counter() - t

    t = time.perf_counter()
    say("searching near duplicates")
    # Only one image per exact group takes part, so exact copies are reported once, as exact.
    drop = np.zeros(len(images), bool)
    for g in exact:
        drop[g[1:]] = True
    near = near_duplicates(images, among=np.flatnonzero(~drop))
    seconds["near_duplicates"] = time.perf_counter() - t

    t = time.perf_counter()
    say("scoring outliers")
    outliers = find_outliers(images, fence=fence)
    seconds["outliers"] = time.perf_counter() - t

    return InspectionReport(
        source=dataset.source, n_images=len(images), balance=balance, exact_groups=exact, near=near,
        outliers=outliers, exact_conflicts=label_conflicts(exact, labels),
        near_conflicts=label_conflicts(near.groups, labels), seconds=seconds,
    )
