"""ops.stain: another lab's stain changes colour, not structure; deposits only darken."""

from __future__ import annotations

import numpy as np

from robustbench_cells.ops import stain
from robustbench_cells.ops.color import rgb_to_hed

RNG = np.random.default_rng(0)
X = RNG.integers(60, 250, (6, 32, 32, 3), dtype=np.uint8)


def test_stain_shift_identity_and_direction():
    same = stain.stain_shift(X, (1.0, 1.0, 0.0), np.random.default_rng(0))
    assert np.abs(same.astype(int) - X).max() <= 1
    shifted = stain.stain_shift(X, (1.5, 0.6, 0.0), np.random.default_rng(0))
    assert rgb_to_hed(shifted)[..., 0].mean() > rgb_to_hed(X)[..., 0].mean()


def test_stain_shift_jitter_differs_per_image():
    batch = np.repeat(X[:1], 4, axis=0)
    out = stain.stain_shift(batch, (1.2, 0.9, 0.1), np.random.default_rng(0))
    assert len({o.tobytes() for o in out}) == 4


def test_stain_deposit_only_darkens_and_adds_spots():
    white = np.full((4, 48, 48, 3), 240, np.uint8)
    out = stain.stain_deposit(white, (6, 2.0), np.random.default_rng(0))
    assert (out <= white).all()
    assert ((white - out).max(axis=-1) > 60).any(axis=(1, 2)).all()  # every image got a dark blotch
    # violet: green absorbs most
    spot = out.reshape(-1, 3)[(white - out).reshape(-1, 3).max(axis=1) > 60]
    assert (spot[:, 1] <= spot[:, 0]).all() and (spot[:, 1] <= spot[:, 2]).all()
