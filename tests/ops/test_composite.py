"""ops.composite: cells pasted onto random backgrounds, deterministically from the rng; the
``background`` augmentation and shift built on it."""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_cells.ops.composite import (background_shift, composite_backgrounds, random_background,
                                            random_background_crops)


def _batch(n=6, size=32):
    images = np.full((n, size, size, 3), (10, 200, 30), np.uint8)
    masks = np.zeros((n, size, size), np.float32)
    masks[:, 12:20, 12:20] = 1.0
    return images, masks


def _backgrounds():
    bgs = np.zeros((3, 40, 40, 3), np.uint8)
    bgs[0, ..., 0] = 255
    bgs[1, ..., 2] = 255
    bgs[2] = 128
    return bgs


def test_cell_kept_background_replaced():
    images, masks = _batch()
    out = composite_backgrounds(images, masks, _backgrounds(), np.random.default_rng(0), scale=(1, 1), max_offset=0)
    assert out.shape == images.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, 14:18, 14:18], images[:, 14:18, 14:18])
    corner = out[:, 0, 0]
    assert not (corner == (10, 200, 30)).all(axis=-1).any()
    assert {tuple(c) for c in corner} <= {(255, 0, 0), (0, 0, 255), (128, 128, 128)}


def test_deterministic_for_a_seed_and_random_across_images():
    images, masks = _batch(n=16)
    bgs = _backgrounds()
    a = composite_backgrounds(images, masks, bgs, np.random.default_rng(3))
    b = composite_backgrounds(images, masks, bgs, np.random.default_rng(3))
    c = composite_backgrounds(images, masks, bgs, np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    # Placement and scale differ per image: the cell's bounding boxes are not all the same.
    boxes = {tuple(np.argwhere((img == (10, 200, 30)).all(-1)).min(0)) for img in a}
    assert len(boxes) > 3


def test_empty_mask_gives_pure_background_and_scale_shrinks_cell():
    images, masks = _batch(n=2)
    masks[0] = 0
    out = composite_backgrounds(images, masks, _backgrounds(), np.random.default_rng(0), scale=(0.5, 0.5), max_offset=0)
    assert not (out[0] == (10, 200, 30)).all(-1).any()
    assert (out[1] == (10, 200, 30)).all(-1).sum() < 8 * 8


def test_background_crops_shape_and_bad_input():
    crops = random_background_crops(_backgrounds(), 5, (24, 20), np.random.default_rng(0))
    assert crops.shape == (5, 24, 20, 3) and crops.dtype == np.uint8
    images, masks = _batch()
    with pytest.raises(ValueError, match="masks"):
        composite_backgrounds(images, masks[:, :5], _backgrounds(), np.random.default_rng(0))


def _smears(n=6):
    """Beige plasma with a purple white cell in the middle (what ops.mask.cell_mask finds)."""
    x = np.full((n, 48, 48, 3), (245, 222, 200), np.uint8)
    x[:, 16:32, 16:32] = (95, 50, 140)
    return x


def test_background_augmentation_applies_with_probability_p():
    x = _smears()
    none = random_background(x, np.random.default_rng(0), _backgrounds(), p=0.0)
    np.testing.assert_array_equal(none, x)
    assert none is not x
    every = random_background(x, np.random.default_rng(0), _backgrounds(), p=1.0, scale=(1, 1), max_offset=0)
    assert {tuple(c) for c in every[:, 0, 0]} <= {(255, 0, 0), (0, 0, 255), (128, 128, 128)}  # corners: background
    np.testing.assert_array_equal(every[:, 20:28, 20:28], x[:, 20:28, 20:28])  # the cell stays where it was
    some = random_background(x, np.random.default_rng(0), _backgrounds(), p=0.5)
    replaced = (some[:, 0, 0] != x[:, 0, 0]).any(axis=-1)
    assert replaced.any() and not replaced.all()


def test_background_shift_blends_by_opacity():
    x = _smears()
    full = background_shift(x, (1.0, 0.0), np.random.default_rng(5), _backgrounds())
    half = background_shift(x, (0.5, 0.0), np.random.default_rng(5), _backgrounds())
    assert full.dtype == np.uint8 and full.shape == x.shape
    expect = np.rint(0.5 * x.astype(np.float32) + 0.5 * full.astype(np.float32))
    np.testing.assert_array_equal(half, expect.astype(np.uint8))  # same draws: the half-way blend
