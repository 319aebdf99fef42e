"""Colour-space conversions and a stain transform with explicit parameters.

All functions take uint8 RGB batches ``(N, H, W, 3)`` (or a single ``(H, W, 3)`` image where noted)
and are vectorised over the batch. Float intermediate arrays are float32.

- HSV: ``rgb_to_hsv`` / ``hsv_to_rgb`` with H in degrees ``[0, 360)``, S and V in ``[0, 1]``;
  ``rgb_to_hsv8`` / ``hsv8_to_rgb``: OpenCV's uint8 HSV (H in 0..179, 2-degree steps), the fast path
  for pointwise HSV edits (``hsv_jitter``, the ``saturate`` and ``hue_shift`` shifts).
- Optical density (Beer-Lambert): ``od = -log((I + 1) / 256)`` per channel, ``rgb_to_od`` / ``od_to_rgb``.
  The ``+1`` keeps black pixels finite; white (255) maps to exactly 0.
- HED (haematoxylin, eosin, DAB; Ruifrok & Johnston 2001, the matrix scikit-image uses):
  ``rgb_to_hed`` / ``hed_to_rgb`` work on the optical density, so stain concentrations are linear.
  PBC smears are May-Grunwald-Giemsa stained, not H&E; the HED basis is still a good stand-in
  because Giemsa's azure (blue-purple) and eosin (pink) components lie close to H and E.
- ``stain_transform(images, scale, bias)``: multiply and offset the stain concentrations
  (``c' = c * scale + bias``) -- a different lab's staining. ``scale``/``bias`` are ``(3,)`` for the
  whole batch or ``(N, 3)`` per image; the caller draws them from its own generator.
"""

from __future__ import annotations

import cv2
import numpy as np

from robustbench_cells.ops.lut import apply_luts

#: Rows are the RGB optical-density vectors of haematoxylin, eosin and DAB (skimage ``rgb_from_hed``).
RGB_FROM_HED = np.array([[0.65, 0.70, 0.29],
                         [0.07, 0.99, 0.11],
                         [0.27, 0.57, 0.78]], dtype=np.float64)
#: Inverse of :data:`RGB_FROM_HED`: ``hed = od @ HED_FROM_RGB``.
HED_FROM_RGB = np.linalg.inv(RGB_FROM_HED)

# od of every uint8 value, looked up instead of a log per pixel (256 entries, exact).
_OD_LUT = (-np.log((np.arange(256, dtype=np.float64) + 1.0) / 256.0)).astype(np.float32)


def _as_batch(images: np.ndarray) -> tuple[np.ndarray, bool]:
    if images.ndim == 3:
        return images[None], True
    return images, False


def rgb_to_hsv(images: np.ndarray) -> np.ndarray:
    """uint8 RGB ``(N,H,W,3)`` or ``(H,W,3)`` -> float32 HSV (H degrees 0..360, S, V in 0..1)."""
    batch, single = _as_batch(images)
    n, h, w, _ = batch.shape
    flat = batch.reshape(n * h, w, 3).astype(np.float32) * (1.0 / 255.0)
    hsv = cv2.cvtColor(flat, cv2.COLOR_RGB2HSV).reshape(n, h, w, 3)
    return hsv[0] if single else hsv


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """float32 HSV (H degrees, wraps; S, V clipped to 0..1) -> uint8 RGB of the same leading shape."""
    batch, single = _as_batch(np.asarray(hsv, dtype=np.float32))
    n, h, w, _ = batch.shape
    hsv = batch.copy()
    hsv[..., 0] %= 360.0
    np.clip(hsv[..., 1:], 0.0, 1.0, out=hsv[..., 1:])
    rgb = cv2.cvtColor(hsv.reshape(n * h, w, 3), cv2.COLOR_HSV2RGB).reshape(n, h, w, 3)
    out = to_uint8(rgb * 255.0)
    return out[0] if single else out


def rgb_to_hsv8(images: np.ndarray) -> np.ndarray:
    """uint8 RGB ``(N,H,W,3)`` -> OpenCV uint8 HSV (H 0..179 in 2-degree steps, S and V 0..255), one cv2 call."""
    n, h, w, _ = images.shape
    return cv2.cvtColor(images.reshape(n * h, w, 3), cv2.COLOR_RGB2HSV).reshape(images.shape)


def hsv8_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """OpenCV uint8 HSV ``(N,H,W,3)`` -> uint8 RGB (inverse of :func:`rgb_to_hsv8`)."""
    n, h, w, _ = hsv.shape
    return cv2.cvtColor(hsv.reshape(n * h, w, 3), cv2.COLOR_HSV2RGB).reshape(hsv.shape)


