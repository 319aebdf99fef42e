"""The comparison of two runs (``cellbench compare``): cells matched by model, adapter, augmentation and seed.

Each matched pair gets clean test, mean shifted and every target of either run, for A, B and the
delta B - A; the terminal (rich) and Markdown tables are built from the same rows as the JSON.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from robustbench_cells.bench.metrics import CellSummary, RunSummary
from robustbench_cells.report.records import md_table
from robustbench_cells.report.rows import (
    cell_adapter, cell_augmentation, cell_model, cell_name, pct, signed_pct, target_names, target_scores,
)

CellId = tuple[str, str, str, int]  # model, adapter, augmentation, seed


def _delta(x: float | None, y: float | None) -> float | None:
    return None if x is None or y is None else y - x


def _cell_id(c: CellSummary) -> CellId:
    return cell_model(c.cell), cell_adapter(c.cell), cell_augmentation(c.cell), c.cell.seed


def _targets(c: CellSummary) -> dict[str, float]:
    return {name: c.value(s) for name, s in target_scores(c).items()}


def compare_rows(a: RunSummary, b: RunSummary) -> tuple[list[dict[str, Any]], list[str]]:
    """Cells of both runs matched by (model, adapter, augmentation, seed), with deltas (B - A).

    Each row has ``targets``: target name -> ``{"a", "b", "delta"}`` for every target of either run
    (``None`` where a run has no score on it). Returns ``(rows, unmatched)`` where *unmatched* names
    cells done in only one run.
    """
    def index(s: RunSummary) -> dict[CellId, CellSummary]:
        return {_cell_id(c): c for c in s.done}

    ia, ib = index(a), index(b)
    names = target_names(a, b)
    rows = []
    for k in [k for k in ia if k in ib]:
        ca, cb = ia[k], ib[k]
        ta, tb = _targets(ca), _targets(cb)
        rows.append({"model": k[0], "adapter": k[1], "augmentation": k[2], "seed": k[3],
                     "key_a": ca.key, "key_b": cb.key,
                     "clean_test_a": ca.clean_test, "clean_test_b": cb.clean_test,
                     "clean_test_delta": _delta(ca.clean_test, cb.clean_test),
                     "mean_shifted_a": ca.mean_shifted, "mean_shifted_b": cb.mean_shifted,
                     "mean_shifted_delta": _delta(ca.mean_shifted, cb.mean_shifted),
                     "targets": {t: {"a": ta.get(t), "b": tb.get(t), "delta": _delta(ta.get(t), tb.get(t))}
                                 for t in names}})
    rows.sort(key=lambda r: -(r["mean_shifted_delta"] if r["mean_shifted_delta"] is not None else -9))
    unmatched = [f"only in A: {cell_name(c.cell)}" for k, c in ia.items() if k not in ib]
    unmatched += [f"only in B: {cell_name(c.cell)}" for k, c in ib.items() if k not in ia]
    return rows, unmatched


def _target_names(rows: list[dict[str, Any]]) -> list[str]:
    return list(rows[0].get("targets", {})) if rows else []


def _header(rows: list[dict[str, Any]]) -> list[str]:
    header = ["model", "adapter", "augmentation", "seed", "clean A", "clean B", "Δ clean", "shifted A",
              "shifted B", "Δ shifted"]
    for t in _target_names(rows):
        header += [f"{t} A", f"{t} B", f"Δ {t}"]
    return header


def _values(r: dict[str, Any]) -> list[tuple[float | None, bool]]:
    """The row's numbers in column order, each with whether it is a delta."""
    out = [(r["clean_test_a"], False), (r["clean_test_b"], False), (r["clean_test_delta"], True),
           (r["mean_shifted_a"], False), (r["mean_shifted_b"], False), (r["mean_shifted_delta"], True)]
    for t in r.get("targets", {}).values():
        out += [(t["a"], False), (t["b"], False), (t["delta"], True)]
    return out


def compare_table(rows: list[dict[str, Any]], name_a: str, name_b: str, metric_label: str = "accuracy") -> Table:
    """Rich table of :func:`compare_rows` (largest mean shifted gain first), with a column trio per target."""
    table = Table(title=escape(f"A = {name_a}  vs  B = {name_b}: test {metric_label} (%), delta = B - A"))
    for col in _header(rows):
        table.add_column(escape(col), justify="left" if col in ("model", "adapter", "augmentation") else "right")

    def colour(v: float | None) -> str:
        text = signed_pct(v)
        return text if v is None or abs(v) < 0.005 else f"[{'green' if v > 0 else 'red'}]{text}[/]"

    for r in rows:
        table.add_row(escape(r["model"]), escape(r["adapter"]), escape(r["augmentation"]), str(r["seed"]),
                      *[colour(v) if is_delta else pct(v) for v, is_delta in _values(r)])
    return table


def compare_markdown(rows: list[dict[str, Any]], unmatched: list[str]) -> str:
    """:func:`compare_rows` as a GitHub Markdown table, then the unmatched cells."""
    header = _header(rows)
    body = [[r["model"], r["adapter"], r["augmentation"], str(r["seed"]),
             *[signed_pct(v) if is_delta else pct(v) for v, is_delta in _values(r)]] for r in rows]
    lines = md_table(header, body, set(range(3, len(header))))
    return "\n".join(lines + ([""] + [f"- {u}" for u in unmatched] if unmatched else [])) + "\n"
