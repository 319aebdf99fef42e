"""Digital artefacts on uint8 batches: JPEG compression, pixelation, downscale-upscale (resolution)."""

from __future__ import annotations

import cv2
import numpy as np


def jpeg_compression(images: np.ndarray, quality: int, rng: np.random.Generator) -> np.ndarray:
    """Encode and decode each image as JPEG at *quality* (1..100) with OpenCV's libjpeg-turbo (4:2:0).

    The encoder is given true BGR (one batch colour swap) so luma and chroma are those of the real
    RGB image; the decoder writes RGB directly (``IMREAD_COLOR_RGB``), so there is no second swap.
    """
    n, h, w, _ = images.shape
    bgr = cv2.cvtColor(images.reshape(n * h, w, 3), cv2.COLOR_RGB2BGR).reshape(images.shape)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    out = np.empty_like(images)
    for i in range(n):
        ok, buf = cv2.imencode(".jpg", bgr[i], params)
        if not ok:  # pragma: no cover - OpenCV only fails on empty images
            raise RuntimeError("cv2.imencode failed")
        out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR_RGB)
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
