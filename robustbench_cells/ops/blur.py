"""Blurs on uint8 batches: defocus (disk), gaussian, motion (random direction per image), zoom, glass.

Lengths and radii are in pixels *at 96 px* and scale with the image's shorter side, so a ladder
calibrated on 96x96 PBC crops means the same optical blur on 28 px or 224 px images.

Batch trick (:func:`filter_batch`): when every image gets the same kernel, the images are padded by
the kernel radius (reflect, as per-image filtering would), stacked into one tall image and filtered
by a single ``cv2.filter2D`` call, then cropped back: no per-image Python overhead. Float planes
``(N, H, W)`` (masks, scores) go through :func:`filter_planes` instead: the planes as the channels
of one image.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import cv2
import numpy as np

REFERENCE_SIZE = 96
_CV_MAX_CHANNELS = 128


def size_scale(images: np.ndarray) -> float:
    """How much larger than 96 px the images are (spatial parameters are given at 96 px)."""
    return min(images.shape[1], images.shape[2]) / REFERENCE_SIZE


def _stacked(images: np.ndarray, pad_y: int, pad_x: int) -> np.ndarray:
    n, h, w, c = images.shape
    padded = np.pad(images, ((0, 0), (pad_y, pad_y), (pad_x, pad_x), (0, 0)), mode="reflect")
    return padded.reshape(n * (h + 2 * pad_y), w + 2 * pad_x, c)


def _unstacked(tall: np.ndarray, n: int, h: int, w: int, pad_y: int, pad_x: int) -> np.ndarray:
    out = tall.reshape(n, h + 2 * pad_y, w + 2 * pad_x, -1)
    return np.ascontiguousarray(out[:, pad_y:pad_y + h, pad_x:pad_x + w])


def filter_batch(images: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate every uint8 image with the same float *kernel* (odd size), reflect borders."""
    n, h, w, _ = images.shape
    ky, kx = kernel.shape[0] // 2, kernel.shape[1] // 2
    if ky >= h or kx >= w or max(kernel.shape) > 11:
        # Kernels > 11 make OpenCV switch to a DFT, which on one tall image is slower than per image.
        return np.stack([cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101) for img in images])
    tall = cv2.filter2D(_stacked(images, ky, kx), -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    return _unstacked(tall, n, h, w, ky, kx)


def filter_planes(planes: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply a 2-D cv2 filter *fn* to every plane of ``(N, H, W)`` at once: the planes become the
    channels of one image, in chunks of at most 128 (OpenCV 5 filters take at most 128 channels,
    4.x 512). *fn* gets ``(H, W, k)`` and must keep the shape; the result has the planes' dtype."""
    out = np.empty_like(planes)
    for start in range(0, len(planes), _CV_MAX_CHANNELS):
        chunk = np.ascontiguousarray(planes[start:start + _CV_MAX_CHANNELS].transpose(1, 2, 0))
        res = fn(chunk)
        out[start:start + _CV_MAX_CHANNELS] = (res[..., None] if res.ndim == 2 else res).transpose(2, 0, 1)
    return out


@lru_cache(maxsize=64)
def disk_kernel(radius: float) -> np.ndarray:
    """Antialiased disk of *radius* px (area-sampled on an 8x grid), normalised to sum 1."""
    r = max(float(radius), 0.5)
    half = int(np.ceil(r - 0.5))
    size = 2 * half + 1
    sub = 8
    coords = (np.arange(size * sub) + 0.5) / sub - size / 2
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    inside = (yy ** 2 + xx ** 2 <= r * r).astype(np.float32)
    kernel = inside.reshape(size, sub, size, sub).mean(axis=(1, 3))
    return (kernel / kernel.sum()).astype(np.float32)


def defocus_blur(images: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
    """Out-of-focus lens blur: a disk (pillbox) kernel of *radius* px at 96 px."""
    return filter_batch(images, disk_kernel(round(radius * size_scale(images), 2)))


def gaussian_blur(images: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur with standard deviation *sigma* px at 96 px."""
    n, h, w, _ = images.shape
    s = sigma * size_scale(images)
    half = max(1, int(np.ceil(3 * s)))
    tall = cv2.GaussianBlur(_stacked(images, half, half), (2 * half + 1, 2 * half + 1), s,
                            borderType=cv2.BORDER_REFLECT_101)
    return _unstacked(tall, n, h, w, half, half)


@lru_cache(maxsize=4096)
def line_kernel(length: float, angle_deg: float) -> np.ndarray:
    """Centred antialiased line of *length* px at *angle_deg*, normalised (a linear motion PSF)."""
    half = max(1, int(np.ceil(length / 2)))
    size = 2 * half + 1
    kernel = np.zeros((size, size), np.float32)
    steps = max(2, int(np.ceil(length * 4)))
    t = np.linspace(-length / 2, length / 2, steps)
    a = np.deg2rad(angle_deg)
    xs, ys = half + t * np.cos(a), half - t * np.sin(a)
    # bilinear splat of the sample points
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dx, dy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = np.clip(x0 + dx, 0, size - 1), np.clip(y0 + dy, 0, size - 1)
        np.add.at(kernel, (yi, xi), wgt.astype(np.float32))
    return kernel / kernel.sum()


def motion_blur(images: np.ndarray, length: float, rng: np.random.Generator) -> np.ndarray:
    """Linear camera/stage motion of *length* px at 96 px, in a uniformly random direction per image."""
    length = round(length * size_scale(images), 2)
    # 1-degree steps: indistinguishable at these lengths, and the 180 kernels are built once (cached)
    angles = rng.integers(0, 180, size=len(images))
    out = np.empty_like(images)
    for i, (img, angle) in enumerate(zip(images, angles)):
        out[i] = cv2.filter2D(img, -1, line_kernel(length, float(angle)), borderType=cv2.BORDER_REFLECT_101)
    return out


def zoom_blur(images: np.ndarray, max_zoom: float, rng: np.random.Generator, steps: int = 6) -> np.ndarray:
    """Average of the image zoomed about its centre by ``1 .. max_zoom`` (*steps* zooms)."""
    n, h, w, _ = images.shape
    zooms = np.linspace(1.0, max_zoom, steps)[1:]
    acc = images.astype(np.uint16)  # at most 8 x 255: no overflow, integer adds are cheapest
    for z in zooms:
        # centre crop of (h/z, w/z) blown up to (h, w); resize of a crop is ~2x cheaper than warpAffine
        ch, cw = max(1, int(round(h / z))), max(1, int(round(w / z)))
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        for i in range(n):
            acc[i] += cv2.resize(images[i, y0:y0 + ch, x0:x0 + cw], (w, h), interpolation=cv2.INTER_LINEAR)
    k = len(zooms) + 1
    return ((acc + k // 2) // k).astype(np.uint8)


def glass_blur(images: np.ndarray, param: tuple[float, float, int], rng: np.random.Generator) -> np.ndarray:
    """Frosted glass (ImageNet-C's ``glass_blur``): Gaussian blur (*sigma* px), then every pixel takes
    the value at a random point up to *delta* px away in x and in y (bilinear), *iterations* times,
    then blur again.

    ImageNet-C swaps pixel pairs up to 1-4 px apart at 224 px in a sequential Python loop (8
    images/s); at 96 px that is 0.4-1.7 px, so the offsets here are continuous and the image is
    sampled bilinearly. Each iteration is one random offset field (one ``rng.bytes`` call mapped to
    [-delta, delta]) applied to the whole batch by :func:`~robustbench_cells.ops.geometric.displace`.
    """
    from robustbench_cells.ops.geometric import displace
    from robustbench_cells.ops.noise import uniform_bytes

    sigma, delta, iterations = param
    n, h, w, _ = images.shape
    d = delta * size_scale(images)
    to_offset = ((np.arange(256) + 0.5) / 256 * 2 - 1).astype(np.float32) * d  # byte -> even in [-d, d]
    out = gaussian_blur(images, sigma, rng)
    for _ in range(int(iterations)):
        # cv2.LUT maps the bytes to float offsets ~5x faster than NumPy fancy indexing
        flow = cv2.LUT(uniform_bytes((n * h, 2 * w), rng), to_offset).reshape(n, h, w, 2)
        out = displace(out, flow, cv2.INTER_LINEAR)
    return gaussian_blur(out, sigma, rng)
