"""Where cells run: in this process, in worker processes (``--jobs N``) or as Ray tasks.

Every executor runs the same pure work function, :func:`~robustbench_cells.bench.cellrun.execute_cell`, and yields a
:class:`CellOutcome` per cell as it completes. Workers never touch the results store: they train,
save the model and the predicted probabilities into the cell's folder and send the scores back;
only the driver (``runner.py``) writes SQLite. That keeps the store single-writer and crash safe.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from robustbench_cells import quiet_tf
from robustbench_cells.errors import CellbenchError, one_line

# The cell's work and data types live in cellrun; re-exported here for the callers that import them from
# the executors (the names were defined here before the split).
from robustbench_cells.bench.cellrun import (  # noqa: F401
    PROBS_FILENAME,
    SHIFT_SPLIT,
    TARGET_SPLIT,
    CellJob,
    CellOutcome,
    PreparedData,
    ProgressFn,
    evaluation_sets,
    execute_cell,
    probs_key,
    recipe_epochs,
    save_probs_atomic,
    score_rows,
    shifted_images,
)


# -- executors -------------------------------------------------------------------------------------
class LocalExecutor:
    """Cells one after another in this process (rich progress down to the epoch)."""

    name = "local"

    def __init__(self, data: PreparedData, progress: ProgressFn | None = None) -> None:
        self.data = data
        self.progress = progress

    def run(self, jobs: Sequence[CellJob], on_start: Callable[[CellJob], None] | None = None) -> Iterator[CellOutcome]:
        for job in jobs:
            if on_start:
                on_start(job)
            yield execute_cell(job, self.data, self.progress)


_worker_data: PreparedData | None = None


def _process_init(data_dir: str, plugin_dirs: list[str]) -> None:
    global _worker_data
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    quiet_tf.install()
    from robustbench_cells import plugins

    # plugin_dirs already holds the driver's env folders too: loading them twice would clash.
    os.environ.pop(plugins.PLUGINS_DIR_ENV, None)
    plugins.configure(plugins_dirs=plugin_dirs)
    # TensorFlow's thread pools are left at their defaults on purpose: fewer intra-op threads change
    # the order of float reductions, and the same seed must give the same scores on every executor.
    _worker_data = PreparedData.load(Path(data_dir))


def _process_work(job: CellJob) -> CellOutcome:
    assert _worker_data is not None
    return execute_cell(job, _worker_data)


class ProcessExecutor:
    """``--jobs N`` local worker processes (spawned, so no TensorFlow state is forked)."""

    name = "processes"

    def __init__(self, data_dir: Path, jobs: int, plugin_dirs: Sequence[str] = ()) -> None:
        self.data_dir = data_dir
        self.jobs = jobs
        self.plugin_dirs = list(plugin_dirs)

    def run(self, jobs: Sequence[CellJob], on_start: Callable[[CellJob], None] | None = None) -> Iterator[CellOutcome]:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(self.jobs, mp_context=ctx, initializer=_process_init,
                                 initargs=(str(self.data_dir), self.plugin_dirs)) as pool:
            pending = {}
            queue = list(jobs)
            while queue or pending:
                while queue and len(pending) < self.jobs:
                    job = queue.pop(0)
                    if on_start:
                        on_start(job)
                    try:
                        pending[pool.submit(_process_work, job)] = job
                    except Exception as exc:  # the pool broke (a worker was killed, e.g. for memory)
                        yield CellOutcome(job.key, "failed", error=f"worker process failed: {one_line(exc)}")
                if not pending:
                    continue
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    job = pending.pop(fut)
                    try:
                        yield fut.result()
                    except Exception as exc:  # the worker process died (e.g. killed for memory)
                        yield CellOutcome(job.key, "failed", error=f"worker process failed: {one_line(exc)}")


class RayExecutor:
    """Each cell a Ray task (``num_cpus`` per task = 1); a local Ray unless ``address`` is given.

    With a remote cluster the run folder must be on storage the workers share (models and
    probabilities are written into it); the data travels through the Ray object store.
    """

    name = "ray"

    def __init__(self, data: PreparedData, jobs: int, address: str | None = None,
                 plugin_dirs: Sequence[str] = ()) -> None:
        self.data = data
        self.jobs = jobs
        self.address = address
        self.plugin_dirs = list(plugin_dirs)

    def run(self, jobs: Sequence[CellJob], on_start: Callable[[CellJob], None] | None = None) -> Iterator[CellOutcome]:
        try:
            import ray
        except ImportError:
            raise CellbenchError("--executor ray: Ray is not installed (pip install 'robustbench-cells[ray]')") from None
        started = False
        if not ray.is_initialized():
            env = {"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
                                "CELLBENCH_CACHE": os.environ.get("CELLBENCH_CACHE", ""),
                                "CELLBENCH_PLUGINS_DIR": os.pathsep.join(self.plugin_dirs),
                                "CELLBENCH_NO_ENTRY_POINTS": os.environ.get("CELLBENCH_NO_ENTRY_POINTS", "")}}
            env["env_vars"] = {k: v for k, v in env["env_vars"].items() if v}
            try:
                if self.address:
                    ray.init(address=self.address, runtime_env=env, log_to_driver=False)
                else:
                    ray.init(num_cpus=self.jobs, include_dashboard=False, runtime_env=env, log_to_driver=False)
            except Exception as exc:
                raise CellbenchError(f"--executor ray: could not start/connect Ray ({one_line(exc)})") from None
            started = True
        try:
            remote = ray.remote(num_cpus=1, max_retries=0)(_ray_work)
            data_ref = ray.put(self.data)
            refs = {}
            for job in jobs:
                if on_start:
                    on_start(job)
                refs[remote.remote(job, data_ref)] = job
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                for ref in ready:
                    job = refs.pop(ref)
                    try:
                        yield ray.get(ref)
                    except Exception as exc:  # the task's worker died
                        yield CellOutcome(job.key, "failed", error=f"ray task failed: {one_line(exc)}")
        finally:
            if started:
                ray.shutdown()


def _ray_work(job: CellJob, data: PreparedData) -> CellOutcome:
    # CELLBENCH_PLUGINS_DIR travels in the runtime env, so local plugins resolve in the worker too.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    quiet_tf.install()
    return execute_cell(job, data)
