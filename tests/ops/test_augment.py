"""ops/augment: the ``simple`` recipe, Gaussian noise and the warp/LUT primitives."""

from __future__ import annotations

import cv2
import numpy as np

from robustbench_cells.ops.augment import (affine_matrices, brightness_contrast, gaussian_noise, random_simple,
                                           warp_affine_batch, weighted_sum_uint8)


def _images(n=16, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_simple_with_zero_ranges_is_identity():
    x = _images()
    out = random_simple(x, np.random.default_rng(0), flip="none", rotation=0, zoom=(1, 1), translate=0,
                        contrast=0, brightness=0)
    np.testing.assert_array_equal(out, x)


def test_simple_flips_only_flip():
    x = _images()
    out = random_simple(x, np.random.default_rng(0), flip="horizontal", rotation=0, zoom=(1, 1), translate=0,
                        contrast=0, brightness=0)
    flipped = (out == x[:, :, ::-1]).all(axis=(1, 2, 3))
    same = (out == x).all(axis=(1, 2, 3))
    assert (flipped | same).all() and flipped.any() and same.any()  # each image flips with p=1/2


def test_simple_parameters_are_per_image_and_seeded():
    x = np.repeat(_images(1), 12, axis=0)
    a = random_simple(x, np.random.default_rng(1))
    assert len({img.tobytes() for img in a}) == 12  # same input, 12 different outputs
    np.testing.assert_array_equal(a, random_simple(x, np.random.default_rng(1)))
    assert a.dtype == np.uint8 and a.shape == x.shape


def test_brightness_contrast_matches_formula():
    x = _images(4)
    b = np.array([0.0, 0.1, -0.1, 0.0], np.float32)
    c = np.array([1.0, 1.0, 1.0, 1.5], np.float32)
    out = brightness_contrast(x, b, c).astype(np.float32)
    mean = x.reshape(4, -1).mean(axis=1)
    expect = np.clip(np.rint((x - mean[:, None, None, None]) * c[:, None, None, None] + mean[:, None, None, None]
                             + b[:, None, None, None] * 255), 0, 255)
    np.testing.assert_allclose(out, expect, atol=1)


def test_affine_matrices_match_cv2_rotation():
    m = affine_matrices((32, 32), angle_deg=np.array([30.0]), zoom=np.array([1.2]))
    ref = cv2.getRotationMatrix2D((15.5, 15.5), -30.0, 1.2)  # cv2's angle is counter-clockwise
    np.testing.assert_allclose(m[0], ref, atol=1e-4)
    x = _images(1)
    np.testing.assert_array_equal(warp_affine_batch(x, affine_matrices((32, 32), n=1)), x)  # identity: exact copy


def test_weighted_sum_uint8():
    x = _images(3)
    y = _images(3, seed=1)
    out = weighted_sum_uint8([x, y, x], np.array([[0.5, 0.5, 0.0], [1, 0, 0], [0.2, 0.3, 0.5]]))
    expect = np.clip(np.rint(np.array([0.5 * x[0] + 0.5 * y[0], x[1], 0.7 * x[2] + 0.3 * y[2]])), 0, 255)
    np.testing.assert_allclose(out, expect, atol=1)


def test_gaussian_noise_sigma_on_0_255_scale():
    x = np.full((4, 64, 64, 3), 128, np.uint8)
    out = gaussian_noise(x, np.random.default_rng(0), sigma=(10.0, 10.0))
    std = (out.astype(np.float32) - 128).std(axis=(1, 2, 3))
    np.testing.assert_allclose(std, 10.0, rtol=0.05)
    none = gaussian_noise(x, np.random.default_rng(0), sigma=(10.0, 10.0), p=0.0)
    np.testing.assert_array_equal(none, x)
