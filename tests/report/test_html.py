"""The HTML report: self-contained, every image an embedded PNG, sections present, never crashing on
missing data. (benchmarks/render_report.py adds the headless-Chromium render check.)"""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from robustbench_cells import plugins
from robustbench_cells.bench.metrics import summarize_run
from robustbench_cells.errors import CellbenchError
from robustbench_cells.report import html


def embedded_pngs(text: str) -> list[np.ndarray]:
    """Every <img> src decoded; fails the test if one is not a PNG data URI."""
    srcs = re.findall(r'<img\b[^>]*\bsrc="([^"]*)"', text)
    out = []
    for src in srcs:
        assert src.startswith("data:image/png;base64,"), src[:60]
        out.append(np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True)))))
    return out


def _registry_shift(images, name, severity, seed):
    """Stand-in for bench.shiftsets.shift_images (same signature) built on the registered spec."""
    return plugins.shifts().get(name).apply(images, severity, np.random.default_rng([seed, severity]))


@pytest.fixture
def with_shifts(monkeypatch):
    monkeypatch.setattr(html, "_shift_function", lambda: _registry_shift)


def test_report_is_self_contained_and_complete(fake_run, with_shifts):
    run_dir, store = fake_run
    text = html.build_report(summarize_run(store), run_dir=run_dir)
    images = embedded_pngs(text)
    # heatmap, curves, per-class + one sample strip per registered shift (3)
    assert len(images) == 6
    assert all(im.std() > 5 for im in images)
    assert not re.search(r'(src|href)="(https?:|//|file:)', text) and "<script" not in text and "<link" not in text
    for heading in ("Summary", "Model x augmentation", "Accuracy vs severity", "Cell detail", "Per-class",
                    "Sample images"):
        assert heading in text
    assert "ResourceExhaustedError: out of memory" in text
    # the retired shift is scored (family unknown) but cannot be drawn: named in a note
    assert "not shown" in text and "retired_shift" in text.split("Sample images")[1]
    strip = images[3]
    # 2 images x (clean + 5 severities), 32 px each, 4 px gaps, 16 px between the two images
    assert strip.shape == (32, 2 * 6 * 32 + 10 * 4 + 16, 3)


def test_samples_come_from_the_runs_test_split(tmp_path, run_factory, with_shifts):
    from robustbench_cells.data.specs import load_dataset
    from robustbench_cells.data.splits import split_dataset

    split = {"seed": 1, "fractions": [0.34, 0.33, 0.33]}
    store = run_factory(tmp_path / "r", data_spec="rt_data:nosplit", config={"split": split})
    images = embedded_pngs(html.build_report(summarize_run(store)))
    data = load_dataset("rt_data:nosplit")
    test = split_dataset(data, 1, (0.34, 0.33, 0.33))["test"]
    assert not np.array_equal(test.images[0], data.images[0])  # so the check below means something
    np.testing.assert_array_equal(images[3][:, :32], test.images[0])  # first strip starts with the clean image
    store.close()


def test_samples_use_the_runs_image_size_and_flag_changed_data(tmp_path, run_factory, with_shifts):
    from robustbench_cells.data.resize import resize_images
    from robustbench_cells.data.specs import load_dataset

    data = load_dataset("rt_data")
    same = type(data)(resize_images(data.images, 16), data.labels, data.class_names, split=data.split)
    store = run_factory(tmp_path / "r", run_config={"image_size": 16, "shifts": {"seed": 5}},
                        fingerprint=same.fingerprint())
    text = html.build_report(summarize_run(store))
    assert embedded_pngs(text)[3].shape[0] == 16 and "at 16x16 px" in text and "seed 5" in text
    assert "has changed since the run" not in text
    store.close()
    store = run_factory(tmp_path / "r2", run_config={"image_size": 16}, fingerprint="0123456789abcdef")
    assert "has changed since the run" in html.build_report(summarize_run(store))
    store.close()


def test_samples_come_from_the_run_folder_without_the_data_set(fake_run, with_shifts, monkeypatch):
    from robustbench_cells.bench.samples import save_samples
    from robustbench_cells.data import specs
    from robustbench_cells.data.dataset import Dataset

    run_dir, store = fake_run
    stored = np.zeros((4, 24, 24, 3), np.uint8)
    stored[:, 4:20, 4:20] = (np.arange(4) * 60 + 20)[:, None, None, None]  # a square per image
    save_samples(run_dir, Dataset(stored, np.array([0, 1, 2, 3]), [f"c{i}" for i in range(8)]))

    def unavailable(spec):
        raise CellbenchError(f"{spec}: gone")
    monkeypatch.setattr(specs, "load_dataset", unavailable)  # the data set moved away since the run
    text = html.build_report(summarize_run(store), run_dir=run_dir)
    assert "not available here" not in text and "from the shift subset of" in text and "at 24x24 px" in text
    strip = embedded_pngs(text)[3]
    np.testing.assert_array_equal(strip[:, :24], stored[0])  # clean image of the first strip: class 0
    np.testing.assert_array_equal(strip[:, 6 * 24 + 5 * 4 + 16:][:, :24], stored[1])  # second image: class 1
    # without the file (a run from before samples.npz) the report says why it has no samples
    (run_dir / "samples.npz").unlink()
    fallback = html.build_report(summarize_run(store), run_dir=run_dir)
    assert "is not available here (rt_data: gone); sample images skipped" in fallback


