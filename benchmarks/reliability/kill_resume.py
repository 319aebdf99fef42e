"""kill -9 a small real ``cellbench run`` at random moments, ``--resume`` it, and check the store.

Repeats the kill/resume part of the attack on main (issue 15) so that it stays true:

1. one unkilled run of a tiny matrix (synthetic cells, two simple_cnn cells, 1 epoch, two shifts at
   two severities, 32 px) gives the reference scores and the time a whole run takes;
2. N times: the same run starts in a fresh folder and shift cache, in its own process group, and is
   SIGKILLed (the whole group) after a random share of that time (``--seed``), then
   ``cellbench run --resume`` finishes it;
3. each store is checked: ``PRAGMA integrity_check`` is ok, one run row, every cell ``done``, every
   (cell, split, shift, severity) row exactly once, and the scores equal the reference run's.

Prints one line per trial and ``k/N resumes intact``; exits 1 if any trial failed (the runs and
their logs are then kept). One whole run takes 25-45 s on 2 busy CPU cores (CPU only, so scores
are bit-identical); a trial is a killed part plus the resumed rest, so ``--n 3`` takes ~3 minutes::

    python benchmarks/reliability/kill_resume.py --n 3
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]

MATRIX = """
name = "killresume"
data = "synthetic:400"
image_size = 32
seeds = [0]
models = ["simple_cnn"]
augmentations = ["none", "simple"]
[train]
epochs = 1
batch_size = 32
[shifts]
include = ["defocus_blur", "brightness_down"]
severities = [1, 3]
max_images = 64
"""
N_CELLS = 2
ROWS_PER_CELL = 2 + 2 * 2  # clean val and test, then each shift x severity on the test split


def _kill_test_helpers():
    """``_status`` (cell counts by status) and ``_rows`` (scores joined to cells, sorted) from the
    kill -9 test, so the script and the test read the store the same way."""
    path = REPO / "tests" / "bench" / "test_resume_kill.py"
    spec = importlib.util.spec_from_file_location("cellbench_test_resume_kill", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._status, module._rows


_status, _rows = _kill_test_helpers()


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "CELLBENCH_CACHE": str(cache), "CELLBENCH_NO_ENTRY_POINTS": "1",
            "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def _start(matrix: Path, out: Path, cache: Path, log: Path, resume: bool) -> subprocess.Popen:
    """``cellbench run`` in a new session, so one killpg takes its whole process group."""
    cmd = [sys.executable, "-c", "from robustbench_cells.cli.main import main; main()",
           "run", str(matrix), "--out", str(out), "-q"] + (["--resume"] if resume else [])
    return subprocess.Popen(cmd, env=_env(cache), stdout=subprocess.DEVNULL, stderr=open(log, "ab"),
                            start_new_session=True)


def _run_to_end(matrix: Path, out: Path, cache: Path, log: Path, resume: bool, timeout: float) -> int:
    proc = _start(matrix, out, cache, log, resume)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return -1


def _check_store(db: Path, reference: list[tuple]) -> list[str]:
    """What is wrong with the finished store at *db* (empty when intact)."""
    if not db.exists():
        return ["no results.sqlite"]
    problems = []
    con = sqlite3.connect(db)
    try:
        integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
        if integrity != "ok":
            problems.append(f"integrity_check: {integrity}")
        runs = con.execute("SELECT count(*) FROM runs").fetchone()[0]
        if runs != 1:
            problems.append(f"{runs} run rows")
        dups = con.execute("SELECT count(*) FROM (SELECT 1 FROM scores GROUP BY cell_key, split, shift, severity"
                           " HAVING count(*) > 1)").fetchone()[0]
        if dups:
            problems.append(f"{dups} (cell, split, shift, severity) rows stored more than once")
    finally:
        con.close()
    status = _status(db)
    if status != {"done": N_CELLS}:
        problems.append(f"cell status {status}")
    rows = _rows(db)
    if len(rows) != N_CELLS * ROWS_PER_CELL:
        problems.append(f"{len(rows)} score rows, expected {N_CELLS * ROWS_PER_CELL}")
    if rows != reference:
        differ = sum(a != b for a, b in zip(rows, reference)) + abs(len(rows) - len(reference))
        problems.append(f"{differ} score rows differ from the unkilled run")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10, help="kill/resume trials (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments (default 0)")
    parser.add_argument("--workdir", type=Path,
                        help="where the runs go (default: a temporary folder, removed when every trial is intact)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one run may take (default 600)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="cellbench-killresume-"))
    work.mkdir(parents=True, exist_ok=True)
    matrix = work / "killresume.toml"
    matrix.write_text(MATRIX)
    ok = False
    try:
        t0 = time.monotonic()
        code = _run_to_end(matrix, work / "reference", work / "cache-reference", work / "reference.log", False,
                           args.timeout)
        full = time.monotonic() - t0
        if code != 0:
            print(f"the unkilled reference run failed (exit {code}); see {work / 'reference.log'}", file=sys.stderr)
            return 2
        reference = _rows(work / "reference" / "results.sqlite")
        print(f"reference run: {len(reference)} score rows in {full:.1f} s")
        rng = np.random.default_rng(args.seed)
        intact = 0
        for trial in range(args.n):
            out, cache, log = work / f"run{trial}", work / f"cache{trial}", work / f"run{trial}.log"
            at = float(rng.uniform(0.05, 0.95)) * full
            proc = _start(matrix, out, cache, log, resume=False)
            try:
                proc.wait(timeout=at)
                what = f"finished before the kill at {at:.1f} s"
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                done = _status(out / "results.sqlite").get("done", 0)
                what = f"killed at {at:.1f} s ({done}/{N_CELLS} cells done)"
            # killed before the run folder existed: there is nothing to resume, the user starts again
            resume = out.is_dir()
            code = _run_to_end(matrix, out, cache, log, resume, args.timeout)
            problems = [f"{'--resume' if resume else 'the restart'} exited {code} (see {log})"] if code else []
            problems += _check_store(out / "results.sqlite", reference)
            intact += not problems
            print(f"trial {trial + 1}: {what}; {'resumed' if resume else 'restarted (no run folder yet)'}: "
                  + ("intact" if not problems else "FAILED: " + "; ".join(problems)))
        print(f"{intact}/{args.n} resumes intact")
        ok = intact == args.n
        return 0 if ok else 1
    finally:
        if args.workdir is None and ok:  # a failure keeps its runs and logs for a look
            shutil.rmtree(work, ignore_errors=True)
        elif not ok:
            print(f"runs and logs kept in {work}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
