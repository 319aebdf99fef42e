"""``cellbench predict MODEL INPUT...`` on a folder, image files, an npz; exports; user errors."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from robustbench_cells.data.dataset import CELL_CLASSES


@pytest.fixture(scope="module")
def cell_dir(tmp_path_factory):
    """A tiny trained simple_cnn saved as a cell folder, and the images it was trained on."""
    from robustbench_cells import train as T
    from robustbench_cells.data.dataset import Dataset

    rng = np.random.default_rng(0)
    labels = np.arange(96) % 8
    images = rng.integers(0, 30, (96, 24, 24, 3)).astype(np.uint8)
    images[..., 0] += (labels * 28).astype(np.uint8)[:, None, None]
    ds = Dataset(images, labels, CELL_CLASSES, source="toy")
    recipe = T.Recipe(epochs=1, batch_size=32)
    result = T.train_cell("simple_cnn", ds, ds, augmentation="none", recipe=recipe, seed=0)
    folder = tmp_path_factory.mktemp("cell")
    T.save_model(result.model, T.model_meta("simple_cnn", ds, augmentation="none", recipe=recipe, seed=0), folder)
    expected = T.predict_proba(result.model, images)
    return folder, ds, expected


def _write_class_folders(root, ds, per_class=2):
    paths = []
    for c, name in enumerate(CELL_CLASSES):
        (root / name).mkdir(parents=True)
        for j, i in enumerate(np.flatnonzero(ds.labels == c)[:per_class]):
            path = root / name / f"{j}.png"  # png: lossless, so predictions can be compared exactly
            cv2.imwrite(str(path), cv2.cvtColor(ds.images[i], cv2.COLOR_RGB2BGR))
            paths.append((path, i))
    return paths


def test_predict_folder_with_class_subfolders_reports_accuracy_and_writes_csv(cli, cell_dir, tmp_path):
    folder, ds, expected = cell_dir
    written = _write_class_folders(tmp_path / "imgs", ds)
    out = tmp_path / "preds.csv"
    code, stdout, err = cli("predict", folder, tmp_path / "imgs", "--out", out, "--show", "3")
    assert code == 0, err
    assert "16 images" in stdout and "accuracy:" in stdout
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 16 and rows[0]["label"] in CELL_CLASSES
    by_name = {r["name"]: r for r in rows}
    for path, i in written:
        row = by_name[str(path.relative_to(tmp_path / "imgs"))]
        assert row["prediction"] == CELL_CLASSES[int(expected[i].argmax())]
        assert float(row["basophil"]) == pytest.approx(float(expected[i, 0]), abs=1e-5)


def test_predict_image_files_json(cli, cell_dir, tmp_path):
    folder, ds, expected = cell_dir
    written = _write_class_folders(tmp_path / "imgs", ds, per_class=1)
    files = [p for p, _ in written[:3]]
    code, stdout, err = cli("predict", folder / "model.keras", *files, "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["images"] == 3 and "accuracy" not in summary  # loose files carry no labels
    assert [r["prediction"] for r in summary["rows"]] == [CELL_CLASSES[int(expected[i].argmax())] for _, i in written[:3]]


def test_predict_npz_exports_npz(cli, cell_dir, tmp_path):
    folder, ds, expected = cell_dir
    np.savez(tmp_path / "test.npz", images=ds.images[:10], labels=ds.labels[:10])
    out = tmp_path / "p.npz"
    code, stdout, err = cli("predict", folder, tmp_path / "test.npz", "--out", out, "--show", "0")
    assert code == 0, err
    assert "accuracy:" in stdout
    with np.load(out) as data:
        np.testing.assert_allclose(data["probabilities"], expected[:10], atol=1e-6)
        assert list(data["class_names"]) == list(CELL_CLASSES)


@pytest.mark.parametrize("args, match", [
    (["nowhere_model", "x.npz"], "nowhere_model"),
    (["{cell}", "missing.npz"], "missing.npz: no such file"),
    (["{cell}", "{cell}/meta.json", "--out", "p.txt"], "unknown format '.txt'"),
])
def test_user_errors_exit_2_with_one_line(cli, cell_dir, args, match):
    folder, _, _ = cell_dir
    code, _, err = cli("predict", *[a.format(cell=folder) for a in args])
    assert code == 2
    assert match in err and "Traceback" not in err and err.count("\n") == 1


def test_predict_npz_spec_uses_the_data_loader(cli, cell_dir, tmp_path):
    folder, ds, expected = cell_dir
    np.savez(tmp_path / "test.npz", images=ds.images[:10], labels=ds.labels[:10])
    code, stdout, err = cli("predict", folder, f"npz:{tmp_path / 'test.npz'}", "--json", "--show", "10")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["images"] == 10 and "accuracy" in summary
    assert [r["prediction"] for r in summary["rows"]] == [CELL_CLASSES[int(p.argmax())] for p in expected[:10]]


def test_predict_npz_without_labels_predicts_without_accuracy(cli, cell_dir, tmp_path):
    folder, ds, _ = cell_dir
    np.savez(tmp_path / "nolabels.npz", images=ds.images[:4])
    code, stdout, err = cli("predict", folder, tmp_path / "nolabels.npz", "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["images"] == 4 and "accuracy" not in summary


def _bad_npz(kind):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (4, 24, 24, 3)).astype(np.uint8)
    labels = np.arange(4)
    if kind == "nan":
        return {"images": np.full((4, 24, 24, 3), np.nan, np.float32), "labels": labels}
    if kind == "negative":
        return {"images": images, "labels": -labels - 1}
    if kind == "uint16":
        return {"images": images.astype(np.uint16) * 300, "labels": labels}
    if kind == "empty":
        return {"images": np.zeros((0, 24, 24, 3), np.uint8), "labels": np.zeros(0, np.int64)}
    if kind == "empty_unlabelled":
        return {"images": np.zeros((0, 24, 24, 3), np.uint8)}
    raise AssertionError(kind)


@pytest.mark.parametrize("kind, match", [
    ("nan", "must be uint8 images"), ("negative", "negative labels"), ("uint16", "must be uint8 images"),
    ("empty", "contains no images"), ("empty_unlabelled", "contains no images"),
])
def test_predict_npz_is_validated_like_the_loader(cli, cell_dir, tmp_path, kind, match):
    folder, _, _ = cell_dir
    np.savez(tmp_path / "bad.npz", **_bad_npz(kind))
    code, stdout, err = cli("predict", folder, tmp_path / "bad.npz")
    assert code == 2, (stdout, err)
    assert match in err and "Traceback" not in err and err.count("\n") == 1 and "nan" not in stdout
