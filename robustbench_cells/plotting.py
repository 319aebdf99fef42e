"""Shared matplotlib settings for every figure cellbench writes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def plain_text() -> Iterator[None]:
    """Draw text literally while the body saves a figure.

    Class names, matrix names and file names are user text: with matplotlib's default, a ``$`` in
    one starts mathtext and a name such as ``$\\frac{$`` crashes the drawing. Scoped, so a notebook's
    own figures keep their settings.
    """
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False}):
        yield
