"""Built-in augmentations."""

from __future__ import annotations

from robustbench_cells.hookspecs import hookimpl


@hookimpl
def register_augmentations(register) -> None:
    """Register the built-in augmentations."""
