"""Digital artefacts on uint8 batches: JPEG compression, pixelation, downscale-upscale (resolution)."""

from __future__ import annotations

import cv2
import numpy as np
import simplejpeg


def jpeg_compression(images: np.ndarray, quality: int, rng: np.random.Generator) -> np.ndarray:
    """Encode and decode each image as JPEG at *quality* (1..100), baseline 4:2:0, with libjpeg-turbo.

    simplejpeg calls libjpeg-turbo's TurboJPEG API straight from RGB and decodes into the output
    array, so there is no colour swap, no temporary image and little per-call overhead: about 1.7x
    OpenCV's ``imencode``/``imdecode`` on 96 px crops (benchmarks/perf/shifts.py). The output is the
    same on every SIMD path libjpeg-turbo picks (checked with ``JSIMD_FORCENONE``/``SSE2``/``AVX2``).
    """
    images = np.ascontiguousarray(images)
    out = np.empty_like(images)
    q = int(quality)
    for i in range(len(images)):
        data = simplejpeg.encode_jpeg(images[i], quality=q, colorspace="RGB", colorsubsampling="420")
        simplejpeg.decode_jpeg(data, colorspace="RGB", buffer=out[i])
    return out


def _down_up(images: np.ndarray, factor: float, up: int) -> np.ndarray:
    n, h, w, _ = images.shape
    sh, sw = max(2, int(round(h * factor))), max(2, int(round(w * factor)))
    out = np.empty_like(images)
    for i, img in enumerate(images):
        small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
        out[i] = cv2.resize(small, (w, h), interpolation=up)
    return out


def pixelate(images: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Shrink to *factor* of the size (area average) and blow back up with nearest neighbour (blocks)."""
    return _down_up(images, factor, cv2.INTER_NEAREST_EXACT)  # pixel-centre aligned (no half-pixel shift)


def downscale(images: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """A lower-resolution camera: shrink to *factor* (area average), upsample bicubically (soft, no blocks)."""
    return _down_up(images, factor, cv2.INTER_CUBIC)
