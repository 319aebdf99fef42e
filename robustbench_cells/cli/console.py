"""Shared rich consoles: tables and progress to stdout, diagnostics to stderr."""

from __future__ import annotations

from rich.console import Console

# soft_wrap: messages with long paths stay on one line (copy-pastable); tables still fit the width.
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
