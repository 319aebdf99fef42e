"""Random per-image geometric and photometric training ops on uint8 batches (the ``simple`` recipe).

Every function takes uint8 ``(N, H, W, 3)`` and an explicit ``numpy.random.Generator`` and gives
each image its own random parameters. Parameters are drawn for the whole batch at once (so the
result depends only on the generator state); the pixel work is either vectorised over the batch
or one OpenCV call per image (``warpAffine``/``LUT`` cost ~10-20 µs each at 96x96), never a
Python loop over pixels.

The warps and lookup tables themselves are :mod:`robustbench_cells.ops.affine` and
:mod:`robustbench_cells.ops.lut` (shared with the shifts); this module also holds the blend and
brightness/contrast primitives AugMix/RandAugment reuse, and the bodies of the ``stain`` and
``lab`` augmentations. (The ``gaussian_noise`` augmentation is
:func:`robustbench_cells.ops.noise.random_gaussian_noise`, the ``background`` one
:func:`robustbench_cells.ops.composite.random_background`.)
"""

from __future__ import annotations

import cv2
import numpy as np

from robustbench_cells.ops.affine import affine_matrices, warp_affine_batch
from robustbench_cells.ops.color import hsv_jitter, stain_jitter_params, stain_transform, to_uint8
from robustbench_cells.ops.lab import lab_profile
from robustbench_cells.ops.lut import apply_luts

Range = tuple[float, float]


# -- primitives ------------------------------------------------------------------------------------
def weighted_sum_uint8(terms: list[np.ndarray], coeffs: np.ndarray) -> np.ndarray:
    """``sum_k coeffs[:, k] * terms[k]`` per image, rounded and saturated to uint8.

    ``terms``: K uint8 arrays ``(n, H, W, 3)``; ``coeffs``: ``(n, K)``. OpenCV's SIMD
    ``addWeighted`` per image is several times faster than float32 NumPy over the batch.
    """
    n = len(terms[0])
    out = np.empty_like(terms[0])
    c = np.asarray(coeffs, dtype=np.float64)
    for i in range(n):
        acc = None
        for k in range(0, len(terms) - 1, 2):
            pair = cv2.addWeighted(terms[k][i], c[i, k], terms[k + 1][i], c[i, k + 1], 0.0, dtype=cv2.CV_32F)
            acc = pair if acc is None else cv2.add(acc, pair)
        if len(terms) % 2:
            last = terms[-1][i].astype(np.float32) * np.float32(c[i, -1])
            acc = last if acc is None else cv2.add(acc, last)
        out[i] = cv2.convertScaleAbs(acc)  # rounds and saturates to 0..255 (inputs are non-negative)
    return out


def brightness_contrast(images: np.ndarray, brightness: np.ndarray, contrast: np.ndarray) -> np.ndarray:
    """``(x - mean) * contrast + mean + brightness * 255`` per image (mean = the image's grey mean).

    ``brightness``/``contrast`` are ``(n,)``. Implemented as one 256-entry LUT per image: exact for
    uint8 and far cheaper than float arithmetic on every pixel.
    """
    # cv2.mean per image (SIMD) is ~3x faster than NumPy's float reduction over the whole batch.
    means = np.array([sum(cv2.mean(img)[:3]) / 3.0 for img in images], np.float32)
    levels = np.arange(256, dtype=np.float32)[None, :]
    luts = (levels - means[:, None]) * contrast[:, None] + means[:, None] + brightness[:, None] * 255.0
    return apply_luts(images, to_uint8(luts))


