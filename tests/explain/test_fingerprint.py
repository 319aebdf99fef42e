"""Fingerprint statistics move with the shift they are meant to catch, on real PBC images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from robustbench_cells.explain.fingerprint import (
    STAT_NAMES, Reference, compare_to_reference, image_statistics, summarize,
)


def col(stats: np.ndarray, name: str) -> np.ndarray:
    return stats[:, STAT_NAMES.index(name)]


@pytest.fixture(scope="module")
def sample(pbc_sample):
    return pbc_sample[::2]  # 128 images keep this file fast


@pytest.fixture(scope="module")
def clean_stats(sample):
    return image_statistics(sample)


def test_shape_and_determinism(sample, clean_stats):
    assert clean_stats.shape == (len(sample), len(STAT_NAMES))
    assert np.isfinite(clean_stats).all()
    np.testing.assert_array_equal(clean_stats, image_statistics(sample))


def test_blur_lowers_sharpness(sample, clean_stats):
    blurred = np.stack([cv2.GaussianBlur(im, (0, 0), 2.0) for im in sample])
    assert (col(image_statistics(blurred), "sharpness") < col(clean_stats, "sharpness")).all()


def test_noise_raises_noise_level(sample, clean_stats):
    rng = np.random.default_rng(0)
    noisy = np.clip(sample + rng.normal(0, 20, sample.shape), 0, 255).astype(np.uint8)
    assert np.median(col(image_statistics(noisy), "noise")) > 3 * np.median(col(clean_stats, "noise"))


def test_jpeg_raises_blockiness(sample, clean_stats):
    def jpeg(im):
        ok, buf = cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, 8])
        return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)

    compressed = np.stack([jpeg(im) for im in sample])
    assert np.median(col(image_statistics(compressed), "blockiness")) > np.median(col(clean_stats, "blockiness")) + 0.3


def test_rotation_fills_dark_border(sample, clean_stats):
    m = cv2.getRotationMatrix2D((47.5, 47.5), 30, 1.0)
    rotated = np.stack([cv2.warpAffine(im, m, (96, 96), borderValue=(0, 0, 0)) for im in sample])
    assert col(clean_stats, "dark_border").max() < 0.05
    assert col(image_statistics(rotated), "dark_border").min() > 0.1


def test_compare_ranks_the_changed_statistic_first(sample, clean_stats):
    # A green background tint (the "spurious background colour" story) moves background green most.
    from robustbench_cells.ops.mask import cell_mask

    mask = cell_mask(sample)[..., None]
    tinted = sample.astype(np.float32)
    tinted[..., 1] += 40 * (1 - mask[..., 0])
    tinted = np.clip(tinted, 0, 255).astype(np.uint8)
    rows = compare_to_reference(image_statistics(tinted), clean_stats)
    assert rows[0]["statistic"] in {"bg_g", "mean_g", "od_g"}
    assert rows[0]["z"] > 2 and rows[0]["outside"] > 0.5
    same = compare_to_reference(clean_stats, clean_stats)
    assert max(abs(r["z"]) for r in same) == 0


def test_summary_and_reference_scales():
    stats = np.random.default_rng(1).normal(size=(200, len(STAT_NAMES)))
    stats[:, 0] = 5.0  # a constant statistic must not give an infinite z
    s = summarize(stats)
    assert s.shape == (len(STAT_NAMES), 5)
    ref = Reference.from_stats(stats)
    assert (ref.scale > 0).all()
    v = ref.summary_vector(stats)
    assert np.isfinite(v).all() and v.shape == (len(STAT_NAMES) * 5,)


def test_rejects_wrong_input():
    with pytest.raises(ValueError, match="uint8"):
        image_statistics(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError):
        summarize(np.zeros((0, 3)))
