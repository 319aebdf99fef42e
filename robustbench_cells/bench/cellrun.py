"""One cell's work, wherever it runs: the run's prepared data, the job, training, scoring every
evaluation set and the probability files.

:func:`execute_cell` is the pure work function every executor (:mod:`robustbench_cells.bench.executors`)
runs; :func:`evaluation_sets` is the one list of sets a cell is scored on, shared by trained,
adapted (:mod:`~robustbench_cells.bench.adapting`) and score-only
(:mod:`~robustbench_cells.bench.scoring_cells`) cells.
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

    @classmethod
    def from_run_data(cls, run_data: Any) -> PreparedData:
        """The parts of a :class:`~robustbench_cells.bench.rundata.RunData` every cell needs (no targets yet)."""
        base = run_data.shift_base
        return cls(run_data.train, run_data.val, run_data.test, base, base.fingerprint())

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
                    cache_root: str | None = None,
                    shifted: Callable[[str, int], np.ndarray] | None = None) -> Iterator[tuple[str, str, np.ndarray]]:
    """Every set a cell is scored on, in order: ``(probs_key, progress label, images)``.

    Clean val and test, each shifted set, then each ``[[targets]]`` set. Shifted sets are read back
    from the shift cache one at a time (*cache_root*; ``None``: ``$CELLBENCH_CACHE/shifts``), so a run
    never holds the whole suite in memory; *shifted* ``(shift, severity) -> images`` replaces the
    cache (``cellbench evaluate`` shifts in memory, without a cache).
    """
    for split in ("val", "test"):
        yield probs_key(split), f"clean {split}", getattr(data, split).images
    for shift, severity in shift_sets:
        images = (shifted(shift, severity) if shifted is not None
                  else shifted_images(data, shift, severity, shift_seed, cache_root))
        yield probs_key(SHIFT_SPLIT, shift, severity), f"{shift} s{severity}", images
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
