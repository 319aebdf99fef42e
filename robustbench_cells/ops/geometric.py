"""Geometric shifts on uint8 batches: rotation, flips, magnification (scale), translation.

Borders are filled by reflection (the smear continues past the crop), never with black corners,
so the shift is about pose and framing, not about a new artefact.
"""

from __future__ import annotations

import cv2
import numpy as np


def _warp_each(images: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    n, h, w, _ = images.shape
    out = np.empty_like(images)
    for i in range(n):
        out[i] = cv2.warpAffine(images[i], matrices[i], (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT_101)
    return out


def _centre_matrices(h: int, w: int, angles_deg: np.ndarray, scales: np.ndarray,
                     shifts: np.ndarray | None = None) -> np.ndarray:
    centre = ((w - 1) / 2.0, (h - 1) / 2.0)
    mats = np.stack([cv2.getRotationMatrix2D(centre, float(a), float(s)) for a, s in zip(angles_deg, scales)])
    if shifts is not None:
        mats[:, :, 2] += shifts
    return mats.astype(np.float32)


def rotation(images: np.ndarray, degrees: float, rng: np.random.Generator) -> np.ndarray:
    """Rotate each image by *degrees* about its centre, clockwise or anticlockwise at random."""
    n, h, w, _ = images.shape
    angles = degrees * rng.choice(np.array([-1.0, 1.0]), size=n)
    return _warp_each(images, _centre_matrices(h, w, angles, np.ones(n)))


def flip(images: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Flip a random *fraction* of the images: horizontally, vertically or both (equally likely)."""
    n = len(images)
    chosen = rng.random(n) < fraction
    kind = rng.integers(0, 3, size=n)
    out = images.copy()
    for code, flip_axes in ((0, (2,)), (1, (1,)), (2, (1, 2))):
        sel = chosen & (kind == code)
        if sel.any():
            out[sel] = np.flip(images[sel], axis=flip_axes)
    return out


def scale(images: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Magnification: zoom about the centre by *factor* (> 1 enlarges the cell, < 1 shrinks it)."""
    n, h, w, _ = images.shape
    return _warp_each(images, _centre_matrices(h, w, np.zeros(n), np.full(n, factor)))


def translation(images: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Off-centre crop: move the content by *fraction* of the image side in a random direction."""
    n, h, w, _ = images.shape
    angle = rng.uniform(0, 2 * np.pi, size=n)
    shifts = np.stack([np.cos(angle) * fraction * w, np.sin(angle) * fraction * h], axis=1)
    return _warp_each(images, _centre_matrices(h, w, np.zeros(n), np.ones(n), shifts))
