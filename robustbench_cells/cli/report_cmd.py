"""``cellbench report RUN_DIR`` and ``cellbench compare RUN_A RUN_B``.

Report formats are plugins (hook ``register_report_formats``; the built-ins in
``default_plugins/reports.py``): ``--format NAME`` looks the name up in ``plugins.report_formats()``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from robustbench_cells.cli.console import console, err_console
from robustbench_cells.errors import CellbenchError

COMPARE_FORMATS = ("table", "json", "markdown")


def _check_format(value: str, allowed: tuple[str, ...] | list[str]) -> str:
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


def _write(text: str, out: Path) -> None:
    """Write *text* to *out* (parent folders created); a failure is one line naming ``--out``."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CellbenchError(f"--out {out}: cannot write ({exc.strerror or exc})") from None


def _emit(text: str, out: Path | None) -> None:
    """Print *text*, or write it to *out* and say where."""
    if out is None:
        # written as is: rich would expand tabs (a plugin's TSV) and could style what is data
        console.file.write(text if text.endswith("\n") else text + "\n")
        console.file.flush()
        return
    _write(text, out)
    err_console.print(f"wrote {out}", markup=False)


def report_command(
    run_dir: Path = typer.Argument(..., help="Run folder (holds results.sqlite)."),
    fmt: str = typer.Option("table", "--format", "-f",
                            help="table | csv | json | markdown | html, or a plugin's (see cellbench plugins)."),
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
    from robustbench_cells import plugins
    from robustbench_cells.bench.metrics import load_summary
    from robustbench_cells.report.context import ReportContext

    formats = plugins.report_formats()
    spec = formats.get(_check_format(fmt, formats.names()))
    _check_out(out, run_dir)
    summary = load_summary(run_dir, reference, metric)
    detail = summary.get(cell) if cell else None
    if detail is not None and detail.cell.status != "done":
        # a failed or unfinished cell has no scores to tabulate: say why instead of an empty table
        why = f"failed: {detail.cell.error}" if detail.cell.status == "failed" else f"is {detail.cell.status}"
        raise CellbenchError(f"--cell {cell}: {detail.cell.model}/{detail.cell.augmentation} {why}")
    ctx = ReportContext(summary=summary, run_dir=run_dir, cell=detail, samples=samples)
    if spec.default_file is not None:  # a file format (html): always written, by default into the run folder
        path = out or run_dir / spec.default_file
        _write(spec.render(ctx), path)
        console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)", markup=False)
    elif out is None and spec.show is not None:
        spec.show(ctx, console)
    else:
        _emit(spec.render(ctx), out)


def compare_command(
    run_a: Path = typer.Argument(..., help="Baseline run folder (A)."),
    run_b: Path = typer.Argument(..., help="Run folder to compare (B)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | json | markdown."),
    metric: str = typer.Option("accuracy", "--metric", help="accuracy | balanced_accuracy."),
) -> None:
    """Compare two runs cell by cell, matched by (model, adapter, augmentation, seed): delta = B - A.

    Clean test, mean shifted and every target of either run, for A, B and the delta.
    """
    from robustbench_cells.bench.metrics import load_summary
    from robustbench_cells.report import compare
    from robustbench_cells.report.records import dumps_json
    from robustbench_cells.report.rows import target_names

    fmt = _check_format(fmt, COMPARE_FORMATS)
    a, b = load_summary(run_a, metric=metric), load_summary(run_b, metric=metric)
    rows, unmatched = compare.compare_rows(a, b)
    if fmt == "json":
        _emit(dumps_json({"a": str(run_a), "b": str(run_b), "metric": metric, "targets": target_names(a, b),
                          "cells": rows, "unmatched": unmatched}), None)
        return
    if fmt == "markdown":
        _emit(compare.compare_markdown(rows, unmatched), None)
        return
    if not rows:
        console.print("no cell is done in both runs (cells match by model, adapter, augmentation and seed)")
    else:
        console.print(compare.compare_table(rows, a.run.name if a.run else str(run_a),
                                            b.run.name if b.run else str(run_b), a.metric_label))
    for line in unmatched:
        console.print(line, style="dim", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``report`` and ``compare``."""
    app.command("report")(report_command)
    app.command("compare")(compare_command)
