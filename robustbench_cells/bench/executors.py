"""Where cells run: in this process, in worker processes (``--jobs N``) or as Ray tasks.

Every executor runs the same pure work function, :func:`execute_cell`, and yields a
:class:`CellOutcome` per cell as it completes. Workers never touch the results store: they train,
save the model and the predicted probabilities into the cell's folder and send the scores back;
only the driver (``runner.py``) writes SQLite. That keeps the store single-writer and crash safe.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robustbench_cells import quiet_tf
from robustbench_cells.atomic import atomic_path
from robustbench_cells.bench.scoring import score_probabilities
from robustbench_cells.bench.store import Score
from robustbench_cells.data.dataset import Dataset
from robustbench_cells.errors import CellbenchError, one_line

PROBS_FILENAME = "probs.npz"
#: The split the shifted sets are drawn from.
SHIFT_SPLIT = "test"
#: The split name of ``[[targets]]`` rows in the scores table (``shift`` = the target's name, severity 0).
TARGET_SPLIT = "target"

ProgressFn = Callable[[dict[str, Any]], None]


@dataclass
class PreparedData:
    """The data of a run, built once by the driver and shared by every cell.

    ``shift_base`` is the (possibly subsampled, stratified) part of the test split that every shift
    is applied to; ``shift_fingerprint`` its content hash (the shift cache key).
    """

    train: Dataset
    val: Dataset
    test: Dataset
    shift_base: Dataset
    shift_fingerprint: str = ""
    #: ``[[targets]]`` of the matrix, at the run's size with the run's class numbering (bench/rundata.py)
    targets: dict[str, Dataset] = field(default_factory=dict)
    #: the training images' statistics for test-time adapters (:func:`robustbench_cells.adapters.train_stats`)
    train_stats: dict[str, Any] | None = None

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.train.class_names

    def training_stats(self) -> dict[str, Any]:
        """The training set's adapter statistics, computed on first use and kept: one pass per run."""
        if self.train_stats is None:
            from robustbench_cells.adapters import train_stats

            self.train_stats = train_stats(self.train.images)
        return self.train_stats

    def save(self, folder: Path) -> None:
        """Write the arrays as ``.npy`` so worker processes can memory-map them."""
        folder.mkdir(parents=True, exist_ok=True)
        parts = {name: getattr(self, name) for name in ("train", "val", "test", "shift_base")}
        parts.update({f"target{i}": ds for i, ds in enumerate(self.targets.values())})
        for name, ds in parts.items():
            np.save(folder / f"{name}.images.npy", ds.images)
            np.save(folder / f"{name}.labels.npy", ds.labels)
        (folder / "meta.json").write_text(json.dumps({"class_names": list(self.class_names),
                                                      "shift_fingerprint": self.shift_fingerprint,
                                                      "targets": list(self.targets),
                                                      "train_stats": self.train_stats}))

    @classmethod
    def load(cls, folder: Path) -> PreparedData:
        """Read what :meth:`save` wrote (images memory-mapped, read only)."""
        meta = json.loads((folder / "meta.json").read_text())
        parts = {}
        for name in ("train", "val", "test", "shift_base"):
            parts[name] = Dataset(np.load(folder / f"{name}.images.npy", mmap_mode="r"),
                                  np.load(folder / f"{name}.labels.npy"), tuple(meta["class_names"]),
                                  source=f"prepared[{name}]")
        targets = {t: Dataset(np.load(folder / f"target{i}.images.npy", mmap_mode="r"),
                              np.load(folder / f"target{i}.labels.npy"), tuple(meta["class_names"]),
                              source=f"prepared[target {t}]")
                   for i, t in enumerate(meta.get("targets", []))}
        return cls(**parts, shift_fingerprint=meta["shift_fingerprint"], targets=targets,
                   train_stats=meta.get("train_stats"))


@dataclass(frozen=True)
class CellJob:
    """Everything a worker needs to run one training cell (picklable)."""

    key: str
    label: str
    config: dict[str, Any]
    cell_dir: str
    shift_sets: tuple[tuple[str, int], ...]
    shift_seed: int
    cache_root: str | None = None
    predict_batch_size: int = 256


@dataclass
class CellOutcome:
    """What a worker sends back: scores (or the error) and the cell's facts."""

    key: str
    status: str  # "done" | "failed"
    scores: list[Score] = field(default_factory=list)
    params: int | None = None
    model_path: str | None = None
    train_seconds: float | None = None
    eval_seconds: float | None = None
    epochs: int | None = None
    error: str | None = None


def probs_key(split: str, shift: str = "clean", severity: int = 0) -> str:
    """The array name of one evaluated set inside ``probs.npz``."""
    return f"{split}|{shift}|{severity}"


def save_probs_atomic(path: Path, probs: dict[str, np.ndarray]) -> None:
    """Write ``probs.npz`` through a temporary file and a rename, so a kill never leaves half a file."""
    with atomic_path(path, ".npz") as tmp:
        np.savez(tmp, **probs)


