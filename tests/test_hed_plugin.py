"""The example third-party plugin plugins/cellbench-hed: discovered through its entry point, used in a
shifted-set run and as an augmentation. CI installs it (`pip install -e plugins/cellbench-hed`)."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pytest

from robustbench_cells import plugins
from robustbench_cells.bench.shiftsets import ShiftCache, shift_images
from tests.images import smear_cells


def cells(n: int = 32, size: int = 48) -> np.ndarray:
    """Stained-looking images (pink smear, violet disc) so the test does not need ../shared."""
    return smear_cells(n, size, (230, 195, 200), (120, 70, 160), noise=6)


@pytest.fixture
def with_entry_points():
    names = [ep.name for ep in importlib.metadata.entry_points(group="cellbench")]
    assert "hed" in names, "install the example plugin: pip install -e plugins/cellbench-hed"
    plugins.configure(entry_points=True)  # tests do not load entry points unless they ask
    return plugins.get_host()


def test_not_loaded_unless_asked():
    assert "hed_stain" not in plugins.shifts()


def test_discovered_through_entry_point(with_entry_points):
    info = next(i for i in with_entry_points.infos if i.name == "hed")
    assert info.source == "entry point" and not info.error
    assert info.version == importlib.metadata.version("cellbench-hed")
    assert info.registered == {"augmentation": ["hed_jitter"], "shift": ["hed_stain"]}
    assert with_entry_points.shifts.get("hed_stain").plugin == "hed"


def test_hed_shift_in_a_shifted_set_run(with_entry_points, tmp_path):
    images = cells()
    cache = ShiftCache(tmp_path)
    paths = cache.build_all(images, "cells32", ["hed_stain", "gaussian_noise"], (1, 3, 5), seed=0, jobs=2)
    assert len(paths) == 6 and cache.generated == 6
    fields = cache.key_fields(images.shape, "cells32", "hed_stain", 3, 0)
    assert fields["plugin"] == "hed" and fields["plugin_version"] == importlib.metadata.version("cellbench-hed")
    shifted = [cache.get(images, "cells32", "hed_stain", s, 0) for s in (1, 3, 5)]
    assert all(s.dtype == np.uint8 and s.shape == images.shape for s in shifted)
    mad = [np.abs(s.astype(int) - images).mean() for s in shifted]
    assert 0 < mad[0] < mad[1] < mad[2]
    assert np.array_equal(shifted[1], shift_images(images, "hed_stain", 3, 0))


def test_hed_jitter_augmentation(with_entry_points):
    spec = with_entry_points.augmentations.get("hed_jitter")
    images = cells(8)
    assert np.array_equal(spec.build(sigma=0.0, bias=0.0)(images, np.random.default_rng(0)), images)
    out = spec.build()(images, np.random.default_rng(0))
    assert out.dtype == np.uint8 and out.shape == images.shape and not np.array_equal(out, images)
    with pytest.raises(Exception, match="sigma"):
        spec.build(sigma=-1)
