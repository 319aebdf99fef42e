"""npz, folder and bloodmnist loaders: good inputs load right, every bad input gets a one-line error."""

from __future__ import annotations

import csv
import sys
import time
import types
import warnings

import cv2
import numpy as np
import pytest

from robustbench_cells.data.dataset import CELL_CLASSES
from robustbench_cells.data.loaders import canonical_class, load_bloodmnist, load_folder, load_npz
from robustbench_cells.data.specs import load_dataset
from robustbench_cells.errors import CellbenchError


def _images(n: int, size: int = 8, channels: int | None = 3, seed: int = 0) -> np.ndarray:
    shape = (n, size, size) if channels is None else (n, size, size, channels)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# -- npz -----------------------------------------------------------------------------------------

def test_npz_an2dl_layout_with_column_labels(tmp_path):
    path = tmp_path / "train.npz"
    labels = np.arange(16).reshape(-1, 1) % 8
    np.savez(path, images=_images(16), labels=labels.astype(np.uint8))
    ds = load_npz(str(path))
    assert ds.images.shape == (16, 8, 8, 3) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64 and ds.labels.tolist() == labels[:, 0].tolist()
    assert ds.class_names == CELL_CLASSES  # 8 classes -> the PBC names
    assert ds.split is None and ds.source == f"npz:{path}"


def test_npz_other_class_counts_and_explicit_class_names(tmp_path):
    np.savez(tmp_path / "a.npz", images=_images(6), labels=np.array([0, 1, 2, 0, 1, 2]))
    assert load_npz(str(tmp_path / "a.npz")).class_names == ("class_0", "class_1", "class_2")
    np.savez(tmp_path / "b.npz", images=_images(4), labels=np.array([0, 1, 1, 0]), class_names=np.array(["cat", "dog", "emu"]))
    assert load_npz(str(tmp_path / "b.npz")).class_names == ("cat", "dog", "emu")


def test_npz_one_hot_labels_become_indices(tmp_path):
    np.savez(tmp_path / "h.npz", images=_images(3), labels=np.eye(8, dtype=np.uint8)[[5, 0, 7]])
    assert load_npz(str(tmp_path / "h.npz")).labels.tolist() == [5, 0, 7]


def test_npz_medmnist_layout_keeps_its_split(tmp_path):
    path = tmp_path / "bloodmnist.npz"
    np.savez_compressed(path, train_images=_images(10), train_labels=np.arange(10).reshape(-1, 1) % 8,
                        val_images=_images(3, seed=1), val_labels=np.array([[1], [2], [3]]),
                        test_images=_images(4, seed=2), test_labels=np.array([[7], [6], [5], [4]]))
    ds = load_npz(str(path))
    assert len(ds) == 17 and ds.class_names == CELL_CLASSES
    assert [int((ds.split == s).sum()) for s in ("train", "val", "test")] == [10, 3, 4]
    assert ds.labels[-4:].tolist() == [7, 6, 5, 4]


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "file not found"),
    (lambda p: p.write_text("hello, not numpy"), "not an npz file"),
    (lambda p: np.save(open(p, "wb"), np.zeros(3)), "single .npy array"),
    (lambda p: p.mkdir(), "is a directory, not an .npz file"),
])
def test_npz_missing_or_not_an_npz(tmp_path, make, message):
    path = tmp_path / "data.npz"
    make(path)
    with pytest.raises(CellbenchError, match=message) as info:
        load_npz(str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_npz_truncated(tmp_path):
    path = tmp_path / "full.npz"
    np.savez_compressed(path, images=_images(64, size=16), labels=np.zeros(64, int))
    data = path.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CellbenchError, match=r"cut\.npz: truncated or corrupt npz"):
        load_npz(str(cut))


def test_npz_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, images=np.array([object(), 1], dtype=object), labels=np.zeros(2, int))
    with pytest.raises(CellbenchError, match="'images' holds pickled Python objects.*allow_pickle=False"):
        load_npz(str(path))


@pytest.mark.parametrize("images, message", [
    (np.zeros((4, 8, 8, 3), np.float32), "must be uint8 images, got dtype float32"),
    (np.zeros((4, 8, 8, 5), np.uint8), r"shape \(N, H, W, 3\), got \(4, 8, 8, 5\)"),
    (np.zeros((4, 3, 8, 8), np.uint8), "channels-first"),
    (np.zeros((4, 8), np.uint8), r"shape \(N, H, W, 3\)"),
])
def test_npz_wrong_dtype_or_shape(tmp_path, images, message):
    path = tmp_path / "bad.npz"
    np.savez(path, images=images, labels=np.zeros(4, int))
    with pytest.raises(CellbenchError, match=message):
        load_npz(str(path))


