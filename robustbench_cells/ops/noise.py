"""Sensor noise on uint8 batches: gaussian, shot (Poisson), impulse (salt and pepper), speckle; and the
``gaussian_noise`` training augmentation (:func:`random_gaussian_noise`).

Speed trick shared by the four shifts: the randomness is one call to ``rng.bytes`` (one uniform byte per
sample, far cheaper than ``rng.standard_normal``), and the byte is mapped to a noise value through a
precomputed table of the 256 equiprobable quantiles of the distribution. Where the noise does not
depend on the pixel (gaussian, impulse) the mapping runs as ``cv2.LUT`` plus saturating
``cv2.add/subtract``; where it does (shot, speckle) one 65,536-entry table indexed by
``(pixel << 8) | byte`` gives the output pixel directly. Quantile tables truncate the normal at
+-2.9 sigma, which is invisible at these amplitudes.
"""

from __future__ import annotations

from functools import lru_cache
from statistics import NormalDist

import cv2
import numpy as np

from robustbench_cells.ops.color import to_uint8

# Probabilities of the 256 equiprobable standard-normal quantiles: (i + 0.5) / 256.
_P = (np.arange(256, dtype=np.float64) + 0.5) / 256.0


def _normal_quantiles() -> np.ndarray:
    """Standard-normal quantiles at ``_P`` (exact inverse CDF from the standard library)."""
    dist = NormalDist()
    return np.array([dist.inv_cdf(float(p)) for p in _P])


_Z = _normal_quantiles()


def uniform_bytes(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """uint8 array of *shape*, uniform on 0..255, from one ``rng.bytes`` call."""
    count = int(np.prod(shape))
    return np.frombuffer(rng.bytes(count), dtype=np.uint8).reshape(shape)


@lru_cache(maxsize=64)
def _signed_luts(sigma255: float) -> tuple[np.ndarray, np.ndarray]:
    noise = np.rint(_Z * sigma255)
    pos = np.clip(noise, 0, 255).astype(np.uint8)
    neg = np.clip(-noise, 0, 255).astype(np.uint8)
    return pos, neg


def add_noise_u8(images: np.ndarray, sigma255: float, rng: np.random.Generator) -> np.ndarray:
    """``clip(images + N(0, sigma255))`` per sample, via byte quantiles and saturating cv2 arithmetic."""
    pos, neg = _signed_luts(float(sigma255))
    u = uniform_bytes(images.shape, rng)
    flat = images.reshape(-1, images.shape[-2] * images.shape[-1]) if images.ndim > 2 else images
    uflat = u.reshape(flat.shape)
    out = cv2.subtract(cv2.add(flat, cv2.LUT(uflat, pos)), cv2.LUT(uflat, neg))
    return out.reshape(images.shape)


def gaussian_noise(images: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive white Gaussian noise, ``sigma`` on the 0..1 scale, independent per pixel and channel."""
    return add_noise_u8(images, sigma * 255.0, rng)


def random_gaussian_noise(images: np.ndarray, rng: np.random.Generator, sigma: tuple[float, float] = (2.0, 16.0),
                          p: float = 1.0) -> np.ndarray:
    """The ``gaussian_noise`` augmentation: additive Gaussian noise with a per-image sigma drawn from
    ``U(sigma)`` on the 0..255 scale; each image is noised with probability ``p`` (the others come back
    unchanged).

    Unlike the shift (:func:`gaussian_noise`, one sigma per batch, byte quantiles) it draws float
    normals: a different sigma per image does not fit one quantile table, and the random stream is
    part of what a seed reproduces, so the two draws stay as they are.
    """
    n = len(images)
    s = rng.uniform(sigma[0], sigma[1], n).astype(np.float32) * (rng.random(n) < p)
    noise = rng.standard_normal(images.shape, dtype=np.float32)
    noise *= s[:, None, None, None]
    noise += images
    return to_uint8(noise)


@lru_cache(maxsize=64)
def _dependent_table(kind: str, param: float) -> np.ndarray:
    """65,536-entry uint8 table: ``table[(x << 8) | u] = clip(x + std(x) * z_u)``."""
    x = np.arange(256, dtype=np.float64)[:, None]
    if kind == "shot":
        # Poisson(lam * x/255) / lam * 255 has std 255 * sqrt(x / 255 / lam): Gaussian approximation,
        # accurate for the photon counts used here (lam * x / 255 >= ~10 on PBC's bright pixels).
        std = 255.0 * np.sqrt(x / 255.0 / param)
    elif kind == "speckle":
        std = x * param  # multiplicative: x * (1 + N(0, param))
    else:
        raise ValueError(kind)
    return np.clip(np.rint(x + std * _Z[None, :]), 0, 255).astype(np.uint8).reshape(-1)


def _dependent_noise(images: np.ndarray, kind: str, param: float, rng: np.random.Generator) -> np.ndarray:
    table = _dependent_table(kind, float(param))
    u = uniform_bytes(images.shape, rng)
    index = (images.astype(np.uint16) << 8) | u
    return table[index]


def shot_noise(images: np.ndarray, photons: float, rng: np.random.Generator) -> np.ndarray:
    """Photon (Poisson) noise: ``photons`` = expected photon count of a white pixel (lower = noisier)."""
    return _dependent_noise(images, "shot", photons, rng)


def speckle_noise(images: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative noise ``x * (1 + N(0, sigma))``."""
    return _dependent_noise(images, "speckle", sigma, rng)


def impulse_noise(images: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Salt and pepper: a fraction ``amount`` of samples (per channel, as skimage) set to 0 or 255.

    ``amount`` is resolved to steps of 2/256 (one byte per sample, as many salt as pepper levels).
    """
    levels = int(round(amount * 256 / 2))  # bytes < levels -> pepper, bytes >= 256 - levels -> salt
    u = uniform_bytes(images.shape, rng)
    salt = np.zeros(256, np.uint8)
    pepper = np.full(256, 255, np.uint8)
    if levels:
        salt[256 - levels:] = 255
        pepper[:levels] = 0
    flat = images.reshape(-1, images.shape[-2] * images.shape[-1])
    uflat = u.reshape(flat.shape)
    out = cv2.min(cv2.max(flat, cv2.LUT(uflat, salt)), cv2.LUT(uflat, pepper))
    return out.reshape(images.shape)
