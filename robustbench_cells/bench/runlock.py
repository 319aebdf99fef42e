"""One live run per run folder: ``RUN_DIR/run.lock`` holds the driver's pid while it runs.

A second ``cellbench run`` on the same ``--out`` refuses at once (two drivers would train every cell
twice and interleave ``run.log``). A lock left by a killed run names a dead process and is taken
over, so ``--resume`` after ``kill -9`` is never blocked.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from robustbench_cells.errors import CellbenchError

LOCK_FILENAME = "run.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _holder(path: Path) -> tuple[str, int] | None:
    """(host, pid) written in the lock file, or None when it is unreadable or half-written."""
    try:
        host, pid = path.read_text(encoding="utf-8").split()
        return host, int(pid)
    except (OSError, ValueError):
        return None


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir/run.lock`` for the body; refuse when a live process on this host holds it."""
    path = Path(run_dir) / LOCK_FILENAME
    me = f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):  # second try after removing a stale lock
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if holder is not None and holder[0] == socket.gethostname() and _alive(holder[1]):
                raise CellbenchError(f"--out {run_dir}: another cellbench run (pid {holder[1]}) is using this "
                                     "folder; wait for it or pick another --out") from None
            path.unlink(missing_ok=True)  # stale: its process is gone (or the file is half-written)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(me)
        break
    else:
        raise CellbenchError(f"--out {run_dir}: could not take the run lock {path}")
    try:
        yield
    finally:
        if _holder(path) == (socket.gethostname(), os.getpid()):
            path.unlink(missing_ok=True)


def remove_partial_files(run_dir: Path) -> list[Path]:
    """Delete half-written files a hard kill left in the cell folders (``atomic_path`` temporaries:
    ``model.keras.<random>.keras``, ``probs.npz.<random>.npz``); returns what was removed."""
    removed = []
    for cell_dir in (Path(run_dir) / "cells").glob("*"):
        for f in cell_dir.glob("*.*.*"):
            stem = f.name.split(".")
            if len(stem) >= 4 and f.is_file() and f.name.startswith(("model.keras.", "probs.npz.", "meta.json.")):
                f.unlink(missing_ok=True)
                removed.append(f)
    return removed
