"""``cellbench explain`` through the CLI, on the hand-built run of tests/explain/toyrun.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "explain_toyrun", Path(__file__).parents[1] / "explain" / "toyrun.py")
toyrun = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toyrun)


@pytest.fixture
def run_dir(tmp_path, pbc_sample, monkeypatch):
    return toyrun.build_run(tmp_path, pbc_sample, monkeypatch)


def test_tables_and_out(cli, run_dir, tmp_path):
    code, out, err = cli("explain", run_dir, "--target", f"folder:{tmp_path / 'target'}", "--out", tmp_path / "ex",
                         "--reference-images", 48)
    assert code == 0, err
    for text in ("target vs validation", "sharpness", "nearest shifted sets", "toy_blur", "submit:", "atc_ne"):
        assert text in out
    saved = json.loads((tmp_path / "ex" / "explain.json").read_text())
    assert saved["fingerprint"]["families"][0]["family"] == "blur"


def test_json_with_labels(cli, run_dir):
    code, out, err = cli("explain", run_dir, "--target", "labelled-target", "--labels", "--json",
                         "--reference-images", 48)
    assert code == 0, err
    result = json.loads(out)
    cell = result["cells"][0]
    assert {"key", "model", "augmentation", "estimates", "true_accuracy", "errors"} <= set(cell)
    assert result["fingerprint"]["nearest"][0]["distance"] >= 0
    assert set(result["estimator_errors"]) >= {"atc", "shift_matched"}


def test_user_errors_exit_2(cli, run_dir, tmp_path):
    code, out, err = cli("explain", tmp_path / "nowhere", "--target", "labelled-target")
    assert code == 2 and "not a cellbench run folder" in err and "Traceback" not in err
    code, out, err = cli("explain", run_dir, "--target", f"folder:{tmp_path / 'target'}", "--labels")
    assert code == 2 and "--labels" in err


def test_saved_result_feeds_the_html_report_section(cli, run_dir, tmp_path):
    from robustbench_cells.explain.report_section import explain_section, result_path
    from robustbench_cells.report import html

    code, out, err = cli("explain", run_dir, "--target", "labelled-target", "--labels", "--reference-images", 48)
    assert code == 0, err
    assert result_path(run_dir, "labelled-target").is_file()
    from robustbench_cells import plugins

    assert any(spec.build is explain_section for spec in plugins.report_sections())  # a built-in section

    class Ctx:
        pass

    ctx = Ctx()
    ctx.run_dir = run_dir
    sections = explain_section(ctx)
    assert len(sections) == 1
    title, fragment = sections[0]
    assert title == "Explain: labelled-target"
    for text in ("Most likely shift families", "toy_blur", "Submit:", "<table>"):
        assert text in fragment
    ctx.run_dir = tmp_path / "elsewhere"
    assert explain_section(ctx) is None


def test_coverage_is_printed_first(cli, run_dir, tmp_path):
    code, out, err = cli("explain", run_dir, "--target", f"folder:{tmp_path / 'target'}", "--reference-images", 48)
    assert code == 0, err
    assert out.lstrip().startswith("coverage:")
    assert "default estimator:" in out and "expected" in out


def test_adapted_cells_and_their_verdict(cli, tmp_path, pbc_sample, monkeypatch):
    from robustbench_cells.explain.report_section import result_fragment

    run = toyrun.build_run(tmp_path, pbc_sample, monkeypatch, adapters=True)
    toyrun.TARGET["images"] = toyrun.toy_shift(toyrun.TARGET["images"], "toy_noise", 3, 5)
    code, out, err = cli("explain", run, "--target", "labelled-target", "--labels", "--reference-images", 48,
                         "--out", tmp_path / "ex")
    assert code == 0, err
    assert "test-time adapters on this target" in out and "centroid/m2.0/0" in out
    assert "metareg" in out
    result = json.loads((tmp_path / "ex" / "explain.json").read_text())
    verdict = {True: "helps", False: "hurts", None: "unclear"}[result["adapters"][0]["helps"]]
    assert verdict in out
    html = result_fragment(result)
    assert "Test-time adapters on this target" in html and toyrun.ADAPTER in html
