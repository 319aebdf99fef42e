"""Rendering of the procedural synthetic cells: one chunk of images from three random streams.

Split from :mod:`robustbench_cells.data.synthetic`, which keeps the options, the spec parsing and
the public ``generate``/``load_synthetic``. This module draws: per-image morphology sampling
(:func:`_sample_cells`), the per-class drawing primitives (:func:`_draw_nucleus`, the red-cell field),
and the Beer-Lambert compositing in :func:`render_chunk`. The order of every random draw here is
part of the data set: moving or reordering one changes the bytes of every ``synthetic`` spec.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import cv2
import numpy as np

from robustbench_cells.data.dataset import CELL_CLASSES

if TYPE_CHECKING:  # annotations only: synthetic.py imports this module
    from robustbench_cells.data.synthetic import SyntheticOptions

SIZE = 96
#: Class frequencies of PBC (17,072 images), so class balance looks like the real thing.
CLASS_PROBS = np.array([1212, 3110, 1551, 2891, 1214, 1418, 3328, 2348], dtype=float) / 17072

# Drawing uses fixed-point coordinates (cv2 ``shift``) for sub-pixel shapes.
_SHIFT = 4
_FP = 1 << _SHIFT
_TILE = 160  # red-cell field tiles; each image crops a 96x96 window
_TILES_PER_CHUNK = 12
_MAX_GRANULES = 96
_LAYERS = 4  # red cells, cytoplasm, nucleus, granules
_CELL_SCALE = 1.15  # the class radius tables below are in PBC pixels / 1.15

# Optical densities (-ln(I / I_background)) per RGB channel, measured by eye against PBC crops:
# background (253, 228, 203); dense nucleus about (78, 36, 125); red cells about (220, 185, 176).
_OD_RBC = np.array([0.21, 0.34, 0.22])
_OD_NUCLEUS = np.array([1.12, 1.80, 0.50])
_BG = np.array([253.0, 228.0, 203.0])
_BG_LAVENDER = np.array([228.0, 226.0, 246.0])

# Per class: cytoplasm OD, granule OD, nucleus density factor, chromatin texture strength.
_CYTO_OD = {
    "basophil": (0.22, 0.30, 0.08), "eosinophil": (0.12, 0.34, 0.34), "erythroblast": (0.26, 0.30, 0.08),
    "immature_granulocyte": (0.22, 0.27, 0.07), "lymphocyte": (0.24, 0.17, -0.04),
    "monocyte": (0.26, 0.25, 0.03), "neutrophil": (0.15, 0.23, 0.10), "platelet": (0.45, 0.70, 0.20),
}
_GRAN_OD = {
    "basophil": (1.10, 1.55, 0.55), "eosinophil": (0.16, 0.62, 0.70), "erythroblast": (0.0, 0.0, 0.0),
    "immature_granulocyte": (0.45, 0.70, 0.20), "lymphocyte": (0.60, 0.90, 0.25),
    "monocyte": (0.12, 0.16, 0.04), "neutrophil": (0.14, 0.22, 0.07), "platelet": (0.70, 1.05, 0.30),
}


def _pt(x: float, y: float) -> tuple[int, int]:
    return int(x * _FP + 0.5), int(y * _FP + 0.5)


def _ax(a: float, b: float) -> tuple[int, int]:
    return max(1, int(a * _FP + 0.5)), max(1, int(b * _FP + 0.5))


def _red_cell_tiles(rng: np.random.Generator, options: SyntheticOptions) -> tuple[np.ndarray, np.ndarray]:
    """Density tiles of overlapping biconcave red cells (pale centres) and each tile's zoom."""
    zoom = 1.0 + rng.uniform(-options.scale, options.scale, _TILES_PER_CHUNK)
    tiles = np.zeros((_TILES_PER_CHUNK, _TILE, _TILE), dtype=np.uint8)
    for t in range(_TILES_PER_CHUNK):
        count = rng.poisson(46 * options.crowding / zoom[t] ** 2)
        xy = rng.uniform(-8, _TILE + 8, (count, 2))
        radius = rng.normal(9.6, 0.7, count).clip(7.5, 12) * zoom[t]
        squash = rng.uniform(0.82, 1.0, count)
        angle = rng.uniform(0, 180, count)
        rim = rng.integers(170, 235, count)
        canvas = tiles[t]
        for (x, y), r, s, a, v in zip(xy, radius, squash, angle, rim):
            cv2.ellipse(canvas, _pt(x, y), _ax(r, r * s), a, 0, 360, int(v), -1, cv2.LINE_AA, _SHIFT)
            cv2.ellipse(canvas, _pt(x, y), _ax(r * 0.55, r * 0.55 * s), a, 0, 360, int(v * 0.45), -1,
                        cv2.LINE_AA, _SHIFT)
        # A few stray platelets in the field: label-independent clutter (as in PBC crops).
        for _ in range(rng.poisson(0.5)):
            x, y = rng.uniform(0, _TILE, 2)
            cv2.circle(canvas, _pt(x, y), int(rng.uniform(1.5, 2.8) * _FP), 255, -1, cv2.LINE_AA, _SHIFT)
        cv2.GaussianBlur(canvas, (0, 0), 1.1, dst=canvas)
    return tiles, zoom


