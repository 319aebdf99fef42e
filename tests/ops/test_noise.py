"""ops.noise: the right amount of the right noise, drawn only from the generator passed in."""

from __future__ import annotations

import numpy as np

from robustbench_cells.ops import noise

GREY = np.full((8, 32, 32, 3), 128, np.uint8)


def test_gaussian_noise_has_the_requested_sigma():
    out = noise.gaussian_noise(GREY, 0.05, np.random.default_rng(0)).astype(float)
    assert abs(out.mean() - 128) < 0.5
    assert abs(out.std() - 0.05 * 255) < 0.5


def test_shot_noise_follows_poisson_scaling():
    white = np.full((8, 32, 32, 3), 255, np.uint8)
    photons = 100
    # std of Poisson(photons)/photons*255 at a white pixel; clipping at 255 halves the upper tail,
    # so compare the lower half: mean distance below 255 of a half-normal = std * sqrt(2/pi)
    out = noise.shot_noise(white, photons, np.random.default_rng(0)).astype(float)
    expected = 255 / np.sqrt(photons) * np.sqrt(2 / np.pi) / 2
    assert abs((255 - out).mean() - expected) < 0.1 * expected
    black = np.zeros_like(white)
    assert noise.shot_noise(black, photons, np.random.default_rng(0)).max() == 0  # no photons, no noise


def test_speckle_is_multiplicative():
    x = np.zeros_like(GREY)
    x[:, :, 16:] = 200
    out = noise.speckle_noise(x, 0.1, np.random.default_rng(0)).astype(float)
    assert out[:, :, :16].max() == 0
    assert abs(out[:, :, 16:].std() - 20) < 1


def test_impulse_noise_fraction_and_values():
    out = noise.impulse_noise(GREY, 0.1, np.random.default_rng(0))
    changed = out != 128
    assert abs(changed.mean() - 0.1) < 0.01
    assert set(np.unique(out[changed])) == {0, 255}


def test_generators_give_reproducible_and_distinct_draws():
    a = noise.gaussian_noise(GREY, 0.05, np.random.default_rng(1))
    b = noise.gaussian_noise(GREY, 0.05, np.random.default_rng(1))
    c = noise.gaussian_noise(GREY, 0.05, np.random.default_rng(2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_augmentation_noise_sigma_on_0_255_scale_and_p():
    x = np.full((4, 64, 64, 3), 128, np.uint8)
    out = noise.random_gaussian_noise(x, np.random.default_rng(0), sigma=(10.0, 10.0))
    std = (out.astype(np.float32) - 128).std(axis=(1, 2, 3))
    np.testing.assert_allclose(std, 10.0, rtol=0.05)
    none = noise.random_gaussian_noise(x, np.random.default_rng(0), sigma=(10.0, 10.0), p=0.0)
    np.testing.assert_array_equal(none, x)
