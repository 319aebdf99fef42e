"""Batch-level MixUp and CutMix on float images and soft labels.

Both take float32 images ``(N, H, W, 3)`` on the 0..255 scale and float32 label distributions
``(N, C)``, pair each image with a random partner from the same batch, and mix images *and*
labels with a per-sample ratio, so every output label row is still a probability distribution.
"""

from __future__ import annotations

import numpy as np


def _check(images: np.ndarray, labels: np.ndarray) -> None:
    if images.ndim != 4 or labels.ndim != 2 or len(images) != len(labels):
        raise ValueError(f"expected images (N,H,W,C) and labels (N,C), got {images.shape} and {labels.shape}")


def mixup(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, *, alpha: float = 0.2,
          p: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """MixUp (Zhang et al. 2018): ``lam * x + (1 - lam) * x[perm]``, same for labels.

    ``lam ~ Beta(alpha, alpha)`` per sample; a sample is mixed with probability ``p``
    (otherwise ``lam = 1``).
    """
    _check(images, labels)
    n = len(images)
    perm = rng.permutation(n)
    lam = rng.beta(alpha, alpha, n).astype(np.float32)
    lam = np.where(rng.random(n) < p, lam, 1.0).astype(np.float32)
    li = lam[:, None, None, None]
    x = li * images + (1.0 - li) * images[perm]
    y = lam[:, None] * labels + (1.0 - lam[:, None]) * labels[perm]
    return x.astype(np.float32), y.astype(np.float32)


def cutmix(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, *, alpha: float = 1.0,
           p: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """CutMix (Yun et al. 2019): paste a random box from a partner image; labels mix by box area.

    Box area fraction ``1 - lam`` with ``lam ~ Beta(alpha, alpha)`` per sample; the box is clipped
    at the border and ``lam`` is recomputed from the area actually pasted. A sample is mixed with
    probability ``p``.
    """
    _check(images, labels)
    n, h, w = images.shape[:3]
    perm = rng.permutation(n)
    lam = rng.beta(alpha, alpha, n)
    cut = np.sqrt(1.0 - lam) * (rng.random(n) < p)
    ch, cw = (cut * h).astype(int), (cut * w).astype(int)
    cy, cx = rng.integers(0, h, n), rng.integers(0, w, n)
    y0, y1 = np.clip(cy - ch // 2, 0, h), np.clip(cy + ch - ch // 2, 0, h)
    x0, x1 = np.clip(cx - cw // 2, 0, w), np.clip(cx + cw - cw // 2, 0, w)
    rows, cols = np.arange(h), np.arange(w)
    box = ((rows[None, :, None] >= y0[:, None, None]) & (rows[None, :, None] < y1[:, None, None])
           & (cols[None, None, :] >= x0[:, None, None]) & (cols[None, None, :] < x1[:, None, None]))
    x = np.where(box[..., None], images[perm], images).astype(np.float32)
    kept = (1.0 - box.reshape(n, -1).mean(axis=1)).astype(np.float32)
    y = kept[:, None] * labels + (1.0 - kept[:, None]) * labels[perm]
    return x, y.astype(np.float32)
