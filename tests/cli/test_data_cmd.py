"""``cellbench data inspect``: JSON on stdout, pictures, --clean, and one-line errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from robustbench_cells.data.inspection.planted import near_copies


@pytest.fixture
def sample_npz(pbc_sample, tmp_path):
    """pbc_sample with an exact copy of image 5 (as another class) and a near copy of image 40."""
    images = np.concatenate([pbc_sample, pbc_sample[[5]], near_copies(pbc_sample[[40]], np.random.default_rng(0))])
    labels = np.r_[np.repeat(np.arange(8), 32), 3, 1]
    path = tmp_path / "sample.npz"
    np.savez(path, images=images, labels=labels)
    return path


def test_json_is_pure_and_indices_follow_the_npz_order(cli, sample_npz, tmp_path):
    code, out, err = cli("data", "inspect", f"npz:{sample_npz}", "--out", tmp_path / "pics", "--json")
    assert code == 0, err
    report = json.loads(out)  # nothing but the JSON object on stdout
    assert [c["name"] for c in report["classes"]][:2] == ["basophil", "eosinophil"]
    assert report["classes"][3]["count"] == 33
    assert report["exact_duplicates"] == [[5, 256]]
    assert report["label_conflicts"]["exact"] == [[5, 256]]
    assert [40, 257] in report["near_duplicates"]
    scores = [o["score"] for o in report["outliers"]]
    assert scores == sorted(scores, reverse=True)
    for name in ("class_balance.png", "outliers.png", "near_duplicates.png", "exact_duplicates.png", "report.json"):
        assert (tmp_path / "pics" / name).stat().st_size > 0, name


def test_tables_and_clean_copy(cli, sample_npz, tmp_path):
    before = sample_npz.read_bytes()
    clean = tmp_path / "clean.npz"
    code, out, err = cli("data", "inspect", str(sample_npz), "--out", tmp_path / "pics", "--clean", clean)
    assert code == 0, err
    assert "imbalance ratio" in out and "exact duplicates" in out and "clean copy" in out
    assert sample_npz.read_bytes() == before  # the input is never touched
    rows = list(csv.DictReader(open(tmp_path / "clean.removed.csv")))
    reasons = {int(r["index"]): r["reason"] for r in rows}
    assert reasons[256].startswith("exact duplicate of #5") and reasons[257].startswith("near duplicate of #40")
    with np.load(clean) as z:
        assert len(z["images"]) == 258 - len(rows)


def test_default_out_folder_is_named_after_the_data_set(cli, sample_npz, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("data", "inspect", f"npz:{sample_npz}", "--json")
    assert code == 0, err
    assert (tmp_path / "inspect-sample" / "report.json").is_file()


@pytest.mark.parametrize("args, message", [
    (["npz:/no/such/file.npz"], "/no/such/file.npz"),
    (["nosuchsource:1"], "unknown data set"),
    (["SAMPLE", "--fence", "0"], "--fence must be > 0"),
    (["SAMPLE", "--top", "0"], "--top must be >= 1"),
    (["SAMPLE", "--clean", "SAMPLE"], "already exists"),
])
def test_bad_input_is_one_line_exit_2(cli, tmp_path, args, message):
    sample = tmp_path / "tiny.npz"
    np.savez(sample, images=np.zeros((4, 16, 16, 3), np.uint8), labels=np.zeros(4, np.int64))
    args = [str(sample) if a == "SAMPLE" else a for a in args]
    code, out, err = cli("data", "inspect", *args, "--out", tmp_path / "pics")
    assert code == 2
    assert message in err and err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err + out


def test_clean_inside_input_folder_is_refused(cli, tmp_path):
    import cv2

    for cls in ("basophil", "eosinophil"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "data" / cls / "a.png"), np.zeros((16, 16, 3), np.uint8))
    code, _, err = cli("data", "inspect", f"folder:{tmp_path / 'data'}", "--clean", tmp_path / "data" / "clean")
    assert code == 2 and "inside the input" in err
