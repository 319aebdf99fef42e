"""Terminal (rich) tables of a run, from a :class:`RunSummary`.

(1) summary: one row per cell, best mean shifted first; (2) model x augmentation grid of mean
shifted accuracy; (3) family x severity for one cell. The row contents come from
:mod:`~robustbench_cells.report.rows`; CSV/JSON/Markdown live in
:mod:`~robustbench_cells.report.records`, the comparison of two runs in
:mod:`~robustbench_cells.report.compare` (their names are re-exported here for existing imports).
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from robustbench_cells.bench.metrics import (
    UNKNOWN_FAMILY, CellSummary, RunSummary, family_order, mean_std, summarize_run,
)
from robustbench_cells.bench.store import ResultStore
from robustbench_cells.report.compare import compare_markdown, compare_rows, compare_table
from robustbench_cells.report.records import CSV_COLUMNS, dumps_json, md_text, to_csv, to_json, to_markdown
from robustbench_cells.report.rows import (
    NO_ADAPTER, NUMERIC_COLUMNS, RECIPE_CORE, SUMMARY_COLUMNS, TARGET_SPLIT, cell_name, fmt_params, fmt_recipe,
    grid_labels, pct, recipe_labels, severity_phrase, signed_pct, summary_row, target_column, target_names, target_scores,
    unfinished_row,
)

__all__ = [  # re-exported names are part of this module's API (tests and other modules import them from here)
    "CSV_COLUMNS", "NUMERIC_COLUMNS", "OPTIONAL_COLUMNS", "RECIPE_CORE", "SUMMARY_COLUMNS", "TARGET_SPLIT",
    "cell_table", "compare_markdown", "compare_rows", "compare_table", "dumps_json", "fmt_params", "fmt_recipe",
    "grid_table", "md_text", "pct", "print_failed", "print_run_summary", "print_summary", "recipe_labels",
    "severity_phrase", "signed_pct", "summarize_run", "summary_row", "summary_table", "target_column",
    "target_names", "to_csv", "to_json", "to_markdown", "unfinished_row",
]


#: Columns left out, in this order, while table (1) is wider than the terminal (JSON/CSV/HTML keep them).
OPTIONAL_COLUMNS = ("ECE shifted", "params", "seed", "rBE")


def summary_table(summary: RunSummary, width: int | None = None) -> Table:
    """Table (1): one row per cell, sorted by mean shifted accuracy; unfinished cells last, without numbers.

    When every cell has the same recipe it moves from a column to the caption; with *width* (the
    terminal's), :data:`OPTIONAL_COLUMNS` are dropped until the rest fits, so names do not get folded.
    """
    name = summary.run.name if summary.run else "run"
    labels = recipe_labels(summary)
    shared = set(labels.values())
    one_recipe = len(shared) == 1
    caption = (f"mean shifted = mean over every (shift, {severity_phrase(summary)}) test set; "
               "gap = clean val - mean shifted; rBE < 1 = more robust than the reference")
    if one_recipe:
        caption = f"recipe: {shared.pop()}. " + caption
    # A target has one size: when every scored cell agrees, say it once in the header
    # ("target X (n=300)") so the narrow terminal gives the names the width instead.
    names = target_names(summary)
    sizes = {t: {target_scores(c)[t].n for c in summary.done if t in target_scores(c)} for t in names}
    once = all(len(n) == 1 for n in sizes.values())
    rows = [(summary_row(c, labels[c.key], target_sizes=not once), "") for c in summary.done]
    rows += [(unfinished_row(c, labels[c.key]), "red" if c.cell.status == "failed" else "dim")
             for c in summary.not_done]
    columns = [c for c in SUMMARY_COLUMNS if not (one_recipe and c == "recipe")]
    targets = []
    for t in names:
        header = f"{target_column(t)} (n={next(iter(sizes[t]))})" if once else target_column(t)
        for r, _ in rows:
            r[header] = r.pop(target_column(t), "-")
        targets.append(header)
    columns += targets

    def needed(cols: list[str], wrap: tuple[str, ...] = ()) -> int:
        """Width of *cols* on one line each, or with the *wrap* columns broken at their spaces."""
        def cell(text: str, col: str) -> int:
            return max(map(len, text.split() or [""])) if col in wrap else len(text)
        return sum(max([len(part) for part in col.split()] + [cell(r[col], col) for r, _ in rows]) + 2
                   for col in cols)

    for optional in OPTIONAL_COLUMNS:
        if width is None or needed(columns) <= width:
            break
        columns.remove(optional)
    hidden = [c for c in OPTIONAL_COLUMNS if c not in columns]
    free_text = ("recipe", "worst family")
    names_fit = width is None or needed(columns, wrap=free_text) <= width
    if hidden:
        caption += f". Not shown at this width: {', '.join(hidden)}"
    table = Table(title=f"{name}: clean vs shifted test {summary.metric_label} (%), best mean shifted first",
                  caption=escape(caption), box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True)
    for col in columns:
        numeric = col in NUMERIC_COLUMNS or col in targets
        # numbers never wrap or get cut; the cell's names neither, when "recipe" and "worst family"
        # breaking at spaces make room (rich narrows the widest wrappable column first: often the model)
        # (and the free-text columns keep their longest word whole: rich would otherwise cut one)
        longest_word = max((len(w) for r, _ in rows for w in r[col].split()), default=1)
        table.add_column(col.replace(" ", "\n"), justify="right" if numeric else "left",
                         no_wrap=numeric or (col in ("model", "augmentation", "adapter") and names_fit),
                         overflow="fold",
                         min_width=longest_word if names_fit and col in free_text else None,
                         style="bold" if col == "mean shifted" else None)
    for row, style in rows:
        table.add_row(*[escape(row[col]) for col in columns], style=style or None)
    return table


def grid_table(summary: RunSummary) -> Table:
    """Table (2): model x augmentation grid of mean shifted accuracy (mean ± std over seeds).

    An adapted cell's row is its model and adapter in two columns (the adapter column only when the
    run has adapters).
    """
    models, augs, values = summary.grid()
    labels = grid_labels(summary)
    with_adapter = any(adapter != NO_ADAPTER for _, adapter in labels.values())
    table = Table(title=f"mean shifted test {summary.metric_label} (%): model x augmentation")
    table.add_column("model")
    if with_adapter:
        table.add_column("adapter")
    for aug in augs:
        table.add_column(escape(aug), justify="right")
    best = max((mean_std(v)[0] for v in values.values()), default=None)
    for model in models:
        cells = []
        for aug in augs:
            v = values.get((model, aug))
            if not v:
                cells.append("-")
                continue
            m, sd = mean_std(v)
            text = pct(m) + (f" ±{100 * sd:.1f}" if len(v) > 1 else "")
            cells.append(f"[bold green]{text}[/]" if m == best else text)
        name, adapter = labels[model]
        table.add_row(escape(name), *([escape(adapter)] if with_adapter else []), *cells)
    return table


def cell_table(summary: RunSummary, cell: CellSummary) -> Table:
    """Table (3): test accuracy of one cell per shift and severity, grouped by family (family means in bold)."""
    rows = cell.test_rows()
    severities = sorted({sev for (_, sev) in rows if sev > 0}) or [1, 2, 3, 4, 5]
    c = cell.cell
    title = (f"{cell_name(c)} [{c.key[:10]}]: test {summary.metric_label} (%) "
             f"by shift and severity (clean test {pct(cell.clean_test)})")
    table = Table(title=escape(title))
    table.add_column("family / shift")
    for sev in severities:
        table.add_column(f"s{sev}", justify="right")
    table.add_column("mean", justify="right")
    for family in family_order(summary.families[s] for s in cell.per_shift):
        shifts = [s for s in cell.per_shift if summary.families.get(s, UNKNOWN_FAMILY) == family]
        fam_vals = [[cell.value(rows[(s, sev)]) for s in shifts if (s, sev) in rows] for sev in severities]
        table.add_row(f"[bold]{family}[/]", *[f"[bold]{pct(sum(v) / len(v))}[/]" if v else "-" for v in fam_vals],
                      f"[bold]{pct(cell.per_family.get(family))}[/]")
        for s in shifts:
            table.add_row(f"  {escape(s)}", *[pct(cell.value(rows[(s, sev)])) if (s, sev) in rows else "-"
                                              for sev in severities],
                          pct(cell.per_shift[s]))
    return table


def print_failed(summary: RunSummary, console: Console) -> None:
    """One line per failed cell with its error (never in the numbers)."""
    failed = [c for c in summary.cells if c.cell.status == "failed"]
    for c in failed:
        text = (f"{c.key[:10]} {cell_name(c.cell)}: "
                f"{c.cell.error or 'no error recorded'}")
        console.print(f"[red]failed[/] {escape(text)}", highlight=False)
    pending = sum(c.cell.status in ("pending", "running") for c in summary.cells)
    if pending:
        console.print(f"[dim]{pending} cell(s) not finished (pending/running)[/]")


def print_run_summary(summary: RunSummary, console: Console, cell: CellSummary | None = None,
                      show_failures: bool = True) -> None:
    """Tables (1) and (2) (the grid only when it has more than one entry), failures, and (3) for *cell*."""
    console.print(summary_table(summary, width=console.width))
    models, augs, _ = summary.grid()
    if len(models) * len(augs) > 1:
        console.print(grid_table(summary))
    if show_failures:
        print_failed(summary, console)
    if cell is not None:
        console.print(cell_table(summary, cell))


def print_summary(store: ResultStore, console: Console, reference: str | None = None,
                  show_failures: bool = True) -> None:
    """Print the summary of the run in *store* (what ``cellbench run`` shows when it ends).

    Tables (1) and (2); failed cells appear as rows without numbers and, unless *show_failures* is
    False (for a caller that reports errors itself), with their error on a line below.
    """
    print_run_summary(summarize_run(store, reference), console, show_failures=show_failures)
