"""``cellbench report RUN_DIR`` and ``cellbench compare RUN_A RUN_B``."""

from __future__ import annotations

import io
from pathlib import Path

import typer

from robustbench_cells.cli.console import console, err_console, user_text
from robustbench_cells.errors import CellbenchError

REPORT_FORMATS = ("table", "csv", "json", "markdown", "html")
COMPARE_FORMATS = ("table", "json", "markdown")


def _check_format(value: str, allowed: tuple[str, ...]) -> str:
    # Validated here rather than with a click Choice so that a typo is one line and exit 2, like every
    # other user error.
    fmt = value.lower()
    if fmt not in allowed:
        from robustbench_cells.errors import did_you_mean

        raise CellbenchError(f"--format {value!r} is not one of {', '.join(allowed)}{did_you_mean(fmt, allowed)}")
    return fmt


def _check_out(out: Path | None, run_dir: Path) -> None:
    """Refuse an ``--out`` that is the run's store (``results.sqlite*``), log or any file already in
    the run folder other than a previous report: writing there would destroy the run."""
    if out is None:
        return
    target = out.resolve()
    run = run_dir.resolve()
    if target.parent == run and (target.name.startswith("results.sqlite") or target.name.startswith("run.")
                                 or target.suffix in (".sqlite", ".npz", ".json", ".toml", ".keras", ".lock")):
        raise CellbenchError(f"--out {out}: is a file of the run {run_dir}; write the report elsewhere")
    if run in target.parents and target.parent != run:
        raise CellbenchError(f"--out {out}: is inside the run's cell folders; write the report elsewhere")


def _emit(text: str, out: Path | None) -> None:
    """Print *text*, or write it to *out* and say where."""
    if out is None:
        console.out(text, end="" if text.endswith("\n") else "\n", highlight=False)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CellbenchError(f"--out {out}: cannot write ({exc.strerror or exc})") from None
    err_console.print(f"wrote {out}", markup=False)


def report_command(
    run_dir: Path = typer.Argument(..., help="Run folder (holds results.sqlite)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | csv | json | markdown | html."),
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="Write to this file (html default: RUN_DIR/report.html)."),
    cell: str | None = typer.Option(None, "--cell",
                                    help="Cell key prefix (or model/augmentation) to detail per shift x severity."),
    reference: str | None = typer.Option(
        None, "--reference", help="rBE reference: cell key prefix or model/augmentation "
                                  "(default: each model's 'none' cell, else the first cell)."),
    samples: bool = typer.Option(True, "--samples/--no-samples",
                                 help="html: include sample images of every shift (from RUN_DIR/samples.npz; "
                                      "runs without it reload their data)."),
    metric: str = typer.Option("accuracy", "--metric", help="accuracy | balanced_accuracy (every summary number)."),
) -> None:
    """Tables, CSV/JSON/Markdown or a self-contained HTML report of a benchmark run."""
    from robustbench_cells.bench.metrics import load_summary
    from robustbench_cells.report import tables

    fmt = _check_format(fmt, REPORT_FORMATS)
    _check_out(out, run_dir)
    summary = load_summary(run_dir, reference, metric)
    detail = summary.get(cell) if cell else None
    if detail is not None and detail.cell.status != "done":
        # a failed or unfinished cell has no scores to tabulate: say why instead of an empty table
        why = f"failed: {detail.cell.error}" if detail.cell.status == "failed" else f"is {detail.cell.status}"
        raise CellbenchError(f"--cell {cell}: {detail.cell.model}/{detail.cell.augmentation} {why}")
    if fmt == "table" and out is not None:
        from rich.console import Console

        buf = Console(file=io.StringIO(), width=200, color_system=None, highlight=False)
        tables.print_run_summary(summary, buf, detail)
        _emit(buf.file.getvalue(), out)
    elif fmt == "table":
        tables.print_run_summary(summary, console, detail)
        if detail is None and summary.done:
            console.print(f"[dim]per shift x severity of one cell: cellbench report {user_text(run_dir)} --cell "
                          f"{summary.done[0].key[:8]}[/]")
    elif fmt == "json":
        _emit(tables.dumps_json(tables.to_json(summary)), out)
    elif fmt == "csv":
        _emit(tables.to_csv(summary), out)
    elif fmt == "markdown":
        _emit(tables.to_markdown(summary), out)
    else:
        from robustbench_cells.report.html import write_report

        path = write_report(summary, out or run_dir / "report.html", run_dir=run_dir, cell=detail, samples=samples)
        console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)", markup=False)


def compare_command(
    run_a: Path = typer.Argument(..., help="Baseline run folder (A)."),
    run_b: Path = typer.Argument(..., help="Run folder to compare (B)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | json | markdown."),
    metric: str = typer.Option("accuracy", "--metric", help="accuracy | balanced_accuracy."),
) -> None:
    """Compare two runs cell by cell, matched by (model, augmentation, seed): delta = B - A."""
    from robustbench_cells.bench.metrics import load_summary
    from robustbench_cells.report import tables

    fmt = _check_format(fmt, COMPARE_FORMATS)
    a, b = load_summary(run_a, metric=metric), load_summary(run_b, metric=metric)
    rows, unmatched = tables.compare_rows(a, b)
    if fmt == "json":
        _emit(tables.dumps_json({"a": str(run_a), "b": str(run_b), "metric": metric, "cells": rows,
                                 "unmatched": unmatched}), None)
        return
    if fmt == "markdown":
        _emit(tables.compare_markdown(rows, unmatched), None)
        return
    if not rows:
        console.print("no cell is done in both runs (cells match by model, augmentation and seed)")
    else:
        console.print(tables.compare_table(rows, a.run.name if a.run else str(run_a),
                                           b.run.name if b.run else str(run_b), a.metric_label))
    for line in unmatched:
        console.print(line, style="dim", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``report`` and ``compare``."""
    app.command("report")(report_command)
    app.command("compare")(compare_command)
