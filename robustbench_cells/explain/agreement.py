"""Agreement-on-the-line (Baek et al. 2022): label-free accuracy of every cell from pairwise agreement.

Across models, in probit space, out-of-distribution agreement between two models is a linear
function of their in-distribution agreement, with the *same* slope and bias as the line linking
in- and out-of-distribution accuracy. Agreement needs no labels, so fitting the agreement line on
all pairs of cells (validation vs target) and applying it to each cell's validation accuracy gives
an estimate of its target accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
from scipy.stats import norm

#: Agreements / accuracies are clipped away from 0 and 1 before the probit.
EPS = 1e-3


def probit(x: np.ndarray | float) -> np.ndarray:
    return norm.ppf(np.clip(x, EPS, 1 - EPS))


def agreement_line(val_preds: Sequence[np.ndarray], target_preds: Sequence[np.ndarray]) -> tuple[float, float] | None:
    """``(slope, bias)`` of probit(target agreement) against probit(validation agreement) over all pairs.

    ``None`` with fewer than 3 models (under 3 pairs) or when validation agreements do not vary.
    """
    if len(val_preds) < 3:
        return None
    x, y = [], []
    for i, j in combinations(range(len(val_preds)), 2):
        x.append(np.mean(val_preds[i] == val_preds[j]))
        y.append(np.mean(target_preds[i] == target_preds[j]))
    px, py = probit(np.array(x)), probit(np.array(y))
    if np.ptp(px) < 1e-6:
        return None
    slope, bias = np.polyfit(px, py, 1)
    return float(slope), float(bias)


def aol_estimates(val_probas: Sequence[np.ndarray], val_labels: np.ndarray,
                  target_probas: Sequence[np.ndarray]) -> list[float | None]:
    """Target accuracy per model by agreement-on-the-line (``None`` for all when the line can't be fitted)."""
    val_preds = [np.asarray(p).argmax(1) for p in val_probas]
    target_preds = [np.asarray(p).argmax(1) for p in target_probas]
    line = agreement_line(val_preds, target_preds)
    if line is None:
        return [None] * len(val_probas)
    slope, bias = line
    out: list[float | None] = []
    for pred in val_preds:
        acc = float(np.mean(pred == np.asarray(val_labels)))
        out.append(float(norm.cdf(slope * probit(acc) + bias)))
    return out