# -- the ``simple`` recipe -------------------------------------------------------------------------
def random_simple(images: np.ndarray, rng: np.random.Generator, *, flip: str = "both",
                  rotation: float = 180.0, zoom: Range = (0.9, 1.1), translate: float = 0.1,
                  contrast: float = 0.2, brightness: float = 0.1) -> np.ndarray:
    """Random flip, rotation, zoom, translation (one affine warp per image), then contrast and brightness.

    - ``flip``: ``"none"``, ``"horizontal"``, ``"vertical"`` or ``"both"`` (each with probability 1/2;
      blood cells have no up or left, so both are label-preserving).
    - ``rotation``: max angle in degrees (uniform in ``[-rotation, rotation]``).
    - ``zoom``: range of scale factors (``>1`` enlarges the cell).
    - ``translate``: max shift as a fraction of the image side, per axis.
    - ``contrast``: factor in ``[1 - contrast, 1 + contrast]`` around the image mean.
    - ``brightness``: offset in ``[-brightness, brightness]`` x 255.
    """
    n, h, w = images.shape[:3]
    if n == 0:
        return images.copy()
    flips = rng.random((n, 2)) < 0.5
    angle = rng.uniform(-rotation, rotation, n) if rotation else np.zeros(n)
    scale = rng.uniform(zoom[0], zoom[1], n)
    shift = rng.uniform(-translate, translate, (n, 2)) * np.array([w, h])
    c = rng.uniform(1.0 - contrast, 1.0 + contrast, n).astype(np.float32)
    b = rng.uniform(-brightness, brightness, n).astype(np.float32)
    matrices = affine_matrices(
        (h, w), angle_deg=angle, zoom=scale, shift=shift,
        flip_h=flips[:, 0] & (flip in ("horizontal", "both")),
        flip_v=flips[:, 1] & (flip in ("vertical", "both")),
    )
    out = warp_affine_batch(images, matrices)
    if contrast or brightness:
        out = brightness_contrast(out, b, c)
    return out


# -- the ``stain`` and ``lab`` recipes -------------------------------------------------------------
def random_stain(images: np.ndarray, rng: np.random.Generator, *, space: str = "both", hed_sigma: float = 0.05,
                 hed_bias: float = 0.05, hue: float = 8.0, saturation: float = 0.15, value: float = 0.1) -> np.ndarray:
    """Stain/colour jitter per image, in HED (``space`` ``"hed"``/``"both"``) then HSV (``"hsv"``/``"both"``).

    - HED (Tellez et al. 2018): stain concentrations x ``U(1 - hed_sigma, 1 + hed_sigma)`` plus
      ``U(-hed_bias, hed_bias)`` (:func:`~robustbench_cells.ops.color.stain_transform`): another
      lab's haematoxylin/eosin amounts.
    - HSV: hue + ``U(-hue, hue)`` degrees, saturation and value x ``U(1 -/+ saturation)``,
      ``U(1 -/+ value)`` (:func:`~robustbench_cells.ops.color.hsv_jitter`).
    A part whose amounts are all 0 draws nothing. Always a new array.
    """
    n = len(images)
    out = images
    if space in ("hed", "both") and (hed_sigma or hed_bias):
        scale, bias = stain_jitter_params(n, rng, hed_sigma, hed_bias)
        out = stain_transform(out, scale, bias)
    if space in ("hsv", "both") and (hue or saturation or value):
        out = hsv_jitter(out, rng.uniform(-hue, hue, n), rng.uniform(1 - saturation, 1 + saturation, n),
                         rng.uniform(1 - value, 1 + value, n))
    return out if out is not images else images.copy()


def random_lab(images: np.ndarray, rng: np.random.Generator, *, strength: Range = (0.2, 1.0),
               p: float = 0.8) -> np.ndarray:
    """With probability ``p`` per image, a random lab profile (:func:`robustbench_cells.ops.lab.lab_profile`:
    magnification, OD-space stain, plasma tint, camera, low-res capture) at a strength in ``U(strength)``."""
    n = len(images)
    applied = rng.random(n) < p
    strengths = rng.uniform(strength[0], strength[1], n)
    out = images.copy()
    idx = np.flatnonzero(applied)
    if len(idx):
        out[idx] = lab_profile(images[idx], strengths[idx], rng)
    return out
