"""Scoring of predicted probabilities: accuracy, balanced accuracy, per-class, confidence, ECE."""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_cells.bench.scoring import expected_calibration_error, score_probabilities


def test_hand_computed_scores():
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.6, 0.4, 0.0], [0.3, 0.7, 0.0]])
    labels = np.array([0, 1, 1, 1])
    s = score_probabilities(probs, labels, 3)
    assert s.accuracy == pytest.approx(0.75)
    # class 0: 1/1, class 1: 2/3, class 2 absent -> balanced = mean(1, 2/3)
    assert s.per_class == [pytest.approx(1.0), pytest.approx(2 / 3), None]
    assert s.balanced_accuracy == pytest.approx((1 + 2 / 3) / 2)
    assert s.mean_confidence == pytest.approx((0.9 + 0.8 + 0.6 + 0.7) / 4)
    assert s.n == 4
    # confidences 0.9, 0.8 (right), 0.6 (wrong), 0.7 (right) fall in 4 bins of their own
    assert s.ece == pytest.approx((0.1 + 0.2 + 0.6 + 0.3) / 4)


def test_the_result_is_the_stores_row():
    from robustbench_cells.bench.store import Score

    row = score_probabilities(np.eye(2), np.array([0, 1]), cell_key="k", split="val", shift="blur", severity=3)
    assert isinstance(row, Score)
    assert (row.cell_key, row.split, row.shift, row.severity, row.accuracy) == ("k", "val", "blur", 3, 1.0)
    clean = score_probabilities(np.eye(2), np.array([0, 1]))
    assert (clean.cell_key, clean.split, clean.shift, clean.severity) == ("", "", "clean", 0)


def test_ece_matches_the_definition():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0, 1, 1000)
    correct = rng.random(1000) < conf ** 2
    expected = 0.0
    for b in range(15):
        lo, hi = b / 15, (b + 1) / 15
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            expected += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    assert expected_calibration_error(conf, correct) == pytest.approx(expected)


def test_perfect_calibration_and_overconfidence():
    labels = np.array([0, 1] * 50)
    onehot = np.eye(2)[labels]
    assert score_probabilities(onehot, labels).ece == pytest.approx(0.0)
    wrong_but_sure = np.eye(2)[1 - labels]
    s = score_probabilities(wrong_but_sure, labels)
    assert s.accuracy == 0.0 and s.ece == pytest.approx(1.0) and s.mean_confidence == pytest.approx(1.0)


def test_empty_set_and_bad_shapes():
    s = score_probabilities(np.zeros((0, 8)), np.zeros(0, dtype=int))
    assert s.n == 0 and s.per_class == [None] * 8 and s.accuracy == 0.0 and s.ece == 0.0
    with pytest.raises(ValueError, match=r"probs must be \(N, C\) with N = len\(labels\); got \(3, 8\) for \(4,\)"):
        score_probabilities(np.zeros((3, 8)), np.zeros(4, dtype=int))
