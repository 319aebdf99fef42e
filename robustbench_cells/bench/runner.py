"""The driver of a benchmark run: run folder, data, shifted sets, cells, and the results store.

Layout of a run folder::

    RUN_DIR/results.sqlite          runs / cells / scores (the only thing reports read)
    RUN_DIR/matrix.toml             copy of the matrix file
    RUN_DIR/run.log                 one line per event (start, cell done/failed, resume)
    RUN_DIR/samples.npz             a few clean shift-subset images for reports (bench/samples.py)
    RUN_DIR/cells/<key>/            model.keras + meta.json (train.save_model) and probs.npz
    RUN_DIR/prepared/               the run's arrays, only for --jobs N worker processes

Crash safety: the driver is the only writer. A cell's scores and its ``done`` status go into the
store in one transaction, the probabilities file is renamed into place before that, and ``--resume``
redoes every cell that is not ``done``; a ``kill -9`` at any moment therefore loses at most the
cells in flight and never leaves half-written rows.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robustbench_cells import plugins
from robustbench_cells.bench.adapting import adapt_cell
from robustbench_cells.bench.cellrun import (
    PROBS_FILENAME, SHIFT_SPLIT, CellJob, CellOutcome, PreparedData, probs_key, score_rows,
)
from robustbench_cells.bench.executors import LocalExecutor, ProcessExecutor, RayExecutor
from robustbench_cells.bench.matrix import Matrix, cell_label, expand_cells, select_cells
from robustbench_cells.bench.rundata import load_targets, prepare_run_data, stratified_subset, target_facts
from robustbench_cells.bench.runlock import remove_partial_files, run_lock
from robustbench_cells.bench.samples import save_samples
from robustbench_cells.bench.scoring_cells import score_cell
from robustbench_cells.bench.store import STORE_FILENAME, Cell, ResultStore
from robustbench_cells.errors import CellbenchError

RUNS_ROOT = Path("runs")


class RunObserver:
    """Callbacks the runner makes while it works (the CLI draws rich progress from them). No-ops here."""

    def message(self, text: str) -> None:
        """A one-line status message (data loaded, resuming, ...)."""

    def shifts_progress(self, done: int, total: int, current: str) -> None:
        """Shifted test sets generated so far."""

    def cells_start(self, total: int, already_done: int) -> None:
        """The cell loop starts: *total* selected cells, *already_done* of them finished earlier."""

    def cell_start(self, label: str) -> None:
        """A cell was handed to the executor."""

    def cell_event(self, event: dict[str, Any]) -> None:
        """Epoch/loss or evaluation progress of the running cell (local executor only)."""

    def cell_end(self, label: str, outcome: CellOutcome) -> None:
        """A cell finished (``outcome.status`` is ``done`` or ``failed``)."""


@dataclass
class RunOptions:
    """How to run a matrix (command-line options; ``None`` means the matrix's own setting)."""

    out: Path | None = None
    resume: bool = False
    executor: str | None = None
    jobs: int | None = None
    ray_address: str | None = None
    cells: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    """What a run ended with."""

    run_dir: Path
    total: int
    done: int
    failed: list[tuple[str, str]]  # (cell label, error)
    seconds: float


# -- run folder ------------------------------------------------------------------------------------
def default_run_dir(matrix: Matrix, resume: bool, root: Path = RUNS_ROOT) -> Path:
    """``runs/<name>-<UTC timestamp>``; with ``--resume`` the newest existing ``runs/<name>[-*]``."""
    if resume:
        candidates = [p for p in [root / matrix.name, *root.glob(f"{matrix.name}-*")]
                      if (p / STORE_FILENAME).is_file()]
        if not candidates:
            raise CellbenchError(f"--resume: no earlier run of {matrix.name!r} under {root}/ (give --out RUN_DIR)")
        return max(candidates, key=lambda p: (p / STORE_FILENAME).stat().st_mtime)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return root / f"{matrix.name}-{stamp}"


def versions() -> dict[str, str]:
    """What a run row records: :func:`robustbench_cells.training.artefacts.versions` and the shift suite's version."""
    from robustbench_cells.bench.shiftsets import SUITE_VERSION
    from robustbench_cells.training.artefacts import versions as library_versions

    return {**library_versions(), "shift_suite": str(SUITE_VERSION)}


class RunLog:
    """Appends timestamped lines to ``RUN_DIR/run.log`` (flushed at once: it must survive kill -9)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, text: str) -> None:
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with open(self.path, "a") as f:
            f.write(f"{stamp} {text}\n")


# -- data ------------------------------------------------------------------------------------------
def prepare_data(matrix: Matrix) -> tuple[PreparedData, dict[str, Any]]:
    """Load, resize and split the data set; pick the shift subset (bench/rundata.py). Returns data and facts."""
    run_data = prepare_run_data(matrix.data, matrix.image_size, matrix.split_seed, matrix.split_fractions,
                                matrix.max_shift_images, matrix.shift_seed)
    if len(run_data.test) == 0 and matrix.shifts:
        raise CellbenchError(f"{matrix.data}: the test split is empty, so no shift can be scored")
    data = PreparedData.from_run_data(run_data)
    facts = run_data.facts()
    if matrix.targets:  # loaded and resized once per run; an unknown class name fails here, before any cell
        targets = load_targets(matrix.targets, matrix.image_size, facts["class_names"],
                               str(matrix.path) if matrix.path else "matrix")
        facts["targets"] = target_facts(targets)
        data.targets = targets
    return data, facts


def build_shift_sets(data: PreparedData, matrix: Matrix, observer: RunObserver) -> None:
    """Generate every shifted set once (into the shift cache) before any cell needs it."""
    if not matrix.shifts:
        return
    from robustbench_cells.bench.shiftsets import ShiftCache

    total = len(matrix.shifts) * len(matrix.severities)
    done = [0]

    def progress(shift: str, severity: int) -> None:
        done[0] += 1
        observer.shifts_progress(done[0], total, f"{shift} s{severity}")

    observer.shifts_progress(0, total, "")
    ShiftCache().build_all(data.shift_base.images, data.shift_fingerprint, matrix.shifts, matrix.severities,
                           seed=matrix.shift_seed, jobs=min(2, os.cpu_count() or 1), progress=progress)


# -- the run ---------------------------------------------------------------------------------------
def _check_same_run(store: ResultStore, config: dict[str, Any], run_dir: Path) -> None:
    run = store.run()
    assert run is not None
    old = run.config
    changed = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
    if changed:
        raise CellbenchError(f"--resume {run_dir}: the matrix or data differ from the stored run "
                             f"(changed: {', '.join(changed)}); start a new run with another --out")


def _plugin_dirs() -> list[str]:
    """Folders of the ``--plugins-dir`` plugins loaded here, so workers load the same plugins."""
    return sorted({str(Path(i.location).parent) for i in plugins.get_host().infos if i.source == "dir"})


def run_matrix(matrix: Matrix, options: RunOptions | None = None, observer: RunObserver | None = None) -> RunResult:
    """Run (or resume) *matrix*; returns counts and the failures. Writes everything into the run folder."""
    options = options or RunOptions()
    observer = observer or RunObserver()
    t_start = time.perf_counter()
    executor_name = options.executor or matrix.executor
    jobs = options.jobs or matrix.jobs
    run_dir = Path(options.out) if options.out else default_run_dir(matrix, options.resume)
    if (run_dir / STORE_FILENAME).exists() and not options.resume:
        raise CellbenchError(f"--out {run_dir}: already holds a run; add --resume to continue it or pick another folder")
    if options.resume and options.out and not (run_dir / STORE_FILENAME).exists() and not run_dir.is_dir():
        raise CellbenchError(f"--resume: {run_dir} holds no run (no {STORE_FILENAME})")
    if run_dir.exists() and not run_dir.is_dir():
        raise CellbenchError(f"--out {run_dir}: exists and is not a folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    # a folder without a store is a run killed while loading its data: --resume starts it afresh
    with run_lock(run_dir):
        return _run_locked(matrix, options, observer, run_dir, executor_name, jobs, t_start)


def _run_locked(matrix: Matrix, options: RunOptions, observer: RunObserver, run_dir: Path, executor_name: str,
                jobs: int, t_start: float) -> RunResult:
    log = RunLog(run_dir / "run.log")
    if options.resume:
        for leftover in remove_partial_files(run_dir):
            log(f"removed half-written {leftover.relative_to(run_dir)}")

    observer.message(f"loading data {matrix.data} ...")
    data, facts = prepare_data(matrix)
    config = {**matrix.config(), "data_facts": facts}
    with ResultStore(run_dir, create=True) as store:
        run = store.run()
        if run is None:
            if matrix.path is not None:
                shutil.copyfile(matrix.path, run_dir / "matrix.toml")
            run = store.create_run(matrix.name, config, versions(), matrix.data, facts["data_fingerprint"],
                                   facts["class_names"])
            log(f"start {matrix.name} data={matrix.data} fingerprint={facts['data_fingerprint']} dir={run_dir}")
        else:
            _check_same_run(store, config, run_dir)
            log(f"resume {matrix.name}")
        save_samples(run_dir, data.shift_base)  # for reports, also on resume of a run that predates the file
        cells = select_cells(expand_cells(matrix, facts["data_fingerprint"]), options.cells)
        store.add_cells(run.id, cells)
        status = {c.key: c.status for c in store.cells()}
        todo_train = [c for c in cells if c.config["kind"] == "train" and status[c.key] != "done"]
        todo_score = [c for c in cells if c.config["kind"] == "score" and status[c.key] != "done"]
        todo_ens = [c for c in cells if c.config["kind"] == "ensemble" and status[c.key] != "done"]
        todo_adapt = [c for c in cells if c.config["kind"] == "adapt" and status[c.key] != "done"]
        already = len(cells) - len(todo_train) - len(todo_score) - len(todo_ens) - len(todo_adapt)
        if options.resume:
            observer.message(f"resuming {run_dir}: {already} of {len(cells)} cells already done")
        if todo_train or todo_score or todo_adapt:
            build_shift_sets(data, matrix, observer)
        observer.cells_start(len(cells), already)
        outcomes: dict[str, CellOutcome] = {}
        if todo_train:
            for outcome in _execute(todo_train, data, matrix, options, executor_name, jobs, run_dir, store,
                                    observer, log):
                outcomes[outcome.key] = outcome
        # score-only cells in the driver, after training (which may use worker processes) and before
        # the ensembles and adapted cells that can name them
        for cell in todo_score:
            store.mark_running(cell.key)
            observer.cell_start(cell_label(cell))
            _record(store, cell, score_cell(cell, data, matrix, run_dir), observer, log)
        for cell in todo_ens:
            store.mark_running(cell.key)
            observer.cell_start(cell_label(cell))
            outcome = _ensemble(cell, store, data, run_dir)
            _record(store, cell, outcome, observer, log)
        for cell in todo_adapt:
            store.mark_running(cell.key)
            observer.cell_start(cell_label(cell))
            _record(store, cell, adapt_cell(cell, store, data, matrix, run_dir), observer, log)
        final = {c.key: c for c in store.cells()}
    failed = [(cell_label(final[c.key]), final[c.key].error or "") for c in cells if final[c.key].status == "failed"]
    done = sum(final[c.key].status == "done" for c in cells)
    seconds = time.perf_counter() - t_start
    log(f"end: {done} done, {len(failed)} failed of {len(cells)} cells in {seconds:.1f} s")
    return RunResult(run_dir, len(cells), done, failed, seconds)


def _record(store: ResultStore, cell: Cell, outcome: CellOutcome, observer: RunObserver, log: RunLog) -> None:
    label = cell_label(cell)
    if outcome.status == "done":
        store.finish_cell(cell.key, outcome.scores, params=outcome.params, model_path=outcome.model_path,
                          train_seconds=outcome.train_seconds, eval_seconds=outcome.eval_seconds,
                          epochs=outcome.epochs)
        log(f"done {label} key={cell.key} rows={len(outcome.scores)}")
    else:
        store.mark_failed(cell.key, outcome.error or "unknown error")
        log(f"failed {label} key={cell.key}: {outcome.error}")
    observer.cell_end(label, outcome)


def _execute(todo: list[Cell], data: PreparedData, matrix: Matrix, options: RunOptions, executor_name: str,
             jobs: int, run_dir: Path, store: ResultStore, observer: RunObserver,
             log: RunLog) -> Any:
    from robustbench_cells.bench.shiftsets import ShiftCache

    cache_root = str(ShiftCache().root)  # workers read the sets the driver built, wherever they run
    shift_sets = matrix.shift_sets
    by_key = {c.key: c for c in todo}
    cell_jobs = [CellJob(c.key, cell_label(c), c.config, str((run_dir / "cells" / c.key).resolve()), shift_sets,
                         matrix.shift_seed, cache_root, matrix.predict_batch_size) for c in todo]
    dirs = _plugin_dirs()  # worker processes build their own plugin host from the same files

    def on_start(job: CellJob) -> None:
        store.mark_running(job.key)
        observer.cell_start(job.label)

    if executor_name == "ray":
        data.training_stats()  # once here: Ray ships the data (with its statistics) to every worker
        executor: Any = RayExecutor(data, jobs, options.ray_address, dirs)
    elif jobs > 1:
        prepared = run_dir / "prepared"
        data.training_stats()  # once here, so no worker computes it again
        data.save(prepared)
        executor = ProcessExecutor(prepared, jobs, dirs)
    else:
        def on_event(event: dict[str, Any]) -> None:
            observer.cell_event(event)
            if event.get("stage") == "train" and event.get("epoch"):
                # one line per epoch: a long run can be followed with `tail -f RUN_DIR/run.log`
                extras = " ".join(f"{k}={event[k]:.4f}" for k in ("loss", "val_accuracy") if event.get(k) is not None)
                log(f"epoch {event['cell']} {event['epoch']}/{event.get('epochs') or '?'} {extras}".rstrip())

        executor = LocalExecutor(data, on_event)
    log(f"executor {executor.name} jobs={jobs} cells={len(cell_jobs)}")
    try:
        for outcome in executor.run(cell_jobs, on_start):
            _record(store, by_key[outcome.key], outcome, observer, log)
            yield outcome
    finally:
        if executor_name != "ray" and jobs > 1:
            shutil.rmtree(run_dir / "prepared", ignore_errors=True)


def _ensemble(cell: Cell, store: ResultStore, data: PreparedData, run_dir: Path) -> CellOutcome:
    """Average the members' stored probabilities; fails when a member is not done."""
    members = [store.cell(k) for k in cell.config["members"]]
    missing = [cell_label(m) for m in members if m.status != "done"]
    if missing:
        return CellOutcome(cell.key, "failed", error=f"ensemble member(s) not done: {', '.join(missing)}")
    t0 = time.perf_counter()
    arrays = []
    for m in members:
        path = run_dir / "cells" / m.key / PROBS_FILENAME
        if not path.is_file():
            return CellOutcome(cell.key, "failed", error=f"ensemble member {cell_label(m)}: {path} is missing")
        with np.load(path) as f:
            arrays.append({k: f[k] for k in f.files})
    keys = set(arrays[0])
    if any(set(a) != keys for a in arrays):
        return CellOutcome(cell.key, "failed", error="ensemble members were scored on different sets")
    probs = {k: np.mean([a[k] for a in arrays], axis=0).astype(np.float32) for k in sorted(keys)}
    cell_dir = run_dir / "cells" / cell.key
    cell_dir.mkdir(parents=True, exist_ok=True)
    from robustbench_cells.bench.cellrun import save_probs_atomic

    save_probs_atomic(cell_dir / PROBS_FILENAME, probs)
    scores = score_rows(cell.key, probs, data)
    params = sum(m.params or 0 for m in members) or None
    return CellOutcome(cell.key, "done", scores, params=params, model_path=None, train_seconds=0.0,
                       eval_seconds=time.perf_counter() - t0, epochs=None)


__all__ = ["RunObserver", "RunOptions", "RunResult", "run_matrix", "prepare_data", "stratified_subset",
           "default_run_dir", "probs_key", "SHIFT_SPLIT"]
