"""The built-in sections of the HTML report: ``build(ctx) -> (title, html_fragment) | None`` each.

Registered (with their order) by :mod:`robustbench_cells.default_plugins.reports` through
``register_report_sections``, exactly as a plugin's section would be; :func:`report.html.build_report`
draws every registered section. The sample-image section lives in :mod:`robustbench_cells.report.html`
(beside the data reloading it needs).
"""

from __future__ import annotations

from collections.abc import Callable

from robustbench_cells.bench.metrics import UNKNOWN_FAMILY, CellSummary, family_order, mean_std
from robustbench_cells.report import figures
from robustbench_cells.report.context import ReportContext, Section
from robustbench_cells.report.html import _note, _samples_section, _table, esc, img_tag
from robustbench_cells.report.rows import (
    NO_ADAPTER, cell_name, fmt_params, grid_labels, is_numeric_column, pct, recipe_labels, severity_phrase,
    summary_columns, summary_row, target_class_counts, target_names, target_scores, unfinished_row,
)


def summary_section(ctx: ReportContext) -> Section:
    """Table (1) with a column per target, then the failed cells with their errors."""
    summary = ctx.summary
    columns = summary_columns(summary)
    numeric = {i for i, c in enumerate(columns) if is_numeric_column(c)}
    labels = recipe_labels(summary)
    rows = [[summary_row(c, labels[c.key]).get(col, "-") for col in columns] for c in summary.done]
    classes = [""] * len(rows)
    for c in summary.not_done:
        rows.append([unfinished_row(c, labels[c.key]).get(col, "-") for col in columns])
        classes.append("failed" if c.cell.status == "failed" else "")
    metric = esc(summary.metric_label)
    out = [f'<p class="def">Best mean shifted {metric} first. <b>adapter</b> = the test-time adapter chain the cell '
           f"was scored through (none = plain prediction); <b>mean shifted</b> = mean test {metric} over every "
           f"(shift, {esc(severity_phrase(summary))}) set; <b>worst family</b> = the family with the lowest mean; "
           "<b>gap</b> = clean val &minus; mean shifted; <b>rBE</b> = relative balanced error against the reference "
           "cell (1 = as robust, &lt;1 = more robust); <b>ECE</b> = expected calibration error, mean over shifted "
           "sets; <b>target</b> columns: the external labelled test sets (n = images).</p>",
           _table(columns, rows, numeric, classes)]
    failed = [c for c in summary.cells if c.cell.status == "failed"]
    if failed:
        out.append("<h3>Failed cells</h3><ul>" + "".join(
            f"<li><code>{esc(c.key[:10])}</code> {esc(cell_name(c.cell))}: "
            f"{esc(c.cell.error or 'no error recorded')}</li>" for c in failed) + "</ul>")
    return f"Summary: clean vs shifted test {summary.metric_label} (%)", "".join(out)


def grid_section(ctx: ReportContext) -> Section:
    """Model x augmentation heatmap and table of mean shifted accuracy (model and adapter apart)."""
    summary = ctx.summary
    models, augs, values = summary.grid()
    if not values:
        return "Model x augmentation", _note("no finished cell has shifted scores yet")
    labels = grid_labels(summary)
    with_adapter = any(adapter != NO_ADAPTER for _, adapter in labels.values())
    rows = []
    for m in models:
        name, adapter = labels[m]
        row = [name, *([adapter] if with_adapter else [])]
        for a in augs:
            v = values.get((m, a))
            row.append("-" if not v else pct(mean_std(v)[0]) + (f" ±{100 * mean_std(v)[1]:.1f}" if len(v) > 1 else ""))
        rows.append(row)
    first = 2 if with_adapter else 1
    header = ["model", *(["adapter"] if with_adapter else []), *augs]
    return (f"Model x augmentation: mean shifted test {summary.metric_label} (%)",
            img_tag(figures.heatmap_png(summary), f"heatmap of mean shifted {summary.metric_label}")
            + _table(header, rows, set(range(first, len(header)))))


def curves_section(ctx: ReportContext) -> Section | None:
    """Accuracy vs severity per shift family for the best cells."""
    summary = ctx.summary
    if not summary.families:
        return None
    shown = [c for c in summary.done if c.mean_shifted is not None][: figures.MAX_CURVES]
    return ("Accuracy vs severity per shift family",
            f'<p class="def">Mean test {esc(summary.metric_label)} over the family\'s shifts at each severity; '
            "severity 0 is the "
            f"clean test set. The {len(shown)} best cells by mean shifted accuracy.</p>"
            + img_tag(figures.severity_curves_png(summary, shown), "accuracy vs severity per family"))


