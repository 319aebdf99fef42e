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
    for s in cell.scores:
        s.per_class = s.per_class[:7] + [None]  # a class absent from the test set
    img = _decode(figures.per_class_png(cell, summary.class_names))
    assert img.shape[1] == 900 and img.std() > 10


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
