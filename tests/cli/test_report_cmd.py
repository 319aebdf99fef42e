"""``cellbench report`` and ``cellbench compare`` end to end on stores filled by hand."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from robustbench_cells.bench.store import Cell, ResultStore, Score
from robustbench_cells.cli import console as console_module

# model, augmentation, clean accuracy, accuracy lost per severity step
CELLS = [("cnn", "none", 0.95, 0.09), ("cnn", "simple", 0.94, 0.04), ("big", "none", 0.97, 0.07)]


def make_run(path, shift_boost: float = 0.0) -> None:
    store = ResultStore(path, create=True)
    run = store.create_run(path.name, {}, {}, "synthetic:64", "fp", [f"class{i}" for i in range(8)])
    cells = [Cell(f"{m}{a}0123456789", m, a, 0, {"epochs": 1}, position=i) for i, (m, a, _, _) in enumerate(CELLS)]
    cells.append(Cell("zzfailed00000000", "big", "simple", 0, position=9))
    store.add_cells(run.id, cells)
    for cell, (_, _, clean, drop) in zip(cells, CELLS):
        rows = [Score(cell.key, "val", "clean", 0, clean, clean, [clean] * 8, 0.9, 0.02, 64),
                Score(cell.key, "test", "clean", 0, clean - 0.01, clean - 0.02, [clean] * 8, 0.9, 0.03, 64)]
        for shift in ("cli_noise", "cli_blur"):
            for sev in range(1, 6):
                acc = clean - drop * sev * (1.5 if shift == "cli_noise" else 1.0) + shift_boost
                rows.append(Score(cell.key, "test", shift, sev, acc, acc - 0.03, [acc] * 8, 0.7, 0.1, 64))
        store.finish_cell(cell.key, rows, params=1234, model_path=None, train_seconds=1, eval_seconds=1, epochs=1)
    store.mark_failed("zzfailed00000000", "ValueError: bad input shape")
    store.close()


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(console_module.console, "width", 220)
    make_run(tmp_path / "run-a")
    return tmp_path / "run-a"


def test_report_table_is_sorted_and_shows_failures(cli, run_dir):
    code, out, err = cli("report", run_dir)
    assert code == 0, err
    rows = [re.match(r"\s*(cnn|big)\s+\S+\s+(\S+)\s", ln) for ln in out.splitlines()]  # model params aug
    rows = [(m.group(1) + "/" + m.group(2), m.string) for m in rows if m]
    # mean shifted: cnn/simple (drop 0.04) > big/none (0.07) > cnn/none (0.09), then the failed cell
    assert [label for label, _ in rows] == ["cnn/simple", "big/none", "cnn/none", "big/simple"]
    assert "failed" in rows[3][1]
    assert "ValueError: bad input shape" in out
    assert "unknown" in out  # the shifts are not registered here: family 'unknown', no crash


def test_report_cell_detail(cli, run_dir):
    code, out, _ = cli("report", run_dir, "--cell", "cnnsimple")
    assert code == 0
    assert "cli_noise" in out and "cli_blur" in out and "s5" in out
    code, _, err = cli("report", run_dir, "--cell", "nope")
    assert code == 2 and err.startswith("error: --cell 'nope'") and err.count("\n") == 1


def test_report_json_csv_markdown(cli, run_dir, tmp_path):
    code, out, _ = cli("report", run_dir, "--format", "json")
    obj = json.loads(out)
    assert code == 0 and [c["augmentation"] for c in obj["cells"]][:3] == ["simple", "none", "none"]
    assert obj["cells"][-1]["status"] == "failed" and obj["cells"][-1]["mean_shifted"] is None
    code, out, _ = cli("report", run_dir, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 3 * 12 + 1
    code, out, _ = cli("report", run_dir, "-f", "markdown")
    assert code == 0 and out.count("\n| cnn |") == 2 and "| big | 1k | none |" in out
    target = tmp_path / "sub" / "table.md"
    code, out, err = cli("report", run_dir, "-f", "markdown", "--out", target)
    assert code == 0 and out == "" and target.read_text().startswith("**run-a**")


def test_report_html_default_and_custom_path(cli, run_dir, tmp_path):
    code, out, err = cli("report", run_dir, "--format", "html", "--no-samples")
    assert code == 0, err
    assert (run_dir / "report.html").is_file() and "report.html" in out
    code, _, _ = cli("report", run_dir, "-f", "html", "--out", tmp_path / "x.html", "--no-samples")
    assert code == 0 and "<img" in (tmp_path / "x.html").read_text()


@pytest.mark.parametrize("args, message", [
    (("report", "{missing}"), "no such run folder"),
    (("report", "{empty}"), "not a cellbench run folder"),
    (("report", "{run}", "--format", "xml"), "--format 'xml' is not one of"),
    (("report", "{run}", "--reference", "resnet/none"), "--reference 'resnet/none'"),
    (("compare", "{run}", "{missing}"), "no such run folder"),
])
def test_bad_input_is_one_line_exit_2(cli, run_dir, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    paths = {"missing": tmp_path / "missing", "empty": tmp_path / "empty", "run": run_dir}
    code, out, err = cli(*[a.format(**paths) for a in args])
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_compare_runs(cli, run_dir, tmp_path):
    make_run(tmp_path / "run-b", shift_boost=0.02)
    code, out, err = cli("compare", run_dir, tmp_path / "run-b")
    assert code == 0, err
    assert out.count("+2.0") == 3 and out.count("+0.0") == 3  # shifted +2 points, clean unchanged
    code, out, _ = cli("compare", run_dir, tmp_path / "run-b", "--format", "json")
    obj = json.loads(out)
    assert len(obj["cells"]) == 3 and all(abs(c["mean_shifted_delta"] - 0.02) < 1e-9 for c in obj["cells"])


def test_table_to_file_and_a_run_with_nothing_finished(cli, run_dir, tmp_path):
    code, out, _ = cli("report", run_dir, "--out", tmp_path / "t.txt")
    text = (tmp_path / "t.txt").read_text()
    assert code == 0 and out == "" and "cnn" in text and "\x1b[" not in text  # plain text, no colour codes
    store = ResultStore(tmp_path / "fresh", create=True)
    run = store.create_run("fresh", {}, {}, "synthetic:64", "fp", ["a", "b"])
    store.add_cells(run.id, [Cell("k1", "cnn", "none", 0)])
    store.close()
    code, out, err = cli("report", tmp_path / "fresh")
    assert code == 0 and "pending" in out, err
    code, _, err = cli("report", tmp_path / "fresh", "-f", "html", "--no-samples")
    assert code == 0 and "no finished cell" in (tmp_path / "fresh" / "report.html").read_text(), err


def test_metric_option(cli, run_dir):
    code, out, _ = cli("report", run_dir, "--metric", "balanced_accuracy", "-f", "json")
    obj = json.loads(out)
    best = obj["cells"][0]
    assert code == 0 and obj["metric"] == "balanced_accuracy"
    assert best["clean_test"] == pytest.approx(0.94 - 0.02) and best["mean_shifted"] == pytest.approx(
        best["mean_shifted_balanced"])
    code, out, _ = cli("report", run_dir, "--metric", "balanced_accuracy")
    assert code == 0 and "balanced accuracy" in out
    code, _, err = cli("report", run_dir, "--metric", "f1")
    assert code == 2 and "--metric 'f1'" in err


@pytest.mark.parametrize("name", ["results.sqlite", "results.sqlite-wal", "run.log"])
def test_report_never_overwrites_the_runs_own_files(cli, run_dir, name):
    target = run_dir / name
    before = target.read_bytes() if target.exists() else None
    code, _, err = cli("report", run_dir, "-f", "csv", "-o", target)
    assert code == 2 and "is a file of the run" in err and err.count("\n") == 1
    assert (target.read_bytes() if target.exists() else None) == before


def test_report_cell_of_a_failed_cell_shows_its_error(cli, run_dir):
    code, out, err = cli("report", run_dir, "--cell", "zzfailed")
    assert code == 2 and out == ""
    assert err.strip() == "error: --cell zzfailed: big/simple failed: ValueError: bad input shape"


def test_compare_and_report_show_adapters_and_targets(cli, tmp_path, monkeypatch):
    from tests.report.conftest import make_adapted_run

    monkeypatch.setattr(console_module.console, "width", 260)
    make_adapted_run(tmp_path / "a").close()
    make_adapted_run(tmp_path / "b", target_boost=0.05).close()
    code, out, err = cli("compare", tmp_path / "a", tmp_path / "b")
    assert code == 0, err
    assert "adapter" in out and "Δ other lab" in out and out.count("+5.0") == 2  # both cells gain 5 on the target
    code, out, err = cli("compare", tmp_path / "a", tmp_path / "b", "-f", "json")
    obj = json.loads(out)
    assert code == 0 and obj["targets"] == ["other lab"]
    assert {(c["adapter"], round(c["targets"]["other lab"]["delta"], 6)) for c in obj["cells"]} == {
        ("none", 0.05), ("bn_adapt", 0.05)}
    code, out, err = cli("report", tmp_path / "a")
    assert code == 0, err
    assert re.search(r"cnn_a\s+1k\s+simple\s+bn_adapt\s+0\s", out) and re.search(r"cnn_a\s+1k\s+simple\s+none\s+0\s", out)
