"""ops.microscopy: bubbles, dust, uneven illumination, tilted focus behave physically."""

from __future__ import annotations

import numpy as np

from robustbench_cells.ops import microscopy as mi

FLAT = np.full((4, 64, 64, 3), 200, np.uint8)


def test_spot_density_range_and_count():
    d = mi.spot_density(3, 40, 40, 5, 1.5, np.random.default_rng(0))
    assert d.shape == (3, 40, 40) and d.min() >= 0 and d.max() <= 1
    assert (d.max(axis=(1, 2)) > 0.5).all()


def test_dust_only_darkens():
    out = mi.dust(FLAT, (20, 0.8), np.random.default_rng(0))
    assert (out <= FLAT).all() and (out < FLAT).any()


def test_bubble_has_dark_rim_and_bright_interior():
    out = mi.bubble(FLAT, (1, 20), np.random.default_rng(0)).astype(int)
    assert (out < 200 - 40).any(axis=(1, 2, 3)).all()  # a dark rim in each image
    assert (out > 205).any(axis=(1, 2, 3)).all()  # a brighter inside


def test_vignetting_darkens_edges_more_than_centre():
    out = mi.vignetting(FLAT, 0.5, np.random.default_rng(0)).astype(float)
    assert out[:, 24:40, 24:40].mean() > out[:, :6, :6].mean() + 20
    assert (out <= FLAT).all()


def test_out_of_focus_blurs_one_side_only():
    checker = ((np.indices((64, 64)).sum(0) % 2) * 255).astype(np.uint8)
    x = np.repeat(checker[None, ..., None], 3, axis=-1).repeat(8, axis=0)
    out = mi.out_of_focus(x, 3.0, np.random.default_rng(0)).astype(int)
    diff = np.abs(out - x).mean(axis=(-1))
    for d in diff:  # per image: one quarter barely touched, the opposite one heavily blurred
        quads = [d[:32, :32].mean(), d[:32, 32:].mean(), d[32:, :32].mean(), d[32:, 32:].mean()]
        assert max(quads) > 3 * min(quads) + 10