def test_detail_cell_is_the_best_by_default_or_the_one_asked(fake_run):
    _, store = fake_run
    summary = summarize_run(store)
    best = summary.done[0]
    assert f"key {best.key[:10]}" in html.build_report(summary, samples=False)
    other = summary.get("cnn_a-none")
    assert f"key {other.key[:10]}" in html.build_report(summary, cell=other, samples=False)


def test_missing_data_or_generator_is_a_note_not_a_crash(tmp_path, test_plugins, run_factory, with_shifts,
                                                         monkeypatch):
    store = run_factory(tmp_path / "r", data_spec=f"npz:{tmp_path / 'gone.npz'}")
    text = html.build_report(summarize_run(store), samples=True)
    assert "is not available here" in text and "sample images skipped" in text
    assert len(embedded_pngs(text)) == 3
    store.close()

    def no_module():
        raise ImportError("No module named 'robustbench_cells.bench.shiftsets'")

    monkeypatch.setattr(html, "_shift_function", no_module)
    store = run_factory(tmp_path / "r2")
    assert "shifted test sets are not available" in html.build_report(summarize_run(store))
    store.close()


def test_extra_sections_are_inserted_with_escaped_titles(fake_run):
    _, store = fake_run
    summary = summarize_run(store)
    text = html.build_report(summary, samples=False, extra_sections=[("Notes <b>", "<p>by hand</p>")])
    assert "<h2>Notes &lt;b&gt;</h2><p>by hand</p>" in text  # titles escaped, fragments inserted as given


def test_write_report_errors_are_one_line(fake_run, tmp_path):
    _, store = fake_run
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CellbenchError, match="cannot write the report"):
        html.write_report(summarize_run(store), blocker / "report.html", samples=False)


def test_targets_section_draws_each_target_beside_clean_and_shifted(adapted_run):
    run_dir, store = adapted_run
    text = html.build_report(summarize_run(store), run_dir=run_dir, samples=False)
    targets = text.split("<h2>Targets: test accuracy on external labelled sets (%)</h2>")[1].split("<h2>")[0]
    assert "<td>other lab</td><td class=\"n\">10</td><td>basophil 5, eosinophil 3, immature_granulocyte 2</td>" in targets
    assert "<h3>Target other lab: per-class accuracy</h3>" in targets
    alts = re.findall(r'<img alt="([^"]*)"', targets)
    assert alts == ["accuracy on each target", "per-class accuracy on target other lab"]
    assert all(im.std() > 10 for im in embedded_pngs(targets))
    # the summary table names model and adapter apart, and has the target column
    summary_part = text.split("<h2>Summary")[1].split("<h2>")[0]
    assert "<th>adapter</th>" in summary_part and "<td>bn_adapt</td>" in summary_part
    assert "<th>target other lab</th>" in summary_part
    assert "Cell detail: cnn_a/simple seed 0 + bn_adapt" in text  # the best cell is the adapted one


def test_a_run_without_targets_has_no_targets_section(fake_run):
    _, store = fake_run
    assert "Targets" not in html.build_report(summarize_run(store), samples=False)


def _explain_result(key: str) -> dict:
    """A saved ``cellbench explain`` result, as little as its report section reads."""
    return {"target": "lab B", "n_target": 12, "labels": False, "estimators": ["atc"],
            "fingerprint": {"families": [{"family": "stain", "nearest_shift": "rt_stain", "nearest_severity": 3,
                                          "distance": 0.5, "share": 0.6}], "statistics": []},
            "cells": [{"key": key, "model": "cnn_a", "augmentation": "simple", "seed": 0, "val_accuracy": 0.9,
                       "estimates": {"atc": 0.51}}], "recommendation": {}}


def test_a_python_caller_gets_the_explain_section_once(fake_run, monkeypatch):
    from robustbench_cells.explain.report_section import explain_section, save_result

    run_dir, store = fake_run
    summary = summarize_run(store)
    save_result(run_dir, _explain_result(summary.done[0].key))
    text = html.build_report(summary, run_dir=run_dir, samples=False)  # no CLI app built in this process
    assert text.count("<h2>Explain: lab B</h2>") == 1 and "51.0" in text.split("Explain: lab B")[1]


def test_sections_come_in_registered_order_and_a_broken_plugin_section_is_a_note(fake_run, monkeypatch):
    from robustbench_cells.hookspecs import hookimpl
    from robustbench_cells.registry import ReportSectionSpec
    from tests.report.conftest import ReportTestPlugin

    class SectionPlugin:
        @hookimpl
        def register_report_sections(self, register):
            register(ReportSectionSpec("early", lambda ctx: ("Right after the summary", "<p>early</p>"), order=15))
            register(ReportSectionSpec("late", lambda ctx: [("Last one", "<p>late</p>")]))
            register(ReportSectionSpec("broken", lambda ctx: 1 / 0))

    monkeypatch.setattr(plugins, "_host", plugins.PluginHost(
        entry_points=False, extra_plugins=[("report_test", ReportTestPlugin()), ("my_sections", SectionPlugin())]))
    _, store = fake_run
    text = html.build_report(summarize_run(store), samples=False)
    headings = re.findall(r"<h2>(.*?)</h2>", text)
    assert headings[:3] == ["Summary: clean vs shifted test accuracy (%)", "Right after the summary",
                            "Model x augmentation: mean shifted test accuracy (%)"]
    assert headings[-2:] == ["broken (plugin my_sections)", "Last one"]  # order 100, then by name
    assert "could not be built: ZeroDivisionError: division by zero" in text
