"""Contract tests over every registered shift (the live registry: built-ins and installed entry points).

A new shift is picked up here without edits: shape/dtype kept at 96 and 28 px, determinism,
severity 0 is identity, strength grows with severity on real PBC images, no global RNG.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from robustbench_cells import plugins
from robustbench_cells.bench.shiftsets import shift_images
from robustbench_cells.registry import SHIFT_FAMILIES

#: Shifts left out of the contract run, each with its reason (none: every one must pass).
EXCLUDED: dict[str, str] = {}
LIVE = plugins.PluginHost(entry_points=True)  # what `cellbench` loads: built-ins and installed entry points
SHIFT_NAMES = [n for n in LIVE.shifts.names() if n not in EXCLUDED]


def cell_like(n: int, size: int | tuple[int, int], seed: int = 0) -> np.ndarray:
    """Pinkish smear with a purple 'nucleus' disc and some texture: enough structure for every shift."""
    rng = np.random.default_rng(seed)
    h, w = (size, size) if isinstance(size, int) else size
    yy, xx = np.mgrid[:h, :w]
    images = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        base = np.array([235, 200, 190]) + rng.integers(-10, 10, 3)
        img = np.broadcast_to(base, (h, w, 3)).astype(np.float32).copy()
        cy, cx = np.array([h, w]) / 2 + rng.uniform(-3, 3, 2)
        r = min(h, w) * rng.uniform(0.15, 0.25)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = (110, 60, 150)
        img += rng.normal(0, 4, img.shape)
        images[i] = np.clip(img, 0, 255).astype(np.uint8)
    return images


def test_suite_size_families_and_tables():
    specs = list(plugins.shifts())
    assert len(specs) >= 26
    for spec in specs:
        assert spec.family in SHIFT_FAMILIES, spec.name
        assert len(spec.severities) == 5, spec.name
        assert spec.description, spec.name
    # MedMNIST-C's 11 blood corruptions and ImageNet-C's noise/blur/digital families are covered
    required = {"pixelate", "jpeg_compression", "defocus_blur", "motion_blur", "brightness_up", "brightness_down",
                "contrast_up", "contrast_down", "saturate", "stain_deposit", "bubble", "gaussian_noise", "shot_noise",
                "impulse_noise", "speckle_noise", "gaussian_blur", "zoom_blur"}
    assert required <= set(SHIFT_NAMES)
    assert {s.family for s in specs} == set(SHIFT_FAMILIES)


@pytest.mark.parametrize("name", SHIFT_NAMES)
@pytest.mark.parametrize("size", [96, 28, (30, 50)])
def test_shape_dtype_and_determinism(name, size):
    images = cell_like(5, size)
    before = images.copy()
    for severity in (1, 5):
        a = shift_images(images, name, severity, seed=3)
        b = shift_images(images, name, severity, seed=3)
        assert a.dtype == np.uint8 and a.shape == images.shape
        assert np.array_equal(a, b)
    assert np.array_equal(images, before), "a shift modified its input in place"
    assert shift_images(images[:0], name, 3, seed=3).shape == (0, *images.shape[1:])


@pytest.mark.parametrize("name", SHIFT_NAMES)
def test_severity_zero_is_identity(name):
    images = cell_like(3, 64)
    assert np.array_equal(shift_images(images, name, 0, seed=1), images)
    spec = plugins.shifts().get(name)
    assert np.array_equal(spec.apply(images, 0, np.random.default_rng(0)), images)


@pytest.mark.parametrize("name", SHIFT_NAMES)
def test_no_global_rng(name):
    images = cell_like(4, 48)
    np.random.seed(123)
    random.seed(123)
    np_state, py_state = np.random.get_state()[1].copy(), random.getstate()
    shift_images(images, name, 3, seed=0)
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert random.getstate() == py_state


@pytest.mark.pbc
def test_strength_grows_with_severity_on_real_images(pbc_sample):
    """Mean absolute difference to the clean image rises strictly from severity 1 to 5, for every shift."""
    images = pbc_sample[::4]  # 64 real test images, 8 per class
    failures = []
    for name in SHIFT_NAMES:
        mad = [np.abs(shift_images(images, name, s, seed=0).astype(np.int16) - images).mean() for s in range(1, 6)]
        if not all(b > a for a, b in zip(mad, mad[1:])) or mad[0] <= 0:
            failures.append(f"{name}: {np.round(mad, 2).tolist()}")
    assert not failures, "not monotone: " + "; ".join(failures)


@pytest.mark.pbc
def test_severity_one_is_mild_and_five_is_not_destructive(pbc_sample):
    """Calibration guard rails: sev 1 changes little (MAD < 20 levels); sev 5 keeps the picture (MAD < 110)."""
    images = pbc_sample[::8]
    for name in SHIFT_NAMES:
        mad1 = np.abs(shift_images(images, name, 1, seed=0).astype(np.int16) - images).mean()
        mad5 = np.abs(shift_images(images, name, 5, seed=0).astype(np.int16) - images).mean()
        assert mad1 < 20, (name, mad1)
        assert mad5 < 110, (name, mad5)
