"""ops.affine: the matrices, and the one per-image warp loop every geometric op uses."""

from __future__ import annotations

import cv2
import numpy as np

from robustbench_cells.ops.affine import affine_matrices, centre_zoom_matrices, warp_affine_batch


def _images(n=4, h=32, w=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_affine_matrices_match_cv2_rotation():
    m = affine_matrices((32, 32), angle_deg=np.array([30.0]), zoom=np.array([1.2]))
    ref = cv2.getRotationMatrix2D((15.5, 15.5), -30.0, 1.2)  # cv2's angle is counter-clockwise
    np.testing.assert_allclose(m[0], ref, atol=1e-4)
    x = _images(1)
    np.testing.assert_array_equal(warp_affine_batch(x, affine_matrices((32, 32), n=1)), x)  # identity: exact copy


def test_rotation_matrices_equal_opencv_to_the_bit():
    # The rotation shift used cv2.getRotationMatrix2D; its cached sets stay valid only if these are equal.
    for h, w in ((96, 96), (64, 48), (28, 28), (224, 225)):
        for degrees in (5, 10, 20, 30, 45, -45):
            ref = np.float32(cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), float(degrees), 1.0))
            np.testing.assert_array_equal(affine_matrices((h, w), angle_deg=np.array([-degrees]))[0], ref)


def test_centre_zoom_matrices_equal_opencv_and_shift():
    for h, w in ((96, 96), (64, 48)):
        for f in (0.5, 1.08, 1.5):
            ref = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 0.0, f)
            np.testing.assert_array_equal(centre_zoom_matrices((h, w), np.array([f]))[0], ref)
    moved = centre_zoom_matrices((32, 32), np.ones(2), np.array([[3.0, -2.0], [0.0, 0.0]]))
    np.testing.assert_array_equal(moved[:, :, 2], [[3.0, -2.0], [0.0, 0.0]])
    x = _images(2)
    out = warp_affine_batch(x, moved)
    np.testing.assert_array_equal(out[0, 5:25, 8:28], x[0, 7:27, 5:25])  # content moved by (+3, -2) px
    np.testing.assert_array_equal(out[1], x[1])


def test_constant_border_takes_each_images_fill():
    x = _images(2)
    shrink = centre_zoom_matrices((32, 32), np.array([0.5, 0.5]))
    fills = np.array([[10, 20, 30], [200, 100, 0]])
    out = warp_affine_batch(x, shrink, border=cv2.BORDER_CONSTANT, border_values=fills)
    np.testing.assert_array_equal(out[:, 0, 0], fills)
    np.testing.assert_array_equal(warp_affine_batch(x, shrink, border=cv2.BORDER_CONSTANT)[:, 0, 0], 0)


def test_float_planes_and_non_contiguous_input():
    masks = np.random.default_rng(1).random((3, 20, 24)).astype(np.float32)
    m = affine_matrices((20, 24), angle_deg=np.array([10.0, 0.0, -5.0]))
    out = warp_affine_batch(masks, m, border=cv2.BORDER_CONSTANT)
    assert out.dtype == np.float32 and out.shape == masks.shape
    np.testing.assert_array_equal(out[1], masks[1])
    for i in (0, 2):
        ref = cv2.warpAffine(masks[i], m[i], (24, 20), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        np.testing.assert_array_equal(out[i], ref)
    x = _images(3, 32, 64)[:, :, ::2]  # a strided view: the output must still be written
    m = affine_matrices((32, 32), angle_deg=np.array([15.0, 30.0, 45.0]))
    ref = np.stack([cv2.warpAffine(np.ascontiguousarray(img), mi, (32, 32), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT_101) for img, mi in zip(x, m)])
    np.testing.assert_array_equal(warp_affine_batch(x, m), ref)
