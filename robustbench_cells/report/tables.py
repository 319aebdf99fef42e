"""Result tables of a run: rich (terminal), CSV, JSON and Markdown, all from a :class:`RunSummary`.

(1) summary: one row per cell, best mean shifted accuracy first; (2) model x augmentation grid of
mean shifted accuracy; (3) family x severity for one cell; and the comparison of two runs.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from robustbench_cells.bench.metrics import (
    CLEAN, UNKNOWN_FAMILY, CellSummary, RunSummary, family_order, mean_std, summarize_run,
)
from robustbench_cells.bench.store import ResultStore, score_to_dict

SUMMARY_COLUMNS = ("model", "params", "augmentation", "seed", "recipe", "clean val", "clean test",
                   "mean shifted", "worst family", "gap", "rBE", "ECE shifted")


def pct(value: float | None, digits: int = 1) -> str:
    """``0.9312 -> "93.1"``; ``None -> "-"``."""
    return "-" if value is None else f"{100 * value:.{digits}f}"


def signed_pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def fmt_params(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.1f}M" if n >= 1_000_000 else f"{n / 1e3:.0f}k" if n >= 1000 else str(n)


#: Recipe fields every label shows; other fields appear only where cells of the run differ in them.
RECIPE_CORE = ("optimizer", "learning_rate", "epochs")


def recipe_labels(summary: RunSummary) -> dict[str, str]:
    """A short recipe label per cell key: optimizer, learning rate, epochs, plus the fields that vary in the run.

    A full recipe has ~25 fields; printing them all hides the one that differs between cells.
    """
    recipes = [c.cell.recipe for c in summary.cells if c.cell.recipe]
    keys = sorted({k for r in recipes for k in r})
    varying = [k for k in keys if k not in RECIPE_CORE and len({json.dumps(r.get(k), sort_keys=True)
                                                                  for r in recipes}) > 1]
    return {c.key: fmt_recipe(c.cell.recipe, varying, c.cell.config) for c in summary.cells}


def fmt_recipe(recipe: dict[str, Any], varying: Sequence[str] = (), config: dict[str, Any] | None = None) -> str:
    """``"adam lr=0.001 10ep"`` plus ``k=v`` for each field in *varying*; ensembles and empty recipes say so."""
    if config and config.get("kind") == "ensemble":
        return f"ensemble of {len(config.get('members', []))}"
    if not recipe:
        return "-"
    if isinstance(recipe.get("name"), str):
        return recipe["name"]
    core = []
    if "optimizer" in recipe:
        core.append(str(recipe["optimizer"]))
    if "learning_rate" in recipe:
        core.append(f"lr={recipe['learning_rate']:g}" if isinstance(recipe["learning_rate"], (int, float))
                    else f"lr={recipe['learning_rate']}")
    if "epochs" in recipe:
        core.append(f"{recipe['epochs']}ep")
    extra = [f"{k}={recipe.get(k)}" for k in varying]
    return " ".join(core + extra) or "-"


#: The split of ``[[targets]]`` score rows (bench/executors.TARGET_SPLIT); ``shift`` holds the target name.
TARGET_SPLIT = "target"


def target_names(summary: RunSummary) -> list[str]:
    """Names of the run's target sets (external labelled test sets), in first-seen order."""
    names: dict[str, None] = {}
    for c in summary.cells:
        for s in c.scores:
            if s.split == TARGET_SPLIT:
                names.setdefault(s.shift, None)
    return list(names)


def target_column(name: str) -> str:
    """The summary-table column of target *name*."""
    return f"target {name}"


