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
    """File name -> reason (None when current)."""
    return {e.path.name: e.reason for e in cache_admin.scan(cache)}


def test_current_files_are_not_stale_and_sizes_add_up(tmp_path):
    cache = ShiftCache(tmp_path, registry=_registry(names=("toy", "other")))
    p1 = cache.ensure(IMAGES, "fp", "toy", 1)
    p2 = cache.ensure(IMAGES, "fp", "other", 5)
    entries = cache_admin.scan(cache)
    assert {e.path for e in entries} == {p1, p2}
    assert all(e.status == cache_admin.CURRENT and e.reason is None for e in entries)
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
    unknown = [e for e in cache_admin.scan(ShiftCache(tmp_path, registry=_registry())) if e.shift == "gone"]
    assert [(e.status, e.reason) for e in unknown] == [
        ("unknown", "shift 'gone' is not registered here (its plugin is not installed, or needs --plugins-dir)")]
    statuses = {e.path.name: e.status for e in cache_admin.scan(ShiftCache(tmp_path, registry=_registry()))}
    assert statuses[truncated.name] == statuses["notes.txt"] == "stale"


def test_young_temporary_files_are_never_removed(tmp_path):
    cache = ShiftCache(tmp_path, registry=_registry())
    (tmp_path / "toy").mkdir()
    young, old = tmp_path / "toy" / "a.bin.123.tmp", tmp_path / "toy" / "b.bin.456.tmp"
    young.write_bytes(b"partial")
    old.write_bytes(b"partial")
    past = time.time() - cache_admin.TMP_GRACE_S - 5
    os.utime(old, (past, past))
    entries = {e.path.name: e for e in cache_admin.scan(cache)}
    assert entries[young.name].status == "writing"  # may be a run writing right now
    assert (entries[old.name].status, entries[old.name].reason) == ("stale", "unfinished write (temporary file)")
    for stale_only in (True, False):  # neither `clear` nor `clear --stale` touches it
        assert [e.path.name for e in cache_admin.removable(entries.values(), stale_only)] == [old.name]


def test_clear_stale_keeps_unknown_sets_clear_all_takes_them(tmp_path):
    ShiftCache(tmp_path, registry=_registry(names=("toy", "local"))).ensure(IMAGES, "fp", "local", 1)
    current = ShiftCache(tmp_path, registry=_registry()).ensure(IMAGES, "fp", "toy", 1)
    entries = cache_admin.scan(ShiftCache(tmp_path, registry=_registry()))  # "local" not loaded here
    assert cache_admin.removable(entries, stale_only=True) == []
    assert {e.path for e in cache_admin.removable(entries, stale_only=False)} == {e.path for e in entries}
    assert current in {e.path for e in entries}


def test_a_file_this_user_cannot_read_is_unknown(tmp_path, monkeypatch):
    cache = ShiftCache(tmp_path, registry=_registry())
    path = cache.ensure(IMAGES, "fp", "toy", 1)
    real_open = open

    def denied(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)
    monkeypatch.setattr("builtins.open", denied)
    [entry] = cache_admin.scan(cache)
    assert (entry.status, entry.reason) == ("unknown", "unreadable here (Permission denied)")


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
    entries = [cache_admin.CacheEntry(cache_admin.Path(f"{i}"), "s", size, status, reason)
               for i, (size, status, reason) in enumerate([(10, "stale", "a"), (5, "stale", "b"), (7, "stale", "b"),
                                                           (100, "current", None), (3, "unknown", "c")])]
    assert cache_admin.summary(entries) == {"b": (2, 12), "a": (1, 10)}
    assert cache_admin.summary(entries, "unknown") == {"c": (1, 3)}
    sizes = (0, 999, 1500, 999_949, 999_950, 14_600_000_000, 2_500_000_000_000)
    assert [cache_admin.human_size(n) for n in sizes] == ["0 B", "999 B", "1.5 KB", "999.9 KB", "1.0 MB",
                                                          "14.6 GB", "2.5 TB"]
    assert (cache_admin.count(1, "file"), cache_admin.count(3, "file")) == ("1 file", "3 files")


def test_empty_or_missing_root(tmp_path):
    assert cache_admin.scan(ShiftCache(tmp_path / "nowhere")) == []


@pytest.mark.parametrize("pattern", ["*", "toy"])
def test_scan_ignores_files_at_the_root(tmp_path, pattern):
    (tmp_path / "README").write_text("not a set")
    assert cache_admin.scan(ShiftCache(tmp_path, registry=_registry()), pattern) == []
