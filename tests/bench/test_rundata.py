"""bench.rundata: the one run-data path (load -> resize -> split -> shift subset) and target sets."""

import numpy as np
import pytest

from robustbench_cells.bench import rundata
from robustbench_cells.bench.rundata import load_target, prepare_run_data, run_data_from_config, stratified_subset
from robustbench_cells.data.dataset import Dataset
from robustbench_cells.errors import CellbenchError


def _dataset(n=60, size=16, classes=("a", "b", "c")):
    rng = np.random.default_rng(0)
    return Dataset(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), np.arange(n) % len(classes),
                   classes, source="toy")


def test_resized_keeps_labels_and_is_itself_at_the_same_size():
    ds = _dataset()
    assert ds.resized(16) is ds
    small = ds.resized(8)
    assert small.image_size == (8, 8) and np.array_equal(small.labels, ds.labels) and small.source == "toy"


def test_prepare_resizes_before_splitting_and_picks_a_fixed_stratified_subset():
    data = prepare_run_data(_dataset(), 8, split_seed=1, max_shift_images=6, shift_seed=2)
    assert data.dataset.image_size == (8, 8) and data.source_size == (16, 16)
    assert len(data.train) + len(data.val) + len(data.test) == 60
    assert len(data.shift_base) == 6 and data.shift_base.image_size == (8, 8)
    again = prepare_run_data(_dataset(), 8, split_seed=1, max_shift_images=6, shift_seed=2)
    assert np.array_equal(again.shift_base.images, data.shift_base.images)
    facts = data.facts()
    assert facts["shift_images"] == 6 and facts["class_names"] == ["a", "b", "c"]


def test_from_config_reproduces_the_runs_data(monkeypatch):
    monkeypatch.setattr(rundata, "_load", lambda spec: _dataset())
    config = {"data": "x", "image_size": 8, "split": {"seed": 1, "fractions": [0.7, 0.1, 0.2]},
              "shifts": {"max_images": 6, "seed": 2}}
    a = run_data_from_config(config)
    b = prepare_run_data(_dataset(), 8, 1, (0.7, 0.1, 0.2), 6, 2)
    assert np.array_equal(a.shift_base.labels, b.shift_base.labels)
    assert a.val.fingerprint() == b.val.fingerprint()


def test_stratified_subset_is_proportional():
    labels = np.repeat([0, 1], [30, 10])
    idx = stratified_subset(labels, 8, seed=0)
    assert np.bincount(labels[idx]).tolist() == [6, 2]


def test_target_classes_match_by_name_and_mapping(monkeypatch):
    monkeypatch.setattr(rundata, "_load", lambda spec: _dataset(classes=("c", "A")))
    t = load_target("x", 8, ("a", "b", "c"), {"A": "a"})
    assert t.class_names == ("a", "b", "c") and t.image_size == (8, 8)
    assert set(t.labels.tolist()) == {2, 0}  # "c" -> 2, "A" -> "a" -> 0


def test_unknown_target_class_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(rundata, "_load", lambda spec: _dataset(classes=("a", "zebra")))
    with pytest.raises(CellbenchError, match=r"lab: class\(es\) 'zebra' are not among the training classes"):
        load_target("x", 8, ("a", "b"), where="lab")


def test_matrix_targets_parse_and_bad_tables_are_named(tmp_path):
    from robustbench_cells.bench.matrix import parse_matrix

    base = {"name": "m", "data": "synthetic:60", "image_size": 32, "seeds": [0], "models": ["simple_cnn"],
            "augmentations": ["none"]}
    m = parse_matrix({**base, "targets": [{"name": "lab", "data": "synthetic:30:1", "classes": {"x": "y"}}]})
    assert m.targets[0].name == "lab" and m.config()["targets"][0]["classes"] == {"x": "y"}
    assert "targets" not in parse_matrix(base).config()  # old runs keep their config on --resume
    with pytest.raises(CellbenchError, match=r"targets\[0\]\.data: must be a data set spec"):
        parse_matrix({**base, "targets": [{"name": "lab"}]})
    with pytest.raises(CellbenchError, match=r"targets\[0\]\.colour: unknown key"):
        parse_matrix({**base, "targets": [{"name": "lab", "data": "x", "colour": 1}]})
    with pytest.raises(CellbenchError, match="two targets share a name"):
        parse_matrix({**base, "targets": [{"name": "a", "data": "x"}, {"name": "a", "data": "y"}]})


def test_load_targets_names_the_matrix_and_records_counts(monkeypatch):
    from robustbench_cells.bench.matrix import TargetEntry
    from robustbench_cells.bench.rundata import load_targets, target_facts

    monkeypatch.setattr(rundata, "_load", lambda spec: _dataset(classes=("a", "b")))
    got = load_targets([TargetEntry("lab", "x")], 8, ("a", "b", "c"), "q.toml")
    assert target_facts(got)["lab"]["class_counts"] == {"a": 30, "b": 30}
    with pytest.raises(CellbenchError, match=r"^q\.toml: targets\[0\]: class\(es\) 'b'"):
        load_targets([TargetEntry("lab", "x")], 8, ("a", "c"), "q.toml")


def test_a_mapping_for_a_class_the_target_lacks_is_an_error(monkeypatch):
    monkeypatch.setattr(rundata, "_load", lambda spec: _dataset(classes=("a", "b")))
    with pytest.raises(CellbenchError, match=r"lab: classes maps 'lymph', which the target does not have"):
        load_target("x", 8, ("a", "b"), {"lymph": "a"}, where="lab")
