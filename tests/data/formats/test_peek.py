"""``peek``: each built-in format tells how many images of which size a spec holds, without decoding them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from robustbench_cells.data.formats import DataPeek, folder
from robustbench_cells.data.specs import load_dataset, peek_dataset


def _images(n: int, size: int = 8, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, size, size, channels), dtype=np.uint8)


def test_npz_peek_reads_headers_and_matches_the_load(tmp_path):
    path = tmp_path / "d.npz"
    np.savez_compressed(path, images=_images(10, 12), labels=np.arange(10) % 2)
    peek = peek_dataset(f"npz:{path}")
    ds = load_dataset(f"npz:{path}")
    assert peek == DataPeek(n=len(ds), height=12, width=12, load_bytes=ds.images.nbytes, n_test=None)


def test_npz_peek_counts_a_conversion_and_the_medmnist_splits(tmp_path):
    gray = tmp_path / "g.npz"
    np.savez(gray, images=_images(4, 8, 1), labels=np.arange(4) % 2)
    # stored (4, 8, 8, 1) and converted to (4, 8, 8, 3): both arrays exist while loading
    assert peek_dataset(f"npz:{gray}").load_bytes == 4 * 64 * 1 + 4 * 64 * 3
    med = tmp_path / "m.npz"
    np.savez(med, train_images=_images(6), train_labels=np.zeros((6, 1), int),
             test_images=_images(3), test_labels=np.zeros((3, 1), int))
    peek = peek_dataset(f"npz:{med}")
    assert (peek.n, peek.n_test) == (9, 3) and peek.load_bytes == 2 * 9 * 64 * 3  # the parts + their concatenation


def test_folder_peek_counts_files_and_the_own_test_split(tmp_path):
    for split, count in (("train", 3), ("test", 2)):
        (tmp_path / split / "ig").mkdir(parents=True)
        for i in range(count):
            cv2.imwrite(str(tmp_path / split / "ig" / f"{i}.png"), np.zeros((20, 10, 3), np.uint8))
    peek = peek_dataset(f"folder:{tmp_path}")
    assert peek == DataPeek(n=5, height=20, width=10, load_bytes=5 * 200 * 3, n_test=2)


def test_folder_peek_does_not_decode_every_image(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    for i in range(40):
        cv2.imwrite(str(tmp_path / "a" / f"{i}.png"), np.zeros((4, 4, 3), np.uint8))
    calls = []
    real = folder.decode_one
    monkeypatch.setattr(folder, "decode_one", lambda p: calls.append(p) or real(p))
    assert folder.peek(str(tmp_path)).n == 40
    assert len(calls) == 1  # the first decodable file gives the size


def test_synthetic_peek_knows_n_and_its_split():
    expected = DataPeek(n=500, height=96, width=96, load_bytes=500 * 96 * 96 * 3, n_test=100)
    assert peek_dataset("synthetic:500") == expected


@pytest.mark.parametrize("spec", ["npz:/nonexistent/x.npz", "folder:/nonexistent", "synthetic:abc",
                                  "bloodmnist:33", "no_such_format:1"])
def test_peek_of_a_bad_spec_is_none_and_leaves_the_error_to_the_load(spec):
    assert peek_dataset(spec) is None


def test_bloodmnist_peek_uses_the_local_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDMNIST_ROOT", str(tmp_path))
    assert peek_dataset("bloodmnist:28") is None  # not downloaded yet: nothing to count
    np.savez(tmp_path / "bloodmnist.npz", train_images=_images(8, 28), train_labels=np.arange(8).reshape(-1, 1))
    assert peek_dataset("bloodmnist:28").n == 8
