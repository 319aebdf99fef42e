"""Temperature scaling, agreement-on-the-line, coverage and the leave-one-family-out intervals."""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_cells.explain.agreement import aol_estimates
from robustbench_cells.explain.calibration import apply_temperature, fit_temperature
from robustbench_cells.explain.coverage import coverage
from robustbench_cells.explain.fingerprint import Reference
from robustbench_cells.explain.intervals import best_estimator, choose_cell, interval, summarize_errors


def _overconfident(n=2000, acc=0.6, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    pred = np.where(rng.random(n) < acc, y, (y + 1) % 4)
    logits = rng.normal(0, 1, (n, 4))
    logits[np.arange(n), pred] += 6.0  # always very sure, right only 60 % of the time
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True), y


def test_temperature_softens_an_overconfident_model():
    p, y = _overconfident()
    t = fit_temperature(p, y)
    assert t > 1.5
    calibrated = apply_temperature(p, t)
    assert abs(calibrated.max(1).mean() - 0.6) < abs(p.max(1).mean() - 0.6)
    np.testing.assert_allclose(apply_temperature(p, 1.0), p, atol=1e-9)


def test_agreement_on_the_line_recovers_a_shared_drop():
    rng = np.random.default_rng(1)
    n, y = 3000, rng.integers(0, 5, 3000)

    def model(acc, seed):
        r = np.random.default_rng(seed)
        pred = np.where(r.random(n) < acc, y, r.integers(0, 5, n))
        return np.eye(5)[pred]

    accs = [0.95, 0.85, 0.75, 0.65]
    val = [model(a, i) for i, a in enumerate(accs)]
    target = [model(a - 0.2, 10 + i) for i, a in enumerate(accs)]
    est = aol_estimates(val, y, target)
    true = [float(np.mean(t.argmax(1) == y)) for t in target]
    assert np.mean(np.abs(np.array(est) - true)) < 0.08
    assert aol_estimates(val[:2], y, target[:2]) == [None, None]  # one pair: no line


def test_intervals_from_held_out_errors():
    errors = {"good": [("a", 0.01), ("a", -0.02), ("b", 0.02), ("b", 0.0)],
              "bad": [("a", 0.3), ("a", 0.25), ("b", -0.2), ("b", -0.3)],
              "lonely": [("a", 0.0)]}
    s = summarize_errors(errors)
    assert best_estimator(s) == "good"  # "lonely" was held out on one family only
    assert s["bad"]["mae"] == pytest.approx(26.25)
    # Nested check: the "bad" errors of one family never fall in the other family's interval.
    assert s["bad"]["interval_coverage"] == 0.0
    low, high = interval(0.7, s["good"], 1.0)
    assert low < 0.7 < high
    wide = interval(0.7, s["good"], 3.0)
    assert wide[0] < low and wide[1] > high
    assert interval(None, s["good"], 1.0) is None


def test_choice_by_lower_bound_and_unsupported_outside():
    cells = [{"key": "a", "model": "m", "augmentation": "x", "intervals": {"e": (0.5, 0.9)}},
             {"key": "b", "model": "m", "augmentation": "y", "intervals": {"e": (0.6, 0.7)}}]
    pick = choose_cell(cells, "e", "inside")
    assert pick["choice"] == "b" and pick["supported"] and "lower bound" in pick["reason"]
    out = choose_cell(cells, "e", "outside")
    assert not out["supported"] and out["reason"].startswith("no choice is supported")
    assert choose_cell(cells, None, "inside")["choice"] is None
    # a far target: every lower bound clipped at 0, so the estimate decides
    far = [{"key": k, "model": "m", "augmentation": k, "estimates": {"e": est}, "intervals": {"e": (0.0, 1.0)}}
           for k, est in (("a", 0.3), ("b", 0.5), ("c", 0.4))]
    assert choose_cell(far, "e", "outside")["choice"] == "b"


def test_coverage_inside_and_outside():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, (150, 6))
    sets = {("clean", 0): base, ("a", 1): base + [2, 0, 0, 0, 0, 0], ("b", 1): base + [0, 2, 0, 0, 0, 0]}
    ref = Reference.from_stats(base)
    fams = {"a": "A", "b": "B"}
    near = coverage(rng.normal(0, 1, (80, 6)) + [2, 0, 0, 0, 0, 0], sets, fams, ref)
    assert near["status"] == "inside" and near["uncovered_share"] < 0.25
    far = coverage(rng.normal(0, 1, (80, 6)) + [0, 0, 12, 0, 0, 0], sets, fams, ref)
    assert far["status"] == "outside" and far["scale"] > 2 and far["uncovered_share"] > 0.8
