"""Nearest shifted sets and composition on real PBC images with hand-made shifts."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from robustbench_cells.explain.fingerprint import Reference, image_statistics
from robustbench_cells.explain.nearest import composition, rank_candidates, rank_families


def blur(images, sigma):
    return np.stack([cv2.GaussianBlur(im, (0, 0), sigma) for im in images])


def noise(images, std, seed):
    rng = np.random.default_rng(seed)
    return np.clip(images + rng.normal(0, std, images.shape), 0, 255).astype(np.uint8)


def darken(images, factor):
    return np.clip(images.astype(np.float32) * factor, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def setup(pbc_sample):
    val, target_src = pbc_sample[0::2], pbc_sample[1::2]  # different images for reference and target
    sets = {("clean", 0): val}
    for sev, s in enumerate([0.8, 1.5, 2.5], 1):
        sets[("gaussian_blur", sev)] = blur(val, s)
    for sev, s in enumerate([6, 14, 28], 1):
        sets[("gaussian_noise", sev)] = noise(val, s, sev)
    for sev, f in enumerate([0.9, 0.75, 0.6], 1):
        sets[("brightness", sev)] = darken(val, f)
    sets[("mirror", 1)] = val[:, :, ::-1]  # a flip: invisible to the fingerprint
    stats = {key: image_statistics(imgs) for key, imgs in sets.items()}
    families = {"gaussian_blur": "blur", "gaussian_noise": "noise", "brightness": "photometric", "mirror": "geometric"}
    return val, target_src, stats, families, Reference.from_stats(stats[("clean", 0)])


def test_single_shift_target_is_nearest_to_its_set(setup):
    _, target_src, stats, families, ref = setup
    target = image_statistics(blur(target_src, 1.6))
    cands = rank_candidates(target, stats, families, ref)
    assert (cands[0].shift, cands[0].severity) == ("gaussian_blur", 2)
    assert rank_families(cands)[0]["family"] == "blur"
    assert [c.distance for c in cands] == sorted(c.distance for c in cands)


def test_clean_target_is_nearest_to_clean(setup):
    _, target_src, stats, families, ref = setup
    cands = rank_candidates(image_statistics(target_src), stats, families, ref)
    assert {cands[0].shift, cands[1].shift} == {"clean", "mirror"}
    mirror = next(c for c in cands if c.shift == "mirror")
    assert not mirror.visible
    # The invisible flip's votes count for clean; geometric does not show up at all.
    fams = rank_families(cands)
    assert fams[0]["family"] == "clean" and fams[0]["share"] > 0.5
    assert "geometric" not in {f["family"] for f in fams}


def test_mixture_gets_both_families(setup):
    _, target_src, stats, families, ref = setup
    half = len(target_src) // 2
    mixed = np.concatenate([noise(target_src[:half], 24, 9), darken(target_src[half:], 0.62)])
    shares = composition(image_statistics(mixed), stats, ref)
    assert sum(shares.values()) == pytest.approx(1.0)
    fam_share = {}
    for (shift, _), s in shares.items():
        fam_share[shift] = fam_share.get(shift, 0) + s
    assert fam_share["gaussian_noise"] > 0.3 and fam_share["brightness"] > 0.3
    top2 = {r["family"] for r in rank_families(rank_candidates(image_statistics(mixed), stats, families, ref))[:2]}
    assert top2 == {"noise", "photometric"}
