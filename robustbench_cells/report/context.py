"""What a report format and an HTML report section are given: one :class:`ReportContext`.

Both hooks (``register_report_formats``, ``register_report_sections``) receive the same object, so a
plugin's format or section sees exactly what the built-in ones see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from robustbench_cells.bench.metrics import CellSummary, RunSummary

#: One HTML report section: ``(title, html_fragment)``.
Section = tuple[str, str]
#: What a section's ``build(ctx)`` returns.
SectionResult = Union[Section, Iterable[Section], None]


@dataclass
class ReportContext:
    """The run's metrics, the run folder, the cell the report details and whether to draw sample images.

    *cell* is the cell given with ``--cell`` (the HTML report falls back to the best one);
    *samples* False (``--no-samples``) skips the sample-image grid.
    """

    summary: RunSummary
    run_dir: Path | None = None
    cell: CellSummary | None = None
    samples: bool = True