def hsv_jitter(images: np.ndarray, hue_deg: np.ndarray, sat: np.ndarray, val: np.ndarray) -> np.ndarray:
    """Per image ``i``: hue + ``hue_deg[i]`` degrees, saturation x ``sat[i]``, value x ``val[i]`` (uint8 RGB in and out).

    Done in OpenCV's 8-bit HSV with one 3-channel lookup table per image: ~5x faster than the
    float HSV round trip; hue is quantised to 2 degrees, which is far below the jitter itself.
    """
    # float64 tables: the rounding of ``level * factor`` decides output bytes, so it is pinned here.
    levels = np.arange(256, dtype=np.float64)[None, :]
    hue = np.asarray(hue_deg, np.float64)[:, None]
    hue_lut = np.where(levels < 180, np.mod(levels + np.rint(hue / 2.0), 180), levels)  # 180..255 never occur
    luts = np.stack([hue_lut, levels * np.asarray(sat, np.float64)[:, None],
                     levels * np.asarray(val, np.float64)[:, None]], axis=-1)  # (n, 256, 3)
    return hsv8_to_rgb(apply_luts(rgb_to_hsv8(images), to_uint8(luts)))


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Round and clip a float array on the 0..255 scale to uint8."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def rgb_to_od(images: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 optical density ``-log((I + 1) / 256)`` (0 for white, ~5.5 for black)."""
    return _OD_LUT[images]


def od_to_rgb(od: np.ndarray) -> np.ndarray:
    """float optical density -> uint8 RGB (inverse of :func:`rgb_to_od`, clipped)."""
    return to_uint8(np.exp(-np.asarray(od, dtype=np.float32)) * 256.0 - 1.0)


def rgb_to_hed(images: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 HED stain concentrations (linear in optical density; may be negative)."""
    od = rgb_to_od(images)
    return (od.reshape(-1, 3) @ HED_FROM_RGB.astype(np.float32)).reshape(od.shape)


def hed_to_rgb(hed: np.ndarray) -> np.ndarray:
    """float HED stain concentrations -> uint8 RGB (inverse of :func:`rgb_to_hed`)."""
    hed = np.asarray(hed, dtype=np.float32)
    od = (hed.reshape(-1, 3) @ RGB_FROM_HED.astype(np.float32)).reshape(hed.shape)
    return od_to_rgb(np.maximum(od, 0.0))


def stain_transform(images: np.ndarray, scale: np.ndarray | tuple[float, float, float],
                    bias: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """Re-stain uint8 RGB ``(N,H,W,3)``: HED concentrations ``c' = c * scale + bias``.

    ``scale``/``bias`` are ``(3,)`` (whole batch) or ``(N, 3)`` (one per image), ordered H, E, D.
    ``scale=1, bias=0`` returns the input up to rounding (max 1 grey level).
    The whole transform is one 3x3 linear map in optical density per image (``M = Hinv diag(s) H``
    plus an offset), so it costs one matrix product per pixel.
    """
    batch, single = _as_batch(images)
    n, h, w, _ = batch.shape
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float32), (n, 3))
    bias = np.broadcast_to(np.asarray(bias, dtype=np.float32), (n, 3))
    h2r = RGB_FROM_HED.astype(np.float32)
    r2h = HED_FROM_RGB.astype(np.float32)
    # Per-image OD -> OD map, as cv2.transform wants it (out = M[:, :3] @ od + M[:, 3]):
    # od' = od @ r2h @ diag(s) @ h2r + b @ h2r
    maps = np.einsum("ij,nj,jl->nli", r2h, scale, h2r)  # (n, 3, 3), already transposed for cv2
    offsets = bias @ h2r  # (n, 3)
    affine = np.concatenate([maps, offsets[:, :, None]], axis=2).astype(np.float32)  # (n, 3, 4)
    od = rgb_to_od(batch)
    for i in range(n):  # cv2.transform: one SIMD pass per image instead of a batched 3x3 matmul
        od[i] = cv2.transform(od[i], affine[i])
    np.clip(od, 0.0, _OD_LUT[0], out=od)  # >= 0: no brighter than white; <= od(0): exp()*256-1 >= 0
    rgb = cv2.exp(-od.reshape(n * h, w, 3))
    out = cv2.convertScaleAbs(rgb, alpha=256.0, beta=-1.0).reshape(batch.shape)  # rounds and saturates
    return out[0] if single else out


def stain_jitter_params(n: int, rng: np.random.Generator, sigma: float, bias: float) -> tuple[np.ndarray, np.ndarray]:
    """Draw per-image HED ``(scale, bias)`` as in Tellez et al. 2018: ``scale ~ U(1-sigma, 1+sigma)``,
    ``bias ~ U(-bias, bias)``, each ``(n, 3)``."""
    scale = rng.uniform(1.0 - sigma, 1.0 + sigma, size=(n, 3)).astype(np.float32)
    offset = rng.uniform(-bias, bias, size=(n, 3)).astype(np.float32)
    return scale, offset