def summary_row(c: CellSummary, recipe: str | None = None) -> dict[str, str]:
    """Table (1) row of one cell, as display strings (*recipe*: its label from :func:`recipe_labels`)."""
    worst = f"{c.worst_family} {pct(c.per_family[c.worst_family])}" if c.worst_family else "-"
    rbe = "-" if c.rbe is None else f"{c.rbe:.2f}"
    return {
        "model": c.cell.model, "params": fmt_params(c.cell.params), "augmentation": c.cell.augmentation,
        "seed": str(c.cell.seed), "recipe": recipe or fmt_recipe(c.cell.recipe), "clean val": pct(c.clean_val),
        "clean test": pct(c.clean_test), "mean shifted": pct(c.mean_shifted), "worst family": worst,
        "gap": pct(c.gap), "rBE": rbe, "ECE shifted": "-" if c.ece_shifted is None else f"{c.ece_shifted:.3f}",
        # one column per target: the summary's metric on it, and its size (targets are small: say how small)
        **{target_column(s.shift): f"{pct(c.value(s))} (n={s.n})" for s in c.scores if s.split == TARGET_SPLIT},
    }


def unfinished_row(c: CellSummary, recipe: str) -> dict[str, str]:
    """Table (1) row of a failed/pending/running cell: its identity and status, no numbers."""
    row = {k: "-" for k in SUMMARY_COLUMNS}
    row.update(model=c.cell.model, augmentation=c.cell.augmentation, seed=str(c.cell.seed), recipe=recipe,
               **{"mean shifted": c.cell.status})
    return row


NUMERIC_COLUMNS = ("params", "seed", "clean val", "clean test", "mean shifted", "gap", "rBE", "ECE shifted")


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
    rows = [(summary_row(c, labels[c.key]), "") for c in summary.done]
    rows += [(unfinished_row(c, labels[c.key]), "red" if c.cell.status == "failed" else "dim")
             for c in summary.not_done]
    columns = [c for c in SUMMARY_COLUMNS if not (one_recipe and c == "recipe")]
    targets = [target_column(t) for t in target_names(summary)]
    columns += targets
    for r, _ in rows:
        for col in targets:
            r.setdefault(col, "-")

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
                         no_wrap=numeric or (col in ("model", "augmentation") and names_fit), overflow="fold",
                         min_width=longest_word if names_fit and col in free_text else None,
                         style="bold" if col == "mean shifted" else None)
    for row, style in rows:
        table.add_row(*[escape(row[col]) for col in columns], style=style or None)
    return table


def grid_table(summary: RunSummary) -> Table:
    """Table (2): model x augmentation grid of mean shifted accuracy (mean ± std over seeds)."""
    models, augs, values = summary.grid()
    table = Table(title=f"mean shifted test {summary.metric_label} (%): model x augmentation")
    table.add_column("model")
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
        table.add_row(escape(model), *cells)
    return table


