"""Photometric shifts on uint8 batches: brightness, contrast, saturation, gamma, hue, white balance.

Everything that is a fixed per-value map runs as one ``cv2.LUT`` over the whole batch (a 256-entry
table, no float image). Contrast depends on each image's mean, so it gets one table per image.
Saturation and hue go through OpenCV's uint8 HSV (H in 0..179, :func:`ops.color.rgb_to_hsv8`).
Tables are applied by :mod:`robustbench_cells.ops.lut`.
"""

from __future__ import annotations

import numpy as np

from robustbench_cells.ops.color import hsv8_to_rgb, rgb_to_hsv8, to_uint8
from robustbench_cells.ops.lut import apply_lut, apply_luts

_VALUES = np.arange(256, dtype=np.float32)


def brightness(images: np.ndarray, delta: float, rng: np.random.Generator) -> np.ndarray:
    """Add *delta* (0..1 scale, negative darkens) to every channel, clipped."""
    return apply_lut(images, to_uint8(_VALUES + delta * 255.0))


def contrast(images: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Scale each image's deviation from its own mean grey level by *factor* (< 1 flattens)."""
    means = images.reshape(len(images), -1).mean(axis=1, dtype=np.float64).astype(np.float32)
    return apply_luts(images, to_uint8((_VALUES[None, :] - means[:, None]) * factor + means[:, None]))


def gamma(images: np.ndarray, g: float, rng: np.random.Generator) -> np.ndarray:
    """Gamma curve ``255 * (x / 255) ** g`` (g > 1 darkens mid-tones, keeps black and white)."""
    return apply_lut(images, to_uint8(255.0 * (_VALUES / 255.0) ** g))


def white_balance(images: np.ndarray, gains: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    """Per-channel gains (R, G, B): the colour of the illumination / a camera's white balance."""
    table = np.stack([to_uint8(_VALUES * g) for g in gains], axis=-1)
    return apply_lut(images, table)


_IDENTITY = np.arange(256, dtype=np.uint8)


def saturate(images: np.ndarray, param: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Saturation ``S * factor + offset`` (``param = (factor, offset)``, offset on the 0..1 scale)."""
    factor, offset = param
    table = np.stack([_IDENTITY, to_uint8(_VALUES * factor + offset * 255.0), _IDENTITY], axis=-1)
    return hsv8_to_rgb(apply_lut(rgb_to_hsv8(images), table))


def hue_shift(images: np.ndarray, degrees: float, rng: np.random.Generator) -> np.ndarray:
    """Rotate the hue by *degrees* (OpenCV's uint8 hue has 2-degree steps)."""
    steps = int(round(degrees / 2.0)) % 180
    hue = ((np.arange(256) + steps) % 180).astype(np.uint8)  # values >= 180 never occur
    return hsv8_to_rgb(apply_lut(rgb_to_hsv8(images), np.stack([hue, _IDENTITY, _IDENTITY], axis=-1)))
