"""Label-free accuracy estimators on synthetic probability arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_cells.explain.estimate import (
    all_estimates, atc_estimate, atc_threshold, composition_estimate, doc_estimate, shift_matched_estimate,
    spearman,
)
from robustbench_cells.explain.nearest import Candidate


def calibrated(n: int, acc: float, rng: np.random.Generator, classes: int = 8):
    """Probabilities of a model whose confidence is honest: right with probability = its confidence."""
    labels = rng.integers(0, classes, n)
    conf = np.clip(rng.normal(acc, 0.08, n), 1 / classes + 0.01, 0.999)
    correct = rng.random(n) < conf
    pred = np.where(correct, labels, (labels + rng.integers(1, classes, n)) % classes)
    proba = np.full((n, classes), 0.0)
    proba[:] = ((1 - conf) / (classes - 1))[:, None]
    proba[np.arange(n), pred] = conf
    return proba, labels


def test_threshold_reproduces_validation_accuracy():
    rng = np.random.default_rng(0)
    scores = rng.random(1000)
    correct = rng.random(1000) < 0.73
    t = atc_threshold(scores, correct)
    assert np.mean(scores > t) == pytest.approx(correct.mean(), abs=1e-3)
    assert np.mean(scores > atc_threshold(scores, np.ones(1000, bool))) == 1.0
    assert np.mean(scores > atc_threshold(scores, np.zeros(1000, bool))) == 0.0


def separable(n: int, conf_mean: float, rng: np.random.Generator, cut: float = 0.7, classes: int = 8):
    """A model that is right exactly when its confidence exceeds *cut*: ATC's ideal case."""
    labels = rng.integers(0, classes, n)
    conf = np.clip(rng.normal(conf_mean, 0.15, n), 1 / classes + 0.01, 0.999)
    pred = np.where(conf > cut, labels, (labels + 1) % classes)
    proba = np.repeat(((1 - conf) / (classes - 1))[:, None], classes, axis=1)
    proba[np.arange(n), pred] = conf
    return proba, labels


@pytest.mark.parametrize("conf_mean", [0.9, 0.7, 0.5])
def test_atc_is_exact_when_confidence_separates_right_from_wrong(conf_mean):
    rng = np.random.default_rng(1)
    val_p, val_y = separable(4000, 0.9, rng)
    tgt_p, tgt_y = separable(4000, conf_mean, rng)
    true = np.mean(tgt_p.argmax(1) == tgt_y)
    assert atc_estimate(val_p, val_y, tgt_p) == pytest.approx(true, abs=0.01)
    assert atc_estimate(val_p, val_y, tgt_p, "entropy") == pytest.approx(true, abs=0.01)


@pytest.mark.parametrize("target_acc", [0.9, 0.6, 0.35])
def test_doc_tracks_accuracy_of_a_calibrated_model(target_acc):
    rng = np.random.default_rng(1)
    val_p, val_y = calibrated(4000, 0.9, rng)
    tgt_p, tgt_y = calibrated(4000, target_acc, rng)
    true = np.mean(tgt_p.argmax(1) == tgt_y)
    assert doc_estimate(val_p, val_y, tgt_p) == pytest.approx(true, abs=0.04)
    # ATC over-reacts to a uniform confidence drop on a calibrated model (it assumes a fixed
    # score threshold separates right from wrong); it must still move the right way.
    if target_acc < 0.9:
        assert atc_estimate(val_p, val_y, tgt_p) < atc_estimate(val_p, val_y, val_p)


def test_atc_exact_on_validation_itself():
    rng = np.random.default_rng(2)
    val_p, val_y = calibrated(2000, 0.8, rng)
    assert atc_estimate(val_p, val_y, val_p) == pytest.approx(np.mean(val_p.argmax(1) == val_y), abs=1e-3)


def test_shift_matched_weights_nearest_sets():
    cands = [Candidate("blur", 3, "blur", 0.5, 0.6), Candidate("noise", 2, "noise", 1.0, 0.4),
             Candidate("clean", 0, "clean", 4.0, 0.0)]
    acc = {("blur", 3): 0.4, ("noise", 2): 0.7, ("clean", 0): 0.99}
    # k=2: weights 2 and 1 -> (0.8 + 0.7) / 3
    assert shift_matched_estimate(cands, acc, k=2) == pytest.approx(0.5)
    assert shift_matched_estimate(cands, acc, k=1) == pytest.approx(0.4)
    assert composition_estimate(cands, acc) == pytest.approx(0.6 * 0.4 + 0.4 * 0.7)
    # Sets the cell was not scored on are skipped; none at all gives None.
    assert shift_matched_estimate(cands, {("noise", 2): 0.7}, k=1) == pytest.approx(0.7)
    assert shift_matched_estimate(cands, {}) is None and composition_estimate(cands, {}) is None


def test_all_estimates_and_spearman():
    rng = np.random.default_rng(3)
    val_p, val_y = calibrated(500, 0.9, rng)
    tgt_p, _ = calibrated(500, 0.6, rng)
    est = all_estimates(val_p, val_y, tgt_p, [Candidate("clean", 0, "clean", 1.0, 1.0)], {("clean", 0): 0.9})
    assert set(est) == {"atc", "atc_ne", "doc", "shift_matched", "composition", "blend"}
    assert est["blend"] == pytest.approx((est["atc_ne"] + est["shift_matched"]) / 2)
    assert all(0 <= v <= 1 for v in est.values())
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_bad_probabilities_raise():
    with pytest.raises(ValueError):
        atc_estimate(np.zeros((0, 8)), np.zeros(0), np.ones((3, 8)) / 8)


def test_atc_matched_fits_threshold_on_nearest_scored_sets():
    from robustbench_cells.explain.estimate import atc_matched_estimate

    rng = np.random.default_rng(4)
    # Under the shift the model is right only when very confident (cut 0.9), on clean data from 0.7 on:
    # plain ATC (fitted on clean) over-estimates, ATC fitted on the matching shifted set does not.
    clean_p, clean_y = separable(3000, 0.9, rng, cut=0.7)
    shift_p, shift_y = separable(3000, 0.85, rng, cut=0.9)
    target_p, target_y = separable(3000, 0.85, rng, cut=0.9)
    true = np.mean(target_p.argmax(1) == target_y)
    cands = [Candidate("blur", 3, "blur", 0.2), Candidate("clean", 0, "clean", 2.0)]
    sets = {("blur", 3): (shift_p, shift_y), ("clean", 0): (clean_p, clean_y)}
    assert atc_matched_estimate(cands, sets, target_p, k=1) == pytest.approx(true, abs=0.02)
    assert atc_estimate(clean_p, clean_y, target_p) > true + 0.1
    assert atc_matched_estimate(cands, {}, target_p) is None
