"""Lab-to-lab differences as pure functions on uint8 batches ``(N, H, W, 3)``: the ``lab`` shift family.

Modelled on what differs between PBC, tecom96 and cellavision96 (and between labs generally):

- ``magnification``: cells fill 0.5-2x the crop (objective, camera pixel size, crop size);
- ``plasma_tint``: the background/plasma colour (yellow, grey, white, lavender) from the smear
  thickness, the stain's buffer pH and the lamp;
- ``od_stain``: another stain in optical-density space: the smear is unmixed with the May-Grünwald-
  Giemsa basis and re-mixed with the stain vectors of MGG, Wright or a rapid (Diff-Quik-like,
  brownish) stain, with per-image concentration changes;
- ``camera``: white balance (per-channel gains) and gamma of another camera;
- ``low_res``: low-resolution capture: downscale, blur and JPEG (reuses ``ops.digital``/``ops.blur``);
- ``lab_profile``: a random lab per image combining all of them at a strength in ``(0, 1]``.

Every function takes ``(images, param, rng)``, draws all randomness from ``rng`` (per image), and
returns a new uint8 array of the input's shape.
"""

from __future__ import annotations

import numpy as np

from robustbench_cells.ops.blur import gaussian_blur
from robustbench_cells.ops.color import od_to_rgb, rgb_to_od, to_uint8
from robustbench_cells.ops.digital import downscale, jpeg_compression
from robustbench_cells.ops.scale import zoom

#: Background tints (RGB) seen across labs' smears.
TINTS: dict[str, tuple[float, float, float]] = {
    "yellow": (240.0, 222.0, 150.0), "grey": (188.0, 188.0, 192.0),
    "white": (252.0, 252.0, 250.0), "lavender": (222.0, 205.0, 238.0),
}


def _unit(rows: list[list[float]]) -> np.ndarray:
    m = np.asarray(rows, np.float64)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


#: Stain OD vectors (rows: basic/azure dye that stains nuclei, acidic/eosin dye; columns R, G, B
#: absorbance). MGG matches ops.color's Giemsa stand-in; Wright is redder (more eosin, violet
#: nuclei); the rapid stain is the brown-orange, blue-absorbing look of tecom96's smears.
STAINS: dict[str, np.ndarray] = {
    "mgg": _unit([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11]]),
    "wright": _unit([[0.52, 0.78, 0.34], [0.05, 0.80, 0.60]]),
    "rapid": _unit([[0.42, 0.62, 0.66], [0.12, 0.50, 0.86]]),
}
_SOURCE = STAINS["mgg"]
# Least-squares unmixing onto the source basis plus a residual direction (keeps what the two
# stains do not explain, e.g. red cells' haemoglobin, unchanged).
_RESIDUAL = np.cross(_SOURCE[0], _SOURCE[1])
_BASIS = np.vstack([_SOURCE, _RESIDUAL / np.linalg.norm(_RESIDUAL)])
_UNMIX = np.linalg.inv(_BASIS)


