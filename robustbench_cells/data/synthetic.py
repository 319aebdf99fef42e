"""Procedural synthetic blood cells: the embedded default data set (``synthetic[:N]``).

Each image is a 96x96 RGB crop of one cell of the 8 PBC classes on a beige-pink field of red
cells, rendered physically: the layers (red cells, cytoplasm, nucleus, granules) are drawn as
stain-density masks with OpenCV, mixed into optical density with per-image stain colours, and
turned into light with Beer-Lambert (``I = I0 * exp(-OD)``). Morphology is class-specific and
deliberately overlapping where the real classes overlap (band vs segmented neutrophils vs
metamyelocytes; small lymphocytes vs erythroblasts; large lymphocytes vs monocytes), so a small
CNN needs several epochs and does not reach 100%.

Nuisance factors are label-independent and controllable (:class:`SyntheticOptions`): stain hue and
intensity, background tint (including the lavender background of PBC's odd sub-batch), blur,
zoom, illumination gradient and pixel noise. Every image's nuisance values are returned in
``Dataset.meta["per_image"]`` (sliced along by ``Dataset.subset``).

Determinism: images are produced in chunks of :data:`CHUNK` from ``default_rng([seed, chunk, k])``
(k: cells, red-cell field, nuisances), so the same seed gives the same bytes, ``synthetic:500`` is
the first 500 of ``synthetic:4000``, and changing only ``stain``/``background``/``blur``/
``illumination``/``noise`` re-renders the same cells (``scale`` and ``crowding`` also keep the
cells but redraw the red-cell field).

This module holds the options, the spec parsing and the public entry points; the drawing and
compositing of a chunk live in :mod:`robustbench_cells.data.synthetic_render` (``SIZE`` and
``CLASS_PROBS`` are re-exported from there).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from robustbench_cells.data.dataset import CELL_CLASSES, Dataset
from robustbench_cells.data.splits import stratified_assignment
from robustbench_cells.data.synthetic_render import CLASS_PROBS, SIZE, render_chunk
from robustbench_cells.errors import CellbenchError, did_you_mean

CHUNK = 256
DEFAULT_N = 4000
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)

__all__ = [
    "CHUNK", "CLASS_PROBS", "DEFAULT_N", "SIZE", "SPLIT_FRACTIONS", "SyntheticOptions", "generate",
    "load_synthetic", "parse_synthetic_arg", "synthetic_dataset",
]


@dataclass(frozen=True)
class SyntheticOptions:
    """Strength of the label-independent nuisance factors (1.0 / defaults = PBC-like variation).

    - ``stain``: stain hue rotation and intensity jitter (0 = one fixed stain).
    - ``background``: probability of a lavender background instead of beige-pink.
    - ``blur``: maximum extra Gaussian blur sigma in pixels (a base 0.45 is always applied).
    - ``scale``: zoom jitter, e.g. 0.08 = cells and red cells 8% smaller to 8% larger.
    - ``illumination``: amplitude of the brightness gain and linear illumination gradient.
    - ``noise``: maximum standard deviation of the pixel noise (0..255 scale).
    - ``crowding``: mean number of red cells per tile relative to PBC (1.0).
    """

    stain: float = 1.0
    background: float = 0.05
    blur: float = 0.6
    scale: float = 0.08
    illumination: float = 1.0
    noise: float = 2.5
    crowding: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise CellbenchError(f"synthetic option {f.name}={value!r}: must be a finite number >= 0")
        if self.background > 1:
            raise CellbenchError(f"synthetic option background={self.background}: a probability in 0..1")
        if self.scale >= 0.5:
            raise CellbenchError(f"synthetic option scale={self.scale}: must be below 0.5")


def generate(n: int, seed: int = 0, options: SyntheticOptions | None = None
             ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``(images uint8 (n, 96, 96, 3), labels int64 (n,), nuisance)``; same seed, same bytes.

    ``nuisance`` maps factor names (``hue``, ``stain_intensity``, ``lavender``, ``blur``, ``zoom``,
    ``gain``, ``noise``, ``subtype``) to per-image arrays.
    """
    if n < 0:
        raise CellbenchError(f"synthetic: number of images must be >= 0, got {n}")
    options = options or SyntheticOptions()
    images = np.empty((n, SIZE, SIZE, 3), dtype=np.uint8)
    labels = np.empty(n, dtype=np.int64)
    nuisance: dict[str, list[np.ndarray]] = {}
    for chunk, start in enumerate(range(0, n, CHUNK)):
        count = min(CHUNK, n - start)
        # Three independent streams: the cells, the red-cell field and the nuisances. Changing a
        # nuisance option therefore re-renders the *same* cells (paired images for shift studies).
        streams = [np.random.default_rng([seed, chunk, k]) for k in range(3)]
        imgs, labs, nuis = render_chunk(CHUNK, count, *streams, options)
        images[start:start + count] = imgs
        labels[start:start + count] = labs
        for key, value in nuis.items():
            nuisance.setdefault(key, []).append(value)
    merged = {k: np.concatenate(v) for k, v in nuisance.items()}
    return images, labels, merged


