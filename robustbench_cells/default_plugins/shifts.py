"""Built-in shifts."""

from __future__ import annotations

from robustbench_cells.hookspecs import hookimpl


@hookimpl
def register_shifts(register) -> None:
    """Register the built-in shifts."""
