"""Built-in shifts: 33 synthetic test-time shifts, 5 severities each, registered like any plugin's.

One row per shift: name, family, function, the severity table (parameters for severities 1..5,
imagecorruptions style: readable at a glance) and what it simulates. Spatial parameters are pixels
at 96 px (they scale with the image). The ladders were calibrated on real PBC test images (see
docs/shifts.md and benchmarks/calibrate_shifts.py): severity 1 is barely visible, 5 is strong but
the cell is still recognisable. Changing any row changes the shifted sets, so bump
``bench.shiftsets.SUITE_VERSION`` with it.
"""

from __future__ import annotations

import numpy as np

from robustbench_cells.hookspecs import hookimpl
from robustbench_cells.ops import (blur, composite, digital, geometric, lab, microscopy, noise, occlusion,
                                   photometric, stain)
from robustbench_cells.registry import ShiftSpec


def background(images: np.ndarray, param: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Foreign background (:func:`robustbench_cells.ops.composite.background_shift`) on the shipped
    backgrounds: opacity ``param[0]``, the cell moved by up to ``param[1]`` of the side."""
    from robustbench_cells.data.backgrounds import load_backgrounds

    return composite.background_shift(images, param, rng, load_backgrounds(size=max(images.shape[1:3])))


# name, family, fn, severities 1..5, description
SHIFTS: tuple[tuple, ...] = (
    # noise
    ("gaussian_noise", "noise", noise.gaussian_noise, (0.02, 0.035, 0.05, 0.07, 0.1), "additive Gaussian sensor noise (sigma, 0..1 scale)"),
    ("shot_noise", "noise", noise.shot_noise, (800, 400, 200, 100, 50), "photon (Poisson) noise (photons per white pixel)"),
    ("impulse_noise", "noise", noise.impulse_noise, (0.01, 0.02, 0.04, 0.07, 0.1), "salt and pepper (fraction of samples)"),
    ("speckle_noise", "noise", noise.speckle_noise, (0.03, 0.06, 0.09, 0.13, 0.18), "multiplicative noise (sigma)"),
    # blur
    ("defocus_blur", "blur", blur.defocus_blur, (0.8, 1.2, 1.6, 2.2, 3.0), "lens defocus, disk kernel (radius px)"),
    ("motion_blur", "blur", blur.motion_blur, (2, 3.5, 5, 7, 9), "linear motion, random direction (length px)"),
    ("gaussian_blur", "blur", blur.gaussian_blur, (0.5, 0.8, 1.1, 1.5, 2.0), "Gaussian blur (sigma px)"),
    ("zoom_blur", "blur", blur.zoom_blur, (1.04, 1.07, 1.1, 1.14, 1.18), "zoom during exposure (max zoom)"),
    ("glass_blur", "blur", blur.glass_blur, ((0.4, 0.5, 1), (0.5, 0.8, 1), (0.6, 1.3, 1), (0.7, 1.8, 1), (0.8, 2.4, 1)), "frosted glass: blur, local pixel scrambling, blur (sigma px, delta px, iterations)"),
    # digital
    ("jpeg_compression", "digital", digital.jpeg_compression, (60, 40, 25, 15, 8), "JPEG re-encoding (quality)"),
    ("pixelate", "digital", digital.pixelate, (0.8, 0.65, 0.5, 0.4, 0.3), "blocky down/up-sampling (size factor)"),
    ("resolution", "digital", digital.downscale, (0.7, 0.55, 0.45, 0.35, 0.25), "lower-resolution camera, bicubic up (size factor)"),
    # photometric
    ("brightness_up", "photometric", photometric.brightness, (0.05, 0.1, 0.15, 0.2, 0.3), "brighter exposure (added, 0..1)"),
    ("brightness_down", "photometric", photometric.brightness, (-0.05, -0.1, -0.15, -0.2, -0.3), "darker exposure (added, 0..1)"),
    ("contrast_up", "photometric", photometric.contrast, (1.15, 1.3, 1.5, 1.75, 2.0), "more contrast (factor)"),
    ("contrast_down", "photometric", photometric.contrast, (0.85, 0.7, 0.55, 0.4, 0.3), "less contrast (factor)"),
    ("saturate", "photometric", photometric.saturate, ((1.15, 0), (1.35, 0), (1.6, 0), (2.0, 0.03), (2.5, 0.06)), "HSV saturation (factor, offset)"),
    ("gamma", "photometric", photometric.gamma, (1.15, 1.35, 1.6, 1.9, 2.3), "camera gamma curve (exponent)"),
    ("hue_shift", "photometric", photometric.hue_shift, (6, 12, 20, 30, 45), "hue rotation (degrees)"),
    ("white_balance", "photometric", photometric.white_balance, ((1.03, 1, 0.96), (1.06, 1, 0.92), (1.1, 1, 0.87), (1.15, 1, 0.8), (1.2, 1, 0.72)), "warm illumination colour (R, G, B gains)"),
    # stain
    ("stain_shift", "stain", stain.stain_shift, ((1.15, 0.85, 0.03), (1.3, 0.72, 0.05), (1.5, 0.6, 0.07), (1.75, 0.48, 0.09), (2.0, 0.36, 0.1)), "another lab's staining, HED space (H gain, E gain, per-image jitter)"),
    ("stain_deposit", "stain", stain.stain_deposit, ((2, 1.2), (4, 1.5), (6, 1.8), (9, 2.0), (12, 2.4)), "stain precipitate blotches (count, size px)"),
    # microscopy
    ("bubble", "microscopy", microscopy.bubble, ((1, 10), (1, 14), (2, 16), (2, 20), (3, 24)), "air bubbles (count, radius px)"),
    ("dust", "microscopy", microscopy.dust, ((5, 0.6), (10, 0.7), (20, 0.8), (30, 0.9), (45, 1.0)), "dust specks (count, size px)"),
    ("vignetting", "microscopy", microscopy.vignetting, (0.06, 0.15, 0.25, 0.4, 0.55), "uneven illumination (fall-off)"),
    ("out_of_focus", "microscopy", microscopy.out_of_focus, (1.0, 1.6, 2.2, 3.0, 4.0), "tilted slide: blur across the field (radius px)"),
    # geometric
    ("rotation", "geometric", geometric.rotation, (5, 10, 20, 30, 45), "rotation, random sense (degrees)"),
    ("flip", "geometric", geometric.flip, (0.2, 0.4, 0.6, 0.8, 1.0), "h/v flips (fraction of images)"),
    ("scale", "geometric", geometric.scale, (1.08, 1.16, 1.25, 1.35, 1.5), "magnification (zoom factor)"),
    ("elastic_transform", "geometric", geometric.elastic_transform, ((0.5, 16), (0.8, 16), (1.1, 15), (1.5, 14), (2.0, 14)), "smooth random warp (RMS displacement px, feature spacing px)"),
    ("translation", "geometric", geometric.translation, (0.04, 0.08, 0.12, 0.17, 0.22), "off-centre crop (fraction of side)"),
    # background
    ("background", "background", background, ((0.1, 0.0), (0.25, 0.02), (0.45, 0.04), (0.7, 0.06), (1.0, 0.08)), "cell on a foreign background (opacity, max offset)"),
    # occlusion
    ("occlusion", "occlusion", occlusion.occlusion, ((1, 0.03), (1, 0.06), (2, 0.1), (2, 0.15), (3, 0.2)), "dark debris rectangles (count, area fraction)"),
    # lab: differences between real labs (ops/lab.py, docs/shifts.md)
    ("magnification", "lab", lab.magnification, (1.15, 1.3, 1.5, 1.75, 2.0), "another magnification: cell scale x f or x 1/f, crop/pad (factor)"),
    ("plasma_tint", "lab", lab.plasma_tint, (0.15, 0.3, 0.45, 0.6, 0.8), "background/plasma tint: yellow, grey, white or lavender (blend)"),
    ("od_stain", "lab", lab.od_stain, (0.2, 0.4, 0.6, 0.8, 1.0), "MGG/Wright/rapid stain vectors in optical density (strength)"),
    ("camera", "lab", lab.camera, ((0.04, 0.08), (0.07, 0.15), (0.1, 0.22), (0.14, 0.3), (0.18, 0.4)), "camera white balance and gamma (gain log-sd, log-gamma)"),
    ("low_res", "lab", lab.low_res, ((0.8, 0.3, 80), (0.65, 0.5, 60), (0.5, 0.7, 45), (0.4, 0.9, 30), (0.3, 1.2, 20)), "low-resolution capture (size factor, blur sigma px, JPEG quality)"),
    ("lab_profile", "lab", lab.lab_profile, (0.2, 0.4, 0.6, 0.8, 1.0), "a random lab per image combining the lab shifts (strength)"),
)


@hookimpl
def register_shifts(register) -> None:
    """Register the built-in shifts."""
    for name, family, fn, severities, description in SHIFTS:
        register(ShiftSpec(name=name, family=family, fn=fn, severities=severities, description=description))
