"""bench.shiftsets: deterministic generation, the verified on-disk cache, parallel builds."""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_cells import hookimpl, plugins
from robustbench_cells.bench import shiftsets
from robustbench_cells.bench.shiftsets import CHUNK, ShiftCache, ShiftCacheWarning, shift_images
from robustbench_cells.errors import CellbenchError
from robustbench_cells.registry import ShiftSpec

IMAGES = np.random.default_rng(0).integers(0, 256, (2 * CHUNK + 10, 32, 32, 3), dtype=np.uint8)


def test_identical_bytes_whatever_the_pieces():
    whole = shift_images(IMAGES, "gaussian_noise", 3, seed=5)
    pieces = np.concatenate([
        shift_images(IMAGES[:CHUNK], "gaussian_noise", 3, seed=5),
        shift_images(IMAGES[CHUNK:], "gaussian_noise", 3, seed=5, first_index=CHUNK),
    ])
    assert np.array_equal(whole, pieces)
    assert not np.array_equal(whole, shift_images(IMAGES, "gaussian_noise", 3, seed=6))
    assert not np.array_equal(whole, shift_images(IMAGES, "gaussian_noise", 4, seed=5))
    with pytest.raises(CellbenchError, match="multiple of"):
        shift_images(IMAGES, "gaussian_noise", 3, seed=5, first_index=3)


def test_chunks_get_independent_streams():
    same = np.repeat(IMAGES[:1], 2 * CHUNK, axis=0)
    out = shift_images(same, "gaussian_noise", 3, seed=0)
    assert not np.array_equal(out[0], out[CHUNK])  # the same image in two chunks gets different noise


@pytest.mark.parametrize("bad,match", [
    (IMAGES.astype(np.float32), "uint8"),
    (IMAGES[:, :20, :20], "at least 28 px"),
])
def test_refuses_bad_images(bad, match):
    with pytest.raises(CellbenchError, match=match):
        shift_images(bad, "gaussian_noise", 1)


def test_refuses_bad_names_and_severities():
    with pytest.raises(CellbenchError, match="unknown shift 'gausian_noise'.*did you mean"):
        shift_images(IMAGES, "gausian_noise", 1)
    with pytest.raises(CellbenchError, match="severity must be 0..5"):
        shift_images(IMAGES, "gaussian_noise", 6)


def test_cache_generates_once_then_hits(tmp_path):
    cache = ShiftCache(tmp_path)
    first = cache.get(IMAGES, "fp1", "motion_blur", 2, seed=1)
    again = ShiftCache(tmp_path).get(IMAGES, "fp1", "motion_blur", 2, seed=1)
    assert cache.generated == 1
    assert np.array_equal(first, again) and np.array_equal(first, shift_images(IMAGES, "motion_blur", 2, 1))
    assert not list(tmp_path.rglob("*.tmp"))  # atomic write left nothing behind
    assert np.array_equal(cache.get(IMAGES, "fp1", "motion_blur", 0), IMAGES)  # clean: not cached


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "garbage"])
def test_corrupt_file_is_detected_and_regenerated(tmp_path, damage):
    cache = ShiftCache(tmp_path)
    path = cache.ensure(IMAGES, "fp", "impulse_noise", 3, seed=0)
    data = bytearray(path.read_bytes())
    if damage == "flip_byte":
        data[-100] ^= 0xFF
    elif damage == "truncate":
        data = data[:-500]
    else:
        data = bytearray(b"not a cache file")
    path.write_bytes(bytes(data))
    fresh = ShiftCache(tmp_path)
    with pytest.warns(ShiftCacheWarning, match="regenerating"):
        result = fresh.get(IMAGES, "fp", "impulse_noise", 3, seed=0)
    assert fresh.generated == 1
    assert np.array_equal(result, shift_images(IMAGES, "impulse_noise", 3, 0))
    ShiftCache(tmp_path).get(IMAGES, "fp", "impulse_noise", 3, seed=0)  # repaired: no warning now


def _registry_with(severities, name="toy"):
    def add(images, param, rng):
        return np.clip(images.astype(int) + param, 0, 255).astype(np.uint8)

    class Toy:
        @hookimpl
        def register_shifts(self, register):
            register(ShiftSpec(name=name, family="photometric", fn=add, severities=severities))

    return plugins.PluginHost(entry_points=False, builtins=False, extra_plugins=[("toy", Toy())]).shifts


