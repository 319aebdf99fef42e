"""The hook specifications: the only contract plugins see.

Every hook receives a ``register`` callback, so the core owns naming, clashes and metadata::

    from robustbench_cells import hookimpl
    from robustbench_cells.registry import ShiftSpec

    @hookimpl
    def register_shifts(register):
        register(ShiftSpec(name="my_shift", family="color", fn=my_fn, severities=(...)))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("cellbench")
hookimpl = pluggy.HookimplMarker("cellbench")


@hookspec
def register_augmentations(register: Callable[[Any], None]) -> None:
    """Register training augmentations: call ``register(AugmentationSpec(...))`` once per augmentation."""


@hookspec
def register_shifts(register: Callable[[Any], None]) -> None:
    """Register test-time shifts: call ``register(ShiftSpec(...))`` once per shift (5 severities each)."""


@hookspec
def register_models(register: Callable[[Any], None]) -> None:
    """Register model builders: call ``register(ModelSpec(...))`` once per model."""


@hookspec
def register_datasets(register: Callable[[Any], None]) -> None:
    """Register data set spec prefixes (``folder:``, ``npz:``, ...): call ``register(DatasetSpec(...))``."""


@hookspec
def register_adapters(register: Callable[[Any], None]) -> None:
    """Register test-time adapters: call ``register(AdapterSpec(...))`` once per adapter."""


@hookspec
def register_report_formats(register: Callable[[Any], None]) -> None:
    """Register ``cellbench report --format`` outputs: call ``register(ReportFormatSpec(...))`` once per format."""


@hookspec
def register_report_sections(register: Callable[[Any], None]) -> None:
    """Register HTML report sections: call ``register(ReportSectionSpec(...))`` once per section."""


@hookspec
def register_commands(app: Any) -> None:
    """Add commands or command groups to the ``cellbench`` typer app."""
