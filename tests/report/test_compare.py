"""``compare``: cells matched by model, adapter, augmentation and seed; every target compared too."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from robustbench_cells.bench.metrics import summarize_run
from robustbench_cells.report import compare
from tests.report.conftest import make_adapted_run


def _render(table) -> str:
    console = Console(width=260, record=True, color_system=None, file=io.StringIO())
    console.print(table)
    return console.export_text()


def test_adapted_and_plain_cells_are_matched_apart_with_target_deltas(adapted_run, tmp_path):
    _, store_a = adapted_run
    store_b = make_adapted_run(tmp_path / "b", target_boost=0.1)
    rows, unmatched = compare.compare_rows(summarize_run(store_a), summarize_run(store_b))
    assert unmatched == [] and {(r["model"], r["adapter"]) for r in rows} == {("cnn_a", "none"), ("cnn_a", "bn_adapt")}
    adapted = next(r for r in rows if r["adapter"] == "bn_adapt")
    assert adapted["targets"]["other lab"]["a"] == pytest.approx(0.6)
    assert adapted["targets"]["other lab"]["delta"] == pytest.approx(0.1)
    assert adapted["mean_shifted_delta"] == 0
    text = _render(compare.compare_table(rows, "A", "B"))
    assert "adapter" in text and "bn_adapt" in text and "Δ other lab" in text and "+10.0" in text
    md = compare.compare_markdown(rows, unmatched)
    assert md.startswith("| model | adapter | augmentation | seed |") and "| other lab A | other lab B | Δ other lab |" in md
    assert "| cnn_a | bn_adapt | simple | 0 | 92.0 | 92.0 | +0.0 |" in md and "| 60.0 | 70.0 | +10.0 |" in md
    store_b.close()


def test_a_target_of_only_one_run_shows_no_delta(adapted_run, tmp_path):
    _, store_a = adapted_run
    store_b = make_adapted_run(tmp_path / "b", targets=("other lab", "third lab"))
    rows, _ = compare.compare_rows(summarize_run(store_a), summarize_run(store_b))
    third = rows[0]["targets"]["third lab"]
    assert third["a"] is None and third["b"] == pytest.approx(rows[0]["targets"]["other lab"]["b"])
    assert third["delta"] is None
    assert "| - | " in compare.compare_markdown(rows, [])
    store_b.close()


def test_unmatched_adapted_cell_is_named_with_its_adapter(adapted_run, tmp_path):
    _, store_a = adapted_run
    store_b = make_adapted_run(tmp_path / "b")
    store_b.mark_failed("adapt-cell-00000", "adapter failed")
    rows, unmatched = compare.compare_rows(summarize_run(store_a), summarize_run(store_b))
    assert len(rows) == 1 and unmatched == ["only in A: cnn_a/simple seed 0 + bn_adapt"]
    store_b.close()
