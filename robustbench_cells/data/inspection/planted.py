"""Planted defects with known answers, to check the inspector (tests and benchmarks use them).

- :func:`near_copies`: JPEG re-encode, a small shift and a brightness change of given images.
- :func:`foreign_background_composites`: the central cell of each image, cut out with a soft
  circular mask, pasted on a generated foreign background (colour gradient, flat cartoon shapes,
  noise texture, or photo-like smooth blobs).
"""

from __future__ import annotations

import cv2
import numpy as np

BACKGROUND_KINDS: tuple[str, ...] = ("gradient", "cartoon", "noise", "blobs")


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode an RGB uint8 image as JPEG at *quality* and decode it again."""
    ok, buf = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()


def near_copies(images: np.ndarray, rng: np.random.Generator, max_shift: int = 3,
                brightness: float = 0.10, quality: int = 70) -> np.ndarray:
    """A near copy of each image: shifted by up to ±max_shift px (edges reflected), brightness
    scaled by 1±brightness, then re-encoded as JPEG at *quality*."""
    out = np.empty_like(images)
    h, w = images.shape[1:3]
    for i, img in enumerate(images):
        dx, dy = rng.integers(-max_shift, max_shift + 1, size=2)
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        moved = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT_101)
        scaled = np.clip(moved.astype(np.float32) * rng.uniform(1 - brightness, 1 + brightness), 0, 255)
        out[i] = jpeg_roundtrip(scaled.astype(np.uint8), quality)
    return out


def _random_colour(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    return rng.uniform(0, 255, size=(n, 3)).astype(np.float32)


def foreign_background(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """One generated background of *kind* (see :data:`BACKGROUND_KINDS`), float32 ``(h, w, 3)``."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * xx + np.sin(angle) * yy)
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
        c0, c1 = _random_colour(rng, 2)
        return c0 + t[..., None] * (c1 - c0)
    if kind == "cartoon":
        # Flat colour regions: nearest of a few random seeds (a Voronoi map), like clip art.
        k = int(rng.integers(2, 6))
        seeds = rng.uniform(0, [w, h], size=(k, 2))
        d = (xx[None] - seeds[:, 0, None, None]) ** 2 + (yy[None] - seeds[:, 1, None, None]) ** 2
        return _random_colour(rng, k)[np.argmin(d, axis=0)]
    if kind == "noise":
        base = _random_colour(rng)[0]
        sigma = rng.uniform(0.5, 3.0)
        noise = rng.normal(0, rng.uniform(20, 60), size=(h, w, 3)).astype(np.float32)
        return base + cv2.GaussianBlur(noise, (0, 0), sigma) * (1 + sigma)
    if kind == "blobs":
        out = np.broadcast_to(_random_colour(rng)[0], (h, w, 3)).copy()
        for _ in range(int(rng.integers(4, 10))):
            cx, cy = rng.uniform(0, [w, h])
            r = rng.uniform(0.08, 0.35) * max(h, w)
            a = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None]
            out = out * (1 - a) + _random_colour(rng)[0] * a
        return out + rng.normal(0, 4, size=out.shape).astype(np.float32)  # sensor-like grain
    raise ValueError(f"unknown background kind {kind!r}; known: {', '.join(BACKGROUND_KINDS)}")


def foreign_background_composites(images: np.ndarray, rng: np.random.Generator,
                                  kinds: tuple[str, ...] = BACKGROUND_KINDS,
                                  radius: tuple[float, float] = (0.28, 0.36)) -> np.ndarray:
    """Paste the central cell of each image (soft circular mask, radius a fraction of the side)
    on a generated foreign background; kinds cycle through *kinds*. uint8 like the input."""
    n, h, w, _ = images.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty_like(images)
    for i, img in enumerate(images):
        r = rng.uniform(*radius) * min(h, w)
        cx, cy = (w - 1) / 2 + rng.uniform(-2, 2), (h - 1) / 2 + rng.uniform(-2, 2)
        dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        alpha = np.clip((r - dist) / 4.0 + 0.5, 0, 1)[..., None]  # 4 px feathered edge
        bg = foreign_background(kinds[i % len(kinds)], h, w, rng)
        out[i] = np.clip(img * alpha + bg * (1 - alpha), 0, 255).astype(np.uint8)
    return out
