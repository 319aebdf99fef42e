"""ops.color: conversions invert each other; the stain transform is identity at scale 1 and acts per image."""

from __future__ import annotations

import cv2
import numpy as np

from robustbench_cells.ops import color


def _images(n=4, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_od_and_hed_round_trips_are_exact():
    x = _images()
    assert np.array_equal(color.od_to_rgb(color.rgb_to_od(x)), x)
    assert np.array_equal(color.hed_to_rgb(color.rgb_to_hed(x)), x)
    assert color.rgb_to_od(np.array([255], np.uint8))[0] == 0.0


def test_hsv_round_trip_and_ranges():
    x = _images()
    hsv = color.rgb_to_hsv(x)
    assert hsv.dtype == np.float32 and 0 <= hsv[..., 0].min() and hsv[..., 0].max() < 360
    assert hsv[..., 1:].max() <= 1.0
    assert np.abs(color.hsv_to_rgb(hsv).astype(int) - x).max() <= 1
    assert color.rgb_to_hsv(x[0]).shape == x[0].shape  # single image accepted


def test_stain_transform_identity_and_direction():
    x = _images(size=24)
    assert np.abs(color.stain_transform(x, (1, 1, 1)).astype(int) - x).max() <= 1
    more_h = color.stain_transform(x, (1.5, 1, 1))
    # more haematoxylin: higher H concentration on average
    assert color.rgb_to_hed(more_h)[..., 0].mean() > color.rgb_to_hed(x)[..., 0].mean()


def test_stain_transform_per_image_parameters():
    x = np.repeat(_images(1), 3, axis=0)
    scale = np.array([[1, 1, 1], [1.4, 1, 1], [1, 0.6, 1]], np.float32)
    out = color.stain_transform(x, scale)
    assert np.abs(out[0].astype(int) - x[0]).max() <= 1
    assert not np.array_equal(out[1], out[2])
    # the per-image result equals the single-image call
    assert np.array_equal(out[1], color.stain_transform(x[1:2], scale[1])[0])


def test_stain_jitter_params_shapes_and_ranges():
    scale, bias = color.stain_jitter_params(10, np.random.default_rng(0), 0.1, 0.02)
    assert scale.shape == bias.shape == (10, 3)
    assert (abs(scale - 1) <= 0.1).all() and (abs(bias) <= 0.02).all()


def test_stain_transform_matches_the_hed_definition_with_bias():
    x = _images(n=3, size=12, seed=4)
    scale = np.array([[1.2, 0.8, 1.0], [0.9, 1.1, 1.0], [1.0, 1.0, 1.3]], np.float32)
    bias = np.array([[0.02, -0.01, 0.0], [0.0, 0.03, 0.0], [-0.02, 0.0, 0.01]], np.float32)
    expected = np.stack([color.hed_to_rgb(color.rgb_to_hed(x[i]) * scale[i] + bias[i]) for i in range(3)])
    assert np.abs(color.stain_transform(x, scale, bias).astype(int) - expected).max() <= 1


def test_uint8_hsv_matches_opencv_per_image():
    x = _images()
    hsv = color.rgb_to_hsv8(x)
    assert hsv.dtype == np.uint8 and hsv[..., 0].max() < 180
    np.testing.assert_array_equal(hsv[2], cv2.cvtColor(x[2], cv2.COLOR_RGB2HSV))
    np.testing.assert_array_equal(color.hsv8_to_rgb(hsv)[1], cv2.cvtColor(hsv[1], cv2.COLOR_HSV2RGB))


def test_hsv_jitter_per_image_hue_saturation_value():
    red = np.zeros((3, 4, 4, 3), np.uint8)
    red[..., 0] = 200
    out = color.hsv_jitter(red, np.array([0.0, 120.0, 0.0]), np.array([1.0, 1.0, 0.0]), np.array([1.0, 1.0, 0.5]))
    np.testing.assert_array_equal(out[0], red[0])  # no change
    np.testing.assert_array_equal(out[1, 0, 0], (0, 200, 0))  # red + 120 degrees = green
    np.testing.assert_array_equal(out[2, 0, 0], (100, 100, 100))  # no saturation, half the value: grey
    x = _images()
    unchanged = color.hsv_jitter(x, np.zeros(4), np.ones(4), np.ones(4))
    np.testing.assert_array_equal(unchanged, color.hsv8_to_rgb(color.rgb_to_hsv8(x)))  # only the uint8 round trip
