"""``cellbench evaluate MODEL --data SPEC``: score a model trained elsewhere, stored as a run.

A thin shell over :func:`robustbench_cells.api.evaluate`: MODEL is a ``.keras`` file (loaded in Keras'
safe mode, so ``Lambda`` layers are refused), a trained cell's folder, a SavedModel folder or an
``.onnx`` file (onnxruntime, ``pip install 'robustbench-cells[onnx]'``). The
input size comes from the model; ``--preprocess`` says what scaling the model expects of 0..255
RGB (cellbench's own models preprocess inside: ``none``); class names come from ``--classes``,
else the cell's ``meta.json``, else the data set's order, and must be the data set's classes.
With ``--out`` the scores become a run folder that ``report``, ``compare`` and ``explain`` read.
"""

from __future__ import annotations

from pathlib import Path

import typer

from robustbench_cells.cli.console import console, err_console
from robustbench_cells.errors import CellbenchError


def _severities(values: list[str]) -> tuple[int, ...]:
    out = []
    for value in ",".join(values).split(","):
        value = value.strip()
        if not value:
            continue
        if not value.isdigit() or not 1 <= int(value) <= 5:
            raise CellbenchError(f"--severities {value}: must be integers 1..5")
        out.append(int(value))
    return tuple(dict.fromkeys(out)) or (1, 2, 3, 4, 5)


def evaluate_command(
    model: Path = typer.Argument(..., help="A .keras file, a trained cell folder, a SavedModel folder or an .onnx "
                                           "file (needs the [onnx] extra)."),
    data: str = typer.Option(..., "--data", help="Labelled data set spec (folder:PATH, npz:PATH, synthetic:N, ...)."),
    shifts: str = typer.Option("*", "--shifts", help="Shift names or families, fnmatch, comma-separated ('' for none)."),
    severities: list[str] = typer.Option([], "--severities", help="Severities 1..5 (repeat or comma-separate; default all)."),
    target: list[str] = typer.Option([], "--target", help="Labelled data set spec from elsewhere to score (repeatable)."),
    adapter: list[str] = typer.Option([], "--adapter", help="Test-time adapter chain, e.g. stain_norm+bn_adapt "
                                                            "(repeatable; one cell each; default: none)."),
    preprocess: str = typer.Option("none", "--preprocess",
                                   help="What the model expects of 0..255 RGB: unit [0,1], symmetric [-1,1], "
                                        "imagenet (mean/std) or none (0..255 as is; cellbench models)."),
    classes: str | None = typer.Option(None, "--classes", help="The model's class names in output order, comma-separated."),
    max_shift_images: int | None = typer.Option(None, "--max-shift-images", min=1,
                                                help="Shift a fixed stratified subset of the test split."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the scores as a run folder here."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Images per inference batch."),
) -> None:
    """Score a model trained elsewhere on the clean splits, the shift suite and targets."""
    from robustbench_cells import api
    from robustbench_cells.report.tables import print_run_summary

    if out is not None and (out / "results.sqlite").exists():
        raise CellbenchError(f"--out {out}: already holds a run; pick another folder")
    names = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    results = api.evaluate(str(model), data, shifts=shifts, severities=_severities(severities), targets=target,
                           adapters=adapter or ("none",), classes=names, preprocess=preprocess.lower(),
                           max_shift_images=max_shift_images, batch_size=batch_size,
                           name=model.stem or "evaluate", progress=True)  # the bar api draws on stderr
    if out is not None:
        results.save(out)
    print_run_summary(results.summary(), console)
    if out is not None:
        err_console.print(f"wrote {out} (cellbench report {out})", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``evaluate``."""
    app.command("evaluate")(evaluate_command)
