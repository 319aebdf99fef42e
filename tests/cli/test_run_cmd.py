"""``cellbench run``: success ends with the summary table, failures exit 1, bad input exits 2 in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY = Path(__file__).resolve().parents[1] / "bench" / "tiny_plugins"

MATRIX = """
name = "clitiny"
data = "tinyblobs:120"
image_size = 32
models = ["tiny_cnn", { name = "tiny_cnn", options = { fail = true } }]
augmentations = ["none"]
[train]
epochs = 1
batch_size = 32
[shifts]
include = ["tiny_dim"]
severities = [2]
max_images = 16
"""


@pytest.fixture(autouse=True)
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("CELLBENCH_CACHE", str(tmp_path / "cache"))


def test_run_records_failures_exits_1_and_prints_the_table(cli, tmp_path):
    matrix = tmp_path / "m.toml"
    matrix.write_text(MATRIX)
    out = tmp_path / "run"
    code, stdout, stderr = cli("--plugins-dir", TINY, "run", matrix, "--out", out, "-q")
    assert code == 1, stderr
    assert "1 of 2 cells failed" in stderr and "tiny model asked to fail" in stderr
    assert "tiny_cnn" in stdout and str(out) in stdout  # summary table, then the run folder
    assert (out / "results.sqlite").is_file()
    # resume: the done cell is skipped, the failed one is retried (and fails again)
    code, stdout, stderr = cli("--plugins-dir", TINY, "run", matrix, "--out", out, "--resume", "-q")
    assert code == 1 and "1 of 2 cells failed" in stderr
    assert (out / "run.log").read_text().count("done tiny_cnn/none/0") == 1


def test_only_good_cells_exit_0_with_progress(cli, tmp_path):
    matrix = tmp_path / "m.toml"
    matrix.write_text(MATRIX.replace(', { name = "tiny_cnn", options = { fail = true } }', ""))
    code, stdout, stderr = cli("--plugins-dir", TINY, "run", matrix, "--out", tmp_path / "run", "--cells", "tiny_cnn/*")
    assert code == 0, stderr
    assert "cell tiny_cnn/none/0 done" in stdout


@pytest.mark.parametrize("args, message", [
    (("--executor", "slurm"), "--executor: must be local or ray"),
    (("--data", "nosuchsource:1"), "unknown data set 'nosuchsource'"),
    (("--cells", "zzz/*"), "--cells zzz/*: matches no cell"),
])
def test_bad_options_exit_2_with_one_line(cli, tmp_path, args, message):
    matrix = tmp_path / "m.toml"
    matrix.write_text(MATRIX)
    code, _, stderr = cli("--plugins-dir", TINY, "run", matrix, "--out", tmp_path / "run", "-q", *args)
    assert code == 2 and message in stderr
    assert stderr.strip().count("\n") == 0 and "Traceback" not in stderr


def test_bad_matrix_exits_2_naming_file_and_key(cli, tmp_path):
    matrix = tmp_path / "bad.toml"
    matrix.write_text(MATRIX.replace('augmentations = ["none"]', 'augmentations = ["nonee"]'))
    code, _, stderr = cli("--plugins-dir", TINY, "run", matrix)
    assert code == 2
    assert "bad.toml: augmentations[0]: unknown augmentation 'nonee'" in stderr
    assert stderr.strip().count("\n") == 0
    code, _, stderr = cli("run", tmp_path / "missing.toml")
    assert code == 2 and "missing.toml: matrix file not found" in stderr


def test_bad_matrix_files_and_out_are_one_line(cli, tmp_path):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    code, _, err = cli("run", bad, "--quiet")
    assert code == 2 and "not UTF-8 text" in err and err.count("\n") == 1
    big = tmp_path / "big.toml"
    big.write_text('name = "big"\nimage_size = 100000\nmodels = ["simple_cnn"]\naugmentations = ["none"]\n')
    code, _, err = cli("run", big, "--quiet")
    assert code == 2 and "image_size: 100000 is above 1024" in err and err.count("\n") == 1
    ok = tmp_path / "ok.toml"
    ok.write_text('name = "ok"\ndata = "synthetic:40"\nmodels = ["simple_cnn"]\naugmentations = ["none"]\n')
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, _, err = cli("run", ok, "--out", afile, "--quiet")
    assert code == 2 and "exists and is not a folder" in err and err.count("\n") == 1