def test_npz_integer_images_in_range_are_accepted(tmp_path):
    np.savez(tmp_path / "i.npz", images=_images(2).astype(np.int64), labels=np.array([0, 1]))
    assert load_npz(str(tmp_path / "i.npz")).images.dtype == np.uint8


@pytest.mark.parametrize("images, warned", [
    (_images(4, channels=None), "grayscale"),
    (_images(4, channels=1), "grayscale"),
    (_images(4, channels=4), "RGBA"),
])
def test_npz_grayscale_and_rgba_are_converted_with_a_warning(tmp_path, images, warned):
    path = tmp_path / "c.npz"
    np.savez(path, images=images, labels=np.zeros(4, int))
    with pytest.warns(UserWarning, match=warned):
        ds = load_npz(str(path))
    assert ds.images.shape == (4, 8, 8, 3)
    np.testing.assert_array_equal(ds.images[..., 0], images.reshape(4, 8, 8, -1)[..., 0])


@pytest.mark.parametrize("arrays, message", [
    (dict(labels=np.zeros(4, int)), "no 'images' array"),
    (dict(images=_images(4)), "no 'labels' array"),
    (dict(images=_images(4), labels=np.zeros(3, int)), "4 images but 3 labels"),
    (dict(images=_images(4), labels=np.array([0, 1, -1, 2])), "negative labels"),
    (dict(images=_images(2), labels=np.array([0, 3]), class_names=np.array(["a", "b"])), "labels go up to 3"),
    (dict(images=_images(2), labels=np.array([0.5, 1.0])), "integer class indices"),
    (dict(images=_images(0), labels=np.zeros(0, int)), "contains no images"),
])
def test_npz_bad_labels_or_keys(tmp_path, arrays, message):
    path = tmp_path / "l.npz"
    np.savez(path, **arrays)
    with pytest.raises(CellbenchError, match=message):
        load_npz(str(path))


# -- folder --------------------------------------------------------------------------------------

