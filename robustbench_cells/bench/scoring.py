"""Scores of predicted probabilities against labels: one row per (split, shift, severity).

Metrics (what the ``scores`` table stores):

- ``accuracy``: fraction of argmax predictions equal to the label.
- ``balanced_accuracy``: mean of the per-class accuracies (recall) over the classes present.
- ``per_class``: accuracy per class, ``None`` for a class with no images in the set.
- ``mean_confidence``: mean of the max probability.
- ``ece``: expected calibration error with 15 equal-width confidence bins (Guo et al. 2017):
  ``sum_b |B_b|/n * |acc(B_b) - conf(B_b)|``.
- ``n``: number of images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ECE_BINS = 15


@dataclass
class Score:
    """The metrics of one evaluated set and the (cell, split, shift, severity) it belongs to.

    One row of the results store's ``scores`` table (:mod:`robustbench_cells.bench.store`, which
    re-exports it); :func:`score_probabilities` fills the metrics.
    """

    cell_key: str
    split: str
    shift: str
    severity: int
    accuracy: float
    balanced_accuracy: float
    per_class: list[float | None]
    mean_confidence: float
    ece: float
    n: int


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE over *bins* equal-width bins of (0, 1]; a confidence of exactly 0 goes to the first bin."""
    if len(confidence) == 0:
        return 0.0
    # Bin b holds confidences in (b/bins, (b+1)/bins]: ceil(conf*bins)-1, clipped so 0 -> bin 0.
    idx = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    conf_sum = np.bincount(idx, weights=confidence, minlength=bins)
    acc_sum = np.bincount(idx, weights=correct.astype(np.float64), minlength=bins)
    return float(np.abs(acc_sum - conf_sum).sum() / len(confidence))


def score_probabilities(probs: np.ndarray, labels: np.ndarray, num_classes: int | None = None, *,
                        cell_key: str = "", split: str = "", shift: str = "clean", severity: int = 0) -> Score:
    """All metrics of predicted *probs* ``(N, C)`` against integer *labels* ``(N,)``, as the score
    row of (*cell_key*, *split*, *shift*, *severity*)."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if probs.ndim != 2 or len(probs) != len(labels):
        raise ValueError(f"probs must be (N, C) with N = len(labels); got {probs.shape} for {labels.shape}")
    num_classes = probs.shape[1] if num_classes is None else num_classes
    n = len(labels)
    if n == 0:
        return Score(cell_key, split, shift, int(severity), 0.0, 0.0, [None] * num_classes, 0.0, 0.0, 0)
    pred = probs.argmax(axis=1)
    correct = pred == labels
    confidence = probs.max(axis=1)
    per_class_n = np.bincount(labels, minlength=num_classes)
    per_class_hits = np.bincount(labels, weights=correct.astype(np.float64), minlength=num_classes)
    present = per_class_n > 0
    per_class_acc = np.divide(per_class_hits, per_class_n, out=np.zeros(num_classes), where=present)
    per_class = [float(a) if p else None for a, p in zip(per_class_acc, present)]
    return Score(
        cell_key=cell_key, split=split, shift=shift, severity=int(severity),
        accuracy=float(correct.mean()),
        balanced_accuracy=float(per_class_acc[present].mean()),
        per_class=per_class,
        mean_confidence=float(confidence.mean()),
        ece=expected_calibration_error(confidence, correct),
        n=n,
    )
