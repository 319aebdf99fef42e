"""Built-in augmentations, registered through the same hook a third-party plugin uses.

Each factory validates its options (a bad value names the augmentation and the option) and
returns the function the pipeline calls:

- ``kind="image"``: ``fn(images uint8 (N,H,W,3), rng) -> uint8 (N,H,W,3)``, random per image;
- ``kind="batch"``: ``fn(images float32 (N,H,W,3) 0..255, labels float32 (N,C), rng) -> (images, labels)``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from robustbench_cells.errors import CellbenchError
from robustbench_cells.hookspecs import hookimpl
from robustbench_cells.registry import AugmentationSpec

ImageFn = Callable[[np.ndarray, np.random.Generator], np.ndarray]
BatchFn = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


# -- option validation ---------------------------------------------------------------------------------
def _bad(aug: str, option: str, what: str, value: Any) -> CellbenchError:
    return CellbenchError(f"augmentation {aug!r}: option {option!r} must be {what}, got {value!r}")


def number(aug: str, option: str, value: Any, lo: float = -np.inf, hi: float = np.inf) -> float:
    """``value`` as a float in ``[lo, hi]``, else a CellbenchError naming *aug* and *option*."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not lo <= value <= hi:
        raise _bad(aug, option, f"a number in [{lo}, {hi}]", value)
    return float(value)


def integer(aug: str, option: str, value: Any, lo: int, hi: int) -> int:
    """``value`` as an int in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise _bad(aug, option, f"an integer in [{lo}, {hi}]", value)
    return int(value)


def span(aug: str, option: str, value: Any, lo: float = -np.inf, hi: float = np.inf) -> tuple[float, float]:
    """``value`` as an ordered pair ``(a, b)`` with ``lo <= a <= b <= hi``."""
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise _bad(aug, option, f"a pair [low, high] within [{lo}, {hi}]", value) from None
    if not lo <= a <= b <= hi:
        raise _bad(aug, option, f"a pair [low, high] within [{lo}, {hi}]", value)
    return a, b


def choice(aug: str, option: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` if it is one of *choices*."""
    if value not in choices:
        raise _bad(aug, option, "one of " + ", ".join(choices), value)
    return value


# -- factories -----------------------------------------------------------------------------------------
def make_none() -> ImageFn:
    """Identity: the images as they are."""
    return lambda images, rng: images


def make_simple(flip: str = "both", rotation: float = 180.0, zoom=(0.9, 1.1), translate: float = 0.1,
                contrast: float = 0.2, brightness: float = 0.1) -> ImageFn:
    from robustbench_cells.ops.augment import random_simple

    kw = dict(
        flip=choice("simple", "flip", flip, ("none", "horizontal", "vertical", "both")),
        rotation=number("simple", "rotation", rotation, 0, 180),
        zoom=span("simple", "zoom", zoom, 0.1, 10),
        translate=number("simple", "translate", translate, 0, 1),
        contrast=number("simple", "contrast", contrast, 0, 1),
        brightness=number("simple", "brightness", brightness, 0, 1),
    )
    return lambda images, rng: random_simple(images, rng, **kw)


def make_augmix(severity: float = 3.0, width: int = 3, depth: int = -1, alpha: float = 1.0) -> ImageFn:
    from robustbench_cells.ops.augmix import augmix

    kw = dict(severity=number("augmix", "severity", severity, 0.1, 10), width=integer("augmix", "width", width, 1, 8),
              depth=integer("augmix", "depth", depth, -1, 5), alpha=number("augmix", "alpha", alpha, 1e-3, 100))
    if kw["depth"] == 0:
        raise _bad("augmix", "depth", "-1 (random 1..3) or 1..5", depth)
    return lambda images, rng: augmix(images, rng, **kw)


def make_randaugment(num_ops: int = 2, magnitude: float = 9.0, magnitude_std: float = 0.5) -> ImageFn:
    from robustbench_cells.ops.augmix import randaugment

    kw = dict(num_ops=integer("randaugment", "num_ops", num_ops, 0, 10),
              magnitude=number("randaugment", "magnitude", magnitude, 0, 10),
              magnitude_std=number("randaugment", "magnitude_std", magnitude_std, 0, 10))
    return lambda images, rng: randaugment(images, rng, **kw)


