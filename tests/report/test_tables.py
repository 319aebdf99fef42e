"""Tables of a run: rich summary/grid/cell tables, CSV, JSON, Markdown and run comparison."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

from rich.console import Console

from robustbench_cells.bench.metrics import summarize_run
from robustbench_cells.report import tables


def _render(renderable, width: int = 240) -> str:
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def _columns(table) -> dict[str, list[str]]:
    return {str(col.header).replace("\n", " "): [str(v) for v in col.cells] for col in table.columns}


def test_summary_table_sorted_by_mean_shifted_with_failed_cells_last(fake_run):
    _, store = fake_run
    summary = summarize_run(store)
    cols = _columns(tables.summary_table(summary))
    shifted = [float(v) for v in cols["mean shifted"][:7]]
    assert shifted == sorted(shifted, reverse=True) and len(set(shifted)) == 7
    # augmentation with the smallest loss multiplier (simple) on the better model wins
    assert (cols["model"][0], cols["augmentation"][0]) == ("cnn_b", "simple")
    assert cols["mean shifted"][7:] == ["failed", "pending"] and cols["clean test"][7:] == ["-", "-"]
    assert all(v.startswith("stain ") for v in cols["worst family"][:7])  # the worst family of every cell
    assert cols["recipe"][0] == "adam lr=0.001 3ep label_smoothing=0.1"


def test_summary_table_fits_narrow_terminals(fake_run):
    _, store = fake_run
    summary = summarize_run(store)
    narrow = tables.summary_table(summary, width=100)
    cols = _columns(narrow)
    assert "ECE shifted" not in cols and "model" in cols and "mean shifted" in cols
    assert "Not shown at this width: ECE shifted" in str(narrow.caption)
    text = _render(narrow, width=100)
    assert max(len(ln.rstrip()) for ln in text.splitlines()) <= 100
    assert "cnn_b" in text and "simple" in text  # names are not folded
    assert len(_columns(tables.summary_table(summary, width=400))) == len(tables.SUMMARY_COLUMNS)


def test_long_model_names_stay_whole_while_worst_family_can_wrap(fake_run):
    _, store = fake_run
    summary = summarize_run(store)
    long = {"cnn_a": "simple_cnn(norm=group)", "cnn_b": "mobilenetv2(alpha=0.35)"}
    for c in summary.done + summary.not_done:  # one recipe (a caption, not a column), as in quick.toml
        c.cell = dataclasses.replace(c.cell, model=long[c.cell.model], recipe={"optimizer": "adam"})
    names_whole = []
    for width in range(50, 131):
        table = tables.summary_table(summary, width=width)
        text = _render(table, width=width)
        words = text.split()
        assert all(v in words for v in _columns(table)["mean shifted"]), width  # numbers are never cut
        if set(long.values()) <= set(words):
            names_whole.append((width, table, text))
    width, table, text = names_whole[0]
    assert [w for w, _, _ in names_whole] == list(range(width, 131))
    # at the narrowest width that keeps the names whole, "worst family" already breaks at its space
    assert any(value not in text for value in _columns(table)["worst family"] if value != "-"), text


def test_recipe_words_are_never_cut_while_names_stay_whole(fake_run):
    _, store = fake_run
    summary = summarize_run(store)
    long = {"cnn_a": "simple_cnn(norm=group)", "cnn_b": "mobilenetv2(alpha=0.35)"}
    for c in summary.done + summary.not_done:  # two recipes: a recipe column that must wrap
        c.cell = dataclasses.replace(c.cell, model=long[c.cell.model])
    recipe_words = {w for r in _columns(tables.summary_table(summary))["recipe"] for w in r.split()}
    for width in range(60, 141):
        words = set(_render(tables.summary_table(summary, width=width), width=width).split())
        if set(long.values()) <= words:  # names whole: then every recipe word is whole too
            assert recipe_words <= words, (width, recipe_words - words)


def test_print_summary_shows_failure_errors_not_numbers(fake_run):
    _, store = fake_run
    console = Console(width=240, record=True, color_system=None, file=io.StringIO())
    tables.print_summary(store, console)
    text = console.export_text()
    assert "ResourceExhaustedError: out of memory" in text
    assert "1 cell(s) not finished" in text
    assert any(ln.split() == ["┃", "model", "┃", "none", "┃", "simple", "┃", "mixup", "┃", "cutmix", "┃"]
               for ln in text.splitlines())  # the model x augmentation grid follows the summary


def test_grid_averages_seeds(fake_run):
    _, store = fake_run
    summary = summarize_run(store)
    seeds = [c.mean_shifted for c in summary.done if (c.cell.model, c.cell.augmentation) == ("cnn_a", "simple")]
    assert len(seeds) == 2
    text = _render(tables.grid_table(summary))
    row = next(ln for ln in text.splitlines() if ln.startswith("│ cnn_a"))
    assert f"{100 * sum(seeds) / 2:.1f} ±" in row
    assert row.rstrip().endswith("- │")  # cnn_a/cutmix is pending: no number


def test_cell_table_groups_shifts_by_family(fake_run):
    _, store = fake_run
    summary = summarize_run(store)
    cell = summary.get("cnn_a-none")
    text = _render(tables.cell_table(summary, cell))
    names = [ln.split("│")[1].strip() for ln in text.splitlines() if ln.startswith("│")]
    assert names == ["noise", "rt_noise", "blur", "rt_blur", "stain", "rt_stain", "unknown", "retired_shift"]
    stain_row = next(ln for ln in text.splitlines() if ln.startswith("│   rt_stain"))
    s5 = cell.test_rows()[("rt_stain", 5)].accuracy
    assert f"{100 * s5:.1f}" in stain_row
    assert cell.key[:10] in text  # rich markup must not swallow the [key]


def test_csv_has_one_row_per_score_plus_unfinished_cells(fake_run):
    _, store = fake_run
    summary = summarize_run(store)
    rows = list(csv.DictReader(io.StringIO(tables.to_csv(summary))))
    n_scores = len(store.scores())
    assert len(rows) == n_scores + 2
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["error"].startswith("ResourceExhausted") and failed[0]["accuracy"] == ""
    retired = [r for r in rows if r["shift"] == "retired_shift"]
    assert retired and {r["family"] for r in retired} == {"unknown"}
    best = summary.done[0]
    mine = [r for r in rows if r["cell_key"] == best.key]
    assert {float(r["mean_shifted"]) for r in mine} == {best.mean_shifted}


def test_json_is_one_object_with_cells_and_grid(fake_run):
    _, store = fake_run
    summary = summarize_run(store)
    obj = json.loads(tables.dumps_json(tables.to_json(summary)))
    assert obj["run"]["name"] == "fake-run" and len(obj["run"]["class_names"]) == 8
    assert [c["key"] for c in obj["cells"]] == [c.key for c in summary.done + summary.not_done]
    first = obj["cells"][0]
    assert first["mean_shifted"] == summary.done[0].mean_shifted
    assert first["per_family"].keys() == {"noise", "blur", "stain", "unknown"}
    assert len(first["scores"]) == 2 + 4 * 5
    assert obj["families"]["retired_shift"] == "unknown"
    assert len(obj["grid"]["mean_shifted"]["cnn_a/simple"]) == 2


def test_markdown_summary(fake_run):
    _, store = fake_run
    md = tables.to_markdown(summarize_run(store))
    lines = md.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.startswith("| model"))
    assert lines[header + 1].startswith("|---|---:|")
    body = [ln for ln in lines[header + 2:] if ln.startswith("| ")]
    assert len(body) == 7 and body[0].startswith("| cnn_b | 120k | simple |")
    assert any("failed" in ln and "out of memory" in ln for ln in lines)


def test_compare_matches_cells_and_reports_deltas(fake_run, run_factory, tmp_path):
    _, store_a = fake_run
    store_b = run_factory(tmp_path / "b", seed=7)  # same cells, other noise: small non-zero deltas
    a, b = summarize_run(store_a), summarize_run(store_b)
    rows, unmatched = tables.compare_rows(a, b)
    assert len(rows) == 7 and unmatched == []
    for r in rows:
        ca = next(c for c in a.done if (c.cell.model, c.cell.augmentation, c.cell.seed) ==
                  (r["model"], r["augmentation"], r["seed"]))
        assert r["mean_shifted_a"] == ca.mean_shifted
        assert r["mean_shifted_delta"] == r["mean_shifted_b"] - r["mean_shifted_a"] != 0
    deltas = [r["mean_shifted_delta"] for r in rows]
    assert deltas == sorted(deltas, reverse=True)
    store_b.close()


def test_compare_lists_unmatched_cells(fake_run, run_factory, tmp_path):
    _, store_a = fake_run
    store_b = run_factory(tmp_path / "b")
    store_b.mark_failed(store_b.cells()[0].key, "crashed")  # cnn_a/none is no longer done in B
    rows, unmatched = tables.compare_rows(summarize_run(store_a), summarize_run(store_b))
    assert len(rows) == 6 and unmatched == ["only in A: cnn_a/none seed 0"]
    text = _render(tables.compare_table(rows, "A", "B"))
    assert "Δ shifted" in text and "cnn_b" in text
    assert tables.compare_markdown(rows, unmatched).rstrip().endswith("- only in A: cnn_a/none seed 0")
    store_b.close()


def test_recipe_labels_show_core_fields_and_what_varies(fake_run):
    _, store = fake_run
    labels = tables.recipe_labels(summarize_run(store))
    assert labels["cnn_b-none-0-0004"] == "adam lr=0.001 3ep label_smoothing=0.1"
    assert labels["cnn_a-none-0-0000"] == "adam lr=0.001 3ep label_smoothing=0.0"  # batch_size is the same: hidden
    assert tables.fmt_recipe({}, (), {"kind": "ensemble", "members": ["a", "b", "c"]}) == "ensemble of 3"


def test_json_turns_nan_into_null():
    assert json.loads(tables.dumps_json({"a": [float("nan"), 1.0], "b": {"c": float("inf")}})) == {
        "a": [None, 1.0], "b": {"c": None}}



def test_captions_name_the_severities_run_and_markdown_escapes_the_run_name(tmp_path):
    from tests.report.conftest import make_run

    store = make_run(tmp_path / "r", run_config={"shifts": {"severities": [1, 3, 5]}})
    summary = summarize_run(store)
    assert tables.severity_phrase(summary) == "severities 1, 3, 5"
    md = tables.to_markdown(summary)
    assert "severities 1, 3, 5" in md and "severity 1-5" not in md
    assert tables.md_text("<b>x</b>|y_*") == "&lt;b&gt;x&lt;/b&gt;\\|y\\_\\*"
    store.close()
    contiguous = make_run(tmp_path / "c", run_config={"shifts": {"severities": [2, 3, 4]}})
    assert tables.severity_phrase(summarize_run(contiguous)) == "severity 2-4"
    contiguous.close()


def test_terminal_tables_show_model_and_adapter_apart(adapted_run):
    _, store = adapted_run
    summary = summarize_run(store)
    cols = _columns(tables.summary_table(summary, width=300))
    assert cols["model"] == ["cnn_a", "cnn_a"] and cols["adapter"] == ["bn_adapt", "none"]  # best mean shifted first
    assert cols["target other lab (n=10)"] == ["60.0", "30.0"]  # one size per target: said once, in the header
    grid = _columns(tables.grid_table(summary))
    assert grid["model"] == ["cnn_a", "cnn_a"] and grid["adapter"] == ["none", "bn_adapt"]
    assert "+ bn_adapt" in _render(tables.cell_table(summary, summary.done[0]))


def test_grid_has_no_adapter_column_in_a_run_without_adapters(fake_run):
    _, store = fake_run
    assert "adapter" not in _columns(tables.grid_table(summarize_run(store)))
