"""Matplotlib figures come back as real, non-blank PNGs, also for awkward inputs."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from robustbench_cells.bench.metrics import summarize_run
from robustbench_cells.report import figures


def _decode(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_severity_curves_one_panel_per_family(fake_run):
    _, store = fake_run
    summary = summarize_run(store)
    four = _decode(figures.severity_curves_png(summary))
    one = _decode(figures.severity_curves_png(summary, summary.done[:1]))
    assert four.std() > 10 and one.std() > 10
    assert four.shape[0] > 400  # 4 families -> 2 rows of panels
    assert not np.array_equal(four, one)  # the lines drawn depend on the cells


def test_heatmap_leaves_missing_combinations_blank(fake_run):
    _, store = fake_run
    img = _decode(figures.heatmap_png(summarize_run(store)))
    assert img.std() > 10
    # cutmix has no result for either model: its column is the white figure background
    assert (img == 255).all(axis=2).mean() > 0.2


def test_per_class_tolerates_missing_classes(fake_run):
    _, store = fake_run
    summary = summarize_run(store)
    cell = summary.done[0]
    originals = [list(s.per_class) for s in cell.scores]

    def drawn(last: float | None) -> np.ndarray:
        for s, per_class in zip(cell.scores, originals):
            s.per_class = per_class[:7] + [last]
        return _decode(figures.per_class_png(cell, summary.class_names))

    missing = drawn(None)  # a class absent from the test set
    assert missing.shape[1] == 900 and missing.std() > 10
    np.testing.assert_array_equal(missing, drawn(0.0))  # drawn as an empty slot, the other bars unchanged
    changed = np.flatnonzero((drawn(0.9) != missing).any(axis=(0, 2)))
    assert changed.size and changed.min() > 900 * 0.7  # a full bar appears only in the last class's slot


def test_image_strip_keeps_pixels_and_adds_gaps():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (20, 16, 3), dtype=np.uint8) for _ in range(3)]
    strip = _decode(figures.image_strip_png(images, gap=4))
    assert strip.shape == (20, 3 * 16 + 2 * 4, 3)
    np.testing.assert_array_equal(strip[:, 20:36], images[1])
    assert (strip[:, 16:20] == 255).all()
    grouped = _decode(figures.image_strip_png(images + images, gap=4, group=3, group_gap=10))
    assert grouped.shape[1] == 6 * 16 + 4 * 4 + 10
    np.testing.assert_array_equal(grouped[:, 3 * 16 + 2 * 4 + 10:][:, :16], images[0])


def test_target_class_grid_has_the_targets_classes_with_their_counts(adapted_run):
    _, store = adapted_run
    summary = summarize_run(store)
    cells = summary.done
    labels, grid = figures.target_class_grid(cells, "other lab", summary.class_names,
                                             {"basophil": 5, "eosinophil": 3, "immature_granulocyte": 2})
    assert labels == ["accuracy", "balanced", "basophil\n(n=5)", "eosinophil\n(n=3)", "immature_granulocyte\n(n=2)"]
    adapted = [c.cell.model for c in cells].index("cnn_a+bn_adapt")
    np.testing.assert_allclose(grid[adapted], [60, 55, 70, 50, 60])
    # without recorded counts (a run from before they were saved): the classes scored for any cell
    labels, grid = figures.target_class_grid(cells, "other lab", summary.class_names, {})
    assert labels[2:] == ["basophil", "eosinophil", "immature_granulocyte"] and grid.shape == (2, 5)
    # a cell without a row on the target is a row of NaN, not a crash
    assert np.isnan(figures.target_class_grid(cells, "nowhere", summary.class_names, {})[1]).all()


def test_target_figures_draw_one_row_per_cell(adapted_run):
    _, store = adapted_run
    summary = summarize_run(store)
    both = _decode(figures.targets_png(summary, summary.done, ["other lab"]))
    one = _decode(figures.targets_png(summary, summary.done[:1], ["other lab"]))
    assert both.std() > 10 and both.shape[0] > one.shape[0]  # a row per cell
    classes = [_decode(figures.target_classes_png(cells, "other lab", summary.class_names, {"basophil": 5}))
               for cells in (summary.done, summary.done[:1])]
    assert classes[0].std() > 10 and classes[0].shape[0] > classes[1].shape[0]
