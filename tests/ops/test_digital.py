"""ops.digital: JPEG is a real baseline JPEG round trip; pixelate makes blocks; downscale loses detail."""

from __future__ import annotations

import cv2
import numpy as np

from robustbench_cells.ops import digital

RNG = np.random.default_rng(0)
X = cv2.GaussianBlur(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8), (0, 0), 2)[None].repeat(3, axis=0)


def test_jpeg_is_a_real_jpeg_round_trip():
    out = digital.jpeg_compression(X, 20, RNG)
    # another libjpeg build (OpenCV's) at the same quality: same tables, so nearly the same pixels
    bgr = cv2.imdecode(cv2.imencode(".jpg", X[0][..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 20])[1], cv2.IMREAD_COLOR)
    assert np.abs(out[0].astype(int) - bgr[..., ::-1]).mean() < 0.5
    # ...and the output is a fixed point up to rounding: re-encoding a decoded JPEG barely moves it
    assert np.abs(digital.jpeg_compression(out, 20, RNG).astype(int) - out).mean() < 1.0
    worse = np.abs(digital.jpeg_compression(X, 5, RNG).astype(int) - X).mean()
    assert worse > np.abs(out.astype(int) - X).mean() > 0


def test_jpeg_keeps_colours_and_odd_sizes():
    red = np.zeros((2, 29, 53, 3), np.uint8)
    red[..., 0] = 200  # a wrong channel order would turn this blue
    out = digital.jpeg_compression(red, 50, RNG)
    assert out.shape == red.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - red).max() <= 3
    strided = np.ascontiguousarray(np.concatenate([X, X], axis=1))[:, ::2]  # a non-contiguous view
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(digital.jpeg_compression(strided, 30, RNG),
                                  digital.jpeg_compression(np.ascontiguousarray(strided), 30, RNG))


def test_pixelate_makes_constant_blocks():
    out = digital.pixelate(X, 0.25, RNG)  # 64 -> 16 px: 4x4 blocks
    blocks = out[0].reshape(16, 4, 16, 4, 3)
    assert (blocks == blocks[:, :1, :, :1]).all()


def test_downscale_is_smooth_not_blocky():
    out = digital.downscale(X, 0.5, RNG)
    assert out.shape == X.shape
    assert 0 < np.abs(out.astype(int) - X).mean() < 20
    flat = np.full((1, 30, 30, 3), 90, np.uint8)
    assert np.array_equal(digital.downscale(flat, 0.3, RNG), flat)
