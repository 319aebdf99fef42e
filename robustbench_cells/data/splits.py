"""Train/val/test splits: the data set's own split when it has one, else stratified with a seed."""

from __future__ import annotations

import numpy as np

from robustbench_cells.data.dataset import SPLIT_NAMES, Dataset
from robustbench_cells.errors import CellbenchError


def stratified_assignment(labels: np.ndarray, fractions: tuple[float, float, float], seed: int) -> np.ndarray:
    """Per-image split names; within each class a seeded permutation is cut by *fractions*."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise CellbenchError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    out = np.empty(len(labels), dtype="<U5")
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_train = int(round(fractions[0] * len(idx)))
        n_val = int(round(fractions[1] * len(idx)))
        out[idx[:n_train]] = "train"
        out[idx[n_train:n_train + n_val]] = "val"
        out[idx[n_train + n_val:]] = "test"
    return out


def split_dataset(dataset: Dataset, seed: int = 0,
                  fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)) -> dict[str, Dataset]:
    """``{"train": ..., "val": ..., "test": ...}``; the data set's own split wins when present."""
    split = dataset.split if dataset.split is not None else stratified_assignment(dataset.labels, fractions, seed)
    parts = {name: dataset.subset(np.flatnonzero(split == name), f"[{name}]") for name in SPLIT_NAMES}
    for name in ("train", "val"):
        if len(parts[name]) == 0:
            raise CellbenchError(f"{dataset.source or 'data set'}: the {name} split is empty")
    return parts


def test_part(dataset: Dataset) -> Dataset:
    """The data set's own test split when it declares one, else the whole set (previews and report
    samples show held-out images: what models are judged on)."""
    if dataset.split is not None and (dataset.split == "test").any():
        return dataset.subset(np.flatnonzero(dataset.split == "test"))
    return dataset


def one_per_class(labels: np.ndarray | None, count: int) -> np.ndarray:
    """Indices of up to *count* images taken one per class in turn: the first image of every class,
    then the second of every class, ... (previews and sample strips show every class early).
    Without labels: the first *count* images."""
    if labels is None:
        return np.arange(count)
    by_class = [np.flatnonzero(labels == k) for k in np.unique(labels)]
    count = min(count, len(labels))
    picked: list[int] = []
    depth = 0
    while len(picked) < count:
        for idx in by_class:
            if depth < len(idx) and len(picked) < count:
                picked.append(int(idx[depth]))
        depth += 1
    return np.array(picked, dtype=np.int64)
