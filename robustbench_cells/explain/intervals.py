"""Intervals and the default estimator, calibrated on the run itself by leave-one-family-out.

Every benchmarked shift family in turn plays the unlabeled target: each estimator predicts the
accuracy of every cell on that family's sets using only the *other* families (their fingerprints,
stored accuracies and predictions), and the error against the stored truth is recorded. Per
estimator, the 10 / 90 % quantiles of those errors give an 80 % interval around a new estimate, widened
by the target's coverage scale (:mod:`.coverage`); the estimator with the lowest family-balanced mean
absolute error becomes the run's default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: Nominal interval coverage (quantiles LEVEL/2 .. 1 - LEVEL/2 of the errors).
LEVEL = 0.2


def summarize_errors(errors: Mapping[str, Sequence[tuple[str, float]]]) -> dict[str, dict[str, object]]:
    """Per estimator, from ``[(held-out family, estimate - truth), ...]``: family-balanced MAE (points),
    error quantiles, the number of errors and the nested leave-one-family-out interval coverage."""
    out: dict[str, dict[str, object]] = {}
    for name, pairs in errors.items():
        if not pairs:
            continue
        fams = sorted({f for f, _ in pairs})
        err = np.array([e for _, e in pairs])
        by_fam = {f: np.array([e for g, e in pairs if g == f]) for f in fams}
        mae = float(np.mean([np.mean(np.abs(v)) for v in by_fam.values()]) * 100)
        lo, hi = np.quantile(err, [LEVEL / 2, 1 - LEVEL / 2])
        # Nested check: intervals from the other families' errors, tested on the held-out family.
        hits = []
        for f in fams:
            rest = np.concatenate([v for g, v in by_fam.items() if g != f]) if len(fams) > 1 else np.zeros(0)
            if len(rest) == 0:
                continue
            rlo, rhi = np.quantile(rest, [LEVEL / 2, 1 - LEVEL / 2])
            hits.extend(((by_fam[f] >= min(rlo, 0)) & (by_fam[f] <= max(rhi, 0))).tolist())
        out[name] = {"mae": mae, "low_error": float(min(lo, 0.0)), "high_error": float(max(hi, 0.0)),
                     "n": int(len(err)), "families": fams,
                     "interval_coverage": float(np.mean(hits)) if hits else None}
    return out


def best_estimator(summary: Mapping[str, Mapping[str, object]], min_families: int = 2) -> str | None:
    """The estimator with the lowest leave-one-family-out MAE (``None`` when too few families were held out)."""
    usable = {k: v for k, v in summary.items() if len(v["families"]) >= min_families}  # type: ignore[arg-type]
    if not usable:
        return None
    return min(usable, key=lambda k: float(usable[k]["mae"]))  # type: ignore[arg-type]


def interval(estimate: float | None, stats: Mapping[str, object] | None, scale: float) -> tuple[float, float] | None:
    """``(low, high)`` accuracy interval for *estimate*: the error quantiles widened by *scale*, clipped to 0..1."""
    if estimate is None or stats is None:
        return None
    low = estimate - scale * float(stats["high_error"])  # type: ignore[arg-type]
    high = estimate - scale * float(stats["low_error"])  # type: ignore[arg-type]
    return float(np.clip(low, 0, 1)), float(np.clip(high, 0, 1))


def choose_cell(cells: Sequence[Mapping[str, object]], estimator: str | None,
                coverage_status: str) -> dict[str, object]:
    """The cell with the best interval lower bound under *estimator*, why, and whether the evidence supports it.

    ``cells``: dicts with ``key``, ``model``, ``augmentation``, ``estimates`` and ``intervals``.
    Equal lower bounds are broken by the estimate itself.
    """
    rows = [(c, c["intervals"].get(estimator)) for c in cells if estimator]  # type: ignore[union-attr]
    rows = [(c, iv) for c, iv in rows if iv is not None]
    if not rows:
        return {"choice": None, "supported": False,
                "reason": "no choice is supported: the run has no leave-one-family-out calibration "
                          "(no stored predictions on shifted sets) to rank cells by"}
    # Equal lower bounds (often all clipped at 0 on a far target): the higher estimate goes first.
    rows.sort(key=lambda r: (-r[1][0], -float(r[0].get("estimates", {}).get(estimator) or 0.0)))  # type: ignore[union-attr]
    best, (low, high) = rows[0]
    why = (f"best lower bound of the {estimator} interval ({low:.1%}..{high:.1%}); {estimator} had the lowest "
           "leave-one-family-out error on this run's shifted sets")
    supported = coverage_status != "outside"
    if not supported:
        why = "no choice is supported: the target is outside the benchmarked shifts; " + why
    elif len(rows) > 1 and rows[1][1][0] >= low - 0.02:
        why += f"; {rows[1][0]['model']}/{rows[1][0]['augmentation']} is as good within 2 points (a tie)"
    return {"choice": best["key"], "supported": supported, "reason": why, "lower_bound": low, "upper_bound": high}
