"""Which trained cell to submit for a target, and which augmentation families would close the gap.

The choice uses the *primary* estimate (see :data:`PRIMARY_ESTIMATOR`) of each cell; cells whose
estimate is within the estimators' disagreement of the best are treated as ties and ordered by their
measured accuracy on the shifted sets that match the target (a number backed by labels, on the
user's own benchmark). Confidence is high when the estimators agree and the target is close to a
benchmarked shift, low when they disagree or the target is far from everything benchmarked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from robustbench_cells.augchain import NONE, AugmentationChain

#: The estimate the recommendation ranks by, then the fall-backs. Chosen from benchmarks/explain_eval.py
#: on PBC (docs/explain.md): the shift-based estimates had a third of ATC's error there, because
#: under-trained CNNs stay confident on shifted images.
PRIMARY_ESTIMATOR: tuple[str, ...] = ("composition", "shift_matched", "blend", "atc_ne", "atc")


def primary_estimate(estimates: Mapping[str, float | None]) -> tuple[str, float] | None:
    """``(estimator name, value)`` of the first available estimator in :data:`PRIMARY_ESTIMATOR`."""
    for name in PRIMARY_ESTIMATOR:
        value = estimates.get(name)
        if value is not None and np.isfinite(value):
            return name, float(value)
    return None


def _spread(estimates: Mapping[str, float | None]) -> float:
    values = [v for k, v in estimates.items() if v is not None and k in ("atc_ne", "shift_matched", "composition")]
    return float(np.ptp(values)) if len(values) > 1 else 0.0


def matched_accuracy(accuracy: Mapping[tuple[str, int], float], matches: Sequence[tuple[str, int]]) -> float | None:
    """Mean stored accuracy of a cell on the matching ``(shift, severity)`` sets."""
    vals = [accuracy[m] for m in matches if m in accuracy]
    return float(np.mean(vals)) if vals else None


def recommend(cells: Sequence[Mapping[str, Any]], families: Sequence[Mapping[str, Any]],
              matches: Sequence[tuple[str, int]], nearest_distance: float,
              augmentation_families: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the recommendation.

    ``cells``: dicts with ``key``, ``model``, ``augmentation``, ``estimates`` and ``accuracy``
    (``{(shift, severity): acc}`` from the store). ``families``: ranked families (``rank_families``).
    ``matches``: the nearest ``(shift, severity)`` sets. ``nearest_distance``: distance of the nearest set.
    ``augmentation_families``: augmentation name -> family (from the registry) for the suggestions.
    """
    ranked = []
    for cell in cells:
        primary = primary_estimate(cell["estimates"])
        if primary is None:
            continue
        ranked.append({"key": cell["key"], "model": cell["model"], "augmentation": cell["augmentation"],
                       "estimator": primary[0], "estimate": primary[1], "spread": _spread(cell["estimates"]),
                       "matched_accuracy": matched_accuracy(cell["accuracy"], matches)})
    if not ranked:
        return {"cells": [], "reason": "no trained cell has an estimate", "confidence": "none", "augmentations": []}
    best = max(r["estimate"] for r in ranked)
    # Ties: within half the typical disagreement between estimators, but never more than 5 points.
    tolerance = min(0.05, max(0.02, float(np.median([r["spread"] for r in ranked])) / 2))
    tied = [r for r in ranked if r["estimate"] >= best - tolerance]
    tied.sort(key=lambda r: (-(r["matched_accuracy"] if r["matched_accuracy"] is not None else -1), -r["estimate"]))
    choice = tied[0]
    confidence = "high"
    if choice["spread"] > 0.15 or nearest_distance > 3.0:
        confidence = "low"
    elif choice["spread"] > 0.07 or nearest_distance > 1.5:
        confidence = "medium"
    top_families = likely_families(families)
    reason = (f"highest estimated target accuracy ({choice['estimate']:.1%} by {choice['estimator']})"
              + (f"; among {len(tied)} cells within {tolerance * 100:.0f} points it has the best accuracy on the matching "
                 f"shifts ({choice['matched_accuracy']:.1%})" if len(tied) > 1 and choice["matched_accuracy"] is not None
                 else "")
              + (f"; the target looks like {', '.join(top_families)}" if top_families else ""))
    return {
        "cells": [{k: r[k] for k in ("key", "model", "augmentation", "estimate", "estimator", "matched_accuracy")}
                  for r in tied],
        "choice": choice["key"],
        "reason": reason,
        "confidence": confidence,
        "augmentations": suggest_augmentations(cells, matches, top_families, augmentation_families or {}),
    }


def likely_families(families: Sequence[Mapping[str, Any]], limit: int = 3) -> list[str]:
    """Up to *limit* shift families the target plausibly contains (not ``clean``).

    None when clean ranks first; otherwise the first family, and the others that have a real share
    of the target's images or a score close to the best.
    """
    if not families or families[0]["family"] == "clean":
        return []  # the target is closest to clean validation data overall
    best = float(families[0]["score"])
    out = []
    for f in families:
        if f["family"] == "clean":
            continue
        if not out or float(f["share"]) >= 0.15 or float(f["score"]) >= best - 0.25:
            out.append(str(f["family"]))
    return out[:limit]


def suggest_augmentations(cells: Sequence[Mapping[str, Any]], matches: Sequence[tuple[str, int]],
                          top_families: Sequence[str], augmentation_families: Mapping[str, str]) -> list[dict[str, Any]]:
    """Augmentations that helped most on the matching shifts in this run, plus untried registered ones.

    Gain = the augmentation's mean accuracy on the matching sets (over its cells) minus that of the
    cells trained without augmentation (``none``), when the run has such a baseline.
    """
    by_aug: dict[str, list[float]] = {}
    for cell in cells:
        acc = matched_accuracy(cell["accuracy"], matches)
        if acc is not None:
            by_aug.setdefault(cell["augmentation"], []).append(acc)
    baseline = float(np.mean(by_aug["none"])) if "none" in by_aug else None
    out: list[dict[str, Any]] = []
    for aug, accs in sorted(by_aug.items(), key=lambda kv: -float(np.mean(kv[1]))):
        if aug == "none":
            continue
        mean = float(np.mean(accs))
        out.append({"augmentation": aug, "matched_accuracy": mean,
                    "gain_over_none": None if baseline is None else mean - baseline, "tried": True})
    # every augmentation name of every tried chain ("simple(rotation=0)+mixup" -> simple, mixup); "none" too
    tried = {NONE} | {name for aug in by_aug for name in AugmentationChain.from_label(aug).names}
    for name, family in sorted(augmentation_families.items()):
        if name in tried:
            continue
        if any(fam and (fam in family or family in fam) for fam in top_families):
            out.append({"augmentation": name, "family": family, "matched_accuracy": None,
                        "gain_over_none": None, "tried": False})
    return out[:8]
