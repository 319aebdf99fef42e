"""Stained-looking test images (a noisy pink smear with a violet disc per image), so tests of
shifts and plugins do not need ../shared. Deterministic."""

from __future__ import annotations

import numpy as np


def smear_cells(n: int, size: int, smear: tuple[int, int, int], disc: tuple[int, int, int],
                noise: float) -> np.ndarray:
    """uint8 ``(n, size, size, 3)``: *smear* colour plus Gaussian *noise*, a centred *disc* of random radius."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    images = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        img = np.full((size, size, 3), smear, np.float32) + rng.normal(0, noise, (size, size, 3))
        img[(yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size * rng.uniform(0.15, 0.3)) ** 2] = disc
        images[i] = np.clip(img, 0, 255)
    return images
