"""What tables show of a cell: model and adapter apart, read from the stored config (no schema change)."""

from __future__ import annotations

import pytest

from robustbench_cells.bench.metrics import summarize_run
from robustbench_cells.bench.store import Cell
from robustbench_cells.report import rows


@pytest.mark.parametrize("model, augmentation, config, expected", [
    # a plain training cell and an ensemble: no adapter
    ("simple_cnn", "simple", {"kind": "train"}, ("simple_cnn", "simple", "none")),
    ("ens", "mixed", {"kind": "ensemble", "members": ["a", "b"]}, ("ens", "mixed", "none")),
    # an adapted cell as bench/matrix.expand_cells stores it: model label model+chain
    ("simple_cnn(norm=group)+stain_norm+bn_adapt", "simple+stain",
     {"kind": "adapt", "base": "k", "adapter": "stain_norm+bn_adapt", "seed": 0},
     ("simple_cnn(norm=group)", "simple+stain", "stain_norm+bn_adapt")),
    # cellbench evaluate: the adapter is in the augmentation label instead
    ("mine.keras", "external+adapt:tta", {"kind": "evaluate", "adapter": "tta"}, ("mine.keras", "external", "tta")),
    ("mine.keras", "external", {"kind": "evaluate", "adapter": "none"}, ("mine.keras", "external", "none")),
    # a cell with no config at all (a store filled by hand, an old run)
    ("cnn", "none", {}, ("cnn", "none", "none")),
])
def test_model_augmentation_and_adapter_of_a_stored_cell(model, augmentation, config, expected):
    cell = Cell("k", model, augmentation, 0, config=config)
    assert (rows.cell_model(cell), rows.cell_augmentation(cell), rows.cell_adapter(cell)) == expected


def test_cell_name_adds_the_adapter_only_when_there_is_one():
    plain = Cell("k", "cnn", "simple", 1)
    adapted = Cell("k", "cnn+tta", "simple", 1, config={"kind": "adapt", "adapter": "tta"})
    assert rows.cell_name(plain) == "cnn/simple seed 1"
    assert rows.cell_name(adapted) == "cnn/simple seed 1 + tta"


def test_summary_rows_split_model_and_adapter_and_add_target_columns(adapted_run):
    _, store = adapted_run
    summary = summarize_run(store)
    assert rows.summary_columns(summary)[-1] == "target other lab"
    by_adapter = {r["adapter"]: r for r in (rows.summary_row(c) for c in summary.done)}
    assert set(by_adapter) == {"none", "bn_adapt"}
    assert {r["model"] for r in by_adapter.values()} == {"cnn_a"}
    assert by_adapter["bn_adapt"]["target other lab"] == "60.0 (n=10)"
    assert by_adapter["none"]["target other lab"] == "30.0 (n=10)"
    assert rows.target_class_counts(summary, "other lab") == {"basophil": 5, "eosinophil": 3,
                                                             "immature_granulocyte": 2}
    assert rows.target_class_counts(summary, "no such target") == {}
