"""What every table shows of a cell, as display strings: numbers, recipe labels, model and adapter, targets.

The terminal, Markdown, HTML and comparison tables all build their rows here, so a column means
the same everywhere. Model and adapter are read from the stored cell config (an adapted cell is
stored with the model label ``model+chain``), so runs made before the adapter column display
correctly without re-running.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from robustbench_cells.bench.metrics import CellSummary, RunSummary
from robustbench_cells.bench.store import NO_ADAPTER, Cell, Score, cell_adapter, cell_augmentation, cell_model

SUMMARY_COLUMNS = ("model", "params", "augmentation", "adapter", "seed", "recipe", "clean val", "clean test",
                   "mean shifted", "worst family", "gap", "rBE", "ECE shifted")
NUMERIC_COLUMNS = ("params", "seed", "clean val", "clean test", "mean shifted", "gap", "rBE", "ECE shifted")


def pct(value: float | None, digits: int = 1) -> str:
    """``0.9312 -> "93.1"``; ``None -> "-"``."""
    return "-" if value is None else f"{100 * value:.{digits}f}"


def signed_pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def fmt_params(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.1f}M" if n >= 1_000_000 else f"{n / 1e3:.0f}k" if n >= 1000 else str(n)


def cell_name(cell: Cell) -> str:
    """``model/augmentation seed N``, plus ``+ adapter`` for an adapted cell (figure legends, failure lines)."""
    adapter = cell_adapter(cell)
    return (f"{cell_model(cell)}/{cell_augmentation(cell)} seed {cell.seed}"
            + ("" if adapter == NO_ADAPTER else f" + {adapter}"))


# -- recipes ---------------------------------------------------------------------------------------
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


def severity_phrase(summary: RunSummary) -> str:
    """``severity 1-5``, ``severities 1, 3, 5``: the severities this run's shifted sets were made at."""
    config = summary.run.config if summary.run else {}
    levels = sorted(int(v) for v in (config.get("shifts") or {}).get("severities") or (1, 2, 3, 4, 5))
    if len(levels) == 1:
        return f"severity {levels[0]}"
    if levels == list(range(levels[0], levels[-1] + 1)):
        return f"severity {levels[0]}-{levels[-1]}"
    return "severities " + ", ".join(map(str, levels))


# -- targets (external labelled test sets) ---------------------------------------------------------
#: The split of ``[[targets]]`` score rows (bench/executors.TARGET_SPLIT); ``shift`` holds the target name.
TARGET_SPLIT = "target"


def target_names(*summaries: RunSummary) -> list[str]:
    """Names of the target sets of one or more runs, in first-seen order."""
    names: dict[str, None] = {}
    for summary in summaries:
        for c in summary.cells:
            for s in c.scores:
                if s.split == TARGET_SPLIT:
                    names.setdefault(s.shift, None)
    return list(names)


def target_scores(c: CellSummary) -> dict[str, Score]:
    """Target name -> the cell's score row on it."""
    return {s.shift: s for s in c.scores if s.split == TARGET_SPLIT}


def target_column(name: str) -> str:
    """The summary-table column of target *name*."""
    return f"target {name}"


def target_class_counts(summary: RunSummary, name: str) -> dict[str, int]:
    """Class name -> images of that class in target *name* (recorded by the runner in ``data_facts``; {} if not)."""
    config = summary.run.config if summary.run else {}
    facts = ((config.get("data_facts") or {}).get("targets") or {}).get(name) or {}
    counts = facts.get("class_counts") or {}
    return {str(k): int(v) for k, v in counts.items()} if isinstance(counts, dict) else {}


def summary_columns(summary: RunSummary) -> list[str]:
    """Table (1)'s columns for *summary*: :data:`SUMMARY_COLUMNS` and one per target."""
    return list(SUMMARY_COLUMNS) + [target_column(t) for t in target_names(summary)]


def is_numeric_column(column: str) -> bool:
    """Right-aligned columns: numbers and targets."""
    return column in NUMERIC_COLUMNS or column.startswith("target ")


# -- rows ------------------------------------------------------------------------------------------
def summary_row(c: CellSummary, recipe: str | None = None, target_sizes: bool = True) -> dict[str, str]:
    """Table (1) row of one cell, as display strings (*recipe*: its label from :func:`recipe_labels`;
    *target_sizes* False leaves the ``(n=...)`` out of the target columns, for a table that says it once)."""
    worst = f"{c.worst_family} {pct(c.per_family[c.worst_family])}" if c.worst_family else "-"
    rbe = "-" if c.rbe is None else f"{c.rbe:.2f}"
    return {
        "model": cell_model(c.cell), "params": fmt_params(c.cell.params), "augmentation": cell_augmentation(c.cell),
        "adapter": cell_adapter(c.cell), "seed": str(c.cell.seed), "recipe": recipe or fmt_recipe(c.cell.recipe),
        "clean val": pct(c.clean_val), "clean test": pct(c.clean_test), "mean shifted": pct(c.mean_shifted),
        "worst family": worst, "gap": pct(c.gap), "rBE": rbe,
        "ECE shifted": "-" if c.ece_shifted is None else f"{c.ece_shifted:.3f}",
        # one column per target: the summary's metric on it, and its size (targets are small: say how small)
        **{target_column(name): pct(c.value(s)) + (f" (n={s.n})" if target_sizes else "")
           for name, s in target_scores(c).items()},
    }


def unfinished_row(c: CellSummary, recipe: str) -> dict[str, str]:
    """Table (1) row of a failed/pending/running cell: its identity and status, no numbers."""
    row = {k: "-" for k in SUMMARY_COLUMNS}
    row.update(model=cell_model(c.cell), augmentation=cell_augmentation(c.cell), adapter=cell_adapter(c.cell),
               seed=str(c.cell.seed), recipe=recipe, **{"mean shifted": c.cell.status})
    return row


def grid_labels(summary: RunSummary) -> dict[str, tuple[str, str]]:
    """Stored model label (the rows of ``RunSummary.grid()``) -> ``(model, adapter)`` for display."""
    return {c.cell.model: (cell_model(c.cell), cell_adapter(c.cell)) for c in summary.cells}
