"""AugMix and RandAugment on uint8 batches, vectorised by grouping images that draw the same op.

Both policies pick, for every image independently, a sequence of ops from a table. Rather than
looping ``image -> op``, each step draws the op index for every image at once and then applies
each op to the subset of images that drew it (pixel ops vectorised over the subset, geometric
ops one ``cv2.warpAffine`` per image). Per-image chains, one generator, no global state.

- AugMix (Hendrycks et al. 2020): ``width`` chains of 1..3 ops, mixed with Dirichlet weights,
  then blended with the original by a Beta-distributed weight. Its op table excludes the
  photometric ops that overlap typical test corruptions (contrast, colour, brightness,
  sharpness), as in the paper.
- RandAugment (Cubuk et al. 2020): ``num_ops`` ops at a fixed ``magnitude`` (0..10 scale) from
  the full table.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from robustbench_cells.ops.affine import affine_matrices, compose_affine, warp_affine_batch
from robustbench_cells.ops.augment import weighted_sum_uint8
from robustbench_cells.ops.blur import filter_batch
from robustbench_cells.ops.color import to_uint8
from robustbench_cells.ops.lut import apply_luts

# An op: (images uint8 (k,H,W,3), level float (k,) in 0..1, rng) -> uint8 (k,H,W,3)
Op = Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]


def _signs(rng: np.random.Generator, k: int) -> np.ndarray:
    return np.where(rng.random(k) < 0.5, -1.0, 1.0)


# -- pixel ops (pointwise: a per-image lookup table or blend, vectorised or one cv2 call per image) ------
def autocontrast(images: np.ndarray, level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stretch each channel of each image to the full 0..255 range."""
    # Per-channel min/max via cv2.minMaxLoc: ~10x faster than NumPy's strided reduction over (k, P, 3).
    extremes = np.array([[cv2.minMaxLoc(ch)[:2] for ch in cv2.split(img)] for img in images], np.float32)
    lo, hi = extremes[..., 0], extremes[..., 1]  # (k, 3)
    span = hi - lo
    scale = np.where(span > 0, 255.0 / np.maximum(span, 1), 1.0)
    offset = np.where(span > 0, lo, 0.0)
    levels = np.arange(256, dtype=np.float32)[None, :, None]
    luts = to_uint8((levels - offset[:, None, :]) * scale[:, None, :])
    return apply_luts(images, luts)


