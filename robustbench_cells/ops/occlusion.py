"""Occlusion on uint8 batches: opaque debris patches hide part of each image (and maybe of the cell)."""

from __future__ import annotations

import numpy as np


def occlusion(images: np.ndarray, param: tuple[int, float], rng: np.random.Generator) -> np.ndarray:
    """``param = (count, area)``: *count* rectangles per image covering about *area* of it in total,
    aspect ratio in ``[0.5, 2]``, at uniformly random places, each filled with a random dark grey."""
    count, area = param
    n, h, w, _ = images.shape
    each = area / count * h * w
    aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0), size=(n, count)))
    ph = np.clip(np.rint(np.sqrt(each * aspect)), 1, h).astype(int)
    pw = np.clip(np.rint(np.sqrt(each / aspect)), 1, w).astype(int)
    top = (rng.random((n, count)) * (h - ph + 1)).astype(int)
    left = (rng.random((n, count)) * (w - pw + 1)).astype(int)
    grey = rng.integers(20, 90, size=(n, count), dtype=np.uint8)
    out = images.copy()
    for i in range(n):
        for j in range(count):
            out[i, top[i, j]:top[i, j] + ph[i, j], left[i, j]:left[i, j] + pw[i, j]] = grey[i, j]
    return out
