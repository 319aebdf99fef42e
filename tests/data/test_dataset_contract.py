"""Contract tests over EVERY registered data set format (the live registry: built-ins and entry points).

What a user relies on from any ``NAME:ARG`` source: a :class:`Dataset` of uint8 ``(N, H, W, 3)``
images, integer labels inside the class list, named classes, the same data on every load, and a
bad argument answered by one ``CellbenchError`` line that names the spec. Built-in formats get
their inputs from the makers below; a third-party format is loaded from its own ``example`` (what
``cellbench data ls`` shows users) and must refuse a path that does not exist.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest

from robustbench_cells import plugins
from robustbench_cells.data import formats
from robustbench_cells.data.dataset import CELL_CLASSES, SPLIT_NAMES, Dataset
from robustbench_cells.errors import CellbenchError

# The built-ins, listed so a format cannot silently drop out of the contract run.
BUILTIN_NAMES = ("bloodmnist", "folder", "npz", "synthetic")
#: Formats left out of the contract, with the reason (none today).
EXCLUDED: dict[str, str] = {}


#: What ``cellbench`` itself loads outside the test suite: built-ins and installed entry points
#: (the suite's conftest turns entry points off for the process-wide registries).
LIVE = plugins.PluginHost(entry_points=True)
DATASET_NAMES = LIVE.datasets.names()


def _images(n: int, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _npz(tmp: Path, monkeypatch) -> tuple[str, str]:
    np.savez(tmp / "d.npz", images=_images(12), labels=np.arange(12) % 3)
    return str(tmp / "d.npz"), str(tmp / "missing.npz")


def _folder(tmp: Path, monkeypatch) -> tuple[str, str]:
    for k, cls in enumerate(("ig", "lymphocyte", "platelet")):
        (tmp / "f" / cls).mkdir(parents=True)
        for i, img in enumerate(_images(3, seed=k)):
            cv2.imwrite(str(tmp / "f" / cls / f"{i}.png"), img)
    return str(tmp / "f"), str(tmp / "missing")


def _bloodmnist(tmp: Path, monkeypatch) -> tuple[str, str]:
    monkeypatch.setenv("MEDMNIST_ROOT", str(tmp))
    np.savez(tmp / "bloodmnist.npz", train_images=_images(8, 28), train_labels=np.arange(8).reshape(-1, 1),
             test_images=_images(8, 28, seed=1), test_labels=np.arange(8)[::-1].reshape(-1, 1))
    return "28", "33"


def _synthetic(tmp: Path, monkeypatch) -> tuple[str, str]:
    return "40", "abc"


#: name -> maker(tmp_path, monkeypatch) -> (good ARG, bad ARG)
MAKERS: dict[str, Callable[[Path, pytest.MonkeyPatch], tuple[str, str]]] = {
    "npz": _npz, "folder": _folder, "bloodmnist": _bloodmnist, "synthetic": _synthetic,
}


def _args(name: str, tmp_path: Path, monkeypatch) -> tuple[str | None, str]:
    if name in MAKERS:
        return MAKERS[name](tmp_path, monkeypatch)
    spec = LIVE.datasets.get(name)
    assert spec.example, f"data set {name!r} (plugin {spec.plugin!r}) has no example spec to test it with"
    _, _, arg = spec.example.partition(":")
    return arg or None, str(tmp_path / "does-not-exist")


def _params() -> list:
    return [pytest.param(n, marks=pytest.mark.skip(reason=EXCLUDED[n])) if n in EXCLUDED else n
            for n in DATASET_NAMES]


def test_builtins_are_registered_and_described():
    assert set(BUILTIN_NAMES) <= set(DATASET_NAMES)
    for spec in LIVE.datasets.list():
        assert spec.description and spec.example.split(":")[0] == spec.name, spec.name


@pytest.mark.parametrize("name", _params())
def test_loads_uint8_rgb_images_with_labels_inside_named_classes(name, tmp_path, monkeypatch):
    good, _ = _args(name, tmp_path, monkeypatch)
    loader = LIVE.datasets.get(name).loader
    ds = loader(good)
    assert isinstance(ds, Dataset)
    assert ds.images.dtype == np.uint8 and ds.images.ndim == 4 and ds.images.shape[-1] == 3 and len(ds) > 0
    assert ds.labels.dtype == np.int64 and ds.labels.shape == (len(ds.images),)
    assert 0 <= ds.labels.min() and ds.labels.max() < ds.num_classes
    assert all(isinstance(c, str) and c for c in ds.class_names) and len(set(ds.class_names)) == ds.num_classes
    if ds.split is not None:
        assert set(np.unique(ds.split)) <= set(SPLIT_NAMES)
    assert loader(good).fingerprint() == ds.fingerprint()  # the same data on every load


@pytest.mark.parametrize("name", _params())
def test_a_bad_argument_is_one_line_naming_the_spec(name, tmp_path, monkeypatch):
    _, bad = _args(name, tmp_path, monkeypatch)
    monkeypatch.setitem(sys.modules, "medmnist", None)  # never download in a test
    with pytest.raises(CellbenchError) as info:
        LIVE.datasets.get(name).loader(bad)
    msg = str(info.value)
    assert f"{name}:{bad}" in msg, msg
    assert "\n" not in msg


@pytest.mark.parametrize("name", [n for n in _params() if n in formats.PEEKABLE])
def test_peek_agrees_with_the_load(name, tmp_path, monkeypatch):
    """The memory check (bench/memcheck.py) trusts peek's count and size without loading."""
    good, _ = _args(name, tmp_path, monkeypatch)
    peek = formats.peek(name, good)
    ds = LIVE.datasets.get(name).loader(good)
    assert (peek.n, peek.height, peek.width) == (len(ds), *ds.image_size)
    expected_test = None if ds.split is None else int((ds.split == "test").sum())
    if name == "synthetic":  # its own split is stratified: per-class rounding moves up to one image a class
        assert abs(peek.n_test - expected_test) <= ds.num_classes
    else:
        assert peek.n_test == expected_test
    assert peek.load_bytes >= ds.images.nbytes


def test_bloodmnist_maker_holds_the_eight_classes(tmp_path, monkeypatch):
    good, _ = _bloodmnist(tmp_path, monkeypatch)
    assert LIVE.datasets.get("bloodmnist").loader(good).class_names == CELL_CLASSES
