"""Photometric shifts on uint8 batches: brightness, contrast, saturation, gamma, hue, white balance.

Everything that is a fixed per-value map runs as one ``cv2.LUT`` over the whole batch (a 256-entry
table, no float image). Contrast depends on each image's mean, so it gets one table per image.
Saturation and hue go through OpenCV's uint8 HSV (H in 0..179).
"""

from __future__ import annotations

import cv2
import numpy as np

_VALUES = np.arange(256, dtype=np.float32)


def _table(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def apply_lut(images: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Map every value of a uint8 batch through *table* (``(256,)`` or per channel ``(256, 3)``)."""
    n, h, w, c = images.shape
    tall = images.reshape(n * h, w, c)
    lut = table.reshape(1, 256, -1)
    if lut.shape[-1] == 1:
        lut = lut[..., 0]
    return cv2.LUT(tall, lut).reshape(images.shape)


def brightness(images: np.ndarray, delta: float, rng: np.random.Generator) -> np.ndarray:
    """Add *delta* (0..1 scale, negative darkens) to every channel, clipped."""
    return apply_lut(images, _table(_VALUES + delta * 255.0))


def contrast(images: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Scale each image's deviation from its own mean grey level by *factor* (< 1 flattens)."""
    means = images.reshape(len(images), -1).mean(axis=1, dtype=np.float64).astype(np.float32)
    tables = _table((_VALUES[None, :] - means[:, None]) * factor + means[:, None])
    out = np.empty_like(images)
    for i, img in enumerate(images):
        out[i] = cv2.LUT(img, tables[i])
    return out


def gamma(images: np.ndarray, g: float, rng: np.random.Generator) -> np.ndarray:
    """Gamma curve ``255 * (x / 255) ** g`` (g > 1 darkens mid-tones, keeps black and white)."""
    return apply_lut(images, _table(255.0 * (_VALUES / 255.0) ** g))


def white_balance(images: np.ndarray, gains: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    """Per-channel gains (R, G, B): the colour of the illumination / a camera's white balance."""
    table = np.stack([_table(_VALUES * g) for g in gains], axis=-1)
    return apply_lut(images, table)


def _hsv(images: np.ndarray) -> np.ndarray:
    n, h, w, _ = images.shape
    return cv2.cvtColor(images.reshape(n * h, w, 3), cv2.COLOR_RGB2HSV)


def _rgb(hsv_tall: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return cv2.cvtColor(hsv_tall, cv2.COLOR_HSV2RGB).reshape(shape)


def saturate(images: np.ndarray, param: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Saturation ``S * factor + offset`` (``param = (factor, offset)``, offset on the 0..1 scale)."""
    factor, offset = param
    hsv = _hsv(images)
    table = _table(_VALUES * factor + offset * 255.0)
    hsv[..., 1] = cv2.LUT(hsv[..., 1].copy(), table)
    return _rgb(hsv, images.shape)


def hue_shift(images: np.ndarray, degrees: float, rng: np.random.Generator) -> np.ndarray:
    """Rotate the hue by *degrees* (OpenCV's uint8 hue has 2-degree steps)."""
    hsv = _hsv(images)
    steps = int(round(degrees / 2.0)) % 180
    table = ((np.arange(256) + steps) % 180).astype(np.uint8)  # values >= 180 never occur
    hsv[..., 0] = cv2.LUT(hsv[..., 0].copy(), table)
    return _rgb(hsv, images.shape)
