"""The per-target evidence figures of benchmarks/explain_eval.py (MAE, Spearman, interval coverage,
recommendation within 3 points, adapter verdicts), on a hand-written explain result."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "explain_eval", Path(__file__).parents[2] / "benchmarks" / "explain_eval.py")
explain_eval = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(explain_eval)


def _cell(key, est, true, iv, adapter="none"):
    return {"key": key, "model": f"m+{adapter}" if adapter != "none" else "m", "augmentation": key,
            "estimates": {"e": est}, "intervals": {"e": iv}, "true_accuracy": true, "adapter": adapter}


def _result(choice):
    cells = [_cell("a", 0.80, 0.90, (0.70, 0.95)), _cell("b", 0.60, 0.50, (0.55, 0.65)),
             _cell("c", 0.70, 0.88, (0.60, 0.80), adapter="bn_adapt")]
    return {"target": "t", "injected": ["real"], "default_estimator": "e", "coverage": {"status": "edge"},
            "cells": cells, "recommendation": {"choice": choice},
            "adapters": [{"helps": True, "true_gain": -0.02}, {"helps": None, "true_gain": 0.1}]}


def test_target_figures():
    f = explain_eval.target_figures(_result("c"))
    assert f["kind"] == "real" and f["cells"] == 3
    assert f["mae"] == pytest.approx((10 + 10 + 18) / 3)
    assert f["spearman"] == pytest.approx(1.0)
    assert f["interval_coverage"] == pytest.approx(1 / 3)  # only a's truth lies inside its interval
    assert f["best"] == "m/a" and f["chosen"] == "m+bn_adapt/c"
    assert f["within_3"]  # 88 vs 90: within 3 points
    assert (f["adapter_verdicts"], f["adapter_verdicts_right"]) == (1, 0)  # "helps" but the truth lost 2 points
    assert not explain_eval.target_figures(_result("b"))["within_3"]
    assert not explain_eval.target_figures(_result(None))["within_3"]
