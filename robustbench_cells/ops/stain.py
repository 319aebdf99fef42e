"""Staining shifts on uint8 batches: another lab's stain (HED space) and stain precipitate deposits."""

from __future__ import annotations

import numpy as np

from robustbench_cells.ops.blur import size_scale
from robustbench_cells.ops.color import rgb_to_od, stain_transform
from robustbench_cells.ops.microscopy import absorb, spot_density


def stain_shift(images: np.ndarray, param: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    """Another lab's staining: ``param = (haematoxylin_gain, eosin_gain, jitter)``.

    Haematoxylin and eosin concentrations (HED optical-density space, :func:`ops.color.stain_transform`)
    are multiplied by the given gains -- the same for the whole set, as one lab's protocol would --
    and each image gets a further ``U(1 - jitter, 1 + jitter)`` per stain (slide-to-slide variation).
    """
    h_gain, e_gain, jitter = param
    n = len(images)
    scale = np.array([h_gain, e_gain, 1.0], np.float32) * rng.uniform(1 - jitter, 1 + jitter, size=(n, 3))
    scale[:, 2] = 1.0
    return stain_transform(images, scale.astype(np.float32))


#: Optical density of the violet-black precipitate Giemsa/May-Gruenwald leave when they dry on the slide.
DEPOSIT_OD = tuple(float(v) for v in rgb_to_od(np.array([95, 45, 120], np.uint8)))


def stain_deposit(images: np.ndarray, param: tuple[int, float], rng: np.random.Generator) -> np.ndarray:
    """Stain precipitate: ``param = (count, size_px)`` dark violet blotches at random places."""
    count, size = param
    n, h, w, _ = images.shape
    s = size_scale(images)
    density = spot_density(n, h, w, int(round(count * s * s)), size * s, rng, amplitude=(0.7, 3.0))
    return absorb(images, density, DEPOSIT_OD)
