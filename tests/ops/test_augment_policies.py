"""ops/augmix: the op table, AugMix and RandAugment."""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_cells.ops import augmix as am
from robustbench_cells.ops.affine import compose_affine, warp_affine_batch


def _images(n=12, size=32, seed=0):
    return np.random.default_rng(seed).integers(30, 220, (n, size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("op", am.RANDAUGMENT_OPS, ids=lambda o: o.__name__)
def test_every_op_keeps_shape_and_dtype(op):
    x = _images()
    before = x.copy()
    out = op(x, np.full(len(x), 0.7), np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(x, before)


def test_pixel_ops_do_what_they_say():
    x = _images(4)
    rng = np.random.default_rng(0)
    ac = am.autocontrast(x, None, rng).reshape(4, -1, 3)
    assert (ac.min(axis=1) == 0).all() and (ac.max(axis=1) == 255).all()
    eq = am.equalize(x, None, rng)
    assert abs(eq.mean() - 127.5) < 6  # equalised histograms are flat
    post = am.posterize(x, np.ones(4), rng)
    assert (post & 0x0F == 0).all()  # level 1 keeps 4 bits
    sol = am.solarize(x, np.full(4, 0.5), rng)
    np.testing.assert_array_equal(sol, np.where(x >= 128, 255 - x, x))


def test_composed_warps_equal_sequential_warps():
    x = _images(3, size=48)
    m1 = am.rotate_matrix((48, 48), np.full(3, 0.5), np.random.default_rng(1))
    m2 = am.translate_x_matrix((48, 48), np.full(3, 0.2), np.random.default_rng(2))
    one = warp_affine_batch(x, compose_affine(m2, m1))
    two = warp_affine_batch(warp_affine_batch(x, m1), m2)
    inner = (slice(None), slice(14, 34), slice(14, 34))
    assert np.abs(one[inner].astype(int) - two[inner].astype(int)).mean() < 12  # up to interpolation


def test_augmix_is_per_image_and_seeded():
    x = np.repeat(_images(1), 10, axis=0)
    a = am.augmix(x, np.random.default_rng(0))
    assert len({img.tobytes() for img in a}) == 10  # per-image chains, not one chain for the batch
    np.testing.assert_array_equal(a, am.augmix(x, np.random.default_rng(0)))
    assert (a != am.augmix(x, np.random.default_rng(1))).any()


def test_augmix_stays_close_to_the_original():
    x = _images(16)
    a = am.augmix(x, np.random.default_rng(0), severity=1, width=3, depth=1)
    # Mixed with the original by a Beta(1,1) weight: on average clearly related to the input.
    corr = np.corrcoef(a.reshape(16, -1).astype(float).ravel(), x.reshape(16, -1).astype(float).ravel())[0, 1]
    assert corr > 0.3


def test_randaugment_zero_magnitude_changes_little():
    x = _images(8)
    out = am.randaugment(x, np.random.default_rng(0), num_ops=2, magnitude=0, magnitude_std=0)
    assert out.shape == x.shape
    # Only autocontrast/equalize act at magnitude 0; everything else is the identity.
    unchanged = (out == x).all(axis=(1, 2, 3))
    assert unchanged.any()
    assert am.randaugment(x, np.random.default_rng(0), num_ops=0).tobytes() == x.tobytes()
