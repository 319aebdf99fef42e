"""Parts of an explain result computed from its per-cell rows: intervals on every estimate with the
run's default estimator and the evidence-based choice, what each adapter is expected to gain over
its base cell, and (with labels) each estimator's error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robustbench_cells.explain.estimate import ESTIMATORS


def add_intervals(result: dict[str, Any], calib: dict[str, Any] | None, cov: dict[str, Any]) -> None:
    """Intervals on every estimate, the run's default estimator and the lower-bound choice, into *result*.

    *calib* is the run's calibration (:meth:`.heldout.HeldOutCalibration.calibrate`), *cov* the
    target's coverage (:func:`.coverage.coverage`)."""
    from robustbench_cells.explain.intervals import best_estimator, choose_cell, interval

    stats = calib["estimators"] if calib else {}
    default = best_estimator(stats) if stats else None
    result["calibration"] = calib
    result["default_estimator"] = default
    for c in result["cells"]:
        c["intervals"] = {name: interval(v, stats.get(name), cov["scale"]) for name, v in c["estimates"].items()}
    pick = choose_cell(result["cells"], default, cov["status"])
    rec = result["recommendation"]
    if pick["choice"] is not None:
        # The evidence-based choice replaces the fixed-order one; the old reason stays as context.
        rec.update(choice=pick["choice"], estimator=default, lower_bound=pick["lower_bound"],
                   upper_bound=pick["upper_bound"])
    rec["reason"] = pick["reason"] if pick["choice"] is not None else pick["reason"] + "; " + rec.get("reason", "")
    rec["supported"] = pick["supported"]
    chosen = next((c for c in result["cells"] if c["key"] == rec.get("choice")), None)
    # "cell + adapter": an adapted cell is submitted as its base model run through the chain at test time
    rec["adapter"] = chosen["adapter"] if chosen else None
    if chosen and chosen["adapter"] != "none":
        rec["reason"] += f"; submit the base cell's model with the test-time adapter chain {chosen['adapter']}"
    if cov["status"] == "outside":
        rec["confidence"] = "none"
    elif cov["status"] == "edge" and rec.get("confidence") == "high":
        rec["confidence"] = "medium"


def adapter_effects(cells: list[dict[str, Any]], estimator: str | None) -> list[dict[str, Any]]:
    """Per adapted cell: its estimate and interval beside its base cell's, and the expected gain.

    What a user needs before submitting ``bn_adapt``: is adapting expected to help on THIS target?
    ``helps`` is ``True`` when the adapted cell's lower bound beats the base cell's estimate,
    ``False`` when its upper bound is below it, ``None`` (can't tell) in between."""
    if estimator is None:
        return []
    by_key = {c["key"]: c for c in cells}
    out = []
    for c in cells:
        base = by_key.get(c.get("base") or "")
        est, base_est = c["estimates"].get(estimator), base["estimates"].get(estimator) if base else None
        if base is None or est is None or base_est is None:
            continue
        iv = c["intervals"].get(estimator)
        helps = None if iv is None else (True if iv[0] > base_est else False if iv[1] < base_est else None)
        row = {"key": c["key"], "base": base["key"], "base_cell": f"{base['model']}/{base['augmentation']}/{base['seed']}",
               "adapter": c["adapter"], "estimate": est, "base_estimate": base_est, "gain": est - base_est,
               "interval": iv, "helps": helps}
        if c.get("true_accuracy") is not None and base.get("true_accuracy") is not None:
            row["true_gain"] = c["true_accuracy"] - base["true_accuracy"]
        out.append(row)
    return sorted(out, key=lambda r: -r["gain"])


def estimator_errors(cells: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per estimator over cells: mean absolute error (points of accuracy x 100) and Spearman with the truth."""
    from robustbench_cells.explain.estimate import spearman

    out = {}
    labelled = [c for c in cells if c.get("true_accuracy") is not None]
    for name in ESTIMATORS:
        pairs = [(c["estimates"][name], c["true_accuracy"]) for c in labelled if c["estimates"].get(name) is not None]
        if not pairs:
            out[name] = {"mae": None, "spearman": None}
            continue
        est, true = np.array(pairs).T
        rho = spearman(est, true)
        out[name] = {"mae": float(np.mean(np.abs(est - true)) * 100), "spearman": None if np.isnan(rho) else rho}
    return out
