"""Stain normalisation: Reinhard (CIELAB moments) and Macenko (optical-density stain vectors).

- Reinhard, Adhikhmin, Gooch & Shirley (2001), "Color transfer between images": match the per-channel
  mean and standard deviation in a decorrelated colour space (CIELAB here, as in most pathology uses).
- Macenko et al. (2009), "A method for normalizing histology slides for quantitative analysis":
  find the two stain vectors as the extreme angles of the OD pixels projected on their top-2
  principal plane, unmix by least squares, rescale the 99th-percentile concentrations to the
  reference and re-mix with the reference vectors. This follows torchstain's NumPy backend
  (itself from schaugf/HEnorm_python) with two changes needed here: the vectors are fitted on a
  whole SET of small crops at once (one 96x96 blood crop has too few stained pixels for a stable
  eigen-decomposition), and the fitted parameters are plain arrays that can be stored in JSON.

Why not depend on torchstain: its NumPy backend installs without torch (torchstain 1.4.1 needs only
numpy), but it fits and normalises one image per call through name-mangled private methods, uses
a fixed ``Io=240`` that saturates our bright plasma backgrounds, and casts to uint8 without
clipping negatives; the ~40 lines below are the same algorithm, batched.
"""

from __future__ import annotations

import cv2
import numpy as np

from robustbench_cells.ops.color import to_uint8

#: OD below this (all channels) is background, ignored when fitting stain vectors (Macenko's beta).
OD_THRESHOLD = 0.15
#: Percentile of the projected angles taken as the extreme stain directions (Macenko's alpha).
ANGLE_PERCENTILE = 1.0
_MAX_FIT_PIXELS = 400_000


def rgb_to_lab(images: np.ndarray) -> np.ndarray:
    """uint8 RGB ``(N,H,W,3)`` -> float32 CIELAB (L 0..100, a/b about -128..127)."""
    n, h, w, _ = images.shape
    flat = images.reshape(n * h, w, 3).astype(np.float32) * (1.0 / 255.0)
    return cv2.cvtColor(flat, cv2.COLOR_RGB2Lab).reshape(n, h, w, 3)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """float32 CIELAB ``(N,H,W,3)`` -> uint8 RGB (clipped)."""
    n, h, w, _ = lab.shape
    rgb = cv2.cvtColor(np.ascontiguousarray(lab, dtype=np.float32).reshape(n * h, w, 3), cv2.COLOR_Lab2RGB)
    return to_uint8(rgb.reshape(n, h, w, 3) * 255.0)


def lab_moments(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel CIELAB mean and std over every pixel of the set, float64 ``(3,)`` each."""
    lab = rgb_to_lab(np.asarray(images)).reshape(-1, 3).astype(np.float64)
    return lab.mean(axis=0), lab.std(axis=0) + 1e-6


def reinhard(images: np.ndarray, mean: np.ndarray, std: np.ndarray, per_image: bool = False) -> np.ndarray:
    """Map the CIELAB moments of *images* (of the set, or of each image) onto ``mean``/``std``."""
    lab = rgb_to_lab(np.asarray(images))
    mean = np.asarray(mean, np.float32)
    std = np.asarray(std, np.float32)
    axes = (1, 2) if per_image else (0, 1, 2)
    # float64 accumulators: a float32 mean over a whole test set (tens of millions of pixels,
    # reduced over non-contiguous axes) drifts by several L units and wrecked the mapping.
    src_mean = lab.mean(axis=axes, keepdims=True, dtype=np.float64).astype(np.float32)
    src_std = lab.std(axis=axes, keepdims=True, dtype=np.float64).astype(np.float32) + 1e-6
    return lab_to_rgb((lab - src_mean) / src_std * std + mean)


def _od(images: np.ndarray) -> np.ndarray:
    # Same Beer-Lambert convention as ops.color: white (255) is OD 0.
    return -np.log((np.asarray(images, np.float64).reshape(-1, 3) + 1.0) / 256.0)


def fit_macenko(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stain vectors ``(3, 2)`` (unit columns, the red-absorbing azure/haematoxylin first) and the
    99th-percentile concentrations ``(2,)`` of a set of uint8 images. Deterministic."""
    od = _od(images)
    stride = max(1, len(od) // _MAX_FIT_PIXELS)
    od = od[::stride]
    stained = od[~np.any(od < OD_THRESHOLD, axis=1)]
    if len(stained) < 10:
        stained = od[od.sum(axis=1) > np.percentile(od.sum(axis=1), 75)]
    _, vecs = np.linalg.eigh(np.cov(stained.T))
    plane = vecs[:, 1:3]
    plane = plane * np.where(plane.sum(axis=0) < 0, -1.0, 1.0)  # eigenvector signs are arbitrary
    proj = stained @ plane
    phi = np.arctan2(proj[:, 1], proj[:, 0])
    lo, hi = np.percentile(phi, ANGLE_PERCENTILE), np.percentile(phi, 100 - ANGLE_PERCENTILE)
    v1 = plane @ np.array([np.cos(lo), np.sin(lo)])
    v2 = plane @ np.array([np.cos(hi), np.sin(hi)])
    stains = np.stack([v1, v2] if v1[0] > v2[0] else [v2, v1], axis=1)
    stains = np.abs(stains) / np.linalg.norm(stains, axis=0, keepdims=True)
    conc = np.linalg.lstsq(stains, _od(images)[::stride].T, rcond=None)[0]
    max_conc = np.maximum(np.percentile(conc, 99, axis=1), 1e-3)
    return stains, max_conc


def macenko(images: np.ndarray, stains_ref: np.ndarray, max_conc_ref: np.ndarray) -> np.ndarray:
    """Re-stain a set of uint8 images with the reference stain vectors/concentrations (fitted on the set)."""
    images = np.asarray(images)
    stains, max_conc = fit_macenko(images)
    od_in = _od(images).T
    conc = np.linalg.lstsq(stains, od_in, rcond=None)[0]
    # What two stains cannot explain (plasma tint, haemoglobin) is dropped, as in Macenko: keeping
    # the least-squares residual kept tecom96's yellow background (Lab b* error 31 vs 12 without).
    conc *= (np.asarray(max_conc_ref, np.float64) / max_conc)[:, None]
    od = (np.asarray(stains_ref, np.float64) @ conc).T
    rgb = 256.0 * np.exp(-od) - 1.0
    return to_uint8(rgb.reshape(images.shape))