def _mean_target(c: CellSummary) -> float:
    values = [c.value(s) for s in target_scores(c).values()]
    return sum(values) / len(values) if values else -1.0


def targets_section(ctx: ReportContext) -> Section | None:
    """Each cell's accuracy on every target beside clean test and mean shifted; per-class accuracy per target."""
    summary = ctx.summary
    targets = target_names(summary)
    cells = sorted((c for c in summary.done if target_scores(c)), key=lambda c: (-_mean_target(c), c.cell.position))
    if not targets or not cells:
        return None
    shown = cells[: figures.MAX_TARGET_CELLS]
    metric = esc(summary.metric_label)
    more = (f" The {len(shown)} best of {len(cells)} cells by mean {metric} over the targets."
            if len(cells) > len(shown) else "")
    sizes = []
    for t in targets:
        counts = target_class_counts(summary, t)
        n = next((s.n for c in cells for name, s in target_scores(c).items() if name == t), None)
        sizes.append([t, str(n if n is not None else sum(counts.values()) or "-"),
                      ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"])
    parts = [f'<p class="def">Targets are external labelled test sets (another lab, another scanner), scored for '
             f"every cell and adapter like the shifted sets but never trained on. Dots: test {metric} on each "
             f"target beside the cell's clean test and mean shifted {metric}; best mean over the targets first."
             f"{more}</p>",
             _table(["target", "images", "images per class"], sizes, {1}),
             img_tag(figures.targets_png(summary, shown, targets), f"{summary.metric_label} on each target")]
    for t in targets:
        with_t = [c for c in shown if t in target_scores(c)]
        if with_t:
            parts.append(f"<h3>Target {esc(t)}: per-class accuracy</h3>"
                         '<p class="def">Accuracy, balanced accuracy (mean recall over the classes the target '
                         "holds) and accuracy per class; n = the target's images of that class.</p>"
                         + img_tag(figures.target_classes_png(with_t, t, summary.class_names,
                                                              target_class_counts(summary, t)),
                                   f"per-class accuracy on target {t}"))
    return f"Targets: test {summary.metric_label} on external labelled sets (%)", "".join(parts)


def cell_section(ctx: ReportContext) -> Section | None:
    """Family x severity table of the detailed cell and its per-class accuracy under the worst shift."""
    summary, cell = ctx.summary, ctx.cell
    if cell is None or not cell.per_shift:
        return None
    rows = cell.test_rows()
    sevs = sorted({sev for (_, sev) in rows if sev > 0})
    table_rows, classes = [], []
    for family in family_order(summary.families.get(s, UNKNOWN_FAMILY) for s in cell.per_shift):
        shifts = [s for s in cell.per_shift if summary.families.get(s, UNKNOWN_FAMILY) == family]
        fam = []
        for sev in sevs:
            v = [cell.value(rows[(s, sev)]) for s in shifts if (s, sev) in rows]
            fam.append(pct(sum(v) / len(v)) if v else "-")
        table_rows.append([family, *fam, pct(cell.per_family.get(family))])
        classes.append("fam")
        for s in shifts:
            table_rows.append([f"\u2003{s}", *[pct(cell.value(rows[(s, sev)])) if (s, sev) in rows else "-"
                                               for sev in sevs], pct(cell.per_shift[s])])
            classes.append("")
    c = cell.cell
    title = f"{cell_name(c)} ({fmt_params(c.params)} parameters, key {c.key[:10]})"
    return (f"Cell detail: {title}",
            f'<p class="def">Clean val {pct(cell.clean_val)}%, clean test {pct(cell.clean_test)}%, mean shifted '
            f"{pct(cell.mean_shifted)}%; worst family <b>{esc(cell.worst_family)}</b>, worst shift "
            f"<b>{esc(cell.worst_shift)}</b>.</p>"
            + _table(["family / shift", *[f"s{s}" for s in sevs], "mean"], table_rows,
                     set(range(1, len(sevs) + 2)), classes)
            + "<h3>Per-class accuracy under the worst shift</h3>"
            + img_tag(figures.per_class_png(cell, summary.class_names), "per-class accuracy under the worst shift"))


def samples_section(ctx: ReportContext) -> Section | None:
    """Sample images of every shift (skipped with ``--no-samples``)."""
    return _samples_section(ctx.summary, ctx.run_dir) if ctx.samples else None


SECTIONS: dict[str, Callable[[ReportContext], Section | None]] = {
    "summary": summary_section, "grid": grid_section, "curves": curves_section, "targets": targets_section,
    "cell": cell_section, "samples": samples_section,
}