def magnification(images: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Zoom each image about its centre by ``factor`` or ``1/factor`` (random per image; crop or pad)."""
    images = np.asarray(images)
    f = float(factor)
    factors = np.where(rng.random(len(images)) < 0.5, f, 1.0 / f)
    return zoom(images, factors)


def _tint(images: np.ndarray, strengths: np.ndarray, colours: np.ndarray) -> np.ndarray:
    x = images.astype(np.float32)
    lum = x.mean(axis=-1, keepdims=True) / 255.0
    # Plasma is the brightest part of a smear: weight by brightness so cells keep their colour.
    weight = np.clip((lum - 0.45) / 0.4, 0.0, 1.0) * strengths[:, None, None, None]
    return to_uint8(x * (1.0 - weight) + colours[:, None, None, :] * weight)


def plasma_tint(images: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Blend the bright background towards a random lab tint (yellow/grey/white/lavender) by *strength*."""
    images = np.asarray(images)
    palette = np.asarray(list(TINTS.values()), np.float32)
    colours = palette[rng.integers(0, len(palette), len(images))]
    strengths = np.full(len(images), float(strength), np.float32) * rng.uniform(0.8, 1.0, len(images)).astype(np.float32)
    return _tint(images, strengths, colours)


def _restain(images: np.ndarray, strengths: np.ndarray, targets: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Per image: vectors ``(1-s) * MGG + s * target``, concentrations times ``gains`` ``(N, 2)``."""
    od = rgb_to_od(images).astype(np.float64)  # (N,H,W,3)
    conc = od @ _UNMIX  # (N,H,W,3): azure, eosin, residual
    out = np.empty_like(od)
    for i in range(len(images)):  # a 3x3 matrix per image
        s = strengths[i]
        basis = _BASIS.copy()
        vec = (1.0 - s) * _SOURCE + s * targets[i]
        basis[:2] = vec / np.linalg.norm(vec, axis=1, keepdims=True)
        c = conc[i].copy()
        c[..., :2] *= gains[i]
        out[i] = c @ basis
    return od_to_rgb(np.maximum(out, 0.0).astype(np.float32))


def od_stain(images: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Re-stain in OD space towards MGG, Wright or a rapid stain (random per image) by *strength*."""
    images = np.asarray(images)
    n = len(images)
    names = list(STAINS)
    targets = np.stack([STAINS[names[k]] for k in rng.integers(0, len(names), n)]) if n else np.zeros((0, 2, 3))
    s = float(strength)
    strengths = s * rng.uniform(0.7, 1.0, n)
    gains = np.exp(rng.uniform(-0.45, 0.45, (n, 2)) * s)
    return _restain(images, strengths, targets, gains)


def camera(images: np.ndarray, param: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Another camera: random per-channel gains (log-sd ``param[0]``) and gamma (``exp(±param[1])``)."""
    images = np.asarray(images)
    n = len(images)
    sd, gmax = float(param[0]), float(param[1])
    gains = np.exp(rng.normal(0.0, sd, (n, 3)))
    gains /= gains.max(axis=1, keepdims=True) ** 0.5  # keep the exposure roughly where it was
    gammas = np.exp(rng.uniform(-gmax, gmax, n) * np.where(rng.random(n) < 0.5, 1.0, 0.6))
    x = np.clip(images.astype(np.float32) / 255.0 * gains[:, None, None, :].astype(np.float32), 0.0, 1.0)
    return to_uint8(255.0 * x ** gammas[:, None, None, None].astype(np.float32))


def low_res(images: np.ndarray, param: tuple[float, float, int], rng: np.random.Generator) -> np.ndarray:
    """Low-resolution capture: downscale to ``param[0]`` (bicubic up), Gaussian blur ``param[1]``, JPEG ``param[2]``."""
    factor, sigma, quality = param
    out = downscale(np.asarray(images), float(factor), rng)
    if sigma > 0:
        out = gaussian_blur(out, float(sigma), rng)
    return jpeg_compression(out, int(quality), rng)


def lab_profile(images: np.ndarray, strength: float | np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random lab per image: each of magnification, stain, tint, camera and low-res capture is
    applied with probability 0.8, at a per-image strength drawn in ``[strength/2, strength]``
    (*strength* in (0, 1], a scalar or one per image)."""
    images = np.asarray(images)
    n = len(images)
    s = np.broadcast_to(np.asarray(strength, np.float64), (n,))
    out = images.copy()
    if n == 0:
        return out
    draws = rng.random((5, n)) < 0.8
    levels = s * rng.uniform(0.5, 1.0, (5, n))
    # magnification: up to 2x either way at full strength
    f = np.where(draws[0], 2.0 ** (levels[0] * np.where(rng.random(n) < 0.5, 1.0, -1.0)), 1.0)
    out = zoom(out, f)
    # stain (OD space)
    names = list(STAINS)
    targets = np.stack([STAINS[names[k]] for k in rng.integers(0, len(names), n)])
    gains = np.exp(rng.uniform(-0.45, 0.45, (n, 2)) * levels[1][:, None])
    restained = _restain(out, levels[1] * 0.9, targets, gains)
    out = np.where(draws[1][:, None, None, None], restained, out)
    # plasma tint
    palette = np.asarray(list(TINTS.values()), np.float32)
    colours = palette[rng.integers(0, len(palette), n)]
    out = _tint(out, (levels[2] * 0.8 * draws[2]).astype(np.float32), colours)
    # camera white balance + gamma
    cam = np.empty_like(out)
    for i in range(n):  # per-image strength
        cam[i] = camera(out[i:i + 1], (0.12 * levels[3][i], 0.35 * levels[3][i]), rng)[0]
    out = np.where(draws[3][:, None, None, None], cam, out)
    # low-resolution capture
    low = np.empty_like(out)
    for i in range(n):
        lv = levels[4][i]
        low[i] = low_res(out[i:i + 1], (1.0 - 0.6 * lv, 0.8 * lv, int(round(90 - 65 * lv))), rng)[0]
    return np.where(draws[4][:, None, None, None], low, out)
