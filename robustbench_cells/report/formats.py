"""The built-in report formats: ``render(ctx) -> str`` each, and the terminal form of ``table``.

Registered by :mod:`robustbench_cells.default_plugins.reports` through ``register_report_formats``;
``cellbench report --format NAME`` looks the name up in ``plugins.report_formats()``.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape

from robustbench_cells.report.context import ReportContext

#: Width of the ``table`` format written to a file (no terminal to measure).
FILE_WIDTH = 200


def render_table(ctx: ReportContext) -> str:
    """Tables (1), (2) and, with a cell, (3) as plain text (no colour codes), :data:`FILE_WIDTH` wide."""
    from robustbench_cells.report.tables import print_run_summary

    buf = Console(file=io.StringIO(), width=FILE_WIDTH, color_system=None, highlight=False)
    print_run_summary(ctx.summary, buf, ctx.cell)
    return buf.file.getvalue()


def show_table(ctx: ReportContext, console: Console) -> None:
    """Tables (1), (2) (and (3)) on *console* at its width, then how to detail one cell."""
    from robustbench_cells.report.tables import print_run_summary

    print_run_summary(ctx.summary, console, ctx.cell)
    if ctx.cell is None and ctx.summary.done and ctx.run_dir is not None:
        console.print(f"[dim]per shift x severity of one cell: cellbench report {escape(str(ctx.run_dir))} --cell "
                      f"{ctx.summary.done[0].key[:8]}[/]")


def render_markdown(ctx: ReportContext) -> str:
    from robustbench_cells.report.records import to_markdown

    return to_markdown(ctx.summary)


def render_csv(ctx: ReportContext) -> str:
    from robustbench_cells.report.records import to_csv

    return to_csv(ctx.summary)


def render_json(ctx: ReportContext) -> str:
    from robustbench_cells.report.records import dumps_json, to_json

    return dumps_json(to_json(ctx.summary))


def render_html(ctx: ReportContext) -> str:
    from robustbench_cells.report.html import build_report

    return build_report(ctx.summary, run_dir=ctx.run_dir, cell=ctx.cell, samples=ctx.samples)


RENDERERS: dict[str, Callable[[ReportContext], str]] = {
    "table": render_table, "markdown": render_markdown, "csv": render_csv, "json": render_json, "html": render_html,
}
