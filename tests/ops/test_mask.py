"""cell_mask: soft foreground of the white cell, not the red cells."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from robustbench_cells.ops.mask import cell_mask

BEIGE, PINK, PURPLE, LILAC = (245, 222, 200), (215, 170, 170), (95, 50, 140), (200, 180, 220)


def _smear(seed: int = 0, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A toy smear: beige plasma, pink red cells, a lilac cell with a purple nucleus in the middle."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size, 3), BEIGE, np.uint8)
    for _ in range(12):
        c = tuple(int(v) for v in rng.integers(0, size, 2))
        if np.hypot(c[0] - size / 2, c[1] - size / 2) > 0.35 * size:
            cv2.circle(img, c, size // 10, PINK, -1)
    truth = np.zeros((size, size), np.uint8)
    cv2.circle(truth, (size // 2, size // 2), size // 6, 1, -1)
    cv2.circle(img, (size // 2, size // 2), size // 6, LILAC, -1)
    cv2.circle(img, (size // 2 - 2, size // 2), size // 10, PURPLE, -1)
    return img, truth.astype(bool)


def test_mask_shape_range_and_soft_edges():
    img, _ = _smear()
    m = cell_mask(np.stack([img, img]))
    assert m.shape == (2, 96, 96) and m.dtype == np.float32
    assert 0.0 <= m.min() and m.max() <= 1.0
    assert ((m > 0.05) & (m < 0.95)).any()  # a soft edge, not a hard cut-out
    assert cell_mask(img).shape == (96, 96)  # single image in, single mask out


def test_mask_follows_the_white_cell_not_the_red_cells():
    for seed in range(3):
        img, truth = _smear(seed)
        m = cell_mask(img[None])[0] > 0.5
        iou = (m & truth).sum() / (m | truth).sum()
        assert iou > 0.85, f"seed {seed}: IoU {iou:.2f}"


def test_mask_adapts_to_a_colour_cast():
    img, truth = _smear(1)
    lavender = np.clip(img.astype(int) + [-25, 0, 25], 0, 255).astype(np.uint8)  # a bluish lab
    m = cell_mask(lavender[None])[0] > 0.5
    assert (m & truth).sum() / (m | truth).sum() > 0.8


def test_blank_image_gives_empty_mask_and_batch_is_per_image():
    img, _ = _smear()
    blank = np.full_like(img, 230)
    m = cell_mask(np.stack([blank, img]))
    assert m[0].max() == 0.0 and m[1].max() > 0.99
    np.testing.assert_array_equal(m[1], cell_mask(img[None])[0])


def test_mask_scales_with_image_size():
    img, truth = _smear(0, size=192)
    m = cell_mask(img[None])[0] > 0.5
    assert (m & truth).sum() / (m | truth).sum() > 0.85


@pytest.mark.pbc
def test_mask_on_real_pbc_cells(pbc_sample):
    masks = cell_mask(pbc_sample)
    x = pbc_sample.astype(np.float32)
    blue_excess = x[..., 2] - x[..., 1]
    inside = masks > 0.5
    frac = inside.mean(axis=(1, 2))
    found = frac > 0.005
    assert found.mean() > 0.95  # nearly every crop yields a cell
    ok = 0
    for i in np.flatnonzero(found):
        # The mask is where the stain is: its pixels are far bluer than those outside (red cells, plasma).
        ok += blue_excess[i][inside[i]].mean() - blue_excess[i][~inside[i]].mean() > 40
    assert ok / found.sum() > 0.95
    # Non-platelet crops are centred on the cell: the centre pixel is inside for most of them.
    centre = inside[:224, 48, 48]
    assert centre.mean() > 0.9
    assert frac[:224].max() < 0.6  # never the whole field of red cells


def test_cached_mask_equals_the_mask_and_is_reused_read_only():
    from robustbench_cells.ops.mask import cached_cell_mask

    smear = np.stack([_smear(0)[0], _smear(1)[0]])
    first = cached_cell_mask(smear)
    np.testing.assert_array_equal(first, cell_mask(smear))
    assert cached_cell_mask(smear.copy()) is first  # keyed on the pixels, not the array object
    assert not first.flags.writeable  # shared between callers: nobody may change it
    other = cached_cell_mask(smear[::-1].copy())
    np.testing.assert_array_equal(other, first[::-1])
