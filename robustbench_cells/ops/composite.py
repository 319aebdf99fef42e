"""Paste masked cells onto foreign backgrounds (the ``background`` augmentation and shift).

Each image gets its own random background (crop, flip) and its own random cell scale and
placement; all random numbers are drawn up front from the explicit ``rng`` so the result depends
only on the generator state, not on how the work is looped.
"""

from __future__ import annotations

import cv2
import numpy as np

from robustbench_cells.ops.affine import centre_zoom_matrices, warp_affine_batch
from robustbench_cells.ops.color import to_uint8
from robustbench_cells.ops.mask import cached_cell_mask, cell_mask


def _check(images: np.ndarray, masks: np.ndarray, backgrounds: np.ndarray) -> None:
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    if masks.shape != images.shape[:3]:
        raise ValueError(f"masks must have shape {images.shape[:3]}, got {masks.shape}")
    if backgrounds.ndim != 4 or backgrounds.shape[-1] != 3 or len(backgrounds) == 0:
        raise ValueError(f"backgrounds must be uint8 (M, h, w, 3) with M >= 1, got {backgrounds.shape}")


def random_background_crops(backgrounds: np.ndarray, n: int, size: tuple[int, int],
                            rng: np.random.Generator, crop: tuple[float, float] = (0.5, 1.0)) -> np.ndarray:
    """``n`` uint8 ``(n, H, W, 3)`` patches: random background, random square crop (side a fraction
    *crop* of the shorter side), random horizontal/vertical flip, resized to *size* ``(H, W)``."""
    h, w = size
    m, bh, bw = backgrounds.shape[:3]
    which = rng.integers(0, m, size=n)
    side = np.maximum(1, (rng.uniform(crop[0], crop[1], size=n) * min(bh, bw)).astype(int))
    top = (rng.random(n) * (bh - side + 1)).astype(int)
    left = (rng.random(n) * (bw - side + 1)).astype(int)
    flips = rng.random((n, 2)) < 0.5
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        patch = backgrounds[which[i], top[i]:top[i] + side[i], left[i]:left[i] + side[i]]
        if flips[i, 0]:
            patch = patch[:, ::-1]
        if flips[i, 1]:
            patch = patch[::-1]
        out[i] = cv2.resize(np.ascontiguousarray(patch), (w, h), interpolation=cv2.INTER_LINEAR)
    return out


def composite_backgrounds(images: np.ndarray, masks: np.ndarray, backgrounds: np.ndarray,
                          rng: np.random.Generator, scale: tuple[float, float] = (0.8, 1.2),
                          max_offset: float = 0.15, crop: tuple[float, float] = (0.5, 1.0)) -> np.ndarray:
    """Cut each cell out with its soft mask and paste it onto a random background: uint8 ``(N, H, W, 3)``.

    - ``images`` uint8 ``(N, H, W, 3)``; ``masks`` float ``(N, H, W)`` in ``[0, 1]`` (from
      :func:`robustbench_cells.ops.mask.cell_mask`); ``backgrounds`` uint8 ``(M, h, w, 3)``.
    - ``scale``: range of the cell's zoom factor around the image centre.
    - ``max_offset``: largest shift of the cell, as a fraction of the image side (uniform in
      ``[-max_offset, max_offset]`` on each axis).
    - ``crop``: range of the background crop side as a fraction of its shorter side (then resized).
    An image whose mask is empty comes back as pure background (the cell was not found).
    """
    images = np.asarray(images)
    masks = np.asarray(masks, dtype=np.float32)
    backgrounds = np.asarray(backgrounds)
    _check(images, masks, backgrounds)
    n, h, w = images.shape[:3]
    if n == 0:
        return images.copy()
    # Draw everything first (fixed order) so the stream of random numbers is layout-independent.
    zoom = rng.uniform(scale[0], scale[1], size=n)
    shift = rng.uniform(-max_offset, max_offset, size=(n, 2)) * np.array([w, h])
    bg = random_background_crops(backgrounds, n, (h, w), rng, crop=crop).astype(np.float32)
    matrices = centre_zoom_matrices((h, w), zoom, shift).astype(np.float32)
    cells = warp_affine_batch(images, matrices).astype(np.float32)
    # The mask's border is 0, so the cell never drags image edges into the new scene.
    alpha = warp_affine_batch(np.ascontiguousarray(masks), matrices, border=cv2.BORDER_CONSTANT)
    a = alpha[..., None]
    out = a * cells + (1.0 - a) * bg
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def random_background(images: np.ndarray, rng: np.random.Generator, backgrounds: np.ndarray, *, p: float = 0.5,
                      scale: tuple[float, float] = (0.8, 1.2), max_offset: float = 0.15) -> np.ndarray:
    """The ``background`` augmentation: with probability ``p`` per image, the cell (its
    :func:`~robustbench_cells.ops.mask.cell_mask`) pasted on a random crop of *backgrounds*
    (:func:`composite_backgrounds` with ``scale``/``max_offset``). Always a new array."""
    chosen = np.flatnonzero(rng.random(len(images)) < p)
    out = images.copy()
    if len(chosen):
        sub = images[chosen]
        out[chosen] = composite_backgrounds(sub, cell_mask(sub), backgrounds, rng, scale=scale, max_offset=max_offset)
    return out


def background_shift(images: np.ndarray, param: tuple[float, float], rng: np.random.Generator,
                     backgrounds: np.ndarray) -> np.ndarray:
    """The ``background`` shift: every cell pasted, at its size, on a random background crop, moved by up
    to ``param[1]`` of the side, and the result blended over the original with opacity ``param[0]``.

    Uses :func:`~robustbench_cells.ops.mask.cached_cell_mask`: a shifted-set build asks for the same
    chunk's mask once per severity, and the mask costs more than the compositing.
    """
    opacity, offset = param
    pasted = composite_backgrounds(images, cached_cell_mask(images), backgrounds, rng, scale=(1.0, 1.0),
                                   max_offset=offset)
    if opacity >= 1.0:
        return pasted
    mixed = images.astype(np.float32) * (1.0 - opacity) + pasted.astype(np.float32) * opacity
    return to_uint8(mixed)
