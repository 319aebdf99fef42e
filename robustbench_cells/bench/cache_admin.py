"""Inventory and clean-up of the shift cache (``cellbench cache info`` / ``cellbench cache clear``).

The cache never *uses* a stale file (:class:`~robustbench_cells.bench.shiftsets.ShiftCache` checks
every header and checksum on read), but it does not delete the files a new suite version, library
upgrade or removed plugin leaves behind, and a full PBC suite is ~15 GB. This module reads only the
headers (no checksums: that is what a read does) and says, per file, whether it can still be hit:

- *current*: its header matches what :meth:`ShiftCache.key_fields` gives today and it is complete;
- *stale*, with the reason: another suite version, library or plugin version, severity table, a
  shift no installed plugin registers, a truncated or unreadable file, or a temporary file left by
  a write that never finished.
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robustbench_cells.bench.shiftsets import ShiftCache

#: A temporary file younger than this may belong to a run writing right now: never stale.
TMP_GRACE_S = 600.0


@dataclass(frozen=True)
class CacheEntry:
    """One file under the cache root."""

    path: Path
    shift: str  #: the shift's folder name
    size: int  #: bytes on disk
    stale: str | None  #: why the cache can no longer use it; ``None`` when it is current


def _stale_reason(cache: ShiftCache, path: Path, size: int) -> str | None:
    try:
        with open(path, "rb") as f:
            header = cache.read_header(f)
            pixels_at = f.tell()
    except ValueError as exc:
        return str(exc)
    fields = header["fields"]
    try:
        shape = tuple(int(v) for v in fields["shape"])
        name = str(fields["shift"])
        if name not in cache.registry:
            return f"shift {name!r} is not registered (its plugin was removed?)"
        expected = cache.key_fields(shape, fields["fingerprint"], name, fields["severity"], fields["seed"])
    except (KeyError, TypeError, ValueError):
        return "unreadable header"
    changed = sorted(k for k in set(expected) | set(fields) if expected.get(k) != fields.get(k))
    if changed:
        return "written with " + ", ".join(
            f"{k} {fields.get(k, '-')} (now {expected.get(k, '-')})" if k != "severities"
            else "another severity table" for k in changed)
    if cache.path_for(fields) != path:
        return "file name does not match its header"
    if size - pixels_at != int(np.prod(shape)):
        return "truncated"
    return None


def scan(cache: ShiftCache, shifts: str = "*", now: float | None = None) -> list[CacheEntry]:
    """Every file under ``cache.root`` whose shift folder matches the fnmatch pattern *shifts*."""
    now = time.time() if now is None else now
    entries: list[CacheEntry] = []
    if not cache.root.is_dir():
        return entries
    for folder in sorted(p for p in cache.root.iterdir() if p.is_dir()):
        if not fnmatch.fnmatchcase(folder.name, shifts):
            continue
        for path in sorted(folder.iterdir()):
            if not path.is_file():
                continue
            stat = path.stat()
            if path.suffix == ".tmp":
                young = now - stat.st_mtime < TMP_GRACE_S
                reason = None if young else "unfinished write (temporary file)"
            elif path.suffix == ".bin":
                reason = _stale_reason(cache, path, stat.st_size)
            else:
                reason = "not a cellbench shift-cache file"
            entries.append(CacheEntry(path, folder.name, stat.st_size, reason))
    return entries


def remove(entries: Iterable[CacheEntry]) -> tuple[int, int]:
    """Delete the entries' files (and shift folders left empty); ``(files, bytes)`` removed.

    A file that vanished meanwhile (another process cleaning or replacing it) is not an error.
    """
    files = freed = 0
    folders: set[Path] = set()
    for entry in entries:
        folders.add(entry.path.parent)
        try:
            entry.path.unlink()
        except FileNotFoundError:
            continue
        files += 1
        freed += entry.size
    for folder in folders:
        try:
            folder.rmdir()  # only succeeds when empty
        except OSError:
            pass
    return files, freed


def human_size(n: int) -> str:
    """``1536`` -> ``'1.5 KB'`` (decimal units, as ``du -h --si``)."""
    if n < 1000:
        return f"{n} B"
    size, unit = float(n) / 1000, "KB"
    for bigger in ("MB", "GB"):
        if size < 1000:
            break
        size, unit = size / 1000, bigger
    return f"{size:.1f} {unit}"


def summary(entries: list[CacheEntry]) -> dict[str, tuple[int, int]]:
    """``{reason: (files, bytes)}`` over the stale entries, most bytes first."""
    out: dict[str, list[int]] = {}
    for e in entries:
        if e.stale is not None:
            acc = out.setdefault(e.stale, [0, 0])
            acc[0] += 1
            acc[1] += e.size
    return {k: (v[0], v[1]) for k, v in sorted(out.items(), key=lambda kv: -kv[1][1])}


def describe_root(cache: ShiftCache) -> str:
    """Where the cache lives and why (the environment variable or the default)."""
    from robustbench_cells.bench.shiftsets import CACHE_ENV

    source = f"${CACHE_ENV}" if os.environ.get(CACHE_ENV) else "default"
    return f"{cache.root} ({source})"
