"""bench/cellrun: the sets a cell is scored on, and the prepared data round trip workers rely on."""

from __future__ import annotations

import numpy as np

from robustbench_cells.bench.cellrun import PreparedData, evaluation_sets, probs_key
from robustbench_cells.data.dataset import Dataset

NAMES = ("a", "b")


def _ds(n: int, value: int) -> Dataset:
    return Dataset(np.full((n, 8, 8, 3), value, np.uint8), np.arange(n) % 2, NAMES)


def _data() -> PreparedData:
    return PreparedData(_ds(6, 1), _ds(2, 2), _ds(4, 3), _ds(4, 3), "fp",
                        targets={"lab B": _ds(3, 4), "lab C": _ds(5, 5)})


def test_evaluation_sets_are_val_test_shifts_then_targets_in_order():
    sets = list(evaluation_sets(_data(), [], shift_seed=0, cache_root=None))
    assert [key for key, _, _ in sets] == [probs_key("val"), probs_key("test"), "target|lab B|0", "target|lab C|0"]
    assert [label for _, label, _ in sets] == ["clean val", "clean test", "target lab B", "target lab C"]
    assert [int(images[0, 0, 0, 0]) for _, _, images in sets] == [2, 3, 4, 5]


def test_prepared_data_keeps_targets_and_training_stats_through_save_and_load(tmp_path):
    data = _data()
    data.train_stats = {"n": 6, "cell_size": 0.25}
    data.save(tmp_path / "prepared")
    back = PreparedData.load(tmp_path / "prepared")
    assert list(back.targets) == ["lab B", "lab C"] and len(back.targets["lab C"]) == 5
    assert back.train_stats == {"n": 6, "cell_size": 0.25}
    assert back.training_stats() is back.train_stats  # loaded, not recomputed in the worker
