"""plain_text(): user text in figures is never parsed as mathtext, and the setting does not leak."""

from __future__ import annotations

import io

import matplotlib
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from robustbench_cells.plotting import plain_text


def _draw(title: str) -> None:
    fig = Figure()
    FigureCanvasAgg(fig)
    fig.add_subplot().set_title(title)
    fig.savefig(io.BytesIO(), format="png")


def test_mathtext_crashes_without_and_draws_with_plain_text():
    with pytest.raises(ValueError):
        _draw("$\\frac{$")  # the crash users met with such class names
    with plain_text():
        _draw("$\\frac{$")
    assert matplotlib.rcParams["text.parse_math"] is True
