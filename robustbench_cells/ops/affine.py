"""Affine warps of uint8 (or float) batches with one 2x3 matrix per image, and the matrices.

The one warp loop of cellbench: training ops (``simple``, AugMix, RandAugment), geometric shifts,
magnification (:func:`robustbench_cells.ops.scale.zoom`) and background compositing all call
:func:`warp_affine_batch`. OpenCV cannot batch different matrices, so it is one ``cv2.warpAffine``
per image (~10-20 µs at 96x96), written straight into the output batch.

Two matrix builders, kept apart because their float rounding is part of the shifted sets' bytes:
:func:`affine_matrices` composes flip, shear, rotation, zoom and shift (the training ops and the
``rotation`` shift); :func:`centre_zoom_matrices` is the closed form of a zoom about the centre
plus a shift (``scale``, ``translation``, ``zoom``, compositing).
"""

from __future__ import annotations

import cv2
import numpy as np

_IDENTITY = np.array([[1, 0, 0], [0, 1, 0]], np.float32)


def affine_matrices(size: tuple[int, int], *, angle_deg: np.ndarray | None = None, zoom: np.ndarray | None = None,
                    shift: np.ndarray | None = None, shear: np.ndarray | None = None,
                    flip_h: np.ndarray | None = None, flip_v: np.ndarray | None = None,
                    n: int | None = None) -> np.ndarray:
    """Per-image 2x3 affine matrices ``(n, 2, 3)`` float32 about the image centre.

    ``angle_deg``/``zoom`` ``(n,)`` (a positive angle turns clockwise on screen, y pointing down);
    ``shift`` ``(n, 2)`` in pixels (x, y); ``shear`` ``(n, 2)`` (x, y shear factors);
    ``flip_h``/``flip_v`` boolean ``(n,)``. Missing parts are identity.
    Order: flip, shear, zoom + rotation, then shift.
    """
    h, w = size
    lengths = [len(a) for a in (angle_deg, zoom, shift, shear, flip_h, flip_v) if a is not None]
    n = n if n is not None else (lengths[0] if lengths else 0)
    a = np.tile(np.eye(2, dtype=np.float64), (n, 1, 1))
    if flip_h is not None:
        a[:, 0, 0] *= np.where(flip_h, -1.0, 1.0)
    if flip_v is not None:
        a[:, 1, 1] *= np.where(flip_v, -1.0, 1.0)
    if shear is not None:
        sh = np.tile(np.eye(2), (n, 1, 1))
        sh[:, 0, 1] = shear[:, 0]
        sh[:, 1, 0] = shear[:, 1]
        a = sh @ a
    if angle_deg is not None or zoom is not None:
        theta = np.deg2rad(angle_deg if angle_deg is not None else np.zeros(n))
        z = zoom if zoom is not None else np.ones(n)
        cos, sin = np.cos(theta) * z, np.sin(theta) * z
        rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
        a = rot @ a
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    t = centre - a @ centre
    if shift is not None:
        t = t + shift
    return np.concatenate([a, t[..., None]], axis=-1).astype(np.float32)


def centre_zoom_matrices(size: tuple[int, int], zoom: np.ndarray, shift: np.ndarray | None = None) -> np.ndarray:
    """float64 ``(n, 2, 3)``: zoom each image by ``zoom[i]`` about its centre, then move it by
    ``shift[i]`` = (x, y) px: ``[[z, 0, (1 - z) cx + sx], [0, z, (1 - z) cy + sy]]``."""
    h, w = size
    z = np.asarray(zoom, np.float64)
    m = np.zeros((len(z), 2, 3), np.float64)
    m[:, 0, 0] = m[:, 1, 1] = z
    m[:, 0, 2] = (1 - z) * ((w - 1) / 2)
    m[:, 1, 2] = (1 - z) * ((h - 1) / 2)
    if shift is not None:
        m[:, :, 2] += shift
    return m


def compose_affine(second: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The 2x3 matrices of ``second o first`` for stacks ``(k, 2, 3)``."""
    a = second[:, :, :2] @ first[:, :, :2]
    t = (second[:, :, :2] @ first[:, :, 2:])[..., 0] + second[:, :, 2]
    return np.concatenate([a, t[..., None]], axis=-1).astype(np.float32)


def warp_affine_batch(images: np.ndarray, matrices: np.ndarray, border: int = cv2.BORDER_REFLECT_101,
                      interpolation: int = cv2.INTER_LINEAR, border_values: np.ndarray | None = None) -> np.ndarray:
    """Warp each image ``(N, H, W[, C])`` with its own 2x3 matrix; identity matrices are copied, not resampled.

    Reflected borders by default: a smear continues past the crop edge, a black corner would be
    a give-away artefact the model could learn. ``border_values`` ``(N, C)``: the fill of each image
    with ``border=cv2.BORDER_CONSTANT`` (default 0).
    """
    n, h, w = images.shape[:3]
    out = np.empty(images.shape, images.dtype)  # C-contiguous, so out[i] can be cv2's dst
    is_identity = (np.abs(matrices - _IDENTITY) < 1e-6).all(axis=(1, 2))
    for i in range(n):
        if is_identity[i]:
            out[i] = images[i]
            continue
        extra = {} if border_values is None else {"borderValue": tuple(float(v) for v in border_values[i])}
        # dst= writes straight into the batch (out[i] is a contiguous view): no extra copy.
        cv2.warpAffine(images[i], matrices[i], (w, h), dst=out[i], flags=interpolation, borderMode=border, **extra)
    return out
