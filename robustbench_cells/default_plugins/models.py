"""Built-in models."""

from __future__ import annotations

from robustbench_cells.hookspecs import hookimpl


@hookimpl
def register_models(register) -> None:
    """Register the built-in models."""
