"""Contract tests over EVERY registered augmentation (the live registry: built-ins, installed entry points).

uint8 in -> uint8 same shape out (image kind) or float images + valid label distributions
(batch kind); input untouched; deterministic for a seed; independent of NumPy's global RNG;
bad options name the augmentation and the option.
"""

from __future__ import annotations

import random
import textwrap

import cv2
import numpy as np
import pytest

from robustbench_cells import plugins
from robustbench_cells.errors import CellbenchError

# The built-ins, listed so a new augmentation cannot silently drop out of the contract run.
BUILTIN_NAMES = ("albumentations", "augmix", "background", "corruptions", "cutmix", "gaussian_noise",
                 "keras_layer", "lab", "mixup", "none", "randaugment", "simple", "stain")


#: Augmentations left out of the contract run, each with its reason (none: every one must pass).
EXCLUDED: dict[str, str] = {}
LIVE = plugins.PluginHost(entry_points=True)  # what `cellbench` loads: built-ins and installed entry points
NAMES = [n for n in LIVE.augmentations.names() if n not in EXCLUDED]


@pytest.fixture(autouse=True)
def _a_shift_for_corruptions(tmp_path, monkeypatch):
    """``corruptions`` draws from the shift registry: make sure it holds at least one shift."""
    (tmp_path / "contract_shift.py").write_text(textwrap.dedent('''
        from robustbench_cells import hookimpl
        from robustbench_cells.registry import ShiftSpec

        def _darken(images, param, rng):
            return (images // param).astype("uint8")

        @hookimpl
        def register_shifts(register):
            register(ShiftSpec(name="contract_darken", family="photometric", fn=_darken, severities=(1, 2, 3, 4, 5)))
    '''))
    monkeypatch.setenv("CELLBENCH_PLUGINS_DIR", str(tmp_path))
    plugins.reset()


def _images(n: int = 8, size: int = 48) -> np.ndarray:
    rng = np.random.default_rng(0)
    imgs = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        img = np.full((size, size, 3), (240, 220, 200), np.uint8)
        img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
        cv2.circle(img, (size // 2 + i % 3, size // 2), size // 5, (200, 180, 220), -1)
        cv2.circle(img, (size // 2, size // 2), size // 9, (90, 50, 140), -1)
        imgs[i] = img
    return imgs


def _labels(n: int = 8, c: int = 4) -> np.ndarray:
    y = np.zeros((n, c), np.float32)
    y[np.arange(n), np.arange(n) % c] = 1.0
    return y


def _run(spec, fn, seed: int):
    rng = np.random.default_rng(seed)
    if spec.kind == "image":
        return fn(_images(), rng)
    return fn(_images().astype(np.float32), _labels(), rng)


def test_builtins_are_registered():
    assert set(BUILTIN_NAMES) <= set(plugins.augmentations().names())


@pytest.mark.parametrize("name", NAMES)
def test_contract(name):
    spec = plugins.augmentations().get(name)
    assert spec.kind in ("image", "batch") and spec.family and spec.description
    fn = spec.build()
    images = _images()
    before = images.copy()
    if spec.kind == "image":
        out = fn(images, np.random.default_rng(0))
        assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.shape == images.shape
    else:
        x, y = images.astype(np.float32), _labels()
        xo, yo = fn(x, y, np.random.default_rng(0))
        assert xo.shape == x.shape and xo.dtype == np.float32 and yo.shape == y.shape
        assert xo.min() >= 0 and xo.max() <= 255
        assert (yo >= 0).all() and np.allclose(yo.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(images, before)  # the caller's images are never modified


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_and_no_global_rng(name):
    spec = plugins.augmentations().get(name)
    fn = spec.build()
    np.random.seed(1)
    random.seed(1)
    state = np.random.get_state()[1].copy()
    first = _run(spec, fn, seed=5)
    np.random.seed(2)
    random.seed(2)
    again = _run(spec, fn, seed=5)
    for a, b in zip(np.atleast_1d(first) if spec.kind == "image" else first,
                    np.atleast_1d(again) if spec.kind == "image" else again):
        np.testing.assert_array_equal(a, b)
    np.random.seed(1)
    _run(spec, fn, seed=5)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global RNG untouched
    if name != "none":
        other = _run(spec, fn, seed=6)
        a = first if spec.kind == "image" else first[0]
        b = other if spec.kind == "image" else other[0]
        assert (a != b).any(), f"{name}: the seed has no effect"


@pytest.mark.parametrize("name", NAMES)
def test_bad_options_name_augmentation_and_option(name):
    spec = plugins.augmentations().get(name)
    with pytest.raises(CellbenchError, match=rf"augmentation '{name}'.*'no_such_option'"):
        spec.build(no_such_option=1)
    for option in spec.options:
        with pytest.raises(CellbenchError, match=rf"augmentation '{name}'.*option '{option}'"):
            spec.build(**{option: object()})
