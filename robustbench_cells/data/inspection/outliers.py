"""Outliers: images unlike the bulk of the data set (foreign backgrounds, another acquisition batch, ...).

Why these features: in a blood-smear crop the cell sits in the middle and the outer ring shows
plasma and red cells. A cell pasted on a photo, a cartoon or a texture changes that ring first:
its colour (CIE Lab medians and quantiles), its texture (gradient energy, flat-area fraction, fine
noise) and its large-scale layout (a colour gradient from one side to the other). Whole-image
colour quantiles add stain and illumination changes (e.g. PBC's bluish second batch).

Features are centred on the median, scaled by the MAD, and whitened with a covariance fitted on the
most typical 80% of images (a few concentration steps, in the spirit of MCD), so a contaminated
data set cannot hide its own outliers by inflating the spread. The score combines the distance
from the bulk with the distance to the k-th nearest neighbour (see :func:`outlier_scores`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Width in pixels (at 96x96; scaled with the image) of the border ring read as background.
RING_FRACTION = 12 / 96
#: Fraction of images the robust covariance is fitted on (the rest may be outliers).
SUPPORT_FRACTION = 0.8
#: Threshold on log-score: upper quartile + FENCE x interquartile range (a Tukey-style fence).
#: Calibrated on PBC (benchmarks/perf/inspect_pbc.py, docs/inspect.md): 7 of the 17,072 clean
#: images flagged (0.04%); 99.8% / 97% of cells planted on generated / shipped backgrounds caught.
#: A fence adapts to each data set's own spread of scores.
DEFAULT_FENCE = 6.0
#: Weight of the global distance in the score (the k-NN distance gets the rest), see outlier_scores.
GLOBAL_WEIGHT = 0.35
#: Neighbours for the k-NN distance; a batch larger than this protects its own members.
DEFAULT_K = 10
#: Below this many images the covariance is unreliable: nothing is flagged.
MIN_IMAGES = 50

FEATURE_NAMES: tuple[str, ...] = (
    "ring_L_med", "ring_a_med", "ring_b_med",
    "ring_L_iqr", "ring_a_iqr", "ring_b_iqr",
    "ring_grad", "ring_flat", "ring_fine",
    "ring_tilt_L", "ring_tilt_a", "ring_tilt_b",
    "img_a_q05", "img_a_q95", "img_b_q05", "img_b_q95", "img_L_q05", "img_L_q95",
    "img_grad", "img_fine",
)


def _ring_mask(h: int, w: int) -> np.ndarray:
    k = max(2, int(round(RING_FRACTION * min(h, w))))
    ring = np.ones((h, w), bool)
    ring[k:h - k, k:w - k] = False
    return ring


def _chunk_features(images: np.ndarray) -> np.ndarray:
    n, h, w, _ = images.shape
    # Colour statistics on a half-size Lab copy (4x fewer pixels to sort; colour survives
    # downsampling), texture on the full-size grey image (JPEG and noise live at pixel scale).
    sh, sw = max(8, h // 2), max(8, w // 2)
    # Texture needs a ring of pixels with neighbours on every side: tiny images (2x2 thumbnails)
    # are enlarged to 8 px first, or every ring statistic would be the mean of nothing.
    gh, gw = max(8, h), max(8, w)
    small = np.empty((n, sh, sw, 3), np.uint8)
    gray = np.empty((n, gh, gw), np.uint8)
    for i, img in enumerate(images):  # cv2 converts one image at a time, but fast
        small[i] = cv2.resize(cv2.cvtColor(img, cv2.COLOR_RGB2LAB), (sw, sh), interpolation=cv2.INTER_AREA)
        g1 = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        gray[i] = g1 if (gh, gw) == (h, w) else cv2.resize(g1, (gw, gh), interpolation=cv2.INTER_LINEAR)
    ring_small = _ring_mask(sh, sw)
    k = max(1, int(round(RING_FRACTION * min(sh, sw))))
    g = gray.astype(np.float32)
    gx = g[:, 1:-1, 2:] - g[:, 1:-1, :-2]
    gy = g[:, 2:, 1:-1] - g[:, :-2, 1:-1]
    grad = np.sqrt(gx * gx + gy * gy)                              # (n, h-2, w-2)
    fine = np.abs(4 * g[:, 1:-1, 1:-1] - g[:, :-2, 1:-1] - g[:, 2:, 1:-1] - g[:, 1:-1, :-2] - g[:, 1:-1, 2:])
    ring_full = _ring_mask(gh, gw)[1:-1, 1:-1]
    ring_px = small[:, ring_small]                                # (n, R, 3) uint8
    q25, q50, q75 = np.percentile(ring_px, [25, 50, 75], axis=1)
    ring_grad = grad[:, ring_full]
    labf = small.astype(np.float32)
    tilt = np.hypot(labf[:, :, :k].mean((1, 2)) - labf[:, :, -k:].mean((1, 2)),
                    labf[:, :k].mean((1, 2)) - labf[:, -k:].mean((1, 2)))
    whole = np.percentile(small.reshape(n, -1, 3), [5, 95], axis=1)  # (2, n, 3)
    feats = [
        q50, q75 - q25,                                               # background colour and its spread
        np.log1p(ring_grad.mean(1))[:, None],                         # background texture
        (ring_grad < 1.0).mean(1)[:, None],                           # flat (cartoon-like) areas
        np.log1p(fine[:, ring_full].mean(1))[:, None],                # pixel-scale noise
        tilt,                                                         # side-to-side colour gradient
        whole[:, :, 1].T, whole[:, :, 2].T, whole[:, :, 0].T,         # stain/illumination (a, b, L)
        np.log1p(grad.mean((1, 2)))[:, None], np.log1p(fine.mean((1, 2)))[:, None],
    ]
    return np.concatenate(feats, axis=1).astype(np.float32)


def outlier_features(images: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Cheap background/colour/texture features, float32 ``(N, len(FEATURE_NAMES))``."""
    if len(images) == 0:
        return np.zeros((0, len(FEATURE_NAMES)), np.float32)
    return np.concatenate([_chunk_features(images[s:s + chunk]) for s in range(0, len(images), chunk)])


