"""Cheap, interpretable per-image statistics and their per-set summaries (the "shift fingerprint").

Every statistic is one number per image, computed vectorised over the batch, and chosen so that a
family of shifts moves it: colour moments (RGB, HSV, optical density) move under stain/photometric
shifts, Laplacian variance under blur, a high-pass noise estimate under noise, 8x8 block-edge energy
under JPEG, background colour/texture under background compositing, cell size and position under
zoom/translation, axis alignment of gradients and dark borders under rotation.

A set is summarised per statistic by its mean, standard deviation and the 10/50/90 % quantiles.
To compare sets, each statistic is standardised by the *validation* set's robust per-image spread
(``IQR / 1.349``), so one unit means "one typical validation image apart" for every statistic.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from robustbench_cells.ops.blur import filter_planes
from robustbench_cells.ops.color import rgb_to_hsv, rgb_to_od

#: Statistic names in column order, with what each one is meant to catch (shown in the table).
STATISTICS: dict[str, str] = {
    "mean_r": "colour", "mean_g": "colour", "mean_b": "colour",
    "std_r": "contrast", "std_g": "contrast", "std_b": "contrast",
    "hue_cos": "hue", "hue_sin": "hue", "saturation": "colour", "value": "brightness",
    "od_r": "stain", "od_g": "stain", "od_b": "stain",
    "sharpness": "blur",  # log Laplacian variance
    "noise": "noise",  # Immerkaer high-pass residual
    "blockiness": "JPEG",  # 8x8 block-edge step ratio
    "bg_r": "background", "bg_g": "background", "bg_b": "background",
    "bg_texture": "background",  # log gradient energy outside the cell
    "cell_area": "zoom/size",
    "cell_dx": "position", "cell_dy": "position",
    "cell_elongation": "shape",
    "axis_alignment": "rotation",  # gradient energy on the axes vs diagonals
    "dark_border": "rotation/shift",  # dark fill at the borders
}
STAT_NAMES: tuple[str, ...] = tuple(STATISTICS)
#: Per-set summary functions, in column order of :func:`summarize`.
SUMMARIES: tuple[str, ...] = ("mean", "std", "q10", "q50", "q90")

# Immerkaer (1996) fast noise estimation: this kernel cancels any locally linear image content.
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def _filter_planes(planes: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``cv2.filter2D`` (valid part only) over ``(N, H, W)`` float32 planes (ops.blur's chunked filter)."""
    return filter_planes(planes, lambda c: cv2.filter2D(c, cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT))[:, 1:-1, 1:-1]


def _blockiness(gray: np.ndarray) -> np.ndarray:
    """Mean |horizontal + vertical step| across 8-pixel block boundaries over that inside blocks.

    JPEG quantises each 8x8 block on its own, so its artefacts are steps exactly on the block grid;
    ~1 for clean images, > 1 under strong JPEG. (Only meaningful while the grid is aligned with the
    image, i.e. before any resize; that is the case for the stored 96x96 crops.)
    """
    dx = np.abs(np.diff(gray, axis=2))  # (N, H, W-1): step between column j and j+1
    dy = np.abs(np.diff(gray, axis=1))
    on_x = (np.arange(dx.shape[2]) % 8) == 7
    on_y = (np.arange(dy.shape[1]) % 8) == 7
    boundary = dx[:, :, on_x].mean(axis=(1, 2)) + dy[:, on_y, :].mean(axis=(1, 2))
    inside = dx[:, :, ~on_x].mean(axis=(1, 2)) + dy[:, ~on_y, :].mean(axis=(1, 2))
    return boundary / (inside + 1e-3)