def _texture_tiles(rng: np.random.Generator, count: int = 6) -> np.ndarray:
    """Smooth noise fields in about [-1, 1] for chromatin texture (cropped per image)."""
    noise = rng.standard_normal((count, _TILE, _TILE)).astype(np.float32)
    for i in range(count):
        noise[i] = cv2.GaussianBlur(noise[i], (0, 0), 1.3)
    return noise / (noise.std() + 1e-6)


def _sample_cells(labels: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-image morphology parameters (vectorised); ranges overlap between confusable classes."""
    n = len(labels)
    names = np.asarray(CELL_CLASSES)[labels]
    u = lambda lo, hi: rng.uniform(lo, hi, n)  # noqa: E731 - tiny local helper keeps the table readable
    p: dict[str, np.ndarray] = {
        "radius": np.zeros(n), "nuc_frac": np.zeros(n), "granules": np.zeros(n, int), "gran_size": np.ones(n),
        "density": np.ones(n), "texture": np.full(n, 0.25), "subtype": np.zeros(n, int),
    }
    rows = {c: names == c for c in CELL_CLASSES}

    def setp(cls: str, **values: np.ndarray) -> None:
        m = rows[cls]
        for key, value in values.items():
            p[key][m] = value[m] if np.ndim(value) else value

    setp("basophil", radius=u(13.5, 18), nuc_frac=u(0.5, 0.7), granules=rng.integers(30, 70, n),
         gran_size=u(1.5, 2.4), density=u(0.75, 1.0), texture=u(0.15, 0.3))
    setp("eosinophil", radius=u(16, 20.5), nuc_frac=u(0.27, 0.34), granules=rng.integers(60, 96, n),
         gran_size=u(1.4, 2.0), density=u(0.85, 1.05), texture=u(0.15, 0.3), subtype=(u(0, 1) < 0.2).astype(int))
    setp("erythroblast", radius=u(9.5, 14), nuc_frac=u(0.52, 0.78), granules=0, density=u(1.1, 1.35),
         texture=u(0.05, 0.2))
    # Immature granulocytes: 0 promyelocyte, 1 myelocyte, 2 metamyelocyte.
    ig_sub = rng.choice(3, n, p=[0.22, 0.4, 0.38])
    setp("immature_granulocyte", radius=u(16, 22), nuc_frac=np.where(ig_sub == 0, u(0.58, 0.72), u(0.48, 0.64)),
         granules=np.where(ig_sub == 2, rng.integers(45, 85, n), rng.integers(25, 70, n)),
         gran_size=np.where(ig_sub == 2, u(0.8, 1.2), u(1.0, 1.7)), density=np.where(ig_sub == 0, u(0.7, 0.9), u(0.82, 1.02)),
         texture=u(0.15, 0.35), subtype=ig_sub)
    setp("lymphocyte", radius=u(11, 17.5), nuc_frac=u(0.7, 0.9),
         granules=np.where(u(0, 1) < 0.2, rng.integers(1, 5, n), 0),
         gran_size=u(1.2, 1.8), density=u(0.95, 1.2), texture=u(0.25, 0.45))
    setp("monocyte", radius=u(16.5, 23), nuc_frac=u(0.58, 0.74), granules=rng.integers(10, 40, n),
         gran_size=u(0.8, 1.2), density=u(0.7, 0.92), texture=u(0.2, 0.4))
    # Neutrophils: 0 band, 1 segmented.
    setp("neutrophil", radius=u(15.5, 20), nuc_frac=u(0.28, 0.36), granules=rng.integers(50, 90, n),
         gran_size=u(0.8, 1.2), density=u(0.9, 1.1), texture=u(0.15, 0.3), subtype=(u(0, 1) < 0.5).astype(int))
    setp("platelet", radius=u(3.2, 6.0), nuc_frac=0.0, granules=rng.integers(3, 12, n), gran_size=u(0.9, 1.4),
         subtype=np.where(u(0, 1) < 0.25, 1, 0))
    # Shared shape parameters: interpreted per class while drawing.
    p["radius"] *= _CELL_SCALE
    p["aspect"] = u(0.84, 1.0)
    p["angle"] = u(0, 360)
    p["cx"] = SIZE / 2 + rng.normal(0, 1.8, n).clip(-5, 5)
    p["cy"] = SIZE / 2 + rng.normal(0, 1.8, n).clip(-5, 5)
    p["nuc_offset"] = u(0, 1)  # eccentricity of round nuclei, in units of the free space
    p["arc_span"] = u(0, 1)
    p["arc_thick"] = u(0, 1)
    p["lobes"] = rng.choice([2, 3, 3, 4, 4, 5], n)
    p["indent"] = u(0, 1)
    p["vacuoles"] = rng.integers(0, 7, n)
    return p


def _draw_nucleus(canvas: np.ndarray, cls: str, sub: int, cx: float, cy: float, r: float, nr: float,
                  asp: float, ang: float, q: dict[str, float], rng: np.random.Generator) -> None:
    """Draw the nucleus mask (255 = full density) for one cell into *canvas*."""
    rad = math.radians(ang)
    ox, oy = math.cos(rad), math.sin(rad)
    if cls in ("lymphocyte", "erythroblast", "basophil") or (cls == "immature_granulocyte" and sub < 2):
        # Round/oval, pushed off-centre into the free space (eccentric in myelocytes).
        free = max(r - nr, 0.0) * (0.9 if cls == "immature_granulocyte" else 0.6) * q["nuc_offset"]
        flat = 0.78 if cls == "immature_granulocyte" and sub == 1 else 0.92
        cv2.ellipse(canvas, _pt(cx + free * ox, cy + free * oy), _ax(nr, nr * max(asp, flat)), ang, 0, 360, 255, -1,
                    cv2.LINE_AA, _SHIFT)
        if cls == "basophil" and q["indent"] < 0.4:  # some basophil nuclei are bilobed under the granules
            cv2.ellipse(canvas, _pt(cx - 0.4 * nr * ox, cy - 0.4 * nr * oy), _ax(nr * 0.7, nr * 0.6), ang + 60, 0, 360,
                        255, -1, cv2.LINE_AA, _SHIFT)
    elif cls == "monocyte":
        # Large bean: an oval bitten by an off-centre disc (indentation overlaps large lymphocytes at 0).
        ncx, ncy = cx + 0.15 * r * ox, cy + 0.15 * r * oy
        cv2.ellipse(canvas, _pt(ncx, ncy), _ax(nr, nr * 0.82), ang, 0, 360, 255, -1, cv2.LINE_AA, _SHIFT)
        bite = nr * (0.25 + 0.55 * q["indent"])
        d = nr * 0.95
        cv2.circle(canvas, _pt(ncx - d * ox, ncy - d * oy), int(bite * _FP), 0, -1, cv2.LINE_AA, _SHIFT)
        cv2.ellipse(canvas, _pt(ncx + 0.3 * nr * oy, ncy - 0.3 * nr * ox), _ax(nr * 0.45, nr * 0.35), ang + 30, 0, 360,
                    255, -1, cv2.LINE_AA, _SHIFT)
    elif (cls == "neutrophil" and sub == 0) or (cls == "immature_granulocyte" and sub == 2):
        # Band neutrophil (thin, long C/S) vs metamyelocyte (thick, short kidney): overlapping ranges.
        if cls == "neutrophil":
            span = 170 + 110 * q["arc_span"]
            thick = 0.45 + 0.4 * q["arc_thick"]
        else:
            span = 130 + 90 * q["arc_span"]
            thick = 0.6 + 0.4 * q["arc_thick"]
        arc_r = r * (0.5 + 0.1 * q["nuc_offset"])
        width = max(2.5, thick * arc_r)
        start = ang - span / 2
        cv2.ellipse(canvas, _pt(cx, cy), _ax(arc_r, arc_r * asp), 0, start, start + span, 255,
                    max(1, int(round(width))), cv2.LINE_AA, _SHIFT)
    else:
        # Lobes along an arc: segmented neutrophils (2-5), eosinophils (2, sometimes 3).
        lobes = (3 if sub else 2) if cls == "eosinophil" else int(q["lobes"])
        lobe_r = nr * (1.15 if cls == "eosinophil" else 1.0)
        arc_r = r * (0.36 + 0.1 * q["nuc_offset"])
        span = (math.radians(110 + 70 * q["arc_span"]) if cls == "eosinophil"
                else math.radians(120 + 45 * lobes * q["arc_span"] + 20 * lobes))
        a0 = math.radians(ang) - span / 2
        centres = []
        for k in range(lobes):
            a = a0 + span * k / max(lobes - 1, 1)
            jitter = rng.uniform(-0.12, 0.12, 2) * r
            centres.append((cx + arc_r * math.cos(a) + jitter[0], cy + arc_r * math.sin(a) + jitter[1]))
        for (x0, y0), (x1, y1) in zip(centres, centres[1:]):  # thin chromatin strands between lobes
            cv2.line(canvas, _pt(x0, y0), _pt(x1, y1), 200, 1 + int(lobe_r > 5), cv2.LINE_AA, _SHIFT)
        for x, y in centres:
            lr = lobe_r * rng.uniform(0.85, 1.15)
            cv2.ellipse(canvas, _pt(x, y), _ax(lr, lr * rng.uniform(0.7, 0.95)), rng.uniform(0, 180), 0, 360, 255, -1,
                        cv2.LINE_AA, _SHIFT)


def render_chunk(n: int, count: int, rng: np.random.Generator, field_rng: np.random.Generator,
                  nuis_rng: np.random.Generator, options: SyntheticOptions
                  ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Draw the parameters of a full chunk of *n* (so prefixes are stable) and render the first *count*."""
    labels = rng.choice(len(CELL_CLASSES), n, p=CLASS_PROBS).astype(np.int64)
    textures = _texture_tiles(rng)
    p = _sample_cells(labels, rng)
    chromatin_pick = rng.integers(0, len(textures), n)
    chromatin_off = rng.integers(0, _TILE - SIZE + 1, (n, 2))
    tiles, tile_zoom = _red_cell_tiles(field_rng, options)
    tile_of = field_rng.integers(0, len(tiles), n)
    zoom = tile_zoom[tile_of]
    offsets = field_rng.integers(0, _TILE - SIZE + 1, (n, 2))
    flips = field_rng.integers(0, 4, n)

    # Granules: sampled for the whole chunk at once (before any per-image draw, so rendering only
    # the first `count` images consumes the streams identically), splatted as points, blurred later.
    g = _MAX_GRANULES
    valid = np.arange(g)[None, :] < np.minimum(p["granules"], g)[:, None]
    region = np.where(labels == CELL_CLASSES.index("platelet"), 0.9, 0.92) * p["radius"] * zoom
    rr = region[:, None] * np.sqrt(rng.uniform(0, 1, (n, g)))
    th = rng.uniform(0, 2 * np.pi, (n, g))
    gx = np.clip(np.round(p["cx"][:, None] + rr * np.cos(th)), 1, SIZE - 2).astype(np.intp)
    gy = np.clip(np.round(p["cy"][:, None] + rr * np.sin(th) * p["aspect"][:, None]), 1, SIZE - 2).astype(np.intp)
    gi = np.broadcast_to(np.arange(n)[:, None], (n, g))
    gval = rng.integers(150, 256, (n, g)).astype(np.uint8)
    valid[count:] = False  # images past `count` are not rendered
    big = (p["gran_size"][:, None] > 1.45) & valid

    masks = np.zeros((count, _LAYERS, SIZE, SIZE), dtype=np.uint8)
    masks[gi[valid], 3, gy[valid], gx[valid]] = gval[valid]
    for dy, dx in ((0, 1), (1, 0), (1, 1)):  # coarse granules (eosinophil, basophil) are 2x2 blocks
        masks[gi[big], 3, gy[big] + dy, gx[big] + dx] = gval[big]
    names = np.asarray(CELL_CLASSES)[labels]
    for i in range(count):
        cls = str(names[i])
        m_rbc, m_cyto, m_nuc = masks[i, 0], masks[i, 1], masks[i, 2]
        oy, ox = offsets[i]
        field = tiles[tile_of[i], oy:oy + SIZE, ox:ox + SIZE]
        m_rbc[:] = field[::-1] if flips[i] & 1 else field
        if flips[i] & 2:
            m_rbc[:] = m_rbc[:, ::-1]
        cx, cy, r = p["cx"][i], p["cy"][i], p["radius"][i] * zoom[i]
        asp, ang = p["aspect"][i], p["angle"][i]
        q = {k: float(p[k][i]) for k in ("nuc_offset", "arc_span", "arc_thick", "indent", "lobes")}
        if cls == "platelet":
            cv2.ellipse(m_cyto, _pt(cx, cy), _ax(r, r * asp), ang, 0, 360, 255, -1, cv2.LINE_AA, _SHIFT)
            for _ in range(p["subtype"][i] * int(rng.integers(1, 3))):  # small clumps of 2-3 platelets
                a = rng.uniform(0, 2 * math.pi)
                rr = r * rng.uniform(0.6, 1.0)
                cv2.ellipse(m_cyto, _pt(cx + 1.6 * r * math.cos(a), cy + 1.6 * r * math.sin(a)), _ax(rr, rr * 0.8),
                            rng.uniform(0, 180), 0, 360, 255, -1, cv2.LINE_AA, _SHIFT)
            continue
        cv2.ellipse(m_cyto, _pt(cx, cy), _ax(r, r * asp), ang, 0, 360, 255, -1, cv2.LINE_AA, _SHIFT)
        if cls == "monocyte":  # irregular outline: a second, shifted lobe of cytoplasm
            lobe = math.radians(ang)
            cv2.ellipse(m_cyto, _pt(cx + 0.25 * r * math.cos(lobe), cy + 0.25 * r * math.sin(lobe)),
                        _ax(r * 0.85, r * 0.75), ang + 70, 0, 360, 255, -1, cv2.LINE_AA, _SHIFT)
            for _ in range(int(p["vacuoles"][i])):  # pale vacuoles
                a, d = rng.uniform(0, 2 * math.pi), rng.uniform(0.5, 0.85) * r
                cv2.circle(m_cyto, _pt(cx + d * math.cos(a), cy + d * math.sin(a)), int(rng.uniform(0.8, 1.8) * _FP),
                           70, -1, cv2.LINE_AA, _SHIFT)
        nr = p["nuc_frac"][i] * r
        _draw_nucleus(m_nuc, cls, int(p["subtype"][i]), cx, cy, r, nr, asp, ang, q, rng)

    # Per-image OD matrix (layers x RGB): class colours, stain intensity and a hue rotation.
    od = np.zeros((n, _LAYERS, 3), dtype=np.float64)
    od[:, 0] = _OD_RBC
    od[:, 1] = np.array([_CYTO_OD[c] for c in CELL_CLASSES])[labels]
    od[:, 2] = _OD_NUCLEUS * p["density"][:, None]
    od[:, 3] = np.array([_GRAN_OD[c] for c in CELL_CLASSES])[labels]
    # Metamyelocytes already carry neutrophil-like (specific) granules and pink cytoplasm: only the
    # nucleus (thick short kidney vs thinner longer band) tells them from band neutrophils.
    meta = (labels == CELL_CLASSES.index("immature_granulocyte")) & (p["subtype"] == 2)
    od[meta, 1] = _CYTO_OD["neutrophil"]
    od[meta, 3] = _GRAN_OD["neutrophil"]
    intensity = 1.0 + options.stain * nuis_rng.uniform(-0.15, 0.15, (n, 2))
    od[:, 2:] *= intensity[:, :1, None]   # hematoxylin-like: nucleus and granules
    od[:, :2] *= intensity[:, 1:, None]   # eosin-like: red cells and cytoplasm
    hue = options.stain * nuis_rng.normal(0, 0.1, n).clip(-0.3, 0.3)
    od = od @ _hue_rotation(hue)
    # Scaled so that uint8 masks map straight to -OD (exp follows).
    neg_od = (od * (-1 / 255)).astype(np.float32)

    lavender = nuis_rng.uniform(0, 1, n) < options.background
    bg = (np.where(lavender[:, None], _BG_LAVENDER, _BG) + nuis_rng.normal(0, 3, (n, 3))).astype(np.float32)
    gain = 1.0 + 0.06 * options.illumination * nuis_rng.uniform(-1, 0.6, n)
    grad = 0.05 * options.illumination * nuis_rng.uniform(-1, 1, (n, 2))
    noise_sd = options.noise * nuis_rng.uniform(0.3, 1.0, n)
    blur = 0.35 + options.blur * nuis_rng.uniform(0, 1, n)
    grain_pick = nuis_rng.integers(0, len(textures), n)
    grain_off = nuis_rng.integers(0, _TILE - SIZE + 1, (n, 2))
    ramp = np.linspace(-1, 1, SIZE, dtype=np.float32)
    tex_amp = p["texture"].astype(np.float32)

    # Compositing runs per image on cache-sized arrays: measured ~2x faster than the same maths on
    # the whole (n, 4, 96, 96) float block, which is memory-bound on small machines.
    out = np.empty((count, SIZE, SIZE, 3), dtype=np.uint8)
    for i in range(count):
        dens = masks[i].astype(np.float32)
        # The cell lies on top of the red cells: they are hidden under it.
        dens[0] *= 1.0 - np.maximum(dens[1], dens[2]) * np.float32(1 / 255)
        y, x = chromatin_off[i]
        chromatin = textures[chromatin_pick[i], y:y + SIZE, x:x + SIZE] * tex_amp[i] + 1.0
        dens[2] *= np.clip(chromatin, 0.2, 2.0)
        rgb = (dens.reshape(_LAYERS, -1).T @ neg_od[i]).reshape(SIZE, SIZE, 3)  # -OD, channels last
        cv2.exp(rgb, rgb)  # Beer-Lambert
        rgb *= bg[i]
        illum = ramp[None, :] * np.float32(grad[i, 0]) + ramp[:, None] * np.float32(grad[i, 1]) + np.float32(gain[i])
        rgb *= illum[..., None]
        rgb = cv2.GaussianBlur(rgb, (0, 0), float(blur[i]))  # optics blur the light, then the sensor adds grain
        y, x = grain_off[i]
        rgb += (textures[grain_pick[i], y:y + SIZE, x:x + SIZE] * np.float32(noise_sd[i]))[..., None]
        out[i] = cv2.convertScaleAbs(rgb)  # rounds and saturates to 0..255 (values are never negative)
    nuisance = {"hue": hue, "stain_intensity": intensity, "lavender": lavender, "blur": blur, "zoom": zoom,
                "gain": gain, "noise": noise_sd, "subtype": p["subtype"].astype(np.int8)}
    return out, labels[:count], {k: v[:count] for k, v in nuisance.items()}


def _hue_rotation(angle: np.ndarray) -> np.ndarray:
    """(n, 3, 3) rotations about the grey axis (Rodrigues): shifts stain hue, keeps density."""
    k = np.ones(3) / math.sqrt(3)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    return c * np.eye(3) + s * kx + (1 - c) * np.outer(k, k)
