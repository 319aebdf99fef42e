"""Data inspection building blocks: balance, duplicates, outliers, report/JSON, clean copy, figures."""

from __future__ import annotations

import csv
import json
import warnings

import cv2
import numpy as np
import pytest

from robustbench_cells.data.dataset import CELL_CLASSES, Dataset
from robustbench_cells.data.inspection import inspect_dataset
from robustbench_cells.data.inspection.balance import class_balance
from robustbench_cells.data.inspection.clean import check_clean_target, write_clean_copy
from robustbench_cells.data.inspection.duplicates import (
    exact_duplicate_groups, label_conflicts, near_duplicates,
)
from robustbench_cells.data.inspection.figures import contact_sheet
from robustbench_cells.data.inspection.outliers import (
    FEATURE_NAMES, MIN_IMAGES, fence_threshold, find_outliers, outlier_features,
)
from robustbench_cells.data.inspection.planted import foreign_background, near_copies
from robustbench_cells.errors import CellbenchError


def _noise_images(n: int, seed: int = 0, size: int = 32) -> np.ndarray:
    """Smooth random images: all different, none a near copy of another."""
    rng = np.random.default_rng(seed)
    raw = rng.uniform(0, 255, size=(n, size, size, 3)).astype(np.float32)
    return np.stack([cv2.GaussianBlur(x, (0, 0), 2) for x in raw]).clip(0, 255).astype(np.uint8)


# -- balance ------------------------------------------------------------------------------------

def test_class_balance_counts_every_class_and_ratio():
    bal = class_balance(np.array([0, 0, 0, 1, 2, 2]), ("a", "b", "c"))
    assert bal.counts == (3, 1, 2) and bal.total == 6
    assert bal.imbalance_ratio == pytest.approx(3.0)
    empty = class_balance(np.array([0, 0, 1]), ("a", "b", "c"))
    assert empty.imbalance_ratio == float("inf") and empty.empty_classes == ["c"]


# -- duplicates ---------------------------------------------------------------------------------

def test_exact_groups_are_sorted_and_ignore_single_images():
    imgs = _noise_images(6)
    data = np.concatenate([imgs, imgs[[4, 1, 4]]])  # 6,7,8 copy 4,1,4
    assert exact_duplicate_groups(data) == [[1, 7], [4, 6, 8]]
    assert exact_duplicate_groups(imgs[:1]) == []
    assert exact_duplicate_groups(imgs) == []


def test_label_conflicts_are_groups_with_two_labels():
    labels = np.array([0, 0, 1, 2, 2])
    assert label_conflicts([[0, 1], [1, 2], [3, 4]], labels) == [[1, 2]]


def test_near_duplicates_handles_tiny_inputs():
    imgs = _noise_images(3)
    assert near_duplicates(imgs[:1]).groups == []
    assert near_duplicates(np.zeros((4, 8, 8, 3), np.uint8)).groups == []  # smaller than the shift search


def test_near_copies_of_pbc_cells_are_grouped_with_original_indices(pbc_sample):
    rng = np.random.default_rng(0)
    copies = near_copies(pbc_sample[:12], rng)
    data = np.concatenate([pbc_sample, copies])
    found = near_duplicates(data)
    for k in range(12):
        assert any(k in g and len(pbc_sample) + k in g for g in found.groups), k
    assert (found.scores >= 0.97).all() and found.pairs.shape == (len(found.scores), 2)
    # `among` restricts the search but indices still refer to the full array.
    among = np.r_[np.arange(len(pbc_sample)), len(pbc_sample) + np.arange(6)]
    part = near_duplicates(data, among=among)
    assert {i for g in part.groups for i in g} <= set(among.tolist())
    assert any(0 in g and len(pbc_sample) in g for g in part.groups)


def test_different_pbc_cells_are_not_near_duplicates(pbc_sample):
    assert near_duplicates(pbc_sample).groups == []


def test_near_copies_are_reproducible_from_the_generator(pbc_sample):
    a = near_copies(pbc_sample[:4], np.random.default_rng(5))
    b = near_copies(pbc_sample[:4], np.random.default_rng(5))
    assert a.dtype == np.uint8 and np.array_equal(a, b) and not np.array_equal(a, pbc_sample[:4])


def test_foreign_background_rejects_unknown_kind():
    with pytest.raises(ValueError, match="unknown background kind 'plaid'"):
        foreign_background("plaid", 8, 8, np.random.default_rng(0))


# -- outliers -----------------------------------------------------------------------------------

def test_too_few_images_flags_nothing():
    res = find_outliers(_noise_images(MIN_IMAGES - 1))
    assert len(res.flagged) == 0 and res.threshold == float("inf")


def test_a_foreign_image_among_pbc_cells_ranks_first(pbc_sample):
    odd = pbc_sample[:1].copy()
    odd[:, :, :20] = (0, 200, 0)  # a green band: nothing in a smear looks like this
    res = find_outliers(np.concatenate([pbc_sample, odd]))
    assert res.ranking()[0] == len(pbc_sample)
    assert res.flagged[0] == len(pbc_sample)


def test_fence_threshold_grows_with_the_fence():
    scores = np.random.default_rng(0).lognormal(size=1000)
    assert fence_threshold(scores, 2) < fence_threshold(scores, 6) < scores.max() * 1e6


# -- report, JSON, removal plan, clean copy ------------------------------------------------------

