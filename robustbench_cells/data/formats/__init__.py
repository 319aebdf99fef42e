"""The built-in data set formats, one module each: ``npz``, ``folder``, ``bloodmnist``, ``synthetic``.

A format module offers ``load_<name>(arg) -> Dataset`` (registered as a ``DatasetSpec`` in
``default_plugins/datasets.py``) and, optionally, ``peek(arg) -> DataPeek | None``: how many images
of which size the spec holds, found without decoding them, for the memory check a run makes before
it loads anything (``bench/memcheck.py``). Shared validation is in ``checks.py``, image-file
decoding in ``images.py``. A new format is one module here plus its registration.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

#: Data set names whose module here has a ``peek`` (plugin formats have none: their load is not checked).
PEEKABLE = ("npz", "folder", "bloodmnist", "synthetic")


@dataclass(frozen=True)
class DataPeek:
    """What a data set spec holds, known before decoding it.

    ``n`` images of ``height`` x ``width`` (RGB uint8 once loaded); ``load_bytes``: the memory the
    load itself peaks at (arrays as stored plus any converted copy); ``n_test``: images of its own
    test split, None when it has no own split.
    """

    n: int
    height: int
    width: int
    load_bytes: int
    n_test: int | None = None


def peek(name: str, arg: str | None) -> DataPeek | None:
    """The built-in format *name*'s :class:`DataPeek` of *arg*, or None (no peek, or it cannot tell)."""
    if name not in PEEKABLE:
        return None
    return importlib.import_module(f"{__name__}.{name}").peek(arg)
