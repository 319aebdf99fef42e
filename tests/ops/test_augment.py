"""ops/augment: the ``simple``, ``stain`` and ``lab`` recipes and the blend/contrast primitives."""

from __future__ import annotations

import numpy as np

from robustbench_cells.ops.augment import brightness_contrast, random_lab, random_simple, random_stain, weighted_sum_uint8


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


def test_weighted_sum_uint8():
    x = _images(3)
    y = _images(3, seed=1)
    out = weighted_sum_uint8([x, y, x], np.array([[0.5, 0.5, 0.0], [1, 0, 0], [0.2, 0.3, 0.5]]))
    expect = np.clip(np.rint(np.array([0.5 * x[0] + 0.5 * y[0], x[1], 0.7 * x[2] + 0.3 * y[2]])), 0, 255)
    np.testing.assert_allclose(out, expect, atol=1)


def test_stain_with_zero_amounts_is_a_copy_and_draws_nothing():
    x = _images()
    rng = np.random.default_rng(0)
    out = random_stain(x, rng, hed_sigma=0, hed_bias=0, hue=0, saturation=0, value=0)
    np.testing.assert_array_equal(out, x)
    assert out is not x
    assert rng.integers(2**62) == np.random.default_rng(0).integers(2**62)  # the generator did not move


def test_stain_spaces_are_per_image_and_seeded():
    x = np.repeat(_images(1), 8, axis=0)
    for space in ("hed", "hsv", "both"):
        a = random_stain(x, np.random.default_rng(3), space=space)
        assert len({img.tobytes() for img in a}) == 8, space
        np.testing.assert_array_equal(a, random_stain(x, np.random.default_rng(3), space=space))
    hed_only = random_stain(x, np.random.default_rng(3), space="hed")
    assert not np.array_equal(hed_only, random_stain(x, np.random.default_rng(3), space="both"))


def test_lab_applies_with_probability_p():
    x = _images(12)
    np.testing.assert_array_equal(random_lab(x, np.random.default_rng(0), p=0.0), x)
    out = random_lab(x, np.random.default_rng(0), strength=(1.0, 1.0), p=1.0)
    assert out.shape == x.shape and out.dtype == np.uint8
    assert (out != x).any(axis=(1, 2, 3)).mean() > 0.5
