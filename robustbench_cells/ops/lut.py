"""Lookup tables on uint8 batches: one 256-entry table for the whole batch, or one per image.

Any pointwise uint8 map (brightness, gamma, contrast about a mean, solarize, an HSV channel
scale...) is cheapest as ``cv2.LUT``: no float image, exact, SIMD. Tables are built in float and
turned into uint8 with :func:`robustbench_cells.ops.color.to_uint8` (round, then saturate).
"""

from __future__ import annotations

import cv2
import numpy as np


def apply_lut(images: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Map every value of a uint8 batch through ONE *table*: ``(256,)``, or per channel ``(256, C)``."""
    n, h, w, c = images.shape
    tall = images.reshape(n * h, w, c)  # one cv2 call for the batch: the images stacked as one tall image
    lut = table.reshape(1, 256, -1)
    if lut.shape[-1] == 1:
        lut = lut[..., 0]
    return cv2.LUT(tall, lut).reshape(images.shape)


def apply_luts(images: np.ndarray, luts: np.ndarray) -> np.ndarray:
    """Map every image through its OWN uint8 table: ``luts`` is ``(n, 256)`` or per channel ``(n, 256, C)``."""
    out = np.empty(images.shape, images.dtype)  # C-contiguous, so out[i] can be cv2's dst
    for i in range(len(images)):
        lut = luts[i] if luts[i].ndim == 1 else luts[i][:, None, :]  # (256,) or (256, 1, C) per channel
        cv2.LUT(images[i], np.ascontiguousarray(lut, dtype=np.uint8), dst=out[i])
    return out
