"""bench.cache_admin: which cached sets are current, which are stale and why, and removing them."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from robustbench_cells import hookimpl, plugins
from robustbench_cells.bench import cache_admin, shiftsets
from robustbench_cells.bench.shiftsets import ShiftCache
from robustbench_cells.registry import ShiftSpec

IMAGES = np.random.default_rng(1).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)


def _registry(severities=(1, 2, 3, 4, 5), names=("toy",)):
    def add(images, param, rng):
        return np.clip(images.astype(int) + param, 0, 255).astype(np.uint8)

    class Toy:
        @hookimpl
        def register_shifts(self, register):
            for name in names:
                register(ShiftSpec(name=name, family="photometric", fn=add, severities=severities))

    return plugins.PluginHost(entry_points=False, builtins=False, extra_plugins=[("toy", Toy())]).shifts


def _reasons(cache: ShiftCache) -> dict[str, str | None]:
    return {e.path.name: e.stale for e in cache_admin.scan(cache)}


def test_current_files_are_not_stale_and_sizes_add_up(tmp_path):
    cache = ShiftCache(tmp_path, registry=_registry(names=("toy", "other")))
    p1 = cache.ensure(IMAGES, "fp", "toy", 1)
    p2 = cache.ensure(IMAGES, "fp", "other", 5)
    entries = cache_admin.scan(cache)
    assert {e.path for e in entries} == {p1, p2}
    assert all(e.stale is None for e in entries)
    assert sum(e.size for e in entries) == p1.stat().st_size + p2.stat().st_size
    assert [e.path for e in cache_admin.scan(cache, "oth*")] == [p2]


def test_suite_version_bump_makes_old_files_stale(tmp_path, monkeypatch):
    old = ShiftCache(tmp_path, registry=_registry())
    old.ensure(IMAGES, "fp", "toy", 2)
    monkeypatch.setattr(shiftsets, "SUITE_VERSION", shiftsets.SUITE_VERSION + 1)
    new = ShiftCache(tmp_path, registry=_registry())
    [reason] = _reasons(new).values()
    assert reason is not None and f"suite_version {shiftsets.SUITE_VERSION - 1} (now {shiftsets.SUITE_VERSION})" in reason
    new.ensure(IMAGES, "fp", "toy", 2)  # the new version's file sits beside the old one
    assert sorted(r is None for r in _reasons(new).values()) == [False, True]


def test_library_upgrade_and_severity_table_change_are_named(tmp_path, monkeypatch):
    ShiftCache(tmp_path, registry=_registry()).ensure(IMAGES, "fp", "toy", 1)
    installed = shiftsets._library_versions()["simplejpeg"]
    versions = dict(shiftsets._library_versions(), simplejpeg="99.0")
    monkeypatch.setattr(shiftsets, "_library_versions", lambda: versions)
    [reason] = _reasons(ShiftCache(tmp_path, registry=_registry())).values()
    assert reason == f"written with simplejpeg {installed} (now 99.0)"
    monkeypatch.undo()
    [reason] = _reasons(ShiftCache(tmp_path, registry=_registry(severities=(5, 6, 7, 8, 9)))).values()
    assert reason == "written with another severity table"


def test_damaged_foreign_and_orphaned_files(tmp_path):
    cache = ShiftCache(tmp_path, registry=_registry(names=("toy", "gone")))
    truncated = cache.ensure(IMAGES, "fp", "toy", 1)
    truncated.write_bytes(truncated.read_bytes()[:-10])
    garbage = cache.ensure(IMAGES, "fp", "toy", 2)
    garbage.write_bytes(b"hello")
    renamed = cache.ensure(IMAGES, "fp", "toy", 3)
    renamed.rename(renamed.with_name("copy.bin"))
    (tmp_path / "toy" / "notes.txt").write_text("x")
    cache.ensure(IMAGES, "fp", "gone", 1)
    reasons = _reasons(ShiftCache(tmp_path, registry=_registry()))  # "gone" no longer registered
    assert reasons[truncated.name] == "truncated"
    assert reasons[garbage.name] == "not a cellbench shift-cache file"
    assert reasons["copy.bin"] == "file name does not match its header"
    assert reasons["notes.txt"] == "not a cellbench shift-cache file"
    assert [r for n, r in reasons.items() if "gone" in str(r)] == ["shift 'gone' is not registered (its plugin was removed?)"]


def test_only_old_temporary_files_are_stale(tmp_path):
    cache = ShiftCache(tmp_path, registry=_registry())
    (tmp_path / "toy").mkdir()
    young, old = tmp_path / "toy" / "a.bin.123.tmp", tmp_path / "toy" / "b.bin.456.tmp"
    young.write_bytes(b"partial")
    old.write_bytes(b"partial")
    past = time.time() - cache_admin.TMP_GRACE_S - 5
    os.utime(old, (past, past))
    reasons = _reasons(cache)
    assert reasons[young.name] is None  # may be a run writing right now
    assert reasons[old.name] == "unfinished write (temporary file)"


def test_remove_deletes_files_and_empty_folders_only(tmp_path):
    cache = ShiftCache(tmp_path, registry=_registry(names=("toy", "other")))
    keep = cache.ensure(IMAGES, "fp", "toy", 1)
    cache.ensure(IMAGES, "fp", "toy", 2)
    cache.ensure(IMAGES, "fp", "other", 1)
    doomed = [e for e in cache_admin.scan(cache) if e.path != keep]
    doomed[0].path.unlink()  # vanished meanwhile (another cleaner): not an error, not counted
    files, freed = cache_admin.remove(doomed)
    assert files == 1 and freed == doomed[1].size
    assert keep.exists() and not (tmp_path / "other").exists()
    assert np.array_equal(cache.get(IMAGES, "fp", "toy", 1), ShiftCache(tmp_path, registry=_registry()).get(IMAGES, "fp", "toy", 1))


def test_summary_and_sizes():
    entries = [cache_admin.CacheEntry(cache_admin.Path(f"{i}"), "s", size, reason)
               for i, (size, reason) in enumerate([(10, "a"), (5, "b"), (7, "b"), (100, None)])]
    assert cache_admin.summary(entries) == {"b": (2, 12), "a": (1, 10)}
    assert [cache_admin.human_size(n) for n in (0, 999, 1500, 14_600_000_000)] == ["0 B", "999 B", "1.5 KB", "14.6 GB"]


def test_empty_or_missing_root(tmp_path):
    assert cache_admin.scan(ShiftCache(tmp_path / "nowhere")) == []


@pytest.mark.parametrize("pattern", ["*", "toy"])
def test_scan_ignores_files_at_the_root(tmp_path, pattern):
    (tmp_path / "README").write_text("not a set")
    assert cache_admin.scan(ShiftCache(tmp_path, registry=_registry()), pattern) == []
