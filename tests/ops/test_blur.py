"""ops.blur: the batched filtering equals per-image filtering; blurs keep flat images flat."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from robustbench_cells.ops import blur

RNG = np.random.default_rng(0)
X = RNG.integers(0, 256, (5, 40, 36, 3), dtype=np.uint8)


def test_filter_batch_equals_per_image_filter():
    kernel = blur.disk_kernel(2.0)
    expected = np.stack([cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101) for img in X])
    assert np.array_equal(blur.filter_batch(X, kernel), expected)


def test_disk_kernel_normalised_and_round():
    k = blur.disk_kernel(3.0)
    assert k.shape == (7, 7) and abs(k.sum() - 1) < 1e-6
    assert np.allclose(k, k.T) and np.allclose(k, k[::-1])


@pytest.mark.parametrize("fn,param", [(blur.defocus_blur, 2.0), (blur.gaussian_blur, 1.5),
                                      (blur.motion_blur, 7), (blur.zoom_blur, 1.15),
                                      (blur.glass_blur, (0.6, 1.3, 1))])
def test_flat_images_stay_flat_and_detail_is_lost(fn, param):
    flat = np.full((2, 48, 48, 3), 77, np.uint8)
    assert np.array_equal(fn(flat, param, np.random.default_rng(0)), flat)
    checker = ((np.indices((48, 48)).sum(0) // 2) % 2 * 255).astype(np.uint8)
    sharp = np.repeat(np.stack([checker] * 2)[..., None], 3, axis=-1)
    assert fn(sharp, param, np.random.default_rng(0)).astype(float).std() < 0.8 * sharp.std()


def test_motion_blur_direction_is_random_per_image():
    img = np.zeros((1, 33, 33, 3), np.uint8)
    img[0, 16, 16] = 255
    batch = np.repeat(img, 6, axis=0)
    out = blur.motion_blur(batch, 9, np.random.default_rng(0))
    assert len({out[i].tobytes() for i in range(6)}) > 1
    assert all((out[i] > 0).sum() > 3 for i in range(6))  # the point became a streak


def test_line_kernel_is_normalised_line():
    k = blur.line_kernel(7.0, 0.0)
    assert abs(k.sum() - 1) < 1e-6
    assert k[k.shape[0] // 2].sum() > 0.95  # horizontal line along the middle row


def test_glass_blur_scrambles_locally_and_more_with_delta():
    rng = np.random.default_rng(3)
    stripes = np.zeros((3, 48, 48, 3), np.uint8)
    stripes[:, :, ::8] = 255  # thin vertical lines: a blur keeps them straight, glass makes them ragged
    calm = blur.glass_blur(stripes, (0.5, 0.0, 1), np.random.default_rng(0))
    np.testing.assert_array_equal(calm, blur.gaussian_blur(blur.gaussian_blur(stripes, 0.5, rng), 0.5, rng))
    ragged = [blur.glass_blur(stripes, (0.5, d, 1), np.random.default_rng(0)) for d in (0.5, 1.5, 3.0)]
    spread = [np.abs(r.astype(int) - calm).mean() for r in ragged]
    assert 0 < spread[0] < spread[1] < spread[2]
    profile = ragged[2].astype(float).mean(axis=(0, 1, 3))  # local scrambling: the lines are still there
    assert profile[8:40:8].min() > 2 * profile[4:40:8].max()


def test_filter_planes_equals_per_plane_filter_across_chunks():
    planes = np.random.default_rng(2).random((300, 20, 18)).astype(np.float32)  # > 128: three chunks
    out = blur.filter_planes(planes, lambda p: cv2.GaussianBlur(p, (5, 5), 1.0))
    expected = np.stack([cv2.GaussianBlur(p, (5, 5), 1.0) for p in planes])
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert out.dtype == np.float32 and out.shape == planes.shape
