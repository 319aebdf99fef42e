"""Class balance: images per class and the imbalance ratio."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassBalance:
    """Counts per class (in the data set's class order) and the largest/smallest count ratio."""

    names: tuple[str, ...]
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return int(sum(self.counts))

    @property
    def imbalance_ratio(self) -> float:
        """Largest over smallest class count; ``inf`` when a class has no images."""
        if not self.counts:
            return float("nan")
        smallest = min(self.counts)
        return float("inf") if smallest == 0 else max(self.counts) / smallest

    @property
    def empty_classes(self) -> list[str]:
        return [n for n, c in zip(self.names, self.counts) if c == 0]


def class_balance(labels: np.ndarray, class_names: tuple[str, ...]) -> ClassBalance:
    """Count images per class; every class in *class_names* appears, empty ones with 0."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=len(class_names))
    return ClassBalance(tuple(class_names), tuple(int(c) for c in counts))