def make_gaussian_noise(sigma=(2.0, 16.0), p: float = 1.0) -> ImageFn:
    from robustbench_cells.ops.noise import random_gaussian_noise

    kw = dict(sigma=span("gaussian_noise", "sigma", sigma, 0, 255), p=number("gaussian_noise", "p", p, 0, 1))
    return lambda images, rng: random_gaussian_noise(images, rng, **kw)


def make_mixup(alpha: float = 0.2, p: float = 1.0) -> BatchFn:
    from robustbench_cells.ops.mixing import mixup

    kw = dict(alpha=number("mixup", "alpha", alpha, 1e-3, 100), p=number("mixup", "p", p, 0, 1))
    return lambda images, labels, rng: mixup(images, labels, rng, **kw)


def make_cutmix(alpha: float = 1.0, p: float = 1.0) -> BatchFn:
    from robustbench_cells.ops.mixing import cutmix

    kw = dict(alpha=number("cutmix", "alpha", alpha, 1e-3, 100), p=number("cutmix", "p", p, 0, 1))
    return lambda images, labels, rng: cutmix(images, labels, rng, **kw)


def make_background(p: float = 0.5, folder: str | None = None, scale=(0.8, 1.2), max_offset: float = 0.15) -> ImageFn:
    from robustbench_cells.data.backgrounds import load_backgrounds
    from robustbench_cells.ops.composite import random_background

    p = number("background", "p", p, 0, 1)
    scale = span("background", "scale", scale, 0.1, 5)
    max_offset = number("background", "max_offset", max_offset, 0, 1)
    if folder is not None and not isinstance(folder, str):
        raise _bad("background", "folder", "a folder path", folder)
    try:
        backgrounds = load_backgrounds(folder, size=128)  # crops are resized to the image size later
    except CellbenchError as exc:
        raise CellbenchError(f"augmentation 'background': option 'folder': {exc}") from None
    return lambda images, rng: random_background(images, rng, backgrounds, p=p, scale=scale, max_offset=max_offset)


def make_stain(space: str = "both", hed_sigma: float = 0.05, hed_bias: float = 0.05, hue: float = 8.0,
               saturation: float = 0.15, value: float = 0.1) -> ImageFn:
    from robustbench_cells.ops.augment import random_stain

    space = choice("stain", "space", space, ("hed", "hsv", "both"))
    hed_sigma = number("stain", "hed_sigma", hed_sigma, 0, 1)
    hed_bias = number("stain", "hed_bias", hed_bias, 0, 1)
    hue = number("stain", "hue", hue, 0, 180)
    saturation = number("stain", "saturation", saturation, 0, 1)
    value = number("stain", "value", value, 0, 1)
    kw = dict(space=space, hed_sigma=hed_sigma, hed_bias=hed_bias, hue=hue, saturation=saturation, value=value)
    return lambda images, rng: random_stain(images, rng, **kw)


