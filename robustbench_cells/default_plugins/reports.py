"""Built-in report formats and HTML report sections, registered through the hooks a third-party plugin uses.

Formats (``cellbench report --format``): ``table`` (rich, the default), ``markdown``, ``csv``,
``json``, ``html`` (:mod:`robustbench_cells.report.formats`). Sections of the HTML report, in order:
summary, grid, curves, targets, cell, samples (:mod:`robustbench_cells.report.html_sections`) and
explain (every saved ``cellbench explain`` result of the run, :mod:`robustbench_cells.explain.report_section`).
The report modules are imported when a report is made, not when plugins load (startup stays fast).
"""

from __future__ import annotations

from typing import Any

# light (json, re, pathlib): cheap to import when plugins load
from robustbench_cells.explain.report_section import explain_section
from robustbench_cells.hookspecs import hookimpl
from robustbench_cells.registry import ReportFormatSpec, ReportSectionSpec


def _format(name: str) -> Any:
    """``render(ctx)`` of built-in format *name*, importing the report code on first use."""
    def render(ctx: Any) -> str:
        from robustbench_cells.report import formats

        return formats.RENDERERS[name](ctx)

    return render


def _show_table(ctx: Any, console: Any) -> None:
    from robustbench_cells.report.formats import show_table

    show_table(ctx, console)


def _section(name: str) -> Any:
    """``build(ctx)`` of built-in section *name* (the report code imported on first use)."""
    def build(ctx: Any) -> Any:
        from robustbench_cells.report import html_sections

        return html_sections.SECTIONS[name](ctx)

    return build


@hookimpl
def register_report_formats(register) -> None:
    """Register the built-in ``cellbench report`` formats."""
    register(ReportFormatSpec("table", "rich tables: summary (1), model x augmentation grid (2), --cell detail (3)",
                              _format("table"), show=_show_table))
    register(ReportFormatSpec("markdown", "the summary table as GitHub Markdown, plus unfinished cells",
                              _format("markdown")))
    register(ReportFormatSpec("csv", "one row per cell x split x shift x severity (targets included)", _format("csv")))
    register(ReportFormatSpec("json", "run, definitions, families, targets, cells with raw score rows, grid",
                              _format("json")))
    register(ReportFormatSpec("html", "one self-contained HTML file with figures (default RUN_DIR/report.html)",
                              _format("html"), default_file="report.html"))


@hookimpl
def register_report_sections(register) -> None:
    """Register the built-in sections of the HTML report."""
    for order, name, description in (
        (10, "summary", "table (1): one row per cell, failures"),
        (20, "grid", "model x augmentation heatmap of mean shifted accuracy"),
        (30, "curves", "accuracy vs severity per shift family"),
        (40, "targets", "accuracy on each target beside clean test and mean shifted; per-class accuracy per target"),
        (50, "cell", "family x severity table and per-class accuracy under the worst shift of one cell"),
        (60, "samples", "sample images of every shift, clean and at each severity"),
    ):
        register(ReportSectionSpec(name, _section(name), description, order=order))
    register(ReportSectionSpec("explain", explain_section, "every saved `cellbench explain` result of the run",
                               order=90))
