"""Atomic file writes: readers see the old file or the whole new one, never half of it.

Every file a kill could catch mid-write (shift-cache sets, probabilities, models, sample images,
explain caches and results) is written through :func:`atomic_path`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# mkstemp creates 0600 files; a plain open() would give 0666 minus the umask. Read the umask once,
# at import (os.umask can only be read by setting it, which is not safe once threads write files).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A fresh temporary path beside *path*; renamed onto *path* when the body succeeds, deleted when
    it fails. *suffix* is for writers that insist on an extension (``np.savez`` appends ``.npz`` to
    any other name, Keras wants ``.keras``). The name starts with *path*'s name, so a half-written
    file left by a hard kill is recognisable next to its target."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # the permissions of a normally created file (shared run folders)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)  # a no-op after a successful rename
