"""The procedural synthetic cells: determinism, class-specific morphology, nuisance knobs, spec parsing, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from robustbench_cells.data.dataset import CELL_CLASSES
from robustbench_cells.data.specs import load_dataset
from robustbench_cells.data.splits import split_dataset
from robustbench_cells.data.synthetic import (
    DEFAULT_N,
    SyntheticOptions,
    generate,
    parse_synthetic_arg,
    synthetic_dataset,
)
from robustbench_cells.errors import CellbenchError


@pytest.fixture(scope="module")
def batch():
    """768 images (three chunks) with seed 11, generated once for the module."""
    return generate(768, seed=11)


def test_shapes_dtypes_and_all_classes(batch):
    images, labels, nuisance = batch
    assert images.shape == (768, 96, 96, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and set(labels.tolist()) == set(range(8))
    assert all(len(v) == 768 for v in nuisance.values())
    assert images.std() > 10  # not blank


def test_same_seed_same_bytes_and_prefix_stable(batch):
    images, labels, _ = batch
    again, again_labels, _ = generate(300, seed=11)  # a prefix that ends mid-chunk
    np.testing.assert_array_equal(again, images[:300])
    np.testing.assert_array_equal(again_labels, labels[:300])
    other, _, _ = generate(300, seed=12)
    assert (other != images[:300]).mean() > 0.5


def _dark_area(images: np.ndarray) -> np.ndarray:
    """Pixels per image darker than the red-cell field: the nucleus and dense granules."""
    return (images.astype(int).sum(-1) < 400).sum((1, 2))


def test_class_specific_morphology(batch):
    images, labels, _ = batch
    area = {c: np.median(_dark_area(images[labels == i])) for i, c in enumerate(CELL_CLASSES)}
    # Platelets are small and anucleate; erythroblasts have a small dense nucleus; immature
    # granulocytes have bigger nuclei than neutrophils.
    assert area["platelet"] < 0.3 * area["erythroblast"]
    assert area["erythroblast"] < area["lymphocyte"] and area["erythroblast"] < area["monocyte"]
    assert area["neutrophil"] < area["immature_granulocyte"]
    # Eosinophil granules are orange-red: the cell region is redder than a neutrophil's.
    centre = images[:, 30:66, 30:66].astype(float)
    redness = centre[..., 0] - centre[..., 2]
    eos, neu = CELL_CLASSES.index("eosinophil"), CELL_CLASSES.index("neutrophil")
    assert redness[labels == eos].mean() > redness[labels == neu].mean() + 10


def test_nuisance_knobs_change_what_they_say():
    beige, _, nb = generate(64, seed=3, options=SyntheticOptions(background=0.0))
    lavender, _, nl = generate(64, seed=3, options=SyntheticOptions(background=1.0))
    border = lambda x: x[:, :4].reshape(-1, 3).astype(float).mean(0)  # noqa: E731
    assert border(beige)[0] > border(beige)[2] + 20 and not nb["lavender"].any()
    assert border(lavender)[2] > border(lavender)[0] and nl["lavender"].all()

    sharp, _, _ = generate(64, seed=3, options=SyntheticOptions(blur=0.0))
    soft, _, ns = generate(64, seed=3, options=SyntheticOptions(blur=3.0))
    detail = lambda x: np.abs(np.diff(x.astype(float), axis=2)).mean()  # noqa: E731
    assert detail(soft) < 0.7 * detail(sharp) and ns["blur"].max() > 1.5

    _, _, fixed = generate(32, seed=3, options=SyntheticOptions(stain=0.0))
    assert (fixed["hue"] == 0).all() and (fixed["stain_intensity"] == 1).all()


def test_nuisances_do_not_leak_the_label(batch):
    _, labels, nuisance = batch
    # Hue is drawn independently of the class: class means stay within noise of each other.
    means = [nuisance["hue"][labels == c].mean() for c in range(8)]
    assert np.ptp(means) < 0.08


def test_dataset_carries_a_stratified_split():
    ds = synthetic_dataset(400, seed=2)
    assert ds.class_names == CELL_CLASSES and ds.source == "synthetic:400:seed=2"
    counts = {s: int((ds.split == s).sum()) for s in ("train", "val", "test")}
    assert counts["train"] == pytest.approx(280, abs=8) and counts["val"] == pytest.approx(40, abs=8)
    for c in range(8):  # every class is in train and test
        in_class = ds.split[ds.labels == c]
        assert (in_class == "train").any() and (in_class == "test").any()
    assert ds.meta["seed"] == 2 and len(ds.meta["per_image"]["blur"]) == 400
    test = split_dataset(ds)["test"]  # per-image nuisance values follow the images into a subset
    np.testing.assert_array_equal(test.meta["per_image"]["blur"], ds.meta["per_image"]["blur"][ds.split == "test"])


@pytest.mark.parametrize("arg, expected", [
    (None, (DEFAULT_N, 0, SyntheticOptions())),
    ("250", (250, 0, SyntheticOptions())),
    ("250:7", (250, 7, SyntheticOptions())),
    ("250:seed=3,blur=1.5", (250, 3, SyntheticOptions(blur=1.5))),
    ("n=10:background=1:stain=0", (10, 0, SyntheticOptions(background=1.0, stain=0.0))),
])
def test_parse_synthetic_arg(arg, expected):
    assert parse_synthetic_arg(arg) == expected


@pytest.mark.parametrize("arg, message", [
    ("blurr=2", "unknown option 'blurr' \\(did you mean: blur\\?\\)"),
    ("many", "n must be a number, got 'many'"),
    ("0", "must be positive"),
    ("10:1:2", "too many positional values"),
    ("10:background=2", "background=2.0: a probability"),
    ("10:noise=-1", "noise=-1.0: must be a finite number >= 0"),
    ("10:seed=-4", "seed must be >= 0"),
])
def test_parse_synthetic_arg_errors(arg, message):
    with pytest.raises(CellbenchError, match=message):
        parse_synthetic_arg(arg)


def test_spec_through_the_registry():
    ds = load_dataset("synthetic:40:seed=5")
    assert len(ds) == 40 and ds.source == "synthetic:40:seed=5"
    np.testing.assert_array_equal(ds.images, generate(40, seed=5)[0])


def test_speed_floor():
    generate(256, seed=0)  # warm-up (imports, allocator)
    # CPU time of this process, not wall time: other processes on a busy shared machine do not
    # count against it. benchmarks/perf/synthetic.py measures the wall-clock rate.
    start = time.process_time()
    generate(768, seed=1)
    rate = 768 / (time.process_time() - start)
    assert rate > 500, f"{rate:.0f} images per CPU-second"


def test_nuisance_options_rerender_the_same_cells():
    base, labels, nb = generate(64, seed=4)
    restained, labels2, nr = generate(64, seed=4, options=SyntheticOptions(stain=2.0, background=1.0, blur=0.0))
    np.testing.assert_array_equal(labels, labels2)
    np.testing.assert_array_equal(nb["subtype"], nr["subtype"])
    # Same cells: the dark (nucleus) area per image barely moves although every pixel changed.
    assert (base != restained).mean() > 0.9
    assert np.corrcoef(_dark_area(base), _dark_area(restained))[0, 1] > 0.9
