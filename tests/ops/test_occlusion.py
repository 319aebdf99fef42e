"""ops.occlusion: the requested share of each image is hidden by dark patches."""

from __future__ import annotations

import numpy as np

from robustbench_cells.ops.occlusion import occlusion


def test_occluded_area_and_colour():
    white = np.full((20, 64, 64, 3), 255, np.uint8)
    out = occlusion(white, (1, 0.1), np.random.default_rng(0))
    hidden = (out < 255).all(axis=-1).mean(axis=(1, 2))
    assert np.allclose(hidden, 0.1, atol=0.02)
    assert out[out < 255].max() < 90


def test_patches_vary_between_images():
    white = np.full((5, 64, 64, 3), 255, np.uint8)
    out = occlusion(white, (2, 0.15), np.random.default_rng(0))
    assert len({o.tobytes() for o in out}) == 5
