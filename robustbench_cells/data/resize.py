"""Resize image batches once (not per epoch) to a model's input size."""

from __future__ import annotations

import cv2
import numpy as np


def resize_images(images: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize uint8 ``(N, H, W, 3)`` to ``size`` (square int or ``(h, w)``); returns the input when it already fits.

    Area interpolation when shrinking (no aliasing), bilinear when enlarging.
    """
    h, w = (size, size) if isinstance(size, int) else size
    if images.shape[1:3] == (h, w):
        return images
    interp = cv2.INTER_AREA if h < images.shape[1] else cv2.INTER_LINEAR
    out = np.empty((len(images), h, w, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        out[i] = cv2.resize(img, (w, h), interpolation=interp)
    return out
