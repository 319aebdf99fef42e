"""Data checks of an explain target: near-duplicates in the run's training data (leakage), outliers
within the target, and the share of the target unlike anything in validation.

Reuses the data inspection's near-duplicate search and outlier scoring
(:mod:`robustbench_cells.data.inspection`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robustbench_cells.explain.fingerprint import Reference
from robustbench_cells.explain.target import Target


def leakage_and_outliers(train_images: np.ndarray, target: Target, target_stats: np.ndarray,
                         reference: Reference, val_stats: np.ndarray) -> dict[str, Any]:
    """Near-duplicates of target images in the training data, target outliers, and how much of the
    target lies outside everything validation looks like.

    Reuses the data inspection's near-duplicate search (on target + train together, keeping only
    target-train pairs) and outlier scoring (within the target: a few images unlike the rest).
    """
    from robustbench_cells.data.inspection.duplicates import near_duplicates
    from robustbench_cells.data.inspection.outliers import find_outliers

    n_t = len(target.images)
    if train_images.shape[1:] != target.images.shape[1:]:
        from robustbench_cells.data.resize import resize_images

        train_images = resize_images(train_images, target.images.shape[1:3])
    found = near_duplicates(np.concatenate([target.images, train_images]))
    pairs, scores = found.pairs, found.scores
    cross = (pairs[:, 0] < n_t) != (pairs[:, 1] < n_t) if len(pairs) else np.zeros(0, bool)
    leaks = []
    for (a, b), score in zip(pairs[cross], scores[cross]):
        t, tr = (int(a), int(b) - n_t) if a < n_t else (int(b), int(a) - n_t)
        leaks.append({"target": target.paths[t], "train_index": tr, "correlation": round(float(score), 4)})
    leaked_images = sorted({leak["target"] for leak in leaks})
    outliers = find_outliers(target.images)
    # Share of target images outside the validation bulk: RMS robust z over the statistics above
    # validation's own 99 % quantile (about 1 % for a target drawn like validation).
    def rms(stats: np.ndarray) -> np.ndarray:
        return np.sqrt(np.mean(np.clip(reference.standardize(stats), -20, 20) ** 2, axis=1))

    fence = float(np.quantile(rms(val_stats), 0.99))
    return {
        "leakage_count": len(leaked_images),
        "leakage": leaks[:50],
        "outlier_count": int(len(outliers.flagged)),
        "outliers": [{"path": target.paths[int(i)], "score": round(float(outliers.scores[int(i)]), 3)}
                     for i in outliers.flagged[:20]],
        "unlike_validation": float(np.mean(rms(target_stats) > fence)),
    }
