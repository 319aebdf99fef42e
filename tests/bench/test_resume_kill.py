"""kill -9 a real ``cellbench run`` at several points, then --resume: nothing lost, duplicated or half-written.

The run is a subprocess on tiny plugins (a 1-conv model on 32 px blobs), killed (1) while the first
cell trains and (2) right after a cell was committed (while the next one trains); then ``--resume``
finishes it. The result must equal an uninterrupted run, row for row.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robustbench_cells import plugins
from robustbench_cells.bench.matrix import load_matrix
from robustbench_cells.bench.runner import RunOptions, run_matrix

TINY = Path(__file__).parent / "tiny_plugins"
MATRIX = """
name = "killme"
data = "tinyblobs:200"
image_size = 32
seeds = [0]
models = ["tiny_cnn", { name = "tiny_cnn", options = { width = 6 } }]
augmentations = ["none", "tiny_flip"]
[train]
epochs = 2
batch_size = 32
[shifts]
include = ["tiny_*"]
severities = [1, 3]
max_images = 32
[[ensembles]]
name = "pair"
members = ["tiny_cnn/none", "tiny_cnn/tiny_flip"]
"""
N_CELLS = 5
ROWS_PER_CELL = 2 + 2 * 2


def _status(db: Path) -> dict[str, int]:
    if not db.exists():
        return {}
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        rows = con.execute("SELECT status, count(*) FROM cells GROUP BY status").fetchall()
        con.close()
    except sqlite3.OperationalError:  # tables not created yet
        return {}
    return dict(rows)


def _start(matrix: Path, out: Path, env: dict[str, str], resume: bool) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "from robustbench_cells.cli.main import main; main()",
           "--plugins-dir", str(TINY), "run", str(matrix), "--out", str(out), "-q"]
    if resume:
        cmd.append("--resume")
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_when(proc: subprocess.Popen, condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"run ended before the kill point: {proc.stderr.read().decode()[-2000:]}")
        if condition():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    pytest.fail("kill point never reached")


def _rows(db: Path) -> list[tuple]:
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT c.model, c.augmentation, c.seed, s.split, s.shift, s.severity, s.accuracy, s.balanced_accuracy,"
        " s.per_class_json, s.mean_confidence, s.ece, s.n FROM scores s JOIN cells c ON c.key = s.cell_key"
        " ORDER BY 1, 2, 3, 4, 5, 6").fetchall()
    con.close()
    return rows


@pytest.mark.slow
def test_kill_9_then_resume_finishes_with_identical_rows(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("CELLBENCH_CACHE", str(cache))
    env = {**os.environ, "CELLBENCH_CACHE": str(cache), "CELLBENCH_NO_ENTRY_POINTS": "1",
           "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    matrix = tmp_path / "killme.toml"
    matrix.write_text(MATRIX)
    out = tmp_path / "run"
    db = out / "results.sqlite"
    log = out / "run.log"

    # (1) mid-training of the first cell: the executor started, nothing committed yet
    proc = _start(matrix, out, env, resume=False)
    _kill_when(proc, lambda: log.exists() and "executor" in log.read_text())
    assert _status(db).get("done", 0) == 0
    # (2) right after the first commit: the second cell is training
    proc = _start(matrix, out, env, resume=True)
    _kill_when(proc, lambda: _status(db).get("done", 0) >= 1)
    # every committed cell has all of its rows, every other cell none
    con = sqlite3.connect(db)
    for key, status in con.execute("SELECT key, status FROM cells"):
        n = con.execute("SELECT count(*) FROM scores WHERE cell_key = ?", (key,)).fetchone()[0]
        assert n == (ROWS_PER_CELL if status == "done" else 0), (key, status, n)
    con.close()
    # resume to the end
    proc = _start(matrix, out, env, resume=True)
    assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()[-2000:]
    assert _status(db) == {"done": N_CELLS}
    rows = _rows(db)
    assert len(rows) == N_CELLS * ROWS_PER_CELL
    assert len(set(r[:6] for r in rows)) == len(rows)  # no duplicates

    # the same matrix uninterrupted (in this process) gives the same rows
    plugins.configure(plugins_dirs=[TINY])
    reference = run_matrix(load_matrix(matrix), RunOptions(out=tmp_path / "reference"))
    assert reference.done == N_CELLS
    assert _rows(reference.run_dir / "results.sqlite") == rows
