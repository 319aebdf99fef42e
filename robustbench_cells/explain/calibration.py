"""Temperature scaling (Guo et al. 2017) fitted on validation, applied before ATC / DoC.

Stored outputs are probabilities, so logits are recovered as ``log p`` (softmax is shift-invariant,
so this is exact up to a per-image constant, which temperature scaling ignores).
"""

from __future__ import annotations

import numpy as np


def _log(proba: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0))


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities re-softmaxed at *temperature* (1 = unchanged, > 1 = less confident)."""
    z = _log(proba) / temperature
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def fit_temperature(val_proba: np.ndarray, val_labels: np.ndarray) -> float:
    """The temperature minimising validation negative log-likelihood (golden-section on log T in [1/20, 20])."""
    logp = _log(val_proba)
    y = np.asarray(val_labels)

    def nll(log_t: float) -> float:
        z = logp / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1))
        return float(np.mean(lse - z[np.arange(len(y)), y]))

    lo, hi = np.log(1 / 20), np.log(20.0)
    g = (np.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(40):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = nll(b)
    return float(np.exp((lo + hi) / 2))
