"""Inventory and clean-up of the shift cache (``cellbench cache info`` / ``cellbench cache clear``).

The cache never *uses* a stale file (:class:`~robustbench_cells.bench.shiftsets.ShiftCache` checks
every header and checksum on read), but it does not delete the files a new suite version, library
upgrade or removed plugin leaves behind, and a full PBC suite is ~15 GB. This module reads only the
headers (no checksums: that is what a read does) and says, per file, whether it can still be hit:

- *current*: its header matches what :meth:`ShiftCache.key_fields` gives today and it is complete;
- *stale*, with the reason: another suite version, library or plugin version, severity table, a
  truncated or foreign file, or a temporary file left by a write that never finished;
- *unknown*: its shift is not registered in this process (a plugin not installed here, or loaded
  with ``--plugins-dir``), or this user cannot read it: another installation may still use it;
- *writing*: a temporary file younger than :data:`TMP_GRACE_S`, which a run may be writing now.

"Stale" is relative to this installation: two environments that share one cache with different
library versions see each other's sets as stale.
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robustbench_cells.bench.shiftsets import CACHE_ENV, ShiftCache

#: A temporary file younger than this may belong to a run writing right now: never removed.
TMP_GRACE_S = 600.0

CURRENT, STALE, UNKNOWN, WRITING = "current", "stale", "unknown", "writing"


@dataclass(frozen=True)
class CacheEntry:
    """One file under the cache root.

    *status*: ``current`` (a run with this installation would use it), ``stale`` (it never would
    again: *reason* says why), ``unknown`` (cannot be judged here: its shift is not registered in
    this process, or the file is not readable by this user) or ``writing`` (a temporary file a run
    may be writing right now).
    """

    path: Path
    shift: str  #: the shift's folder name
    size: int  #: bytes on disk
    status: str
    reason: str | None = None  #: why it is stale, unknown or in the writing state


def _judge(cache: ShiftCache, path: Path, size: int) -> tuple[str, str | None]:
    try:
        with open(path, "rb") as f:
            header = cache.read_header(f)
            pixels_at = f.tell()
    except ValueError as exc:
        return STALE, str(exc)
    except OSError as exc:  # e.g. another user's file in a shared $CELLBENCH_CACHE
        return UNKNOWN, f"unreadable here ({exc.strerror or exc})"
    fields = header["fields"]
    try:
        shape = tuple(int(v) for v in fields["shape"])
        name = str(fields["shift"])
        if name not in cache.registry:
            return UNKNOWN, (f"shift {name!r} is not registered here (its plugin is not installed, "
                             "or needs --plugins-dir)")
        expected = cache.key_fields(shape, fields["fingerprint"], name, fields["severity"], fields["seed"])
    except (KeyError, TypeError, ValueError):
        return STALE, "unreadable header"
    changed = sorted(k for k in set(expected) | set(fields) if expected.get(k) != fields.get(k))
    if changed:
        return STALE, "written with " + ", ".join(
            f"{k} {fields.get(k, '-')} (now {expected.get(k, '-')})" if k != "severities"
            else "another severity table" for k in changed)
    if cache.path_for(fields) != path:
        return STALE, "file name does not match its header"
    if size - pixels_at != int(np.prod(shape)):
        return STALE, "truncated"
    return CURRENT, None


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
            try:
                if not path.is_file():
                    continue
                stat = path.stat()
            except OSError:  # vanished meanwhile (a run's rename, another cleaner)
                continue
            if path.suffix == ".tmp":
                young = now - stat.st_mtime < TMP_GRACE_S
                status, reason = ((WRITING, "temporary file, may be being written") if young
                                  else (STALE, "unfinished write (temporary file)"))
            elif path.suffix == ".bin":
                status, reason = _judge(cache, path, stat.st_size)
            else:
                status, reason = STALE, "not a cellbench shift-cache file"
            entries.append(CacheEntry(path, folder.name, stat.st_size, status, reason))
    return entries


def removable(entries: Iterable[CacheEntry], stale_only: bool) -> list[CacheEntry]:
    """What ``cache clear`` deletes: the stale entries, or (not *stale_only*) all but those being
    written. Unknown entries go only with everything: another installation may still use them."""
    return [e for e in entries if e.status == STALE or (not stale_only and e.status != WRITING)]


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
    size = float(n)
    for unit in ("KB", "MB", "GB", "TB"):
        size /= 1000
        if round(size, 1) < 1000 or unit == "TB":
            return f"{size:.1f} {unit}"
    raise AssertionError("unreachable")


def count(n: int, noun: str) -> str:
    """``count(1, "file")`` -> ``'1 file'``, ``count(2, "file")`` -> ``'2 files'``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def summary(entries: list[CacheEntry], status: str = STALE) -> dict[str, tuple[int, int]]:
    """``{reason: (files, bytes)}`` over the entries of *status*, most bytes first."""
    out: dict[str, list[int]] = {}
    for e in entries:
        if e.status == status:
            acc = out.setdefault(e.reason or status, [0, 0])
            acc[0] += 1
            acc[1] += e.size
    return {k: (v[0], v[1]) for k, v in sorted(out.items(), key=lambda kv: -kv[1][1])}


def describe_root(cache: ShiftCache) -> str:
    """Where the cache lives and why (the environment variable or the default)."""
    source = f"${CACHE_ENV}" if os.environ.get(CACHE_ENV) else "default"
    return f"{cache.root} ({source})"