def score_rows(key: str, probs: dict[str, np.ndarray], data: PreparedData) -> list[Score]:
    """Score rows of a cell from its probabilities (``probs_key`` -> ``(N, C)``)."""
    rows = []
    for name, p in probs.items():
        split, shift, severity = name.split("|")
        if split == TARGET_SPLIT:  # a target set: shift holds the target's name
            labels = data.targets[shift].labels
        else:
            labels = data.shift_base.labels if shift != "clean" else getattr(data, split).labels
        rows.append(score_probabilities(p, labels, len(data.class_names), cell_key=key, split=split, shift=shift,
                                        severity=int(severity)))
    return rows


def shifted_images(data: PreparedData, shift: str, severity: int, seed: int, cache_root: str | None) -> np.ndarray:
    """The shifted test set (generated once per run by the driver, read back from the cache here)."""
    from robustbench_cells.bench.shiftsets import ShiftCache

    cache = ShiftCache(cache_root)  # None: the default root ($CELLBENCH_CACHE/shifts)
    return cache.get(data.shift_base.images, data.shift_fingerprint, shift, severity, seed)


def evaluation_sets(data: PreparedData, shift_sets: Sequence[tuple[str, int]], shift_seed: int,
                    cache_root: str | None) -> Iterator[tuple[str, str, np.ndarray]]:
    """Every set a cell is scored on, in order: ``(probs_key, progress label, images)``.

    Clean val and test, each shifted set (read back from the shift cache one at a time, so a
    run never holds the whole suite in memory), then each ``[[targets]]`` set.
    """
    for split in ("val", "test"):
        yield probs_key(split), f"clean {split}", getattr(data, split).images
    for shift, severity in shift_sets:
        yield (probs_key(SHIFT_SPLIT, shift, severity), f"{shift} s{severity}",
               shifted_images(data, shift, severity, shift_seed, cache_root))
    for name, target in data.targets.items():  # external test sets (another lab), scored like a shift
        yield probs_key(TARGET_SPLIT, name), f"target {name}", target.images


def execute_cell(job: CellJob, data: PreparedData, progress: ProgressFn | None = None) -> CellOutcome:
    """Train one cell, save its model and probabilities, and score it on every set.

    Any exception (a plugin raising, the loss turning NaN, out of memory) becomes a ``failed``
    outcome carrying a one-line error; only ``KeyboardInterrupt``/``SystemExit`` escape.
    """
    report = progress or (lambda event: None)
    cfg = job.config
    try:
        from robustbench_cells import train as training

        recipe = training.Recipe.from_dict(dict(cfg["recipe"]), where=f"cell {job.label}")
        report({"stage": "train", "cell": job.label, "epoch": 0, "epochs": recipe_epochs(cfg["recipe"])})

        def on_epoch(epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = logs or {}
            report({"stage": "train", "cell": job.label, "epoch": epoch + 1, "epochs": recipe_epochs(cfg["recipe"]),
                    "loss": logs.get("loss"), "val_accuracy": logs.get("val_accuracy")})

        model_options = dict(cfg.get("model_options") or {})
        result = training.train_cell(cfg["model"], data.train, data.val, augmentation=cfg["augmentation"],
                                     recipe=recipe, seed=int(cfg["seed"]), model_options=model_options or None,
                                     on_epoch=on_epoch)
        cell_dir = Path(job.cell_dir)
        meta = training.model_meta(cfg["model"], data.train, augmentation=cfg["augmentation"], recipe=recipe,
                                   seed=int(cfg["seed"]), model_options=model_options, result=result,
                                   cell_key=job.key, cell=job.label)
        from robustbench_cells.adapters import META_KEY

        meta[META_KEY] = data.training_stats()  # for test-time adapters
        saved = Path(training.save_model(result.model, meta, cell_dir)) / training.MODEL_FILE

        t0 = time.perf_counter()
        probs: dict[str, np.ndarray] = {}
        total = 2 + len(job.shift_sets) + len(data.targets)
        sets = evaluation_sets(data, job.shift_sets, job.shift_seed, job.cache_root)
        for i, (key, label, images) in enumerate(sets):
            report({"stage": "eval", "cell": job.label, "done": i, "total": total, "set": label})
            probs[key] = training.predict_proba(result.model, images, job.predict_batch_size)
        report({"stage": "eval", "cell": job.label, "done": total, "total": total, "set": ""})
        probs = {k: np.asarray(v, dtype=np.float32) for k, v in probs.items()}
        save_probs_atomic(cell_dir / PROBS_FILENAME, probs)
        scores = score_rows(job.key, probs, data)
        eval_seconds = time.perf_counter() - t0
        return CellOutcome(job.key, "done", scores, params=result.params, model_path=str(saved),
                           train_seconds=result.train_seconds, eval_seconds=eval_seconds, epochs=result.epochs)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - a failing cell is recorded, the matrix goes on
        error = one_line(exc)
        if not isinstance(exc, CellbenchError) and os.environ.get("CELLBENCH_TRACEBACKS"):
            error += "\n" + traceback.format_exc()
        return CellOutcome(job.key, "failed", error=error)


def recipe_epochs(recipe: dict[str, Any]) -> int | None:
    """Epochs the recipe asks for, fine-tuning phase included (early stopping may end sooner)."""
    value = recipe.get("epochs")
    if not isinstance(value, int):
        return None
    return value + (int(recipe.get("fine_tune_epochs") or 0) if recipe.get("fine_tune_layers") else 0)


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
