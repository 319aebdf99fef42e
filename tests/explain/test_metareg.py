"""The meta-regression estimator: fitted on held-out sets, validated leave-one-group-out."""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_cells.explain.metareg import (BASE, FEATURES, MetaRegression, feature_row, held_out_errors,
                                               signals)


def _rows(n_groups=6, per_group=20, seed=0):
    """Rows where the truth is atc_ts minus a drop that grows with the distance to clean."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.3, 0.9, (n_groups * per_group, len(FEATURES)))
    dist = FEATURES.index("distance_clean")
    x[:, dist] = rng.uniform(0, 3, len(x))
    y = x[:, FEATURES.index(BASE)] - 0.1 * x[:, dist] + rng.normal(0, 0.005, len(x))
    groups = np.repeat([f"g{i}" for i in range(n_groups)], per_group)
    return x, y, groups


def test_learns_a_correction_atc_misses():
    x, y, groups = _rows()
    errors = held_out_errors(x, y, groups)
    assert len(errors) == len(y) and {g for g, _ in errors} == set(groups)
    mae = np.mean(np.abs([e for _, e in errors]))
    atc_mae = np.mean(np.abs(x[:, FEATURES.index(BASE)] - y))
    assert mae < 0.02 < atc_mae  # ATC alone is ~15 points off; the held-out correction is within 2
    model = MetaRegression.fit(x, y, groups)
    assert model.as_dict()["weights"]["distance_clean"] < 0


def test_heavy_penalty_falls_back_to_bias_corrected_atc():
    x, y, groups = _rows()
    y = x[:, FEATURES.index(BASE)] - 0.05  # nothing but a constant bias
    model = MetaRegression._solve(x, y, np.ones(len(y)), alpha=1e9)
    np.testing.assert_allclose(model.predict(x), np.clip(y, 0, 1), atol=1e-4)


def test_groups_weigh_the_same():
    x, _y, _g = _rows(n_groups=1, per_group=40)
    groups = np.array(["big"] * 30 + ["small"] * 10)
    # the big group's truth is atc_ts, the small one's 20 points below: equal weight -> the bias is halfway
    base = x[:, FEATURES.index(BASE)]
    y = np.where(groups == "big", base, base - 0.2)
    model = MetaRegression.fit(x, y, groups)
    assert model.intercept == pytest.approx(-0.1, abs=1e-6)  # unweighted rows would give -0.05


def test_too_few_groups_and_clipping():
    x, y, groups = _rows(n_groups=1)
    assert held_out_errors(x, y, groups) == []
    model = MetaRegression.fit(x, y, groups)  # one group: no inner choice, the default penalty
    assert model.alpha == 10.0
    far = x[:1].copy()
    far[0, FEATURES.index("distance_clean")] = 1e6
    assert model.predict(far)[0] == 0.0


def test_signals_and_feature_rows():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    sure = np.eye(3)[y] * 0.9 + 0.1 / 3
    wrong = np.eye(3)[(y + 1) % 3] * 0.9 + 0.1 / 3
    sig = signals([sure, sure], y, [1.0, 1.0], [sure, wrong], distance_clean=0.5, distance_nearest=0.2)
    assert sig[0]["val_accuracy"] == 1.0 and sig[0]["val_agreement"] == 1.0
    assert sig[0]["agreement"] == 0.0  # on the set the two cells never agree
    assert sig[1]["distance_clean"] == 0.5
    assert sig[0]["class_shift"] == 0.0  # same predicted-class mix as on validation
    collapsed = signals([sure], y, [1.0], [np.tile(sure[:1], (200, 1))], 0.0, 0.0)[0]
    assert collapsed["class_shift"] == pytest.approx(1 - np.mean(y == y[0]))  # everything predicted as one class
    row = feature_row({"atc_ts": 0.7, "doc_ts": None, "aol": 0.6}, sig[0])
    assert row.shape == (len(FEATURES),)
    assert row[FEATURES.index("doc_ts")] == 0.7  # a missing estimate stands in as atc_ts
    assert row[FEATURES.index("aol")] == 0.6