@pytest.fixture
def small_report(pbc_sample):
    """pbc_sample + one exact copy across classes + one near copy; a fake split."""
    images = np.concatenate([pbc_sample, pbc_sample[[3]], near_copies(pbc_sample[[10]], np.random.default_rng(1))])
    labels = np.r_[np.repeat(np.arange(8), 32), 5, 0]
    split = np.array(["train", "val"] * (len(images) // 2))
    paths = np.array([f"{CELL_CLASSES[lab]}/img{i}.jpg" for i, lab in enumerate(labels)])
    ds = Dataset(images, labels, CELL_CLASSES, source="npz:sample.npz", split=split, paths=paths)
    return ds, inspect_dataset(ds)


def test_report_json_has_the_documented_keys(small_report):
    ds, report = small_report
    out = json.loads(json.dumps(report.to_json()))  # must be plain JSON
    assert [c["count"] for c in out["classes"]] == [33] + [32] * 4 + [33] + [32] * 2
    assert out["exact_duplicates"] == [[3, 256]]
    assert out["label_conflicts"]["exact"] == [[3, 256]]
    assert [10, 257] in out["near_duplicates"]
    assert out["n_images"] == len(ds)
    assert all(set(o) == {"index", "score"} for o in out["outliers"])


def test_removal_plan_keeps_the_first_of_each_group(small_report):
    _, report = small_report
    plan = report.removal_plan()
    assert plan[256].startswith("exact duplicate of #3") and "label conflict" in plan[256]
    assert plan[257].startswith("near duplicate of #10")
    assert 3 not in plan and 10 not in plan


def test_clean_copy_npz_has_no_duplicates_and_keeps_split(small_report, tmp_path):
    ds, report = small_report
    plan = report.removal_plan()
    out, removed = write_clean_copy(ds, plan, tmp_path / "clean.npz")
    with np.load(out) as z:
        assert len(z["images"]) == len(ds) - len(plan)
        assert exact_duplicate_groups(z["images"]) == []
        assert list(z["class_names"]) == list(CELL_CLASSES) and len(z["split"]) == len(z["labels"])
    rows = list(csv.DictReader(open(removed)))
    assert removed.name == "clean.removed.csv" and len(rows) == len(plan)
    assert {int(r["index"]) for r in rows} == set(plan) and rows[0]["path"].endswith(".jpg")


def test_clean_copy_folder_is_lossless_with_splits_csv(small_report, tmp_path):
    ds, report = small_report
    plan = {256: "exact duplicate of #3", 257: "near duplicate of #10"}
    out, removed = write_clean_copy(ds, plan, tmp_path / "clean")
    assert removed == out / "removed.csv"
    rows = list(csv.DictReader(open(out / "SPLITS.csv")))
    assert len(rows) == len(ds) - 2 and rows[0]["path"] == "basophil/img0.png"
    back = cv2.cvtColor(cv2.imread(str(out / rows[0]["path"])), cv2.COLOR_BGR2RGB)
    assert np.array_equal(back, ds.images[0])


def test_clean_target_must_be_new_and_outside_the_input(tmp_path):
    (tmp_path / "exists.npz").write_bytes(b"")
    with pytest.raises(CellbenchError, match="exists.npz: already exists"):
        check_clean_target(tmp_path / "exists.npz")
    with pytest.raises(CellbenchError, match="inside the input"):
        check_clean_target(tmp_path / "data" / "clean", input_path=tmp_path / "data")
    with pytest.raises(CellbenchError, match="does not exist"):
        check_clean_target(tmp_path / "nowhere" / "clean.npz")
    assert check_clean_target(tmp_path / "new.npz") == tmp_path / "new.npz"


def test_contact_sheet_tiles_and_skips_empty(tmp_path):
    imgs = _noise_images(5, size=16)
    assert contact_sheet(imgs[:0], [], tmp_path / "none.png") is None
    path = contact_sheet(imgs, [str(i) for i in range(5)], tmp_path / "sheet.png", cols=4, scale=2)
    sheet = cv2.imread(str(path))
    assert sheet.shape[1] == 4 * 32 + 5 * 2 and sheet.shape[0] > 2 * 32


def test_class_names_that_look_like_mathtext_are_drawn_literally(tmp_path):
    from robustbench_cells.data.inspection.figures import class_bar_chart

    names = ("$\\frac{$", "a$b", "plain")
    path = class_bar_chart(class_balance(np.array([0, 1, 1, 2]), names), tmp_path / "bars.png", title="$x^")
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 100 and image.std() > 5


@pytest.mark.parametrize("n", [16, MIN_IMAGES + 30])  # below and above the outlier threshold
def test_tiny_2x2_images_inspect_without_runtime_warnings(n):
    """2x2 thumbnails have no pixel with neighbours on every side: the texture features used to be
    the mean of an empty slice (``RuntimeWarning: Mean of empty slice`` on ``data inspect``)."""
    rng = np.random.default_rng(3)
    ds = Dataset(rng.integers(0, 256, (n, 2, 2, 3), dtype=np.uint8), np.arange(n) % 2, ("a", "b"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning fails the test
        report = inspect_dataset(ds)
        features = outlier_features(ds.images)
    assert np.isfinite(features).all() and features.shape == (n, len(FEATURE_NAMES))
    assert report.n_images == n and len(report.outliers.scores) == n
    assert np.isfinite(report.outliers.scores).all()