def _mask_moments(mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """Area fraction, centroid offset from the centre (fractions of the size) and elongation of soft masks."""
    n, h, w = mask.shape
    mass = mask.sum(axis=(1, 2))
    safe = np.maximum(mass, 1e-6)
    ys = (np.arange(h, dtype=np.float32) - (h - 1) / 2)[None, :, None]
    xs = (np.arange(w, dtype=np.float32) - (w - 1) / 2)[None, None, :]
    cy = (mask * ys).sum(axis=(1, 2)) / safe
    cx = (mask * xs).sum(axis=(1, 2)) / safe
    dy_, dx_ = ys - cy[:, None, None], xs - cx[:, None, None]
    myy = (mask * dy_ ** 2).sum(axis=(1, 2)) / safe
    mxx = (mask * dx_ ** 2).sum(axis=(1, 2)) / safe
    mxy = (mask * dx_ * dy_).sum(axis=(1, 2)) / safe
    # Eigenvalues of the second-moment matrix -> ratio of the axes (1 = round).
    half_trace = (mxx + myy) / 2
    root = np.sqrt(np.maximum(((mxx - myy) / 2) ** 2 + mxy ** 2, 0))
    elongation = np.sqrt((half_trace + root + 1e-6) / (half_trace - root + 1e-6))
    empty = mass < 1.0
    cx[empty], cy[empty], elongation[empty] = 0.0, 0.0, 1.0
    return mass / (h * w), cx / w, cy / h, elongation


def image_statistics(images: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
    """Per-image fingerprint statistics: float64 ``(N, len(STAT_NAMES))`` in :data:`STAT_NAMES` order.

    ``images``: uint8 ``(N, H, W, 3)`` RGB. ``masks``: optional soft white-cell masks ``(N, H, W)``
    (computed with :func:`robustbench_cells.ops.mask.cell_mask` when omitted). Deterministic.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"image_statistics expects uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    n, h, w, _ = images.shape
    if n == 0:
        return np.zeros((0, len(STAT_NAMES)))
    if masks is None:
        from robustbench_cells.ops.mask import cell_mask

        masks = cell_mask(images)
    x = images.astype(np.float32)
    flat = x.reshape(n, -1, 3)
    cols: dict[str, np.ndarray] = {}
    means, stds = flat.mean(axis=1), flat.std(axis=1)
    for i, c in enumerate("rgb"):
        cols[f"mean_{c}"], cols[f"std_{c}"] = means[:, i], stds[:, i]

    hsv = rgb_to_hsv(images).reshape(n, -1, 3)
    # Hue is circular: average its unit vector, weighted by saturation (grey pixels have no hue).
    angle = np.deg2rad(hsv[..., 0])
    weight = hsv[..., 1] + 1e-6
    cols["hue_cos"] = (np.cos(angle) * weight).sum(1) / weight.sum(1)
    cols["hue_sin"] = (np.sin(angle) * weight).sum(1) / weight.sum(1)
    cols["saturation"], cols["value"] = hsv[..., 1].mean(1), hsv[..., 2].mean(1)
    od = rgb_to_od(images).reshape(n, -1, 3).mean(axis=1)
    for i, c in enumerate("rgb"):
        cols[f"od_{c}"] = od[:, i]

    gray = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # (N, H, W)
    lap = _filter_planes(gray, np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32))
    cols["sharpness"] = np.log1p(lap.reshape(n, -1).var(axis=1))
    resid = np.abs(_filter_planes(gray, _NOISE_KERNEL)).reshape(n, -1)
    cols["noise"] = np.sqrt(np.pi / 2) * resid.mean(axis=1) / 6.0
    cols["blockiness"] = _blockiness(gray)

    # Background: pixels well outside the cell mask (weights 1 - mask).
    bg_w = (1.0 - masks.reshape(n, -1)).astype(np.float32)
    bg_sum = np.maximum(bg_w.sum(1), 1e-6)
    bg = (flat * bg_w[..., None]).sum(1) / bg_sum[:, None]
    for i, c in enumerate("rgb"):
        cols[f"bg_{c}"] = bg[:, i]
    gy, gx = np.gradient(gray, axis=(1, 2))
    energy = (gx ** 2 + gy ** 2).reshape(n, -1)
    cols["bg_texture"] = np.log1p((energy * bg_w).sum(1) / bg_sum)

    area, cx, cy, elong = _mask_moments(masks.astype(np.float32))
    cols["cell_area"], cols["cell_dx"], cols["cell_dy"], cols["cell_elongation"] = area, cx, cy, elong

    # Natural crops have gradients in every direction; rotations by non-right angles and shears
    # change how much gradient energy lies on the axes versus the diagonals.
    # |gx|^4 + |gy|^4 over (|gx|^2 + |gy|^2)^2: 1 when every gradient lies on an axis, 1/2 on a diagonal.
    g2x, g2y = gx ** 2, gy ** 2
    cols["axis_alignment"] = ((g2x ** 2 + g2y ** 2).reshape(n, -1).sum(1)
                              / np.maximum(((g2x + g2y) ** 2).reshape(n, -1).sum(1), 1e-6))
    # Rotations/translations fill the uncovered corners with black (or reflect); stained smears are bright.
    border = np.concatenate([gray[:, :2, :].reshape(n, -1), gray[:, -2:, :].reshape(n, -1),
                             gray[:, :, :2].reshape(n, -1), gray[:, :, -2:].reshape(n, -1)], axis=1)
    cols["dark_border"] = (border < 40).mean(axis=1)
    return np.stack([np.asarray(cols[name], dtype=np.float64) for name in STAT_NAMES], axis=1)


def summarize(stats: np.ndarray) -> np.ndarray:
    """Per-set summary ``(len(STAT_NAMES), len(SUMMARIES))``: mean, std, 10/50/90 % quantiles per statistic."""
    stats = np.asarray(stats, dtype=np.float64)
    if stats.ndim != 2 or len(stats) == 0:
        raise ValueError(f"summarize expects a non-empty (N, K) array, got shape {stats.shape}")
    q = np.quantile(stats, [0.1, 0.5, 0.9], axis=0)
    return np.stack([stats.mean(0), stats.std(0), q[0], q[1], q[2]], axis=1)


@dataclass(frozen=True)
class Reference:
    """The validation set's per-statistic location and robust spread, the yardstick for every comparison."""

    median: np.ndarray  # (K,)
    scale: np.ndarray  # (K,) robust per-image spread (IQR / 1.349), floored
    low: np.ndarray  # (K,) 1 % quantile of validation images
    high: np.ndarray  # (K,) 99 % quantile

    @classmethod
    def from_stats(cls, stats: np.ndarray) -> Reference:
        """Fit on validation per-image statistics ``(N, K)``."""
        stats = np.asarray(stats, dtype=np.float64)
        q = np.quantile(stats, [0.01, 0.25, 0.5, 0.75, 0.99], axis=0)
        iqr = (q[3] - q[1]) / 1.349
        # A statistic that barely varies on validation (e.g. dark_border = 0 everywhere) must not
        # explode: floor the scale by its full range, its std and a small fraction of its magnitude.
        floor = np.maximum.reduce([(q[4] - q[0]) / 4.0, stats.std(0) / 2.0,
                                   0.02 * np.abs(q[2]), np.full(stats.shape[1], 1e-3)])
        return cls(median=q[2], scale=np.maximum(iqr, floor), low=q[0], high=q[4])

    def standardize(self, stats: np.ndarray) -> np.ndarray:
        """Robust z of per-image statistics ``(N, K)``."""
        return (np.asarray(stats, dtype=np.float64) - self.median) / self.scale

    def summary_vector(self, stats: np.ndarray) -> np.ndarray:
        """Flattened standardised set summary ``(K * len(SUMMARIES),)``; a set's point in fingerprint space.

        The std column is divided by the scale only (it is a spread, not a location).
        """
        s = summarize(stats)
        z = (s - self.median[:, None]) / self.scale[:, None]
        z[:, 1] = s[:, 1] / self.scale
        return z.ravel()


def compare_to_reference(target_stats: np.ndarray, val_stats: np.ndarray,
                         reference: Reference | None = None) -> list[dict[str, float | str]]:
    """The "target vs validation" table: one row per statistic, most unusual first.

    Row keys: ``statistic``, ``catches``, ``val_median``, ``target_median``, ``z`` (difference of the
    medians in validation spreads), ``outside`` (fraction of target images outside the validation
    1..99 % range; ~0.02 when nothing changed).
    """
    reference = reference or Reference.from_stats(val_stats)
    t_med = np.median(target_stats, axis=0)
    v_med = np.median(val_stats, axis=0)
    outside = ((target_stats < reference.low) | (target_stats > reference.high)).mean(axis=0)
    z = (t_med - v_med) / reference.scale
    rows = [
        {"statistic": name, "catches": STATISTICS[name], "val_median": float(v_med[i]),
         "target_median": float(t_med[i]), "z": float(z[i]), "outside": float(outside[i])}
        for i, name in enumerate(STAT_NAMES)
    ]
    return sorted(rows, key=lambda r: -abs(r["z"]))
