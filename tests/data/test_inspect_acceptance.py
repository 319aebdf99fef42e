"""Acceptance of the data inspection on real PBC images with planted cases (issue 2).

One inspection of ~2,100 clean PBC images plus planted exact copies (some across classes), near
copies (JPEG q70, ±3 px shift, ±10% brightness) and cells composited on foreign backgrounds.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from robustbench_cells.data.dataset import CELL_CLASSES, Dataset
from robustbench_cells.data.inspection import inspect_dataset
from robustbench_cells.data.inspection.planted import foreign_background_composites, near_copies

pytestmark = pytest.mark.pbc

N_EXACT, N_CROSS, N_NEAR, N_COMPOSITE, N_SHIPPED = 60, 10, 150, 80, 40


@pytest.fixture(scope="module")
def clean_pbc(pbc_root):
    """Every 8th image of pbc96 (2,134 images, all classes), decoded with cv2."""
    import cv2

    rows = list(csv.DictReader(open(pbc_root / "SPLITS.csv")))[::8]
    images = np.stack([cv2.cvtColor(cv2.imread(str(pbc_root / r["path"])), cv2.COLOR_BGR2RGB) for r in rows])
    labels = np.array([CELL_CLASSES.index(r["label"]) for r in rows])
    return images, labels


def _shipped_composites(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cells cut out with ops.mask.cell_mask and pasted on the shipped backgrounds (ops.composite)."""
    from robustbench_cells.data.backgrounds import load_backgrounds
    from robustbench_cells.ops.composite import composite_backgrounds
    from robustbench_cells.ops.mask import cell_mask

    return composite_backgrounds(images, cell_mask(images), load_backgrounds(size=images.shape[1]), rng)


@pytest.fixture(scope="module")
def planted(clean_pbc):
    images, labels = clean_pbc
    n = len(images)
    rng = np.random.default_rng(2024)
    src = rng.permutation(n)
    exact_src, near_src = src[:N_EXACT], src[N_EXACT:N_EXACT + N_NEAR]
    comp_src = src[N_EXACT + N_NEAR:N_EXACT + N_NEAR + N_COMPOSITE + N_SHIPPED]
    exact_labels = labels[exact_src].copy()
    exact_labels[:N_CROSS] = (exact_labels[:N_CROSS] + 1) % len(CELL_CLASSES)  # mislabelled copies
    parts = [
        (images, labels),
        (images[exact_src], exact_labels),
        (near_copies(images[near_src], rng), labels[near_src]),
        (foreign_background_composites(images[comp_src[:N_COMPOSITE]], rng), labels[comp_src[:N_COMPOSITE]]),
        (_shipped_composites(images[comp_src[N_COMPOSITE:]], rng), labels[comp_src[N_COMPOSITE:]]),
    ]
    all_images = np.concatenate([p[0] for p in parts])
    all_labels = np.concatenate([p[1] for p in parts])
    # Shuffle so nothing depends on planted images coming last.
    order = rng.permutation(len(all_images))
    where = np.empty_like(order)
    where[order] = np.arange(len(order))  # where[original position] = position after shuffling
    ds = Dataset(all_images[order], all_labels[order], CELL_CLASSES, source="planted-pbc")
    start = np.cumsum([0] + [len(p[0]) for p in parts])
    blocks = {name: where[start[k]:start[k + 1]] for k, name in
              enumerate(("clean", "exact", "near", "composite", "shipped"))}
    return ds, blocks, where[exact_src], where[near_src], inspect_dataset(ds)


def _same_group(groups: list[list[int]], a: int, b: int) -> bool:
    return any(a in g and b in g for g in groups)


def test_exact_duplicate_recall_is_one_and_cross_class_copies_are_conflicts(planted):
    ds, blocks, exact_orig, _, report = planted
    found = [_same_group(report.exact_groups, int(o), int(c)) for o, c in zip(exact_orig, blocks["exact"])]
    assert np.mean(found) == 1.0
    assert len(report.exact_groups) == N_EXACT  # nothing else in the sample is a pixel copy
    conflicts = report.exact_conflicts
    assert len(conflicts) == N_CROSS
    assert all(len(set(ds.labels[g].tolist())) > 1 for g in conflicts)


def test_near_duplicate_recall_and_few_false_groups(planted):
    _, blocks, _, near_orig, report = planted
    found = [_same_group(report.near_groups, int(o), int(c)) for o, c in zip(near_orig, blocks["near"])]
    assert np.mean(found) >= 0.9
    planted_ids = set(blocks["near"].tolist())
    false_groups = [g for g in report.near_groups if not planted_ids & set(g)]
    # PBC itself holds a few same-cell pairs (3 in all 17k images); a 1-in-8 sample has at most a couple.
    assert len(false_groups) <= 2


def test_foreign_backgrounds_recall_at_low_false_positive_rate(planted):
    _, blocks, _, _, report = planted
    flagged = set(report.outliers.flagged.tolist())
    for name in ("composite", "shipped"):
        recall = np.mean([int(i) in flagged for i in blocks[name]])
        assert recall >= 0.9, f"{name}: recall {recall:.3f}"
    fpr = np.mean([int(i) in flagged for i in blocks["clean"]])
    assert fpr <= 0.01


def test_outliers_are_ranked_most_unusual_first(planted):
    _, _, _, _, report = planted
    scores = report.outliers.scores[report.outliers.flagged]
    assert np.all(np.diff(scores) <= 0)
    assert (scores > report.outliers.threshold).all()
    assert report.outliers.ranking()[0] == report.outliers.flagged[0]
