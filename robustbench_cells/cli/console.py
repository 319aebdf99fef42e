"""Shared rich consoles: tables and progress to stdout, diagnostics to stderr."""

from __future__ import annotations

from rich.console import Console

console = Console(highlight=False, soft_wrap=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
