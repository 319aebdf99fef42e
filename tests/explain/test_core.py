"""End to end on a hand-built run folder (see toyrun.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from robustbench_cells.errors import CellbenchError
from robustbench_cells.explain import core
from robustbench_cells.explain.core import ExplainOptions, explain

_spec = importlib.util.spec_from_file_location("explain_toyrun", Path(__file__).with_name("toyrun.py"))
toyrun = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toyrun)
TARGET = toyrun.TARGET


@pytest.fixture
def run_dir(tmp_path, pbc_sample, monkeypatch):
    return toyrun.build_run(tmp_path, pbc_sample, monkeypatch)


OPTS = dict(reference_images=48)


def test_unlabeled_folder_target(run_dir):
    result = explain(run_dir, f"folder:{run_dir.parent / 'target'}", ExplainOptions(**OPTS))
    json.dumps(result)  # the whole result must be JSON-ready
    assert result["n_target"] == len(TARGET["images"])
    assert result["fingerprint"]["nearest"][0]["shift"] == "toy_blur"
    assert result["fingerprint"]["families"][0]["family"] == "blur"
    assert result["fingerprint"]["statistics"][0]["statistic"] == "sharpness"
    assert len(result["cells"]) == 3
    for cell in result["cells"]:
        assert set(cell["estimates"]) >= {"atc", "atc_ne", "doc", "shift_matched", "blend"}
        assert "true_accuracy" not in cell
    assert result["recommendation"]["choice"] in {c["key"] for c in result["cells"]}
    assert (run_dir / core.CACHE_FILENAME).is_file()


def test_labels_give_true_accuracy_and_errors(run_dir):
    result = explain(run_dir, "labelled-target", ExplainOptions(labels=True, **OPTS))
    for cell in result["cells"]:
        assert 0 <= cell["true_accuracy"] <= 1
        # The target is exactly a benchmarked shift of images like the run's: shift matching is close.
        assert abs(cell["errors"]["shift_matched"]) < 0.2
    assert result["estimator_errors"]["shift_matched"]["mae"] is not None


def test_labels_required_for_flat_folder(run_dir):
    with pytest.raises(CellbenchError, match="--labels"):
        explain(run_dir, f"folder:{run_dir.parent / 'target'}", ExplainOptions(labels=True, **OPTS))


def test_not_a_run_folder(tmp_path):
    with pytest.raises(CellbenchError, match="not a cellbench run folder"):
        explain(tmp_path, "whatever")


def test_coverage_intervals_and_default_estimator(run_dir):
    result = explain(run_dir, "labelled-target", ExplainOptions(labels=True, **OPTS))
    assert next(iter(result)) == "coverage"  # coverage comes first in the JSON
    cov = result["coverage"]
    # The target is a benchmarked shift (blur@2) of images like the run's: inside coverage.
    assert cov["status"] == "inside" and cov["scale"] >= 1
    assert result["calibration"]["families"] == ["blur", "noise"]
    default = result["default_estimator"]
    assert default in result["estimators"]
    for cell in result["cells"]:
        low, high = cell["intervals"][default]
        assert low <= cell["estimates"][default] <= high
        assert {"atc_ts", "doc_ts", "aol"} <= set(cell["estimates"])
    rec = result["recommendation"]
    assert rec["estimator"] == default and rec["supported"]
    best_low = max(c["intervals"][default][0] for c in result["cells"])
    assert rec["lower_bound"] == best_low


def test_far_target_is_outside_coverage(run_dir):
    import numpy as np

    far = 255 - TARGET["images"]  # inverted colours: nothing benchmarked looks like that
    TARGET["images"] = np.ascontiguousarray(far[:, :, ::-1])
    result = explain(run_dir, "labelled-target", ExplainOptions(labels=True, **OPTS))
    cov = result["coverage"]
    assert cov["status"] == "outside" and "guesses" in cov["message"]
    assert cov["scale"] > 1 and cov["uncovered_share"] > 0.5
    rec = result["recommendation"]
    assert not rec["supported"] and rec["reason"].startswith("no choice is supported")
    assert rec["confidence"] == "none"


def test_no_stored_predictions_no_calibration(tmp_path, pbc_sample, monkeypatch):
    run = toyrun.build_run(tmp_path, pbc_sample, monkeypatch, with_probs=False)
    result = explain(run, "labelled-target", ExplainOptions(labels=True, **OPTS))
    assert result["calibration"] is None and result["default_estimator"] is None
    assert all(v is None for v in result["cells"][0]["intervals"].values())
    assert "no choice is supported" in result["recommendation"]["reason"]


def test_html_section_opens_with_coverage(run_dir):
    from robustbench_cells.explain.report_section import result_fragment

    result = explain(run_dir, "labelled-target", ExplainOptions(labels=True, **OPTS))
    html = result_fragment(result)
    assert html.startswith("<p class=\"meta\"><b>Coverage (inside):</b>")
    assert "default estimator:" in html and "[" in html  # estimates carry their interval


def test_meta_regression_competes_as_an_estimator(run_dir):
    result = explain(run_dir, "labelled-target", ExplainOptions(labels=True, **OPTS))
    assert "metareg" in result["estimators"]
    calib = result["calibration"]
    assert calib["estimators"]["metareg"]["families"] == ["blur", "noise"]  # validated leave-one-family-out
    assert set(calib["metareg"]["weights"]) >= {"atc_ts", "agreement", "distance_clean"}
    for cell in result["cells"]:
        assert 0 <= cell["estimates"]["metareg"] <= 1
        low, high = cell["intervals"]["metareg"]
        assert low <= cell["estimates"]["metareg"] <= high


def test_adapted_cells_are_adapted_to_the_target(tmp_path, pbc_sample, monkeypatch):
    import numpy as np

    run = toyrun.build_run(tmp_path, pbc_sample, monkeypatch, adapters=True)
    noisy = toyrun.toy_shift(TARGET["images"], "toy_noise", 3, 5)
    TARGET["images"] = noisy
    result = explain(run, "labelled-target", ExplainOptions(labels=True, **OPTS))
    cells = {c["key"]: c for c in result["cells"]}
    adapted, base = cells["kadapt"], cells["km2.0"]
    assert adapted["adapter"] == toyrun.ADAPTER and adapted["base"] == "km2.0" and base["adapter"] == "none"
    # its target predictions went through the adapter chain on the target images themselves
    assert adapted["true_accuracy"] > base["true_accuracy"]  # denoising helps on a noisy target
    # its validation predictions are its own stored ones (RUN/cells/KEY/probs.npz), not the base cell's
    from robustbench_cells.data.dataset import CELL_CLASSES, Dataset
    from robustbench_cells.data.splits import split_dataset

    val = split_dataset(Dataset(pbc_sample, np.repeat(np.arange(8), 32), CELL_CLASSES),
                        toyrun.SPLIT["seed"], tuple(toyrun.SPLIT["fractions"]))["val"]
    stored = np.load(run / "cells" / "kadapt" / "probs.npz")["val|clean|0"]
    assert adapted["val_accuracy"] == pytest.approx(float(np.mean(stored.argmax(1) == val.labels)))
    effects = result["adapters"]
    assert [e["key"] for e in effects] == ["kadapt"]
    e = effects[0]
    assert e["adapter"] == toyrun.ADAPTER and e["base_cell"] == "centroid/m2.0/0"
    default = result["default_estimator"]
    assert e["gain"] == adapted["estimates"][default] - base["estimates"][default]
    assert e["true_gain"] == adapted["true_accuracy"] - base["true_accuracy"]
    rec = result["recommendation"]
    assert rec["adapter"] == cells[rec["choice"]]["adapter"]
    # augmentation advice counts trained cells only (the adapted copy of m2.0 is not a second m2.0)
    assert all(s["augmentation"] != f"centroid+{toyrun.ADAPTER}" for s in rec["augmentations"])


def test_labelled_run_targets_join_the_calibration(tmp_path, pbc_sample, monkeypatch):
    run = toyrun.build_run(tmp_path, pbc_sample, monkeypatch, run_target=True)
    result = explain(run, "labelled-target", ExplainOptions(labels=True, **OPTS))
    calib = result["calibration"]
    assert calib["families"] == ["blur", "noise", "target:lab2"] and calib["targets"] == ["lab2"]
    assert "target:lab2" in calib["estimators"]["atc"]["families"]
    # explaining the run's own labelled target: its truth must not calibrate its own estimate
    own = explain(run, "labelled-target-2", ExplainOptions(labels=True, **OPTS))
    calib = own["calibration"]
    assert calib["excluded"] == ["target:lab2"] and calib["families"] == ["blur", "noise"]