def make_corruptions(held_out: Sequence[str] = (), severity=(1, 5), p: float = 0.5) -> ImageFn:
    """Train on random test-time shifts (AugMedMNIST-C idea), holding out families or shifts."""
    from robustbench_cells import plugins

    if isinstance(held_out, str):
        held_out = [held_out]
    if not isinstance(held_out, (list, tuple)) or not all(isinstance(h, str) for h in held_out):
        raise _bad("corruptions", "held_out", "a list of shift families or shift names", held_out)
    lo, hi = span("corruptions", "severity", severity, 1, 5)
    if lo != int(lo) or hi != int(hi):
        raise _bad("corruptions", "severity", "a pair of integers within [1, 5]", severity)
    p = number("corruptions", "p", p, 0, 1)
    registry = plugins.shifts()
    specs = list(registry)
    for pattern in held_out:
        if not any(fnmatch.fnmatchcase(s.name, pattern) or fnmatch.fnmatchcase(s.family, pattern) for s in specs):
            families = sorted({s.family for s in specs})
            raise CellbenchError(f"augmentation 'corruptions': option 'held_out': {pattern!r} matches no shift "
                                 f"or shift family (families: {', '.join(families) or 'none registered'})")
    pool = [s for s in specs if not any(fnmatch.fnmatchcase(s.name, h) or fnmatch.fnmatchcase(s.family, h)
                                        for h in held_out)]
    if not pool:
        raise CellbenchError("augmentation 'corruptions': option 'held_out' leaves no shift to train on")
    families = sorted({s.family for s in pool})
    by_family = {f: [s for s in pool if s.family == f] for f in families}

    def fn(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n = len(images)
        # Draw every choice up front: family first (uniform over families, so a family with many
        # shifts is not over-represented), then a shift in it, then a severity.
        applied = rng.random(n) < p
        fam = rng.integers(0, len(families), n)
        pick = rng.random(n)
        sev = rng.integers(int(lo), int(hi) + 1, n)
        out = images.copy()
        groups: dict[tuple[int, int, int], list[int]] = {}
        for i in np.flatnonzero(applied):
            members = by_family[families[fam[i]]]
            groups.setdefault((int(fam[i]), int(pick[i] * len(members)), int(sev[i])), []).append(i)
        for (f, j, s), idx in sorted(groups.items()):
            spec = by_family[families[f]][j]
            shifted = spec.apply(images[idx], s, rng)
            if shifted.shape != out[idx].shape or shifted.dtype != np.uint8:
                raise CellbenchError(f"augmentation 'corruptions': shift {spec.name!r} returned "
                                     f"{shifted.dtype} {shifted.shape} for uint8 {out[idx].shape}")
            out[idx] = shifted
        return out

    return fn


def make_lab(strength: Any = (0.2, 1.0), p: Any = 0.8) -> ImageFn:
    """A random lab profile per image (:func:`robustbench_cells.ops.lab.lab_profile`): magnification,
    OD-space stain, plasma tint, camera and low-res capture, at a strength drawn in *strength*."""
    from robustbench_cells.ops.augment import random_lab

    kw = dict(strength=span("lab", "strength", strength, 0, 1), p=number("lab", "p", p, 0, 1))
    return lambda images, rng: random_lab(images, rng, **kw)


BUILTINS: tuple[AugmentationSpec, ...] = (
    AugmentationSpec("none", "none", "image", make_none, "no augmentation"),
    AugmentationSpec("simple", "basic", "image", make_simple,
                     "random flip, rotation, zoom, translation, contrast, brightness"),
    AugmentationSpec("augmix", "policy", "image", make_augmix,
                     "AugMix: per-image mixed chains of ops (JSD views via jsd_views=True)"),
    AugmentationSpec("randaugment", "policy", "image", make_randaugment,
                     "RandAugment: num_ops random ops at a magnitude"),
    AugmentationSpec("gaussian_noise", "noise", "image", make_gaussian_noise,
                     "additive Gaussian noise, sigma on the 0..255 scale"),
    AugmentationSpec("mixup", "mixing", "batch", make_mixup, "MixUp images and labels within a batch"),
    AugmentationSpec("cutmix", "mixing", "batch", make_cutmix, "CutMix boxes and labels within a batch"),
    AugmentationSpec("background", "background", "image", make_background,
                     "paste the segmented cell onto a random background image"),
    AugmentationSpec("stain", "stain", "image", make_stain, "stain/colour jitter in HED and/or HSV space"),
    AugmentationSpec("corruptions", "corruption", "image", make_corruptions,
                     "a random shift family from the shift registry at a random severity"),
    AugmentationSpec("lab", "lab", "image", make_lab,
                     "a random lab profile per image: magnification, stain, plasma tint, camera, low-res capture"),
)


@hookimpl
def register_augmentations(register) -> None:
    """Register the built-in augmentations."""
    for spec in BUILTINS:
        register(spec)
