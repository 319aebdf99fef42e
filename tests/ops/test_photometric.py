"""ops.photometric: each map does exactly what its name says on known colours."""

from __future__ import annotations

import numpy as np

from robustbench_cells.ops import photometric as ph

RNG = np.random.default_rng(0)
X = RNG.integers(30, 220, (4, 20, 20, 3), dtype=np.uint8)


def test_brightness_adds_and_clips():
    assert np.array_equal(ph.brightness(X, 0.2, RNG), np.clip(X.astype(int) + 51, 0, 255))  # 0.2 * 255 = 51
    assert ph.brightness(np.full((1, 4, 4, 3), 250, np.uint8), 0.2, RNG).max() == 255


def test_contrast_scales_around_each_image_mean():
    out = ph.contrast(X, 0.5, RNG).astype(float)
    for img, res in zip(X.astype(float), out):
        assert abs(res.mean() - img.mean()) < 1
        assert abs(res.std() - 0.5 * img.std()) < 1


def test_gamma_keeps_black_and_white_and_darkens_midtones():
    x = np.array([[[[0, 128, 255]]]], np.uint8)
    out = ph.gamma(x, 2.0, RNG)
    assert out[0, 0, 0, 0] == 0 and out[0, 0, 0, 2] == 255 and out[0, 0, 0, 1] < 128


def test_white_balance_gains_per_channel():
    grey = np.full((1, 4, 4, 3), 100, np.uint8)
    out = ph.white_balance(grey, (1.2, 1.0, 0.5), RNG)
    assert out[0, 0, 0].tolist() == [120, 100, 50]


def test_hue_shift_and_saturation():
    red = np.zeros((1, 4, 4, 3), np.uint8)
    red[..., 0] = 200
    cyanish = ph.hue_shift(red, 180, RNG)[0, 0, 0]
    assert cyanish[0] < 10 and cyanish[1] > 190 and cyanish[2] > 190
    pale = np.full((1, 4, 4, 3), (200, 150, 150), np.uint8)
    assert np.abs(ph.saturate(pale, (1.0, 0.0), RNG).astype(int) - pale).max() <= 2
    vivid = ph.saturate(pale, (2.0, 0.0), RNG)[0, 0, 0].astype(int)
    assert vivid[0] - vivid[1] > 50 - 2 + 40  # the red-green gap roughly doubles