def robust_whitening(features: np.ndarray, support: float = SUPPORT_FRACTION,
                     steps: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Whiten features with a robust centre/covariance.

    Returns ``(w, dist)``: ``w`` float32 ``(N, F)`` in which Euclidean distance is the robust
    Mahalanobis distance, and ``dist`` float64 ``(N,)``, each row's distance from the bulk's centre.
    """
    x = np.asarray(features, np.float64)
    med = np.median(x, axis=0)
    mad = np.median(np.abs(x - med), axis=0) * 1.4826
    scale = np.where(mad > 1e-9, mad, x.std(axis=0) + 1e-9)
    z = np.clip((x - med) / scale, -50, 50)  # clip so one wild image cannot dominate the fit
    keep = np.arange(len(z))
    n_keep = max(min(len(z), z.shape[1] + 2), int(support * len(z)))
    w, dist = z, np.zeros(len(z))
    for _ in range(steps):
        sub = z[keep]
        cov = np.cov(sub, rowvar=False) + 1e-3 * np.eye(z.shape[1])  # ridge: features may be collinear
        chol = np.linalg.cholesky(np.linalg.inv(cov))
        w = (z - sub.mean(axis=0)) @ chol
        dist = np.linalg.norm(w, axis=1)
        keep = np.argsort(dist)[:n_keep]
    return w.astype(np.float32), dist


def knn_distances(w: np.ndarray, k: int = DEFAULT_K, block: int = 512) -> np.ndarray:
    """Distance of every row to its k-th nearest other row (blocked matrix products)."""
    k = max(1, min(k, len(w) - 1))
    sq = (w * w).sum(axis=1)
    out = np.empty(len(w))
    for s in range(0, len(w), block):
        d2 = sq[s:s + block, None] + sq[None] - 2 * (w[s:s + block] @ w.T)
        d2[np.arange(len(d2)), np.arange(s, s + len(d2))] = np.inf  # not its own neighbour
        out[s:s + block] = np.sqrt(np.maximum(np.partition(d2, k - 1, axis=1)[:, k - 1], 0))
    return out


def outlier_scores(features: np.ndarray, k: int = DEFAULT_K) -> np.ndarray:
    """Weighted geometric mean of the robust distance from the bulk and the k-NN distance.

    Why both: the global distance alone also flags a coherent sub-population (PBC's second
    acquisition batch, 450 images, 2.6%), which is a batch, not an error; the k-NN distance is small
    inside such a batch but large for one-off foreign images. Their product ranks one-off foreign
    images first, a sizeable off-colour batch next, the bulk last. The k-NN part weighs more
    (``1 - GLOBAL_WEIGHT``) so that such a batch stays under the threshold.
    """
    w, dist = robust_whitening(features)
    return dist ** GLOBAL_WEIGHT * knn_distances(w, k) ** (1 - GLOBAL_WEIGHT)


def fence_threshold(scores: np.ndarray, fence: float = DEFAULT_FENCE) -> float:
    """Tukey-style fence on log scores: ``Q3 + fence * IQR``; robust to a minority of outliers."""
    logs = np.log(np.asarray(scores) + 1e-9)
    q1, q3 = np.percentile(logs, [25, 75])
    return float(np.exp(q3 + fence * (q3 - q1)))


@dataclass
class OutlierResult:
    """A score for every image, the threshold, and the flagged indices (most unusual first)."""

    scores: np.ndarray
    threshold: float
    flagged: np.ndarray

    def ranking(self) -> np.ndarray:
        """All indices, most unusual first."""
        return np.argsort(-self.scores, kind="stable")


def find_outliers(images: np.ndarray, fence: float = DEFAULT_FENCE, k: int = DEFAULT_K,
                  features: np.ndarray | None = None) -> OutlierResult:
    """Score every image (:func:`outlier_scores`) and flag those above :func:`fence_threshold`."""
    feats = outlier_features(images) if features is None else features
    if len(feats) < MIN_IMAGES:
        # Too few images to estimate a covariance: flag nothing rather than invent outliers.
        return OutlierResult(np.zeros(len(feats)), float("inf"), np.zeros(0, np.int64))
    scores = outlier_scores(feats, k)
    thr = fence_threshold(scores, fence)
    flagged = np.flatnonzero(scores > thr)
    flagged = flagged[np.argsort(-scores[flagged], kind="stable")]
    return OutlierResult(scores, thr, flagged)
