"""What the preview commands (``preview ...``, ``shifts preview``) share: their data and their PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robustbench_cells.data.dataset import Dataset
from robustbench_cells.data.splits import test_part
from robustbench_cells.errors import CellbenchError


def check_png(out: Path) -> None:
    """Refuse an ``--out`` that is not a ``.png`` file name (before any work is done)."""
    if out.suffix.lower() != ".png":
        raise CellbenchError(f"--out {out}: must be a .png file")


def load_preview_data(data: str, held_out: bool = True) -> Dataset:
    """Load ``--data``; with *held_out*, only its test split when it has one (what models are judged on)."""
    from robustbench_cells.data.specs import load_dataset

    dataset = load_dataset(data)
    if len(dataset) == 0:
        raise CellbenchError(f"--data {data}: the data set is empty")
    return test_part(dataset) if held_out else dataset


def save_figure(fig, out: Path) -> None:
    """Write a matplotlib figure to ``--out``; an unwritable path is a one-line error."""
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(out, dpi=110)
    except OSError as exc:
        raise CellbenchError(f"--out {out}: cannot write ({exc.strerror or exc})") from None


def show_image(ax, image: np.ndarray, title: str | None = None) -> None:
    """Draw one uint8 image in a grid cell: pixels as they are, no ticks, an optional column title."""
    ax.imshow(image, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=8)
