"""Built-in data set sources: synthetic, npz, folder, bloodmnist."""

from __future__ import annotations

from robustbench_cells.hookspecs import hookimpl


@hookimpl
def register_datasets(register) -> None:
    """Register the built-in data set sources (filled in by the data module)."""
