"""ops.geometric: rotations, flips, magnification and translation move content, never add black corners."""

from __future__ import annotations

import cv2
import numpy as np

from robustbench_cells.ops import geometric as ge

RNG = np.random.default_rng(0)
X = RNG.integers(50, 255, (6, 32, 32, 3), dtype=np.uint8)


def test_flip_all_gives_one_of_three_flips():
    out = ge.flip(X, 1.0, np.random.default_rng(0))
    for img, res in zip(X, out):
        options = [img[:, ::-1], img[::-1], img[::-1, ::-1]]
        assert any(np.array_equal(res, o) for o in options)


def test_flip_fraction_zero_is_identity():
    assert np.array_equal(ge.flip(X, 0.0, np.random.default_rng(0)), X)


def test_rotation_by_90_matches_rot90_and_no_black_corners():
    sym = np.zeros((2, 33, 33, 3), np.uint8) + 200
    sym[:, 10:23, 5:28] = 50
    out = ge.rotation(sym, 90, np.random.default_rng(0))
    for res in out:
        assert any(np.array_equal(res, np.rot90(sym[0], k)) for k in (1, 3))
    assert ge.rotation(X, 30, np.random.default_rng(0)).min() >= 50  # reflection, not black fill


def test_scale_one_and_translation_zero_are_identity():
    assert np.array_equal(ge.scale(X, 1.0, RNG), X)
    assert np.array_equal(ge.translation(X, 0.0, RNG), X)


def test_translation_moves_content():
    img = np.zeros((1, 40, 40, 3), np.uint8)
    img[0, 18:22, 18:22] = 255
    out = ge.translation(img, 0.25, np.random.default_rng(0))
    ys, xs = np.nonzero(out[0, ..., 0] > 128)
    assert np.hypot(ys.mean() - 19.5, xs.mean() - 19.5) > 8


def test_displace_is_a_clamped_gather_that_never_mixes_images():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (5, 20, 24, 3), dtype=np.uint8)
    flow = rng.integers(-30, 31, (5, 20, 24, 2)).astype(np.float32)  # far past every border
    out = ge.displace(images, flow, cv2.INTER_NEAREST)
    ys, xs = np.indices((20, 24))
    for i in range(5):
        src_x = np.clip(xs + flow[i, ..., 0].astype(int), 0, 23)
        src_y = np.clip(ys + flow[i, ..., 1].astype(int), 0, 19)
        np.testing.assert_array_equal(out[i], images[i][src_y, src_x])  # its own image, clamped
    assert np.array_equal(ge.displace(images, np.zeros_like(flow)), images)
    smooth = rng.uniform(-3, 3, flow.shape).astype(np.float32)  # bilinear: each image on its own
    together = ge.displace(images, smooth)
    for i in range(5):
        np.testing.assert_array_equal(together[i], ge.displace(images[i:i + 1], smooth[i:i + 1])[0])


def test_elastic_warp_is_smooth_and_grows_with_amplitude():
    cell = np.full((4, 96, 96, 3), 230, np.uint8)
    cell[:, 30:66, 30:66] = (120, 60, 150)  # a square "cell": a warp bends its edges
    diffs = [np.abs(ge.elastic_transform(cell, (amp, 16), np.random.default_rng(0)).astype(int) - cell).mean()
             for amp in (0.0, 0.5, 1.5, 3.0)]
    assert diffs[0] == 0 and diffs[1] < diffs[2] < diffs[3]
    out = ge.elastic_transform(cell, (1.5, 16), np.random.default_rng(0))
    assert set(map(tuple, out[:, 5:25, 5:25].reshape(-1, 3))) == {(230, 230, 230)}  # flat areas stay flat
    changed = np.argwhere(np.abs(out.astype(int) - cell).sum(-1) > 0)[:, 1:]
    assert changed.size and (np.abs(changed - 48).max(axis=1) >= 12).all()  # only near the edges (30/66)
