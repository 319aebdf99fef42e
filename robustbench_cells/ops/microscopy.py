"""Microscope artefacts on uint8 batches: air bubbles, dust specks, uneven illumination, tilted focus.

Absorbing things (dust, stain precipitate in :mod:`ops.stain`) are modelled as an optical density
added to the image (Beer-Lambert: ``I' = I * exp(-density * od_colour)``), so a speck darkens a
white background and a violet nucleus alike, as it would under the microscope.
Lengths are in pixels at 96 px and scale with the image size (see :func:`ops.blur.size_scale`).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from robustbench_cells.ops.blur import defocus_blur, size_scale
from robustbench_cells.ops.color import to_uint8


def spot_density(n: int, h: int, w: int, count: int, sigma: float, rng: np.random.Generator,
                 amplitude: tuple[float, float] = (0.6, 2.0)) -> np.ndarray:
    """float32 ``(n, h, w)`` map in ``[0, 1]`` with *count* soft round spots per image.

    Each spot is a Gaussian of width *sigma* px whose peak is its amplitude, clipped at 1: a bigger
    amplitude gives a bigger solid core, so spot sizes vary without one blur per size.
    """
    ys = rng.uniform(0, h, size=(n, count))
    xs = rng.uniform(0, w, size=(n, count))
    amp = rng.uniform(amplitude[0], amplitude[1], size=(n, count)).astype(np.float32)
    pad = max(1, int(np.ceil(3 * sigma)))
    dens = np.zeros((n, h + 2 * pad, w + 2 * pad), np.float32)
    idx = np.repeat(np.arange(n), count)
    # plain assignment (not np.add.at, ~10x slower): two spots on the same pixel just merge into one
    dens[idx, ys.astype(int).ravel() + pad, xs.astype(int).ravel() + pad] = amp.ravel()
    # zero padding between the stacked images keeps spots from bleeding into the neighbour
    tall = dens.reshape(n * (h + 2 * pad), w + 2 * pad)
    k = 2 * pad + 1
    tall = cv2.GaussianBlur(tall, (k, k), sigma, borderType=cv2.BORDER_CONSTANT) * (2 * np.pi * sigma * sigma)
    out = tall.reshape(n, h + 2 * pad, w + 2 * pad)[:, pad:pad + h, pad:pad + w]
    return np.clip(out, 0.0, 1.0)


def absorb(images: np.ndarray, density: np.ndarray, od_colour: tuple[float, float, float]) -> np.ndarray:
    """Darken uint8 *images* by ``exp(-density * od_colour)`` per channel (Beer-Lambert)."""
    # density quantised to 256 levels -> per-channel transmission table; then all-uint8 cv2 arithmetic.
    # Pixels without a spot (density 0) have transmission 255/255 and come back unchanged.
    levels = np.arange(256, dtype=np.float32)[:, None] / 255.0
    table = to_uint8(255.0 * np.exp(-levels * np.asarray(od_colour, dtype=np.float32)[None, :]))
    n, h, w, _ = images.shape
    d8 = to_uint8(density.reshape(n * h, w) * 255.0)
    transmission = cv2.LUT(cv2.merge([d8, d8, d8]), table.reshape(1, 256, 3))
    out = cv2.multiply(images.reshape(n * h, w, 3), transmission, scale=1.0 / 255.0)
    return out.reshape(images.shape)


def dust(images: np.ndarray, param: tuple[int, float], rng: np.random.Generator) -> np.ndarray:
    """Dust and debris specks: ``param = (count, size_px)``; grey-brown absorbing spots."""
    count, size = param
    n, h, w, _ = images.shape
    s = size_scale(images)
    density = spot_density(n, h, w, int(round(count * s * s)), size * s, rng, amplitude=(0.4, 2.5))
    return absorb(images, density, (1.1, 1.2, 1.3))


@lru_cache(maxsize=512)
def _bubble_template(radius: float) -> tuple[np.ndarray, np.ndarray, int]:
    """``(gain, offset, half)``: a bubble of *radius* px acts as ``pixel * gain + offset`` on a
    ``(2 half + 1)^2`` patch. Dark refracting rim (-55%), interior pulled 35% towards a bright haze."""
    half = int(np.ceil(radius * 1.3)) + 1
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
    dist = np.sqrt(yy * yy + xx * xx) / radius
    rim = 1.0 - 0.55 * np.exp(-(((dist - 1.0) / 0.12) ** 2))
    inside = dist < 1.0
    gain = (rim * np.where(inside, 0.65, 1.0)).astype(np.float32)
    offset = (rim * np.where(inside, 0.35 * 245.0, 0.0)).astype(np.float32)
    return gain[..., None], offset[..., None], half


def bubble(images: np.ndarray, param: tuple[int, float], rng: np.random.Generator) -> np.ndarray:
    """Air bubbles in the mounting medium: ``param = (count, radius_px)``.

    Each bubble (radius uniform in ``[0.6, 1.0] * radius``, rounded to 1/4 px so templates are reused)
    has a dark refracting rim and a slightly brighter, lower-contrast interior, as trapped air looks
    in bright-field microscopy. Only the bubble's bounding box is touched.
    """
    count, radius = param
    n, h, w, _ = images.shape
    s = size_scale(images)
    radii = np.round(rng.uniform(0.6, 1.0, size=(n, count)) * radius * s * 4) / 4
    cy = rng.integers(0, h, size=(n, count))
    cx = rng.integers(0, w, size=(n, count))
    out = images.copy()
    for i in range(n):
        for j in range(count):
            gain, offset, half = _bubble_template(float(max(radii[i, j], 1.0)))
            y0, y1 = max(cy[i, j] - half, 0), min(cy[i, j] + half + 1, h)
            x0, x1 = max(cx[i, j] - half, 0), min(cx[i, j] + half + 1, w)
            ty, tx = y0 - (cy[i, j] - half), x0 - (cx[i, j] - half)
            g = gain[ty:ty + y1 - y0, tx:tx + x1 - x0]
            o = offset[ty:ty + y1 - y0, tx:tx + x1 - x0]
            patch = out[i, y0:y1, x0:x1]
            out[i, y0:y1, x0:x1] = np.clip(patch * g + o + 0.5, 0, 255).astype(np.uint8)
    return out


def vignetting(images: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Uneven illumination: light falls off as ``1 - strength * r^2`` from a randomly off-centre spot
    (r = 1 at the corners of a centred field)."""
    n, h, w, _ = images.shape
    centre = rng.uniform(-0.25, 0.25, size=(n, 2)).astype(np.float32)
    yy = (np.arange(h, dtype=np.float32) / max(h - 1, 1) - 0.5)[None, :, None]
    xx = (np.arange(w, dtype=np.float32) / max(w - 1, 1) - 0.5)[None, None, :]
    r2 = ((yy - centre[:, 0, None, None]) ** 2 + (xx - centre[:, 1, None, None]) ** 2) / 0.5
    gain = np.clip(1.0 - strength * r2, 0.0, 1.0).reshape(n * h, w)
    # blendLinear: per-pixel weights on uint8, one SIMD call for the whole (stacked) batch
    out = cv2.blendLinear(images.reshape(n * h, w, 3), np.zeros((n * h, w, 3), np.uint8), gain, 1.0 - gain)
    return out.reshape(images.shape)


def out_of_focus(images: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
    """A tilted slide: defocus blur of *radius* px that fades in across the field in a random direction
    (one edge sharp, the opposite edge fully blurred)."""
    n, h, w, _ = images.shape
    blurred = defocus_blur(images, radius, rng)
    angle = rng.uniform(0, 2 * np.pi, size=n).astype(np.float32)
    yy = (np.arange(h, dtype=np.float32) / max(h - 1, 1) - 0.5)[None, :, None]
    xx = (np.arange(w, dtype=np.float32) / max(w - 1, 1) - 0.5)[None, None, :]
    proj = xx * np.cos(angle)[:, None, None] + yy * np.sin(angle)[:, None, None]  # -0.7..0.7
    alpha = np.clip(proj / 0.7 + 0.5, 0.0, 1.0).reshape(n * h, w)
    out = cv2.blendLinear(blurred.reshape(n * h, w, 3), images.reshape(n * h, w, 3), alpha, 1.0 - alpha)
    return out.reshape(images.shape)