def synthetic_dataset(n: int = DEFAULT_N, seed: int = 0, options: SyntheticOptions | None = None,
                      source: str = "") -> Dataset:
    """The synthetic data set with its own stratified 70/10/20 train/val/test split (split seed 0)."""
    options = options or SyntheticOptions()
    images, labels, nuisance = generate(n, seed, options)
    split = stratified_assignment(labels, SPLIT_FRACTIONS, 0)
    return Dataset(images=images, labels=labels, class_names=CELL_CLASSES,
                   source=source or f"synthetic:{n}:seed={seed}",
                   split=split, meta={"loader": "synthetic", "seed": seed, "options": asdict(options),
                                      "per_image": nuisance})


def parse_synthetic_arg(arg: str | None) -> tuple[int, int, SyntheticOptions]:
    """Parse the part after ``synthetic:``: ``[N][:SEED][:key=value,...]`` (keys: SyntheticOptions, ``seed``, ``n``)."""
    n, seed, opts = DEFAULT_N, 0, {}
    positional = 0
    known = {f.name for f in fields(SyntheticOptions)}
    for part in (arg or "").replace(",", ":").split(":"):
        part = part.strip()
        if not part:
            continue
        key, eq, value = part.partition("=")
        if not eq:
            key, value = ("n", "seed")[min(positional, 1)] if positional < 2 else "", part
            positional += 1
            if not key:
                raise CellbenchError(f"synthetic:{arg}: too many positional values (use synthetic:N:SEED:key=value)")
        key = key.strip().lower()
        try:
            if key in ("n", "seed"):
                number = int(value)
                if key == "n":
                    n = number
                else:
                    seed = number
            elif key in known:
                opts[key] = float(value)
            else:
                raise CellbenchError(
                    f"synthetic:{arg}: unknown option {key!r}{did_you_mean(key, sorted(known | {'n', 'seed'}))}; "
                    f"options: n, seed, {', '.join(sorted(known))}"
                )
        except ValueError:
            raise CellbenchError(f"synthetic:{arg}: {key} must be a number, got {value!r}") from None
    if n <= 0:
        raise CellbenchError(f"synthetic:{arg}: number of images must be positive, got {n}")
    if seed < 0:
        raise CellbenchError(f"synthetic:{arg}: seed must be >= 0, got {seed}")
    return n, seed, SyntheticOptions(**opts)


def load_synthetic(arg: str | None) -> Dataset:
    """Loader for the ``synthetic`` data set spec."""
    n, seed, options = parse_synthetic_arg(arg)
    return synthetic_dataset(n, seed, options, source="synthetic" + (f":{arg}" if arg else ""))
