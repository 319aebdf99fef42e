"""Magnification: centre zoom with crop/pad, and the median white-cell size of a set.

Labs image blood smears at different magnifications and crop sizes, so the same white cell fills
a different fraction of the crop (up to 2x between PBC and tecom96). ``zoom`` changes that fraction
about the image centre (the crops are centred on the cell); ``median_cell_size`` measures it from
the cell mask (:mod:`robustbench_cells.ops.mask`) so two sets can be matched.
"""

from __future__ import annotations

import cv2
import numpy as np

from robustbench_cells.ops.affine import centre_zoom_matrices, warp_affine_batch
from robustbench_cells.ops.mask import cell_mask


def zoom(images: np.ndarray, factors: float | np.ndarray) -> np.ndarray:
    """Scale uint8 ``(N,H,W,3)`` images about their centre by *factors* (scalar or ``(N,)``).

    ``> 1`` magnifies (the border is cropped away), ``< 1`` shrinks (the border is padded with the
    image's median colour, i.e. plasma/background, not a mirror that would duplicate cells).
    The output has the input's shape; deterministic.
    """
    images = np.asarray(images)
    n, h, w = images.shape[:3]
    factors = np.broadcast_to(np.asarray(factors, dtype=np.float64), (n,))
    factors = np.where(np.abs(factors - 1.0) < 1e-6, 1.0, factors)  # an exact identity: copied, not resampled
    fill = np.zeros((n, images.shape[-1]))
    resampled = factors != 1.0
    if resampled.any():
        fill[resampled] = np.median(images[resampled].reshape(int(resampled.sum()), -1, images.shape[-1]), axis=1)
    # Linear either way: cv2.warpAffine has no area mode (it maps INTER_AREA to INTER_LINEAR).
    return warp_affine_batch(images, centre_zoom_matrices((h, w), factors), border=cv2.BORDER_CONSTANT,
                             border_values=fill)


def cell_sizes(images: np.ndarray) -> np.ndarray:
    """Per-image white-cell size: sqrt(mask area) / image side, float32 ``(N,)``; NaN where no cell is found."""
    images = np.asarray(images)
    if len(images) == 0:
        return np.zeros(0, np.float32)
    mask = cell_mask(images, softness=0.0)
    area = mask.reshape(len(images), -1).sum(axis=1)
    side = float(np.sqrt(images.shape[1] * images.shape[2]))
    sizes = np.sqrt(area) / side
    sizes[area < 4] = np.nan
    return sizes.astype(np.float32)


def median_cell_size(images: np.ndarray) -> float:
    """Median of :func:`cell_sizes` over images where a cell was found (0.0 when none was)."""
    sizes = cell_sizes(images)
    sizes = sizes[np.isfinite(sizes)]
    return float(np.median(sizes)) if len(sizes) else 0.0