def _write_folder(root, classes: dict[str, int], size: int = 12) -> None:
    rng = np.random.default_rng(0)
    for name, count in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            cv2.imwrite(str(root / name / f"{name}_{i}.png"), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def test_folder_pbc_names_map_onto_cell_classes(tmp_path):
    _write_folder(tmp_path, {"ig": 2, "neutrophil": 3, "Platelets": 1})
    (tmp_path / "ig" / ".DS_123.jpg").write_bytes(b"not an image")  # hidden junk is ignored silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load_folder(str(tmp_path))
    assert ds.class_names == CELL_CLASSES
    idx = {c: CELL_CLASSES.index(c) for c in ("immature_granulocyte", "neutrophil", "platelet")}
    assert sorted(ds.labels.tolist()) == sorted([idx["immature_granulocyte"]] * 2 + [idx["neutrophil"]] * 3 + [idx["platelet"]])
    assert ds.paths[0].startswith("Platelets/") or ds.paths[0].startswith("ig/")
    # pixels are RGB: the loader converted from OpenCV's BGR
    first = cv2.imread(str(tmp_path / ds.paths[0]))[..., ::-1]
    np.testing.assert_array_equal(ds.images[0], first)


def test_folder_other_names_are_sorted(tmp_path):
    _write_folder(tmp_path, {"zebra": 1, "apple": 2})
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.class_names == ("apple", "zebra") and ds.labels.tolist() == [0, 0, 1]


def test_canonical_class_aliases():
    assert canonical_class("IG") == "immature_granulocyte"
    assert canonical_class("immature granulocyte") == "immature_granulocyte"
    assert canonical_class("Eosinophils") == "eosinophil"
    assert canonical_class("cats") is None


@pytest.mark.parametrize("setup, message", [
    (lambda root: None, "folder not found"),
    (lambda root: root.write_text("x"), "not a folder"),
    (lambda root: root.mkdir(), "no class sub-folders"),
    (lambda root: (_write_folder(root, {"basophil": 2}), (root / "monocyte").mkdir()), "class folder 'monocyte' has no images"),
    (lambda root: _write_folder(root, {"ig": 1, "immature_granulocyte": 1}), "'ig' and 'immature_granulocyte' both mean"),
])
def test_folder_bad_layouts(tmp_path, setup, message):
    root = tmp_path / "data"
    setup(root)
    with pytest.raises(CellbenchError, match=message) as info:
        load_folder(str(root))
    assert str(root) in str(info.value)


def test_folder_corrupt_file_is_skipped_with_a_warning_naming_it(tmp_path):
    _write_folder(tmp_path, {"a": 3, "b": 2})
    (tmp_path / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (tmp_path / "b" / "empty.png").write_bytes(b"")
    with pytest.warns(UserWarning, match=r"skipped 2 unreadable image file\(s\): .*broken\.jpg.*empty\.png"):
        ds = load_folder(str(tmp_path))
    assert len(ds) == 5 and not any("broken" in p for p in ds.paths)
    assert len(ds.meta["skipped_files"]) == 2


def test_folder_odd_sizes_are_resized_to_the_majority_and_gray_converted(tmp_path):
    _write_folder(tmp_path, {"a": 4, "b": 3}, size=12)
    cv2.imwrite(str(tmp_path / "b" / "big.png"), np.zeros((20, 16, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "b" / "gray.png"), np.full((12, 12), 77, np.uint8))
    cv2.imwrite(str(tmp_path / "b" / "rgba.png"), np.full((12, 12, 4), 9, np.uint8))
    cv2.imwrite(str(tmp_path / "b" / "deep.png"), np.full((12, 12, 3), 51200, np.uint16))  # 16-bit PNG
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_folder(str(tmp_path))
    text = " | ".join(str(w.message) for w in caught)
    assert "resized 1 image(s) to the majority size 12x12" in text and "big.png" in text
    assert "gray 1" in text and "rgba 1" in text and "16bit 1" in text
    assert ds.images.shape == (11, 12, 12, 3)
    assert (ds.images[list(ds.paths).index("b/deep.png")] == 200).all()  # 51200 >> 8
    assert (ds.images[list(ds.paths).index("b/gray.png")] == 77).all()


def _write_splits(root, rows) -> None:
    with open(root / "SPLITS.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "split"])
        writer.writerows(rows)


def test_folder_splits_csv_is_honoured(tmp_path):
    _write_folder(tmp_path, {"ig": 2, "lymphocyte": 2})
    _write_splits(tmp_path, [("ig/ig_0.png", "ig", "train"), ("ig/ig_1.png", "ig", "test"),
                             ("lymphocyte/lymphocyte_0.png", "lymphocyte", "val")])
    with pytest.warns(UserWarning, match="1 image file\\(s\\) are not listed in SPLITS.csv"):
        ds = load_folder(str(tmp_path))
    assert ds.split.tolist() == ["train", "test", "val"]
    assert ds.labels.tolist() == [3, 3, 4]


@pytest.mark.parametrize("rows, message", [
    ([("ig/ig_0.png", "ig", "holdout")], "line 2: split must be train/val/test"),
    ([("ig/ig_0.png", "ig", "train"), ("ig/nope.png", "ig", "test")], "1 listed file\\(s\\) do not exist, e.g. ig/nope.png"),
    ([("ig/ig_0.png", "giraffe", "train")], "line 2: unknown label 'giraffe'"),
])
def test_folder_bad_splits_csv(tmp_path, rows, message):
    _write_folder(tmp_path, {"ig": 1})
    _write_splits(tmp_path, rows)
    with pytest.raises(CellbenchError, match=message):
        load_folder(str(tmp_path))


def test_folder_train_val_test_layout_is_the_split(tmp_path):
    _write_folder(tmp_path / "train", {"ig": 2, "lymphocyte": 1})
    _write_folder(tmp_path / "valid", {"ig": 1})
    _write_folder(tmp_path / "test", {"lymphocyte": 2})
    ds = load_folder(str(tmp_path))
    assert ds.class_names == CELL_CLASSES
    got = sorted(zip(ds.paths.tolist(), ds.split.tolist(), ds.labels.tolist()))
    assert got[0] == ("test/lymphocyte/lymphocyte_0.png", "test", 4)
    assert [s for _, s, _ in got].count("train") == 3 and [s for _, s, _ in got].count("val") == 1
    (tmp_path / "test" / "monocyte").mkdir()
    with pytest.raises(CellbenchError, match="class folder 'test/monocyte' has no images"):
        load_folder(str(tmp_path))


@pytest.mark.pbc
@pytest.mark.slow
def test_full_pbc_loads_with_its_split_in_under_30_seconds(pbc_root):
    start = time.perf_counter()
    ds = load_dataset(f"folder:{pbc_root}")
    seconds = time.perf_counter() - start
    assert ds.images.shape == (17072, 96, 96, 3) and ds.images.dtype == np.uint8
    assert ds.class_names == CELL_CLASSES
    assert ds.class_counts().tolist() == [1212, 3110, 1551, 2891, 1214, 1418, 3328, 2348]
    assert [int((ds.split == s).sum()) for s in ("train", "val", "test")] == [11952, 1707, 3413]
    assert seconds < 30, f"loading PBC took {seconds:.1f} s"


# -- bloodmnist ----------------------------------------------------------------------------------

def test_bloodmnist_loads_the_local_medmnist_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDMNIST_ROOT", str(tmp_path))
    np.savez_compressed(tmp_path / "bloodmnist_64.npz",
                        train_images=_images(8, size=64), train_labels=(np.arange(8) % 8).reshape(-1, 1),
                        val_images=_images(2, size=64), val_labels=np.array([[0], [1]]),
                        test_images=_images(2, size=64), test_labels=np.array([[2], [3]]))
    ds = load_dataset("bloodmnist:64")
    assert ds.images.shape == (12, 64, 64, 3) and ds.class_names == CELL_CLASSES
    assert ds.source == "bloodmnist:64" and [int((ds.split == s).sum()) for s in ("train", "val", "test")] == [8, 2, 2]


def test_bloodmnist_without_size_uses_the_file_already_there(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDMNIST_ROOT", str(tmp_path))
    np.savez(tmp_path / "bloodmnist.npz", train_images=_images(8, size=28), train_labels=np.arange(8).reshape(-1, 1))
    ds = load_dataset("bloodmnist")
    assert ds.source == "bloodmnist:28" and ds.images.shape == (8, 28, 28, 3)


def test_bloodmnist_offline_without_medmnist_says_how_to_get_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDMNIST_ROOT", str(tmp_path))
    monkeypatch.setitem(sys.modules, "medmnist", None)  # import medmnist -> ImportError
    with pytest.raises(CellbenchError) as info:
        load_bloodmnist("28")
    msg = str(info.value)
    assert "bloodmnist.npz not found" in msg and "zenodo.org" in msg and "npz:PATH" in msg and str(tmp_path) in msg


def test_bloodmnist_download_failure_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDMNIST_ROOT", str(tmp_path))

    def offline(**kwargs):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setitem(sys.modules, "medmnist", types.SimpleNamespace(BloodMNIST=offline))
    with pytest.raises(CellbenchError, match=r"bloodmnist:128: download failed \(OSError: Temporary failure.*bloodmnist_128\.npz"):
        load_bloodmnist("128")


@pytest.mark.parametrize("arg", ["32", "big"])
def test_bloodmnist_bad_size(arg):
    with pytest.raises(CellbenchError, match="SIZE must be one of 28, 64, 128, 224"):
        load_bloodmnist(arg)


@pytest.mark.parametrize("bad", ["../outside.png", "ABSOLUTE", "../../../../etc/passwd", "ig/../../outside.png"])
def test_folder_splits_csv_path_outside_the_folder_is_refused(tmp_path, bad):
    root = tmp_path / "data"
    _write_folder(root, {"ig": 2})
    cv2.imwrite(str(tmp_path / "outside.png"), np.zeros((12, 12, 3), np.uint8))
    path = str(tmp_path / "outside.png") if bad == "ABSOLUTE" else bad
    _write_splits(root, [("ig/ig_0.png", "ig", "train"), (path, "ig", "test")])
    with pytest.raises(CellbenchError, match="SPLITS.csv line 3: path outside the folder"):
        load_folder(str(root))


def test_folder_splits_csv_symlink_leaving_the_folder_is_refused(tmp_path):
    root = tmp_path / "data"
    _write_folder(root, {"ig": 2})
    cv2.imwrite(str(tmp_path / "outside.png"), np.zeros((12, 12, 3), np.uint8))
    (root / "ig" / "link.png").symlink_to(tmp_path / "outside.png")
    _write_splits(root, [("ig/ig_0.png", "ig", "train"), ("ig/link.png", "ig", "test")])
    with pytest.raises(CellbenchError, match="SPLITS.csv line 3: path outside the folder"):
        load_folder(str(root))


def test_folder_splits_csv_not_utf8_is_one_line(tmp_path):
    _write_folder(tmp_path, {"ig": 1})
    (tmp_path / "SPLITS.csv").write_bytes(b"path,label,split\n\xff\xfe\x00ig/ig_0.png,ig,train\n")
    with pytest.raises(CellbenchError, match="SPLITS.csv: not UTF-8 text"):
        load_folder(str(tmp_path))


def test_npz_labels_with_gaps_and_no_class_names_are_refused_naming_the_empty_classes(tmp_path):
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 500])
    np.savez(tmp_path / "gaps.npz", images=_images(8), labels=labels)
    with pytest.raises(CellbenchError, match=r"labels 7\.\.499 have no images.*class_names"):
        load_npz(str(tmp_path / "gaps.npz"))
    names = np.array([f"c{i}" for i in range(501)])
    np.savez(tmp_path / "named.npz", images=_images(8), labels=labels, class_names=names)
    assert load_npz(str(tmp_path / "named.npz")).num_classes == 501  # named: the user means it