def equalize(images: np.ndarray, level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Histogram-equalise each channel of each image."""
    out = np.empty_like(images)
    for i, img in enumerate(images):
        out[i] = cv2.merge([cv2.equalizeHist(ch) for ch in cv2.split(img)])
    return out


def posterize(images: np.ndarray, level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Keep the ``8 - round(4 * level)`` high bits (level 0: all 8 bits, level 1: 4 bits)."""
    bits = np.clip(8 - np.rint(level * 4), 4, 8).astype(np.int64)
    masks = ((0xFF << (8 - bits)) & 0xFF).astype(np.uint8)
    return images & masks[:, None, None, None]


def solarize(images: np.ndarray, level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Invert pixels at or above the threshold ``256 - 256 * level``."""
    thr = (256 - np.rint(level * 256))[:, None]
    values = np.arange(256)[None, :]
    return apply_luts(images, np.where(values >= thr, 255 - values, values).astype(np.uint8))


def _enhance_factor(level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return 1.0 + _signs(rng, len(level)) * level * 0.9  # 0.1 .. 1.9 at full strength


def _blend(images: np.ndarray, others: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """``factor * image + (1 - factor) * other`` per image, saturated (PIL ImageEnhance semantics)."""
    out = np.empty_like(images)
    for i in range(len(images)):
        out[i] = cv2.addWeighted(images[i], float(factor[i]), others[i], 1.0 - float(factor[i]), 0.0)
    return out


def _grey3(images: np.ndarray) -> np.ndarray:
    return np.stack([cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB) for img in images])


def color(images: np.ndarray, level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Saturation up or down (blend with the grey image)."""
    return _blend(images, _grey3(images), _enhance_factor(level, rng))


def contrast(images: np.ndarray, level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Contrast up or down (blend with the mean grey level): one LUT per image."""
    f = _enhance_factor(level, rng)[:, None]
    mean = np.array([cv2.mean(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))[0] for img in images])[:, None]
    values = np.arange(256)[None, :]
    return apply_luts(images, to_uint8(mean + f * (values - mean)))


def brightness(images: np.ndarray, level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness up or down (blend with black): one LUT per image."""
    f = _enhance_factor(level, rng)[:, None]
    return apply_luts(images, to_uint8(f * np.arange(256)[None, :]))


def sharpness(images: np.ndarray, level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sharpen or soften (blend with PIL's 3x3 smoothing filter)."""
    kernel = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13.0
    return _blend(images, filter_batch(images, kernel), _enhance_factor(level, rng))


def identity(images: np.ndarray, level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """No change (RandAugment's identity op)."""
    return images


# -- geometric ops: each is a per-image affine matrix, so a chain's warps compose into one -----------
MatrixOp = Callable[[tuple[int, int], np.ndarray, np.random.Generator], np.ndarray]


def rotate_matrix(size: tuple[int, int], level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotation by up to 30 degrees x level, random direction."""
    return affine_matrices(size, angle_deg=_signs(rng, len(level)) * level * 30.0)


def _shear_matrix(size, level, rng, axis: int) -> np.ndarray:
    s = np.zeros((len(level), 2))
    s[:, axis] = _signs(rng, len(level)) * level * 0.3
    return affine_matrices(size, shear=s)


def shear_x_matrix(size: tuple[int, int], level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Horizontal shear up to 0.3 x level."""
    return _shear_matrix(size, level, rng, 0)


def shear_y_matrix(size: tuple[int, int], level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Vertical shear up to 0.3 x level."""
    return _shear_matrix(size, level, rng, 1)


def _translate_matrix(size, level, rng, axis: int) -> np.ndarray:
    t = np.zeros((len(level), 2))
    t[:, axis] = _signs(rng, len(level)) * level * (size[1], size[0])[axis] / 3.0
    return affine_matrices(size, shift=t, n=len(level))


def translate_x_matrix(size: tuple[int, int], level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Horizontal shift up to a third of the width x level."""
    return _translate_matrix(size, level, rng, 0)


def translate_y_matrix(size: tuple[int, int], level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Vertical shift up to a third of the height x level."""
    return _translate_matrix(size, level, rng, 1)


def _as_image_op(matrix_op: MatrixOp, name: str) -> Op:
    def op(images: np.ndarray, level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return warp_affine_batch(images, matrix_op(images.shape[1:3], level, rng))

    op.__name__ = name
    op.__doc__ = matrix_op.__doc__
    op.matrix_op = matrix_op  # type: ignore[attr-defined]  # lets chains compose instead of warping
    return op


rotate = _as_image_op(rotate_matrix, "rotate")
shear_x = _as_image_op(shear_x_matrix, "shear_x")
shear_y = _as_image_op(shear_y_matrix, "shear_y")
translate_x = _as_image_op(translate_x_matrix, "translate_x")
translate_y = _as_image_op(translate_y_matrix, "translate_y")


#: AugMix's table: no op that resembles the test corruptions (contrast/colour/brightness/sharpness).
AUGMIX_OPS: tuple[Op, ...] = (autocontrast, equalize, posterize, solarize, rotate,
                              shear_x, shear_y, translate_x, translate_y)
#: RandAugment's table (Cubuk et al. 2020, minus the cutout op).
RANDAUGMENT_OPS: tuple[Op, ...] = (identity, autocontrast, equalize, rotate, solarize, color, posterize,
                                   contrast, brightness, sharpness, shear_x, shear_y, translate_x, translate_y)


def apply_random_ops(images: np.ndarray, active: np.ndarray, levels: np.ndarray, ops: tuple[Op, ...],
                     rng: np.random.Generator, pending: np.ndarray | None = None) -> None:
    """One step of per-image op chains, in place: image ``active[j]`` gets a random op at ``levels[j]``.

    With ``pending`` (``(N, 2, 3)`` affine matrices), geometric ops are composed into it instead of
    being applied; the caller warps once at the end (see :func:`augmix`).
    """
    choice = rng.integers(0, len(ops), size=len(active))
    for k, op in enumerate(ops):
        pick = choice == k
        if not pick.any():
            continue
        sel = active[pick]
        matrix_op = getattr(op, "matrix_op", None)
        if pending is not None and matrix_op is not None:
            pending[sel] = compose_affine(matrix_op(images.shape[1:3], levels[pick], rng), pending[sel])
        else:
            images[sel] = op(images[sel], levels[pick], rng)


def augmix(images: np.ndarray, rng: np.random.Generator, *, severity: float = 3.0, width: int = 3,
           depth: int = -1, alpha: float = 1.0) -> np.ndarray:
    """AugMix each image: ``(1 - m) * x + m * sum_i w_i * chain_i(x)``, uint8 in, uint8 out.

    ``severity`` 1..10 (op strength upper bound, AugMix's default 3); ``width`` chains per image;
    ``depth`` ops per chain (``-1``: random 1..3 per chain); ``alpha``: Dirichlet/Beta concentration.
    """
    n, h, w, _ = images.shape
    if n == 0:
        return images.copy()
    weights = rng.dirichlet([alpha] * width, size=n).astype(np.float32)  # (n, width)
    m = rng.beta(alpha, alpha, size=n).astype(np.float32)
    chains = np.broadcast_to(images[None], (width,) + images.shape).reshape(width * n, h, w, 3).copy()
    depths = rng.integers(1, 4, size=width * n) if depth <= 0 else np.full(width * n, depth)
    # Geometric ops of a chain are composed and applied as ONE warp at the end: the pixel ops are
    # pointwise, so they commute with the warp (up to interpolation), and one resampling instead
    # of up to three is both faster and sharper.
    pending = np.tile(np.array([[1, 0, 0], [0, 1, 0]], np.float32), (width * n, 1, 1))
    for step in range(int(depths.max())):
        active = np.flatnonzero(depths > step)
        # AugMix samples each op's level uniformly in [0.1, severity] on a 0..10 scale.
        levels = rng.uniform(0.1, severity, size=len(active)) / 10.0
        apply_random_ops(chains, active, levels, AUGMIX_OPS, rng, pending)
    chains = warp_affine_batch(chains, pending)
    chains = chains.reshape(width, n, h, w, 3)
    coeffs = np.concatenate([(1.0 - m)[:, None], weights * m[:, None]], axis=1)  # (n, 1 + width)
    return weighted_sum_uint8([images, *chains], coeffs)


def randaugment(images: np.ndarray, rng: np.random.Generator, *, num_ops: int = 2,
                magnitude: float = 9.0, magnitude_std: float = 0.5) -> np.ndarray:
    """RandAugment: ``num_ops`` random ops per image at ``magnitude`` (0..10, jittered by ``magnitude_std``)."""
    n = len(images)
    out = images.copy()
    active = np.arange(n)
    for _ in range(num_ops):
        levels = np.clip(rng.normal(magnitude, magnitude_std, n) if magnitude_std > 0 else np.full(n, magnitude),
                         0, 10) / 10.0
        apply_random_ops(out, active, levels, RANDAUGMENT_OPS, rng)
    return out