def test_changed_severity_table_or_suite_version_invalidates(tmp_path, monkeypatch):
    old = ShiftCache(tmp_path, registry=_registry_with((1, 2, 3, 4, 5)))
    assert old.get(IMAGES, "fp", "toy", 1)[0, 0, 0, 0] == min(255, IMAGES[0, 0, 0, 0] + 1)
    new = ShiftCache(tmp_path, registry=_registry_with((10, 20, 30, 40, 50)))
    assert new.get(IMAGES, "fp", "toy", 1)[0, 0, 0, 0] == min(255, IMAGES[0, 0, 0, 0] + 10)
    assert new.generated == 1
    monkeypatch.setattr(shiftsets, "SUITE_VERSION", shiftsets.SUITE_VERSION + 1)
    bumped = ShiftCache(tmp_path, registry=_registry_with((10, 20, 30, 40, 50)))
    bumped.get(IMAGES, "fp", "toy", 1)
    assert bumped.generated == 1


def test_stale_header_is_not_trusted(tmp_path):
    cache = ShiftCache(tmp_path, registry=_registry_with((1, 2, 3, 4, 5)))
    path = cache.ensure(IMAGES, "fp", "toy", 2)
    other = ShiftCache(tmp_path, registry=_registry_with((7, 2, 3, 4, 5)))
    other_path = other.ensure(IMAGES, "fp", "toy", 1)
    other_path.write_bytes(path.read_bytes())  # a file under the right name but written for another key
    with pytest.warns(ShiftCacheWarning, match="stale"):
        out = other.get(IMAGES, "fp", "toy", 1)
    assert out[0, 0, 0, 0] == min(255, IMAGES[0, 0, 0, 0] + 7)


def test_default_root_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CELLBENCH_CACHE", str(tmp_path / "c"))
    assert ShiftCache().root == tmp_path / "c" / "shifts"


def test_build_all_parallel_matches_serial(tmp_path):
    names = ["gaussian_noise", "motion_blur", "jpeg_compression"]
    progress = []
    paths = ShiftCache(tmp_path / "a").build_all(IMAGES, "fp", names, (1, 4), seed=2, jobs=2,
                                                 progress=lambda s, v: progress.append((s, v)))
    assert set(paths) == {(n, s) for n in names for s in (1, 4)} and len(progress) == 6
    serial = ShiftCache(tmp_path / "b")
    for (name, sev), path in paths.items():
        assert path.exists()
        assert np.array_equal(ShiftCache(tmp_path / "a").get(IMAGES, "fp", name, sev, 2),
                              serial.get(IMAGES, "fp", name, sev, 2))
    with pytest.raises(CellbenchError, match="unknown shift"):
        ShiftCache(tmp_path).build_all(IMAGES, "fp", ["nope"], (1,))


def test_a_shift_writing_into_its_input_fails_loudly():
    def in_place(images, param, rng):
        images += 1
        return images

    class Bad:
        @hookimpl
        def register_shifts(self, register):
            register(ShiftSpec(name="bad", family="photometric", fn=in_place, severities=(1, 2, 3, 4, 5)))

    registry = plugins.PluginHost(entry_points=False, builtins=False, extra_plugins=[("bad", Bad())]).shifts
    before = IMAGES.copy()
    with pytest.raises(ValueError, match="read-only"):
        shift_images(IMAGES, "bad", 1, registry=registry)
    assert np.array_equal(IMAGES, before)


def test_a_set_that_cannot_be_stored_is_still_returned(tmp_path, monkeypatch):
    def full_disk(self, path, fields, images):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(ShiftCache, "_write", full_disk)
    cache = ShiftCache(tmp_path)
    with pytest.warns(ShiftCacheWarning, match="not stored \\(No space left on device\\); using the set uncached"):
        result = cache.get(IMAGES, "fp", "impulse_noise", 2)
    assert np.array_equal(result, shift_images(IMAGES, "impulse_noise", 2, 0))


def test_a_shift_folder_removed_mid_write_is_made_again(tmp_path, monkeypatch):
    real_write = ShiftCache._write
    calls = []

    def racing_clear(self, path, fields, images):  # `cache clear` removed the empty folder just now
        calls.append(path)
        if len(calls) == 1:
            raise FileNotFoundError(2, "No such file or directory")
        real_write(path, fields, images)
    monkeypatch.setattr(ShiftCache, "_write", racing_clear)
    path = ShiftCache(tmp_path).ensure(IMAGES, "fp", "impulse_noise", 2)
    assert len(calls) == 2 and path.exists()
    again = ShiftCache(tmp_path)
    again.get(IMAGES, "fp", "impulse_noise", 2)
    assert again.hits == 1  # stored on the retry
