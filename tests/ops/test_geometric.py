"""ops.geometric: rotations, flips, magnification and translation move content, never add black corners."""

from __future__ import annotations

import numpy as np

from robustbench_cells.ops import geometric as ge

RNG = np.random.default_rng(0)
X = RNG.integers(50, 255, (6, 32, 32, 3), dtype=np.uint8)


def test_flip_all_gives_one_of_three_flips():
    out = ge.flip(X, 1.0, np.random.default_rng(0))
    for img, res in zip(X, out):
        options = [img[:, ::-1], img[::-1], img[::-1, ::-1]]
        assert any(np.array_equal(res, o) for o in options)


def test_flip_fraction_zero_is_identity():
    assert np.array_equal(ge.flip(X, 0.0, np.random.default_rng(0)), X)


def test_rotation_by_90_matches_rot90_and_no_black_corners():
    sym = np.zeros((2, 33, 33, 3), np.uint8) + 200
    sym[:, 10:23, 5:28] = 50
    out = ge.rotation(sym, 90, np.random.default_rng(0))
    for res in out:
        assert any(np.array_equal(res, np.rot90(sym[0], k)) for k in (1, 3))
    assert ge.rotation(X, 30, np.random.default_rng(0)).min() >= 50  # reflection, not black fill


def test_scale_one_and_translation_zero_are_identity():
    assert np.array_equal(ge.scale(X, 1.0, RNG), X)
    assert np.array_equal(ge.translation(X, 0.0, RNG), X)


def test_translation_moves_content():
    img = np.zeros((1, 40, 40, 3), np.uint8)
    img[0, 18:22, 18:22] = 255
    out = ge.translation(img, 0.25, np.random.default_rng(0))
    ys, xs = np.nonzero(out[0, ..., 0] > 128)
    assert np.hypot(ys.mean() - 19.5, xs.mean() - 19.5) > 8
