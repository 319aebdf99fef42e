"""Machine-readable and Markdown forms of a run: JSON, CSV and the Markdown summary table.

Every record names the cell's model and test-time adapter apart (``model``, ``adapter``); target
rows (split ``target``) carry their per-class accuracy, balanced accuracy and per-class image counts.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from typing import Any

from robustbench_cells.bench.metrics import CLEAN, UNKNOWN_FAMILY, CellSummary, RunSummary
from robustbench_cells.bench.store import Score, score_to_dict
from robustbench_cells.report.rows import (
    TARGET_SPLIT, cell_adapter, cell_augmentation, cell_model, is_numeric_column, recipe_labels, severity_phrase,
    summary_columns, summary_row, target_class_counts, target_names,
)


def _identity(c: CellSummary) -> dict[str, Any]:
    """The cell's model, adapter and augmentation as tables show them (``label``: the stored model label)."""
    return {"model": cell_model(c.cell), "adapter": cell_adapter(c.cell),
            "augmentation": cell_augmentation(c.cell), "label": c.cell.model}


def _targets(summary: RunSummary) -> dict[str, Any]:
    """Per target: its images per class (from the run row) and each cell's accuracy, balanced accuracy
    and per-class accuracy on it (keyed by class name; a class absent from the target is left out)."""
    names = summary.class_names
    out: dict[str, Any] = {}
    for t in target_names(summary):
        counts = target_class_counts(summary, t)
        cells = []
        for c in summary.done:
            s = next((s for s in c.scores if s.split == TARGET_SPLIT and s.shift == t), None)
            if s is not None:
                cells.append({"key": c.key, **_identity(c), "seed": c.cell.seed, "accuracy": s.accuracy,
                              "balanced_accuracy": s.balanced_accuracy, "n": s.n,
                              "per_class": per_class_by_name(s, names, counts)})
        out[t] = {"images": sum(counts.values()) or None, "class_counts": counts, "cells": cells}
    return out


def per_class_by_name(score: Score, class_names: Sequence[str],
                      counts: dict[str, int] | None = None) -> dict[str, float]:
    """Class name -> accuracy of *score*; classes that are NaN (absent) or, given *counts*, have no image left out."""
    out = {}
    for i, v in enumerate(score.per_class):
        name = class_names[i] if i < len(class_names) else str(i)
        if v is None or not math.isfinite(float(v)) or (counts and counts.get(name, 0) == 0):
            continue
        out[name] = float(v)
    return out


def to_json(summary: RunSummary) -> dict[str, Any]:
    """One JSON-ready object: run, definitions, families, targets, cells (summary metrics and raw rows), grid."""
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
            "targets": "external labelled test sets: score rows with split 'target', shift = the target's name",
        },
        "reference": summary.reference,
        "metric": summary.metric,
        "families": {name: summary.families[name] for name in sorted(summary.families)},
        "targets": _targets(summary),
        "cells": [{**c.to_dict(), **_identity(c),
                   "scores": [{k: v for k, v in score_to_dict(s).items() if k != "cell_key"} for s in c.scores]}
                  for c in summary.done + summary.not_done],
        "grid": {"models": models, "augmentations": augs,
                 "mean_shifted": {f"{m}/{a}": v for (m, a), v in values.items()}},
    }


CSV_COLUMNS = ("cell_key", "model", "adapter", "augmentation", "seed", "params", "status", "split", "shift",
               "family", "severity", "accuracy", "balanced_accuracy", "per_class", "class_counts", "mean_confidence",
               "ece", "n", "clean_val", "clean_test", "mean_shifted", "worst_family", "gap", "rbe", "error")


def to_csv(summary: RunSummary) -> str:
    """Flat rows: one per cell x split x shift x severity, each with the cell's summary columns.

    ``per_class`` is a JSON object class name -> accuracy; ``class_counts`` (target rows) the target's
    images per class. A cell without rows (failed, pending) gets one row with its status and error.
    """
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    names = summary.class_names
    counts = {t: target_class_counts(summary, t) for t in target_names(summary)}
    for c in summary.done + summary.not_done:
        ident = _identity(c)
        base = {"cell_key": c.key, "model": ident["model"], "adapter": ident["adapter"],
                "augmentation": ident["augmentation"], "seed": c.cell.seed, "params": c.cell.params,
                "status": c.cell.status, "clean_val": c.clean_val, "clean_test": c.clean_test,
                "mean_shifted": c.mean_shifted, "worst_family": c.worst_family, "gap": c.gap, "rbe": c.rbe,
                "error": c.cell.error}
        if not c.done or not c.scores:
            writer.writerow(base)
            continue
        for s in c.scores:
            target = s.split == TARGET_SPLIT
            writer.writerow({**base, "split": s.split, "shift": s.shift, "severity": s.severity,
                             "family": "" if s.shift == CLEAN or target
                             else summary.families.get(s.shift, UNKNOWN_FAMILY),
                             "accuracy": s.accuracy, "balanced_accuracy": s.balanced_accuracy,
                             "per_class": json.dumps(per_class_by_name(s, names,
                                                                       counts.get(s.shift) if target else None)),
                             "class_counts": json.dumps(counts.get(s.shift, {})) if target else "",
                             "mean_confidence": s.mean_confidence, "ece": s.ece, "n": s.n})
    return buf.getvalue()


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    """GitHub Markdown table lines (``|`` in cells escaped; columns in *right* right-aligned)."""
    esc = [[str(v).replace("|", "\\|") for v in r] for r in rows]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in esc]
    return lines


def md_text(text: str) -> str:
    """User text for a Markdown table or heading: HTML and Markdown specials escaped."""
    import html

    return html.escape(str(text), quote=False).replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def to_markdown(summary: RunSummary) -> str:
    """The summary table (1) as GitHub Markdown (for BENCHMARKS.md), plus failed cells."""
    name = summary.run.name if summary.run else "run"
    labels = recipe_labels(summary)
    columns = summary_columns(summary)
    rows = [[summary_row(c, labels[c.key]).get(col, "-") for col in columns] for c in summary.done]
    right = {i for i, col in enumerate(columns) if is_numeric_column(col)}
    lines = [f"**{md_text(name)}**: test {summary.metric_label} (%), best mean shifted first. Mean shifted = mean "
             f"over every (shift, {severity_phrase(summary)}) test set; gap = clean val - mean shifted.", ""]
    lines += md_table(columns, rows, right)
    failed = [c for c in summary.not_done]
    if failed:
        lines.append("")
        lines += [f"- {c.cell.status}: `{c.key[:10]}` {c.cell.model}/{c.cell.augmentation} seed {c.cell.seed}"
                  + (f": {c.cell.error}" if c.cell.error else "") for c in failed]
    return "\n".join(lines) + "\n"


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
