"""Label-free accuracy estimates of one classifier on an unlabeled target set.

- **ATC** (Garg et al. 2022, "Leveraging unlabeled data to predict out-of-distribution performance"):
  fit a threshold ``t`` on validation so that the fraction of validation images whose score is above
  ``t`` equals the validation accuracy; the target estimate is the fraction of target images above
  ``t``. Score = max softmax confidence (``atc``) or negative entropy (``atc_ne``, the paper's best).
- **DoC** (Guillory et al. 2021): validation accuracy minus the drop in mean confidence.
- **Shift-matched**: the cell's stored accuracy on the nearest synthetic shifted sets, weighted by
  inverse distance (``shift_matched``) or by the target's composition shares (``composition``).
- **ATC-matched**: ATC whose threshold is fitted on the cell's stored predictions for the nearest
  shifted sets (labels known) instead of clean validation: the threshold then already accounts
  for how over-confident the model is under that kind of shift.
- **Blend**: the mean of ``atc_ne`` and ``shift_matched``. The two fail differently (ATC is fooled
  by over-confident models, shift matching by targets unlike any benchmarked shift), so their errors
  partly cancel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from robustbench_cells.explain.nearest import Candidate

ESTIMATORS: tuple[str, ...] = ("atc", "atc_ne", "doc", "shift_matched", "composition", "blend", "atc_matched",
                               "atc_ts", "doc_ts", "aol", "metareg")
#: atc_ts / doc_ts: ATC (entropy score) and DoC after temperature scaling fitted on validation
#: (:mod:`.calibration`); aol: agreement-on-the-line across the run's cells (:mod:`.agreement`);
#: metareg: a ridge regression from the others and label-free signals, fitted on the run's held-out
#: sets (:mod:`.metareg`; only with a leave-one-family-out calibration).


def _check_proba(proba: np.ndarray, what: str) -> np.ndarray:
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or len(proba) == 0:
        raise ValueError(f"{what}: expected non-empty (N, C) probabilities, got shape {proba.shape}")
    return proba


def confidence_score(proba: np.ndarray) -> np.ndarray:
    """Max softmax probability per image."""
    return _check_proba(proba, "confidence_score").max(axis=1)


def negative_entropy(proba: np.ndarray) -> np.ndarray:
    """Negative Shannon entropy per image (0 for a one-hot prediction, ``-log C`` for uniform)."""
    p = np.clip(_check_proba(proba, "negative_entropy"), 1e-12, 1.0)
    return (p * np.log(p)).sum(axis=1)


def atc_threshold(val_scores: np.ndarray, val_correct: np.ndarray) -> float:
    """The threshold ``t`` with ``mean(val_scores > t) == mean(val_correct)`` (as nearly as ties allow)."""
    scores = np.sort(np.asarray(val_scores, dtype=np.float64))
    acc = float(np.mean(val_correct))
    n = len(scores)
    n_below = int(round((1.0 - acc) * n))  # images that must fall at or below t
    if n_below <= 0:
        return float(scores[0] - 1e-9)
    if n_below >= n:
        return float(scores[-1])
    # Midway between the last "below" and the first "above" score keeps the fit exact on validation.
    return float((scores[n_below - 1] + scores[n_below]) / 2)


def atc_estimate(val_proba: np.ndarray, val_labels: np.ndarray, target_proba: np.ndarray,
                 score: str = "confidence") -> float:
    """ATC estimate of target accuracy (0..1). ``score``: ``"confidence"`` or ``"entropy"``."""
    fn = {"confidence": confidence_score, "entropy": negative_entropy}[score]
    val_proba = _check_proba(val_proba, "val_proba")
    correct = val_proba.argmax(axis=1) == np.asarray(val_labels)
    t = atc_threshold(fn(val_proba), correct)
    return float(np.mean(fn(target_proba) > t))


def doc_estimate(val_proba: np.ndarray, val_labels: np.ndarray, target_proba: np.ndarray) -> float:
    """Difference-of-confidences estimate: ``val_acc - (mean_conf_val - mean_conf_target)``, clipped to 0..1."""
    val_proba = _check_proba(val_proba, "val_proba")
    val_acc = float(np.mean(val_proba.argmax(axis=1) == np.asarray(val_labels)))
    drop = confidence_score(val_proba).mean() - confidence_score(target_proba).mean()
    return float(np.clip(val_acc - drop, 0.0, 1.0))


def shift_matched_estimate(candidates: Sequence[Candidate], accuracy: Mapping[tuple[str, int], float],
                           k: int = 3) -> float | None:
    """Inverse-distance weighted accuracy over the *k* nearest candidates the cell has a score for.

    ``accuracy``: the cell's stored accuracy per ``(shift, severity)`` (clean = ``("clean", 0)``).
    ``None`` when the cell has no score on any candidate.
    """
    scored = [c for c in sorted(candidates, key=lambda c: c.distance) if (c.shift, c.severity) in accuracy][:k]
    if not scored:
        return None
    w = np.array([1.0 / max(c.distance, 1e-3) for c in scored])
    a = np.array([accuracy[(c.shift, c.severity)] for c in scored])
    return float((w * a).sum() / w.sum())


def composition_estimate(candidates: Sequence[Candidate], accuracy: Mapping[tuple[str, int], float]) -> float | None:
    """Accuracy expected if the target were the mixture its composition shares describe."""
    scored = [c for c in candidates if (c.shift, c.severity) in accuracy and c.share > 0]
    if not scored:
        return None
    w = np.array([c.share for c in scored])
    a = np.array([accuracy[(c.shift, c.severity)] for c in scored])
    return float((w * a).sum() / w.sum())


def atc_matched_estimate(candidates: Sequence[Candidate],
                         scored_sets: Mapping[tuple[str, int], tuple[np.ndarray, np.ndarray]],
                         target_proba: np.ndarray, k: int = 3) -> float | None:
    """ATC with the threshold fitted on the pooled stored predictions of the *k* nearest scored sets.

    ``scored_sets``: ``{(shift, severity): (proba (N, C), labels (N,))}``, the cell's predictions on
    the run's shifted test subset (and ``("clean", 0)``: its validation predictions).
    ``None`` when none of the nearest sets is available.
    """
    near = [c for c in sorted(candidates, key=lambda c: c.distance) if (c.shift, c.severity) in scored_sets][:k]
    if not near:
        return None
    proba = np.concatenate([scored_sets[(c.shift, c.severity)][0] for c in near])
    labels = np.concatenate([scored_sets[(c.shift, c.severity)][1] for c in near])
    return atc_estimate(proba, labels, target_proba, "confidence")


def all_estimates(val_proba: np.ndarray, val_labels: np.ndarray, target_proba: np.ndarray,
                  candidates: Sequence[Candidate], accuracy: Mapping[tuple[str, int], float],
                  k: int = 3) -> dict[str, float | None]:
    """Every estimator of :data:`ESTIMATORS` for one cell, ``{name: accuracy 0..1 or None}``."""
    out: dict[str, float | None] = {
        "atc": atc_estimate(val_proba, val_labels, target_proba, "confidence"),
        "atc_ne": atc_estimate(val_proba, val_labels, target_proba, "entropy"),
        "doc": doc_estimate(val_proba, val_labels, target_proba),
        "shift_matched": shift_matched_estimate(candidates, accuracy, k=k),
        "composition": composition_estimate(candidates, accuracy),
    }
    parts = [out["atc_ne"], out["shift_matched"]]
    out["blend"] = float(np.mean(parts)) if all(p is not None for p in parts) else None
    return out


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either side is constant."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)
