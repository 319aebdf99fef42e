"""Matplotlib figures of a run, returned as PNG bytes (the HTML report embeds them as data URIs).

Uses the object-oriented ``Figure`` API with the Agg canvas: no pyplot global state, no display
needed, safe to call from any thread.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Sequence

import numpy as np

from robustbench_cells.plotting import plain_text
from robustbench_cells.bench.metrics import CLEAN, CellSummary, RunSummary, mean_std, severity_curve
from robustbench_cells.bench.store import Score
from robustbench_cells.report.rows import TARGET_SPLIT, cell_name

#: Cells drawn in the severity curves (the best ones by mean shifted accuracy); more is unreadable.
MAX_CURVES = 8


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, facecolor="white")
    return buf.getvalue()


@plain_text()  # class and file names are user text, never mathtext
def severity_curves_png(summary: RunSummary, cells: Sequence[CellSummary] | None = None) -> bytes:
    """Accuracy vs severity (0 = clean test), one panel per shift family, one line per cell."""
    cells = list(cells if cells is not None else [c for c in summary.done if c.mean_shifted is not None][:MAX_CURVES])
    families = summary.family_list
    ncols = min(3, max(1, len(families)))
    nrows = max(1, math.ceil(len(families) / ncols))
    fig = _new_figure(4.2 * ncols, 3.0 * nrows + 0.8)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    colours = [f"C{i}" for i in range(10)]
    for i, family in enumerate(families):
        ax = axes[i // ncols][i % ncols]
        for j, c in enumerate(cells):
            curve = severity_curve(c, family, summary.families)
            xs = [x for x, v in enumerate(curve) if v is not None]
            ys = [100 * v for v in curve if v is not None]
            ax.plot(xs, ys, marker="o", ms=3, color=colours[j % 10],
                    label=f"{c.cell.model}/{c.cell.augmentation} s{c.cell.seed}")
        ax.set_title(family)
        ax.set_xticks(range(6))
        ax.set_xlabel("severity (0 = clean)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        if i % ncols == 0:
            ax.set_ylabel(f"test {summary.metric_label} (%)")
    for k in range(len(families), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    if cells and families:
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(cells)), fontsize="small")
    if not families:
        axes[0][0].text(0.5, 0.5, "no shifted rows", ha="center", va="center")
    return _png(fig)


@plain_text()  # class and file names are user text, never mathtext
def heatmap_png(summary: RunSummary) -> bytes:
    """Model x augmentation heatmap of mean shifted test accuracy (mean over seeds; blank = no result)."""
    models, augs, values = summary.grid()
    grid = np.full((len(models), len(augs)), np.nan)
    for (m, a), v in values.items():
        grid[models.index(m), augs.index(a)] = 100 * mean_std(v)[0]
    fig = _new_figure(1.4 + 1.1 * max(1, len(augs)), 1.2 + 0.55 * max(1, len(models)))
    ax = fig.add_subplot()
    finite = grid[np.isfinite(grid)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 100.0)
    if hi - lo < 1.0:  # all cells (nearly) equal: a 1-point colour range instead of an unreadable 1e-6 one
        lo, hi = (lo + hi) / 2 - 0.5, (lo + hi) / 2 + 0.5
    im = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=lo, vmax=hi, aspect="auto")
    ax.set_xticks(range(len(augs)), augs, rotation=30, ha="right")
    ax.set_yticks(range(len(models)), models)
    mid = (lo + hi) / 2
    for r in range(len(models)):
        for col in range(len(augs)):
            v = grid[r, col]
            if np.isfinite(v):
                ax.text(col, r, f"{v:.1f}", ha="center", va="center", fontsize=9,
                        color="black" if v > mid else "white")
    ax.set_title(f"mean shifted test {summary.metric_label} (%)")
    fig.colorbar(im, ax=ax, shrink=0.8)
    return _png(fig)


@plain_text()  # class and file names are user text, never mathtext
def per_class_png(cell: CellSummary, class_names: Sequence[str]) -> bytes:
    """Per-class test accuracy of *cell*: clean, its worst shift (mean over severities), that shift at its top severity."""
    rows = cell.test_rows()
    n = len(class_names) or max((len(s.per_class) for s in rows.values()), default=0)
    names = list(class_names) or [str(i) for i in range(n)]

    def as_array(per_class: Sequence[float | None]) -> np.ndarray:
        arr = np.array([np.nan if v is None else float(v) for v in per_class], dtype=float)
        return np.pad(arr, (0, max(0, n - len(arr))), constant_values=np.nan)[:n] * 100

    series: list[tuple[str, np.ndarray]] = []
    if (CLEAN, 0) in rows:
        series.append(("clean", as_array(rows[(CLEAN, 0)].per_class)))
    if cell.worst_shift:
        sev_rows = sorted((sev, s) for (sh, sev), s in rows.items() if sh == cell.worst_shift)
        # nanmean over severities: a class absent from the test set stays NaN instead of warning
        stack = np.stack([as_array(s.per_class) for _, s in sev_rows])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(stack, axis=0)
        sevs = "/".join(f"s{sev}" for sev, _ in sev_rows)
        series.append((f"{cell.worst_shift} (mean of {sevs})", mean))
        top_sev, top = sev_rows[-1]
        series.append((f"{cell.worst_shift} s{top_sev}", as_array(top.per_class)))
    fig = _new_figure(9, 3.6)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(series))
    x = np.arange(n)
    for i, (label, values) in enumerate(series):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, np.nan_to_num(values), width, label=label, color=f"C{i}")
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylim(0, 100)
    ax.set_ylabel("test accuracy (%)")
    c = cell.cell
    ax.set_title(f"per-class accuracy of {c.model}/{c.augmentation} seed {c.seed} under its worst shift")
    ax.grid(axis="y", alpha=0.3)
    if series:
        ax.legend(fontsize="small")
    return _png(fig)


#: Cells drawn in the target figures (the best ones by mean target accuracy).
MAX_TARGET_CELLS = 24


@plain_text()  # cell, target and class names are user text, never mathtext
def targets_png(summary: RunSummary, cells: Sequence[CellSummary], targets: Sequence[str]) -> bytes:
    """One row per cell: its accuracy on each target beside clean test and mean shifted (dots on one line)."""
    fig = _new_figure(9.5, 1.6 + 0.34 * max(1, len(cells)))
    ax = fig.add_subplot()
    series: list[tuple[str, str, str, list[float | None]]] = [
        ("clean test", "o", "0.35", [c.clean_test for c in cells]),
        ("mean shifted", "s", "C0", [c.mean_shifted for c in cells]),
    ]
    for i, name in enumerate(targets):
        values = [next((c.value(s) for s in c.scores if s.split == TARGET_SPLIT and s.shift == name), None)
                  for c in cells]
        series.append((f"target {name}", "D", f"C{(i + 1) % 10}", values))
    ys = np.arange(len(cells))[::-1]  # best cell at the top
    for k, y in enumerate(ys):  # a thin line from the lowest to the highest value: the drop at a glance
        vals = [100 * v[k] for _, _, _, v in series if v[k] is not None]
        if vals:
            ax.plot([min(vals), max(vals)], [y, y], color="0.85", lw=2, zorder=1)
    for label, marker, colour, values in series:
        pts = [(100 * v, y) for v, y in zip(values, ys) if v is not None]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=marker, color=colour, s=30, label=label,
                       zorder=2)
    ax.set_yticks(ys, [cell_name(c.cell) for c in cells], fontsize="small")
    ax.set_xlim(0, 100)
    ax.set_ylim(-0.7, len(cells) - 0.3)
    ax.set_xlabel(f"test {summary.metric_label} (%)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{summary.metric_label} on each target vs clean test and mean shifted")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=min(4, len(series)),
               fontsize="small")
    return _png(fig)


def target_class_grid(cells: Sequence[CellSummary], target: str, class_names: Sequence[str],
                      counts: dict[str, int]) -> tuple[list[str], np.ndarray]:
    """``(column labels, (cells, columns) array in %)``: accuracy, balanced accuracy, then each class of *target*.

    The classes are those the target holds (from *counts*, each labelled with its number of images:
    a target's classes are often a handful of images), else those scored for any cell; NaN = no value.
    """
    rows = [next((s for s in c.scores if s.split == TARGET_SPLIT and s.shift == target), None) for c in cells]
    n = max((len(s.per_class) for s in rows if s is not None), default=0)
    names = [class_names[i] if i < len(class_names) else str(i) for i in range(n)]

    def finite(s: Score | None, i: int) -> bool:
        v = s.per_class[i] if s is not None and i < len(s.per_class) else None
        return v is not None and math.isfinite(float(v))

    present = [i for i, name in enumerate(names)
               if (counts.get(name, 0) > 0 if counts else any(finite(s, i) for s in rows))]
    grid = np.full((len(cells), 2 + len(present)), np.nan)
    for r, s in enumerate(rows):
        if s is None:
            continue
        grid[r, 0], grid[r, 1] = 100 * s.accuracy, 100 * s.balanced_accuracy
        for j, i in enumerate(present):
            if finite(s, i):
                grid[r, 2 + j] = 100 * float(s.per_class[i])
    labels = ["accuracy", "balanced"] + [f"{names[i]}\n(n={counts[names[i]]})" if names[i] in counts else names[i]
                                         for i in present]
    return labels, grid


@plain_text()  # cell, target and class names are user text, never mathtext
def target_classes_png(cells: Sequence[CellSummary], target: str, class_names: Sequence[str],
                       counts: dict[str, int]) -> bytes:
    """Heatmap of :func:`target_class_grid`, one row per cell."""
    labels, grid = target_class_grid(cells, target, class_names, counts)
    fig = _new_figure(2.8 + 0.85 * len(labels), 1.9 + 0.34 * max(1, len(cells)))
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize="small")
    ax.set_yticks(range(len(cells)), [cell_name(c.cell) for c in cells], fontsize="small")
    ax.axvline(1.5, color="white", lw=3)  # the two summary columns apart from the classes
    for r in range(grid.shape[0]):
        for col in range(grid.shape[1]):
            v = grid[r, col]
            if np.isfinite(v):
                ax.text(col, r, f"{v:.0f}", ha="center", va="center", fontsize=8,
                        color="black" if v > 50 else "white")
    ax.set_title(f"target {target}: accuracy per class (%)")
    fig.colorbar(im, ax=ax, shrink=0.8)
    return _png(fig)


def image_strip_png(images: Sequence[np.ndarray], gap: int = 4, group: int = 0, group_gap: int = 16) -> bytes:
    """uint8 RGB images side by side with white gaps (a row of the sample grid).

    With *group* > 0, every *group* images are separated by *group_gap* instead of *gap* (one
    group = one sample image clean and at each severity).
    """
    from PIL import Image

    h = max(im.shape[0] for im in images)
    parts: list[np.ndarray] = []
    for i, im in enumerate(images):
        if i:
            width = group_gap if group and i % group == 0 else gap
            parts.append(np.full((h, width, 3), 255, np.uint8))
        pad = np.full((h, im.shape[1], 3), 255, np.uint8)
        pad[: im.shape[0]] = im
        parts.append(pad)
    buf = io.BytesIO()
    Image.fromarray(np.concatenate(parts, axis=1)).save(buf, format="PNG")
    return buf.getvalue()
