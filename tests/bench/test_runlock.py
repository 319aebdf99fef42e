"""One live run per folder; stale locks and half-written files from a kill never block --resume."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from robustbench_cells.bench.matrix import load_matrix
from robustbench_cells.bench.runlock import LOCK_FILENAME, remove_partial_files, run_lock
from robustbench_cells.bench.runner import RunOptions, run_matrix
from robustbench_cells.bench.store import STORE_FILENAME
from robustbench_cells.errors import CellbenchError
from tests.bench.test_runner import matrix_file, tiny_env  # noqa: F401 - the tiny plugins and cache


def test_a_live_lock_refuses_and_is_released(tmp_path):
    with run_lock(tmp_path):
        assert (tmp_path / LOCK_FILENAME).read_text().split() == [socket.gethostname(), str(os.getpid())]
        with pytest.raises(CellbenchError, match=r"another cellbench run \(pid \d+\) is using this folder"):
            with run_lock(tmp_path):
                pass
    assert not (tmp_path / LOCK_FILENAME).exists()


def test_a_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / LOCK_FILENAME).write_text(f"{socket.gethostname()} {int(dead.stdout)}")
    with run_lock(tmp_path):
        assert (tmp_path / LOCK_FILENAME).read_text().endswith(str(os.getpid()))


def test_a_second_run_on_a_live_folder_is_refused_before_loading(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with run_lock(out):  # stands for the first driver, still loading its data
        with pytest.raises(CellbenchError, match="another cellbench run"):
            run_matrix(load_matrix(matrix_file(tmp_path)), RunOptions(out=out))


def test_resume_of_a_folder_killed_while_loading_starts_afresh_and_cleans_leftovers(tmp_path):
    out = tmp_path / "out"
    (out / "cells" / "abc").mkdir(parents=True)
    half = out / "cells" / "abc" / "model.keras.k2j4h1.keras"
    half.write_bytes(b"half")
    keep = out / "cells" / "abc" / "model.keras"
    keep.write_bytes(b"whole")
    (out / "run.log").write_text("start\n")
    assert not (out / STORE_FILENAME).exists()
    result = run_matrix(load_matrix(matrix_file(tmp_path)), RunOptions(out=out, resume=True))
    assert result.done == result.total > 0
    assert not half.exists() and keep.exists()
    assert not (out / LOCK_FILENAME).exists()


def test_remove_partial_files_keeps_finished_files(tmp_path):
    cell = tmp_path / "cells" / "k"
    cell.mkdir(parents=True)
    for name in ("model.keras", "probs.npz", "meta.json", "notes.txt", "probs.npz.x1y2.npz", "meta.json.q.tmp"):
        (cell / name).write_text("x")
    removed = {p.name for p in remove_partial_files(tmp_path)}
    assert removed == {"probs.npz.x1y2.npz", "meta.json.q.tmp"}
    assert sorted(p.name for p in cell.iterdir()) == ["meta.json", "model.keras", "notes.txt", "probs.npz"]


def test_a_shift_returning_the_wrong_shape_stops_the_run_before_any_cell(tmp_path):
    from robustbench_cells import plugins
    from tests.bench.test_runner import MATRIX, TINY

    plugin_dir = tmp_path / "bad"
    plugin_dir.mkdir()
    (plugin_dir / "bad_shift.py").write_text(
        "from robustbench_cells import hookimpl\n"
        "from robustbench_cells.registry import ShiftSpec\n"
        "def _crop(images, level, rng):\n"
        "    return images[:, 1:]\n"
        "@hookimpl\n"
        "def register_shifts(register):\n"
        "    register(ShiftSpec('tiny_crop', 'geometric', _crop, (1, 2, 3, 4, 5)))\n")
    plugins.configure(plugins_dirs=[TINY, plugin_dir])
    out = tmp_path / "out"
    with pytest.raises(CellbenchError, match="tiny_crop.*expected uint8"):
        run_matrix(load_matrix(matrix_file(tmp_path, MATRIX)), RunOptions(out=out))
    from robustbench_cells.bench.store import ResultStore

    with ResultStore(out) as store:
        statuses = [c.status for c in store.cells()]
    assert statuses and set(statuses) == {"pending"}  # the cells are known, none was trained
