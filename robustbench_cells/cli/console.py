"""Shared rich consoles: tables and progress to stdout, diagnostics to stderr.

User text (file names, class names, spec strings, error messages) must print verbatim: emoji
codes are off everywhere (``synthetic:100:`` is not an emoji), and text that did not come from
cellbench itself goes through :func:`user_text` (or ``markup=False``) so ``[...]`` in it is not
read as rich markup.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

# soft_wrap: messages with long paths stay on one line (copy-pastable); tables still fit the width.
console = Console(highlight=False, soft_wrap=True, emoji=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def user_text(text: object) -> str:
    """*text* escaped for rich markup (table cells, f-strings that also carry cellbench's own markup)."""
    return escape(str(text))
