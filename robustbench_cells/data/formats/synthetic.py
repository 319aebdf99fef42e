"""The ``synthetic[:N]`` format: the procedural cells of ``data/synthetic.py`` (the generator lives
there; this module is the format's entry for :func:`robustbench_cells.data.formats.peek`)."""

from __future__ import annotations

from robustbench_cells.data.formats import DataPeek
from robustbench_cells.data.synthetic import SIZE, SPLIT_FRACTIONS, load_synthetic, parse_synthetic_arg
from robustbench_cells.errors import CellbenchError

__all__ = ["load_synthetic", "peek"]


def peek(arg: str | None) -> DataPeek | None:
    """N from the spec, 96x96 images, its own 70/10/20 split; None for a bad spec (the load says why)."""
    try:
        n, _, _ = parse_synthetic_arg(arg)
    except CellbenchError:
        return None
    # rendered chunk by chunk into one preallocated array
    return DataPeek(n=n, height=SIZE, width=SIZE, load_bytes=n * SIZE * SIZE * 3, n_test=round(SPLIT_FRACTIONS[2] * n))
