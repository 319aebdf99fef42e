"""Train/val/test splits: stratified with a seed, or the data set's own split."""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_cells.data.dataset import Dataset
from robustbench_cells.data.splits import split_dataset, stratified_assignment
from robustbench_cells.errors import CellbenchError


def _dataset(labels, split=None) -> Dataset:
    labels = np.asarray(labels)
    return Dataset(images=np.zeros((len(labels), 4, 4, 3), np.uint8), labels=labels,
                   class_names=tuple(f"c{i}" for i in range(labels.max() + 1)), source="toy", split=split)


def test_stratified_assignment_keeps_class_proportions():
    labels = np.repeat([0, 1, 2], [100, 50, 20])
    split = stratified_assignment(labels, (0.7, 0.1, 0.2), seed=0)
    for cls, n in ((0, 100), (1, 50), (2, 20)):
        got = split[labels == cls]
        assert (got == "train").sum() == round(0.7 * n) and (got == "val").sum() == round(0.1 * n)
        assert (got == "test").sum() == n - round(0.7 * n) - round(0.1 * n)


def test_stratified_assignment_is_seeded():
    labels = np.repeat([0, 1], 40)
    a = stratified_assignment(labels, (0.5, 0.25, 0.25), seed=1)
    assert (a == stratified_assignment(labels, (0.5, 0.25, 0.25), seed=1)).all()
    assert (a != stratified_assignment(labels, (0.5, 0.25, 0.25), seed=2)).any()


@pytest.mark.parametrize("fractions", [(0.7, 0.2), (0.8, 0.3, 0.1), (1.2, -0.1, -0.1)])
def test_bad_fractions(fractions):
    with pytest.raises(CellbenchError, match="split fractions"):
        stratified_assignment(np.zeros(10, int), fractions, seed=0)


def test_own_split_wins():
    labels = np.array([0, 1, 0, 1, 0, 1])
    own = np.array(["test", "test", "train", "train", "val", "val"])
    parts = split_dataset(_dataset(labels, own), seed=123, fractions=(0.34, 0.33, 0.33))
    assert [len(parts[s]) for s in ("train", "val", "test")] == [2, 2, 2]
    assert parts["test"].source == "toy[test]" and (parts["test"].split == "test").all()


def test_split_without_own_split_is_stratified_and_covers_everything():
    labels = np.repeat([0, 1, 2, 3], 25)
    parts = split_dataset(_dataset(labels), seed=0)
    assert sum(len(p) for p in parts.values()) == 100
    for p in parts.values():
        assert set(np.unique(p.labels)) == {0, 1, 2, 3}


def test_empty_train_split_is_an_error():
    labels = np.array([0, 1])
    with pytest.raises(CellbenchError, match="toy: the train split is empty"):
        split_dataset(_dataset(labels, np.array(["test", "val"])))


def test_one_per_class_takes_every_class_before_a_second_image():
    from robustbench_cells.data.splits import one_per_class

    labels = np.array([2, 2, 0, 1, 0, 2, 1])
    assert one_per_class(labels, 3).tolist() == [2, 3, 0]
    assert one_per_class(labels, 5).tolist() == [2, 3, 0, 4, 6]
    assert one_per_class(labels, 99).tolist() == [2, 3, 0, 4, 6, 1, 5]
    assert one_per_class(None, 2).tolist() == [0, 1]


def test_test_part_is_the_own_test_split_or_everything():
    from robustbench_cells.data.splits import test_part

    own = _dataset([0, 1, 0, 1], split=np.array(["train", "test", "val", "test"]))
    assert test_part(own).labels.tolist() == [1, 1] and set(test_part(own).split) == {"test"}
    no_test = _dataset([0, 1], split=np.array(["train", "val"]))
    assert test_part(no_test) is no_test
    unsplit = _dataset([0, 1, 1])
    assert test_part(unsplit) is unsplit