def cell_table(summary: RunSummary, cell: CellSummary) -> Table:
    """Table (3): test accuracy of one cell per shift and severity, grouped by family (family means in bold)."""
    rows = cell.test_rows()
    severities = sorted({sev for (_, sev) in rows if sev > 0}) or [1, 2, 3, 4, 5]
    c = cell.cell
    title = (f"{c.model}/{c.augmentation} seed {c.seed} [{c.key[:10]}]: test {summary.metric_label} (%) "
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
        text = (f"{c.key[:10]} {c.cell.model}/{c.cell.augmentation} seed {c.cell.seed}: "
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


# -- machine-readable forms --------------------------------------------------------------------------
def to_json(summary: RunSummary) -> dict[str, Any]:
    """One JSON-ready object: run, definitions, families, cells (with summary metrics and raw rows), grid."""
    run = summary.run
    models, augs, values = summary.grid()
    return {
        "run": None if run is None else {
            "name": run.name, "created": run.created, "data_spec": run.data_spec,
            "data_fingerprint": run.data_fingerprint, "class_names": run.class_names, "versions": run.versions,
        },
        "definitions": {
            "mean_shifted": f"mean test {summary.metric_label} over all (shift, severity>=1) rows",
            "gap": "clean_val - mean_shifted",
            "rbe": "mean over shifts of sum_s(BE_s-BE_clean)/sum_s(refBE_s-refBE_clean), BE=1-balanced accuracy",
        },
        "reference": summary.reference,
        "metric": summary.metric,
        "families": {name: summary.families[name] for name in sorted(summary.families)},
        "cells": [{**c.to_dict(), "scores": [{k: v for k, v in score_to_dict(s).items() if k != "cell_key"}
                                             for s in c.scores]}
                  for c in summary.done + summary.not_done],
        "grid": {"models": models, "augmentations": augs,
                 "mean_shifted": {f"{m}/{a}": v for (m, a), v in values.items()}},
    }


CSV_COLUMNS = ("cell_key", "model", "augmentation", "seed", "params", "status", "split", "shift", "family",
               "severity", "accuracy", "balanced_accuracy", "mean_confidence", "ece", "n", "clean_val",
               "clean_test", "mean_shifted", "worst_family", "gap", "rbe", "error")


def to_csv(summary: RunSummary) -> str:
    """Flat rows: one per cell x split x shift x severity, each with the cell's summary columns.

    A cell without rows (failed, pending) gets one row with its status and error.
    """
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for c in summary.done + summary.not_done:
        base = {"cell_key": c.key, "model": c.cell.model, "augmentation": c.cell.augmentation, "seed": c.cell.seed,
                "params": c.cell.params, "status": c.cell.status, "clean_val": c.clean_val,
                "clean_test": c.clean_test, "mean_shifted": c.mean_shifted, "worst_family": c.worst_family,
                "gap": c.gap, "rbe": c.rbe, "error": c.cell.error}
        if not c.done or not c.scores:
            writer.writerow(base)
            continue
        for s in c.scores:
            writer.writerow({**base, "split": s.split, "shift": s.shift, "severity": s.severity,
                             "family": "" if s.shift == CLEAN else summary.families.get(s.shift, UNKNOWN_FAMILY),
                             "accuracy": s.accuracy, "balanced_accuracy": s.balanced_accuracy,
                             "mean_confidence": s.mean_confidence, "ece": s.ece, "n": s.n})
    return buf.getvalue()


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    esc = [[str(v).replace("|", "\\|") for v in r] for r in rows]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in esc]
    return lines


def severity_phrase(summary: RunSummary) -> str:
    """``severity 1-5``, ``severities 1, 3, 5``: the severities this run's shifted sets were made at."""
    config = summary.run.config if summary.run else {}
    levels = sorted(int(v) for v in (config.get("shifts") or {}).get("severities") or (1, 2, 3, 4, 5))
    if len(levels) == 1:
        return f"severity {levels[0]}"
    if levels == list(range(levels[0], levels[-1] + 1)):
        return f"severity {levels[0]}-{levels[-1]}"
    return "severities " + ", ".join(map(str, levels))


def md_text(text: str) -> str:
    """User text for a Markdown table or heading: HTML and Markdown specials escaped."""
    import html

    return html.escape(str(text), quote=False).replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def to_markdown(summary: RunSummary) -> str:
    """The summary table (1) as GitHub Markdown (for BENCHMARKS.md), plus failed cells."""
    name = summary.run.name if summary.run else "run"
    labels = recipe_labels(summary)
    columns = list(SUMMARY_COLUMNS) + [target_column(t) for t in target_names(summary)]
    rows = [[summary_row(c, labels[c.key]).get(col, "-") for col in columns] for c in summary.done]
    right = {i for i, col in enumerate(columns)
             if col in NUMERIC_COLUMNS or col.startswith("target ")}
    lines = [f"**{md_text(name)}**: test {summary.metric_label} (%), best mean shifted first. Mean shifted = mean "
             f"over every (shift, {severity_phrase(summary)}) test set; gap = clean val - mean shifted.", ""]
    lines += _md_table(columns, rows, right)
    failed = [c for c in summary.not_done]
    if failed:
        lines.append("")
        lines += [f"- {c.cell.status}: `{c.key[:10]}` {c.cell.model}/{c.cell.augmentation} seed {c.cell.seed}"
                  + (f": {c.cell.error}" if c.cell.error else "") for c in failed]
    return "\n".join(lines) + "\n"


# -- comparison of two runs ------------------------------------------------------------------------
def compare_rows(a: RunSummary, b: RunSummary) -> tuple[list[dict[str, Any]], list[str]]:
    """Cells of both runs matched by (model, augmentation, seed), with deltas (B - A).

    Returns ``(rows, unmatched)`` where *unmatched* names cells done in only one run.
    """
    def index(s: RunSummary) -> dict[tuple[str, str, int], CellSummary]:
        return {(c.cell.model, c.cell.augmentation, c.cell.seed): c for c in s.done}

    ia, ib = index(a), index(b)
    rows = []
    for k in [k for k in ia if k in ib]:
        ca, cb = ia[k], ib[k]
        d = (lambda x, y: None if x is None or y is None else y - x)
        rows.append({"model": k[0], "augmentation": k[1], "seed": k[2], "key_a": ca.key, "key_b": cb.key,
                     "clean_test_a": ca.clean_test, "clean_test_b": cb.clean_test,
                     "clean_test_delta": d(ca.clean_test, cb.clean_test),
                     "mean_shifted_a": ca.mean_shifted, "mean_shifted_b": cb.mean_shifted,
                     "mean_shifted_delta": d(ca.mean_shifted, cb.mean_shifted)})
    rows.sort(key=lambda r: -(r["mean_shifted_delta"] if r["mean_shifted_delta"] is not None else -9))
    unmatched = [f"only in A: {m}/{g} seed {s}" for (m, g, s) in ia if (m, g, s) not in ib]
    unmatched += [f"only in B: {m}/{g} seed {s}" for (m, g, s) in ib if (m, g, s) not in ia]
    return rows, unmatched


def compare_table(rows: list[dict[str, Any]], name_a: str, name_b: str, metric_label: str = "accuracy") -> Table:
    """Rich table of :func:`compare_rows` (largest mean shifted gain first)."""
    table = Table(title=escape(f"A = {name_a}  vs  B = {name_b}: test {metric_label} (%), delta = B - A"))
    for col in ("model", "augmentation", "seed", "clean A", "clean B", "Δ clean", "shifted A", "shifted B",
                "Δ shifted"):
        table.add_column(col, justify="left" if col in ("model", "augmentation") else "right")

    def colour(v: float | None) -> str:
        text = signed_pct(v)
        return text if v is None or abs(v) < 0.005 else f"[{'green' if v > 0 else 'red'}]{text}[/]"

    for r in rows:
        table.add_row(r["model"], r["augmentation"], str(r["seed"]), pct(r["clean_test_a"]), pct(r["clean_test_b"]),
                      colour(r["clean_test_delta"]), pct(r["mean_shifted_a"]), pct(r["mean_shifted_b"]),
                      colour(r["mean_shifted_delta"]))
    return table


def compare_markdown(rows: list[dict[str, Any]], unmatched: list[str]) -> str:
    header = ("model", "augmentation", "seed", "clean A", "clean B", "Δ clean", "shifted A", "shifted B", "Δ shifted")
    body = [[r["model"], r["augmentation"], str(r["seed"]), pct(r["clean_test_a"]), pct(r["clean_test_b"]),
             signed_pct(r["clean_test_delta"]), pct(r["mean_shifted_a"]), pct(r["mean_shifted_b"]),
             signed_pct(r["mean_shifted_delta"])] for r in rows]
    lines = _md_table(header, body, set(range(2, 9)))
    return "\n".join(lines + ([""] + [f"- {u}" for u in unmatched] if unmatched else [])) + "\n"


def _finite(obj: Any) -> Any:
    """NaN/inf -> None, recursively (strict JSON has no NaN; a per-class accuracy of an absent class is NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def dumps_json(obj: Any) -> str:
    """Strict, indented JSON (non-finite numbers become ``null``)."""
    return json.dumps(_finite(obj), indent=2, allow_nan=False, default=str)
