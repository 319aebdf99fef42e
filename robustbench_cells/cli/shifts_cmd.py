"""``cellbench shifts preview``: a grid of shifted images (rows = shifts, columns = severities 0..5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from robustbench_cells.plotting import plain_text
from robustbench_cells.cli.preview_io import check_png, load_preview_data, save_figure, show_image
from robustbench_cells.data.splits import one_per_class, test_part
from robustbench_cells.errors import CellbenchError

shifts_app = typer.Typer(help="Synthetic test-time shifts: preview the suite.", no_args_is_help=True)


@plain_text()  # class and file names are user text, never mathtext
def preview_grid(images: np.ndarray, shift_names: list[str], seed: int = 0, severities: int = 5,
                 row_labels: list[str] | None = None, cell_inches: float = 1.0):
    """A matplotlib figure: one row per shift (row ``r`` shows ``images[r % len(images)]``), columns
    severity 0..*severities*. Each shifted image is made by :func:`bench.shiftsets.shift_images`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from robustbench_cells import plugins
    from robustbench_cells.bench.shiftsets import shift_images

    registry = plugins.shifts()
    rows, cols = len(shift_names), severities + 1
    fig, axes = plt.subplots(rows, cols, figsize=(cols * cell_inches + 1.6, rows * cell_inches + 0.4),
                             squeeze=False)
    for r, name in enumerate(shift_names):
        spec = registry.get(name)
        image = images[r % len(images)][None]
        for s in range(cols):
            title = ("clean" if s == 0 else f"severity {s}") if r == 0 else None
            show_image(axes[r, s], shift_images(image, name, s, seed)[0], title)
        label = f"{name}\n({spec.family})" + (f"\n{row_labels[r]}" if row_labels else "")
        axes[r, 0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.3)
    return fig


@shifts_app.command("preview")
def preview_command(
    out: Path = typer.Option(..., "--out", "-o", help="PNG file to write."),
    data: str = typer.Option("synthetic", "--data", help="Data set spec (synthetic, folder:PATH, npz:PATH, ...)."),
    shifts: str = typer.Option("*", "--shifts", help="fnmatch pattern on shift names or families, e.g. '*blur*' or 'noise'."),
    index: int = typer.Option(-1, "--index", help="Show this image in every row (default: one image per class, in turn)."),
    seed: int = typer.Option(0, "--seed", help="Shift seed."),
) -> None:
    """Write a grid of shifted images: rows = shifts, columns = severities 0..5."""
    from robustbench_cells import plugins
    from robustbench_cells.cli.console import console

    names = [spec.name for spec in plugins.shifts().list(shifts)]
    if not names:
        raise CellbenchError(f"--shifts {shifts!r}: matches no shift (see `cellbench ls shifts`)")
    check_png(out)
    dataset = load_preview_data(data, held_out=False)
    if index >= len(dataset):
        raise CellbenchError(f"--index {index}: the data set has {len(dataset)} images")
    pool = dataset if index >= 0 else test_part(dataset)  # --index counts in the whole data set
    picked = np.array([index]) if index >= 0 else one_per_class(pool.labels, 8)
    images, labels = pool.images[picked], pool.labels[picked]
    row_labels = [pool.class_names[labels[r % len(labels)]] for r in range(len(names))]
    fig = preview_grid(images, names, seed=seed, row_labels=row_labels)
    save_figure(fig, out)
    console.print(f"wrote {out} ({len(names)} shifts x severities 0..5, data {data})")


def register(app: typer.Typer) -> None:
    """Add the ``shifts`` command group."""
    app.add_typer(shifts_app, name="shifts")
