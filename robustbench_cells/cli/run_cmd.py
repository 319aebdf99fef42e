"""``cellbench run MATRIX``: run a benchmark matrix with rich progress, then print the summary table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from robustbench_cells.cli.console import console, err_console, user_text


class RichObserver:
    """Draws the run's progress: cells done/total with ETA, the current cell, epoch/loss, shift evaluation."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
        )

        self.progress = Progress(
            # markup=False: cell labels, shift names and file names are user text, shown verbatim
            TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}", markup=False),
            console=console, transient=False, refresh_per_second=4,
        )
        self.cells_task: Any = None
        self.step_task: Any = None
        self.shift_task: Any = None
        self.current = ""

    def __enter__(self) -> RichObserver:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def message(self, text: str) -> None:
        self.progress.console.print(text, markup=False)

    def shifts_progress(self, done: int, total: int, current: str) -> None:
        if self.shift_task is None:
            self.shift_task = self.progress.add_task("shifted test sets", total=total, info="")
        self.progress.update(self.shift_task, completed=done, info=current)

    def cells_start(self, total: int, already_done: int) -> None:
        self.cells_task = self.progress.add_task("cells", total=total, completed=already_done, info="")
        self.step_task = self.progress.add_task("  current cell", total=None, info="", visible=False)

    def cell_start(self, label: str) -> None:
        self.current = label
        self.progress.update(self.cells_task, info=label)
        self.progress.reset(self.step_task, total=None, visible=True, description=f"  {label}", info="starting")

    def cell_event(self, event: dict[str, Any]) -> None:
        if event.get("stage") == "train":
            loss = event.get("loss")
            acc = event.get("val_accuracy")
            info = f"train epoch {event.get('epoch')}/{event.get('epochs') or '?'}"
            if loss is not None:
                info += f" loss {loss:.4f}"
            if acc is not None:
                info += f" val acc {acc:.3f}"
            self.progress.update(self.step_task, total=event.get("epochs"), completed=event.get("epoch", 0), info=info)
        elif event.get("stage") == "eval":
            self.progress.update(self.step_task, total=event["total"], completed=event["done"],
                                 info=f"scoring {event.get('set', '')}")

    def cell_end(self, label: str, outcome: Any) -> None:
        self.progress.advance(self.cells_task)
        if outcome.status == "failed":
            self.progress.console.print(f"[red]cell {user_text(label)} failed:[/] {user_text(outcome.error)}", highlight=False)
        else:
            self.progress.console.print(f"cell {label} done", highlight=False, markup=False)
        self.progress.update(self.step_task, visible=False)


def run_command(
    matrix: Path = typer.Argument(..., help="Benchmark matrix TOML (see benchmarks/)."),
    data: str | None = typer.Option(None, "--data", help="Override the matrix's data set spec."),
    out: Path | None = typer.Option(None, "--out", help="Run folder (default runs/<name>-<timestamp>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue a run: skip finished cells, redo the rest."),
    executor: str | None = typer.Option(None, "--executor", help="local | ray (default: the matrix's)."),
    jobs: int | None = typer.Option(None, "--jobs", min=1, help="Parallel cells (local processes or Ray CPUs)."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Existing Ray cluster (else a local Ray)."),
    cells: list[str] = typer.Option([], "--cells", help="Only cells whose model/augmentation/seed matches (fnmatch, repeatable)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Train and score every cell of MATRIX; results go to RUN_DIR/results.sqlite. Ends with the summary table."""
    from robustbench_cells.bench.matrix import load_matrix
    from robustbench_cells.bench.runner import RunObserver, RunOptions, run_matrix
    from robustbench_cells.bench.store import ResultStore
    from robustbench_cells.errors import CellbenchError

    if executor is not None and executor not in ("local", "ray"):
        raise CellbenchError(f"--executor: must be local or ray, got {executor!r}")
    spec = load_matrix(matrix, data=data)
    options = RunOptions(out=out, resume=resume, executor=executor, jobs=jobs, ray_address=ray_address,
                         cells=list(cells))
    if quiet:
        result = run_matrix(spec, options, RunObserver())
    else:
        with RichObserver() as observer:
            result = run_matrix(spec, options, observer)
    with ResultStore(result.run_dir) as store:
        print_summary(store)
    console.print(f"run folder: {result.run_dir}  ({result.seconds:.0f} s)", markup=False)
    if result.failed:
        for label, error in result.failed:
            err_console.print(f"failed: {label}: {error.splitlines()[0] if error else ''}", markup=False)
        err_console.print(f"{len(result.failed)} of {result.total} cells failed", markup=False)
        raise typer.Exit(code=1)


def print_summary(store: Any) -> None:
    """The robustness summary table (the report module's)."""
    from robustbench_cells.report.tables import print_summary as report_summary

    report_summary(store, console)


def register(app: typer.Typer) -> None:
    """Add ``run``."""
    app.command("run")(run_command)
