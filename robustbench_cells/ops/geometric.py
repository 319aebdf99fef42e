"""Geometric shifts on uint8 batches: rotation, flips, magnification (scale), translation, and
elastic deformation (a smooth random warp, ImageNet-C's ``elastic_transform``).

Borders are filled by reflection (the smear continues past the crop), never with black corners,
so the shift is about pose and framing, not about a new artefact. Per-pixel displacements
(:func:`displace`) replicate the border instead: they move pixels by a few px only.
"""

from __future__ import annotations

import cv2
import numpy as np

from robustbench_cells.ops.affine import affine_matrices, centre_zoom_matrices, warp_affine_batch


def rotation(images: np.ndarray, degrees: float, rng: np.random.Generator) -> np.ndarray:
    """Rotate each image by *degrees* about its centre, clockwise or anticlockwise at random."""
    n, h, w, _ = images.shape
    angles = degrees * rng.choice(np.array([-1.0, 1.0]), size=n)
    # -angles: these were OpenCV's (anticlockwise) angles; the matrices are the same to the bit.
    return warp_affine_batch(images, affine_matrices((h, w), angle_deg=-angles))


def flip(images: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Flip a random *fraction* of the images: horizontally, vertically or both (equally likely)."""
    n = len(images)
    chosen = rng.random(n) < fraction
    kind = rng.integers(0, 3, size=n)
    out = images.copy()
    for code, flip_axes in ((0, (2,)), (1, (1,)), (2, (1, 2))):
        sel = chosen & (kind == code)
        if sel.any():
            out[sel] = np.flip(images[sel], axis=flip_axes)
    return out


def scale(images: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Magnification: zoom about the centre by *factor* (> 1 enlarges the cell, < 1 shrinks it)."""
    n, h, w, _ = images.shape
    return warp_affine_batch(images, centre_zoom_matrices((h, w), np.full(n, factor)).astype(np.float32))


def translation(images: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Off-centre crop: move the content by *fraction* of the image side in a random direction."""
    n, h, w, _ = images.shape
    angle = rng.uniform(0, 2 * np.pi, size=n)
    shifts = np.stack([np.cos(angle) * fraction * w, np.sin(angle) * fraction * h], axis=1)
    return warp_affine_batch(images, centre_zoom_matrices((h, w), np.ones(n), shifts).astype(np.float32))


def displace(images: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """``out[i, y, x] = images[i, y + flow[i, y, x, 1], x + flow[i, y, x, 0]]`` (*flow*: float32
    ``(N, H, W, 2)`` offsets in px, (dx, dy) interleaved as OpenCV's two-channel maps), with source
    coordinates clamped to the image (replicated border).

    One ``cv2.remap`` per image: stacking the batch into one tall image was no faster and not exact
    (the row offset of a deep image costs float32 precision, and cubic kernels reach across).
    """
    n, h, w, _ = images.shape
    out = np.empty_like(images)
    base = np.empty((h, w, 2), np.float32)
    base[..., 0] = np.arange(w, dtype=np.float32)[None, :]
    base[..., 1] = np.arange(h, dtype=np.float32)[:, None]
    for i in range(n):
        out[i] = cv2.remap(images[i], flow[i] + base, None, interpolation, borderMode=cv2.BORDER_REPLICATE)
    return out


def elastic_transform(images: np.ndarray, param: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Smooth random warp: control points about *spacing* px apart move by *amplitude* px RMS per
    axis (both at 96 px), and every pixel in between follows bicubically: the cell outline and
    nucleus bend.

    The control grid has ``round(side / spacing)`` points per side (OpenCV's resize treats them as
    cell centres, so they sit ``side / points`` px apart); its uniform noise is scaled per image to
    the RMS amplitude and upsampled bicubically, which is smooth without blurring full-resolution noise.
    """
    from robustbench_cells.ops.blur import size_scale

    amplitude, spacing = param
    n, h, w, _ = images.shape
    s = size_scale(images)
    amplitude, spacing = amplitude * s, spacing * s
    gh, gw = max(2, int(round(h / spacing))), max(2, int(round(w / spacing)))
    grid = rng.uniform(-1.0, 1.0, size=(gh, gw, 2 * n)).astype(np.float32)
    grid *= np.repeat(amplitude / (np.sqrt(np.mean(grid.reshape(gh * gw, n, 2) ** 2, axis=(0, 2))) + 1e-6), 2)
    grid = grid.reshape(gh, gw, n, 2)
    flow = np.empty((n, h, w, 2), np.float32)
    for i in range(n):  # bicubic upsampling of the grid: a smooth field, (dx, dy) interleaved
        flow[i] = cv2.resize(np.ascontiguousarray(grid[:, :, i]), (w, h), interpolation=cv2.INTER_CUBIC)
    return displace(images, flow)
