"""bench.samples: the run folder's sample images for reports: written once, atomically, read defensively."""

from __future__ import annotations

import numpy as np

from robustbench_cells.bench.samples import SAMPLES_FILE, load_samples, save_samples
from robustbench_cells.data.dataset import Dataset

CLASSES = [f"c{i}" for i in range(8)]


def _base(n: int = 20, size: int = 16) -> Dataset:
    rng = np.random.default_rng(0)
    return Dataset(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), np.arange(n) % 3, CLASSES)


def test_one_image_per_class_in_turn_round_trips(tmp_path):
    base = _base()
    path = save_samples(tmp_path, base, count=5)
    assert path == tmp_path / SAMPLES_FILE and [p.name for p in tmp_path.iterdir()] == [SAMPLES_FILE]
    images, labels = load_samples(tmp_path)
    assert labels.tolist() == [0, 1, 2, 0, 1]  # every class first, then the second of each
    np.testing.assert_array_equal(images, base.images[[0, 1, 2, 3, 4]])


def test_an_existing_file_is_kept(tmp_path):
    save_samples(tmp_path, _base())
    first = load_samples(tmp_path)
    save_samples(tmp_path, Dataset(np.zeros((4, 8, 8, 3), np.uint8), np.zeros(4, int), CLASSES))
    np.testing.assert_array_equal(load_samples(tmp_path)[0], first[0])


def test_empty_base_writes_nothing(tmp_path):
    empty = Dataset(np.zeros((0, 8, 8, 3), np.uint8), np.zeros(0, int), CLASSES)
    assert save_samples(tmp_path, empty) is None and not (tmp_path / SAMPLES_FILE).exists()


def test_missing_damaged_or_foreign_files_read_as_none(tmp_path):
    assert load_samples(None) is None and load_samples(tmp_path) is None
    save_samples(tmp_path, _base())
    path = tmp_path / SAMPLES_FILE
    path.write_bytes(path.read_bytes()[:100])  # truncated
    assert load_samples(tmp_path) is None
    path.write_bytes(b"not a zip")
    assert load_samples(tmp_path) is None
    np.savez(path, images=np.zeros((2, 8, 8, 3), np.float32), labels=np.zeros(2))  # wrong dtype
    assert load_samples(tmp_path) is None
    np.savez(path, pictures=np.zeros((2, 8, 8, 3), np.uint8))  # wrong keys
    assert load_samples(tmp_path) is None
    np.savez(path, images=np.zeros((2, 8, 8, 3), np.uint8), labels=np.array(3))  # 0-d labels
    assert load_samples(tmp_path) is None


def test_a_damaged_file_is_replaced(tmp_path):
    (tmp_path / SAMPLES_FILE).write_bytes(b"garbage")
    save_samples(tmp_path, _base())
    assert load_samples(tmp_path)[0].shape == (8, 16, 16, 3)
