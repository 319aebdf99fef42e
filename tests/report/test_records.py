"""JSON and CSV records: model and adapter apart; targets with per-class accuracy, balanced accuracy and counts."""

from __future__ import annotations

import csv
import io
import json

import pytest

from robustbench_cells.bench.metrics import summarize_run
from robustbench_cells.report import records


def test_json_names_model_and_adapter_and_describes_each_target(adapted_run):
    _, store = adapted_run
    obj = json.loads(records.dumps_json(records.to_json(summarize_run(store))))
    cells = {c["adapter"]: c for c in obj["cells"]}
    assert cells["bn_adapt"]["model"] == "cnn_a" and cells["bn_adapt"]["label"] == "cnn_a+bn_adapt"
    assert cells["none"]["model"] == "cnn_a" and cells["none"]["augmentation"] == "simple"
    target = obj["targets"]["other lab"]
    assert target["class_counts"] == {"basophil": 5, "eosinophil": 3, "immature_granulocyte": 2}
    assert target["images"] == 10
    adapted = next(c for c in target["cells"] if c["adapter"] == "bn_adapt")
    assert adapted["accuracy"] == pytest.approx(0.6) and adapted["balanced_accuracy"] == pytest.approx(0.55)
    # per class by name, only the classes the target holds (the others are NaN in the stored row)
    assert adapted["per_class"] == pytest.approx({"basophil": 0.7, "eosinophil": 0.5, "immature_granulocyte": 0.6})


def test_csv_target_rows_carry_per_class_accuracy_and_counts(adapted_run):
    _, store = adapted_run
    rows = list(csv.DictReader(io.StringIO(records.to_csv(summarize_run(store)))))
    assert {r["adapter"] for r in rows} == {"none", "bn_adapt"} and {r["model"] for r in rows} == {"cnn_a"}
    target = [r for r in rows if r["split"] == "target"]
    assert len(target) == 2 and {r["shift"] for r in target} == {"other lab"} and {r["family"] for r in target} == {""}
    plain = next(r for r in target if r["adapter"] == "none")
    assert float(plain["balanced_accuracy"]) == pytest.approx(0.25)
    assert json.loads(plain["per_class"]) == pytest.approx({"basophil": 0.4, "eosinophil": 0.2,
                                                            "immature_granulocyte": 0.3})
    assert json.loads(plain["class_counts"]) == {"basophil": 5, "eosinophil": 3, "immature_granulocyte": 2}
    clean = next(r for r in rows if r["split"] == "test" and r["shift"] == "clean")
    assert len(json.loads(clean["per_class"])) == 8 and clean["class_counts"] == ""


def test_markdown_has_model_and_adapter_columns(adapted_run):
    _, store = adapted_run
    lines = records.to_markdown(summarize_run(store)).splitlines()
    header = next(ln for ln in lines if ln.startswith("| model"))
    assert header.startswith("| model | params | augmentation | adapter | seed |")
    assert header.rstrip().endswith("| target other lab |")
    assert any(ln.startswith("| cnn_a | 1k | simple | bn_adapt | 0 |") and "60.0 (n=10)" in ln for ln in lines)
