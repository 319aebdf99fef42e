"""A run's data, one path for everyone: load -> resize -> split -> shift subset (and the targets).

The runner (bench/runner.py), the explain command (explain/core.py) and the HTML report
(report/html.py) all need the images a run's cells saw, in the same order; they get them here so
the three can never drift apart. The order matters: images are resized *before* the split and the
shift subset, so the shifted sets and the stored probabilities are at the resolution the models saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from robustbench_cells.errors import CellbenchError

DEFAULT_FRACTIONS = (0.7, 0.1, 0.2)


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of a fixed stratified subset of size ``min(n, len(labels))``.

    Classes get ``n`` proportionally (largest remainders), each class its own seeded permutation,
    so the subset is the same for every cell and every resume.
    """
    if n >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n / len(labels)
    take = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - take), kind="stable")[: n - take.sum()]:
        take[i] += 1
    rng = np.random.default_rng([seed, 7919])
    picked = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)


@dataclass
class RunData:
    """The data of one run: the resized data set, its three parts and the shift subset."""

    dataset: Any  # data.dataset.Dataset, at the run's image size
    source_size: tuple[int, int]
    train: Any
    val: Any
    test: Any
    shift_base: Any
    parts: dict[str, Any] = field(default_factory=dict)

    def facts(self) -> dict[str, Any]:
        """What a run row records about its data (compared on --resume)."""
        return {
            "data_fingerprint": self.dataset.fingerprint(),
            "source_image_size": list(self.source_size),
            "split_sizes": {k: len(v) for k, v in self.parts.items()},
            "own_split": self.dataset.split is not None,
            "shift_images": len(self.shift_base),
            "shift_fingerprint": self.shift_base.fingerprint(),
            "class_names": list(self.dataset.class_names),
        }


def prepare_run_data(data: Any, image_size: int | None, split_seed: int = 0,
                     split_fractions: Sequence[float] = DEFAULT_FRACTIONS, max_shift_images: int | None = None,
                     shift_seed: int = 0) -> RunData:
    """Load (*data*: a data set spec or a Dataset), resize, split and pick the shift subset."""
    from robustbench_cells.bench.memcheck import check_run_memory
    from robustbench_cells.data.splits import split_dataset

    check_run_memory(data, image_size, split_fractions, max_shift_images)  # before decoding: one line, no MemoryError
    dataset = _load(data) if isinstance(data, str) else data
    source_size = dataset.image_size
    if image_size:
        dataset = dataset.resized(int(image_size))
    parts = split_dataset(dataset, split_seed, tuple(split_fractions))
    test = parts["test"]
    idx = stratified_subset(test.labels, max_shift_images, shift_seed) if max_shift_images else np.arange(len(test))
    shift_base = test.subset(idx, "[shift subset]")
    return RunData(dataset, source_size, parts["train"], parts["val"], test, shift_base, dict(parts))


def run_data_from_config(config: dict[str, Any], data_spec: str | None = None) -> RunData:
    """The run's data again from its stored config (``runs.config``): for explain and reports."""
    split = config.get("split") if isinstance(config.get("split"), dict) else {}
    shifts = config.get("shifts") if isinstance(config.get("shifts"), dict) else {}
    size = config.get("image_size")
    return prepare_run_data(data_spec or config["data"], int(size) if isinstance(size, int) else None,
                            int(split.get("seed", 0)), tuple(split.get("fractions", DEFAULT_FRACTIONS)),
                            shifts.get("max_images"), int(shifts.get("seed", 0)))


def _load(spec: str) -> Any:
    from robustbench_cells.data.specs import load_dataset

    return load_dataset(spec)


def load_target(spec: str, image_size: int | None, class_names: Sequence[str],
                classes: dict[str, str] | None = None, where: str = "target") -> Any:
    """A labelled target set at the run's image size, its labels renumbered to the run's classes.

    Classes match by name (after the optional ``classes`` mapping, target name -> training name);
    a target may hold a subset of the training classes. A name the run does not know is an error.
    """
    dataset = _load(spec)
    mapping = dict(classes or {})
    stray = sorted(set(mapping) - set(dataset.class_names))
    if stray:  # a mapping for a class the target does not have is a typo, not a no-op
        raise CellbenchError(f"{where}: classes maps {', '.join(map(repr, stray))}, which the target does not have "
                             f"(its classes: {', '.join(dataset.class_names)})")
    names = [mapping.get(n, n) for n in dataset.class_names]
    unknown = [f"{orig!r}" + (f" (-> {new!r})" if orig != new else "")
               for orig, new in zip(dataset.class_names, names) if new not in class_names]
    if unknown:
        raise CellbenchError(f"{where}: class(es) {', '.join(unknown)} are not among the training classes "
                             f"({', '.join(class_names)}); map them with classes = {{ ... }}")
    lut = np.array([list(class_names).index(n) for n in names], np.int64)
    from robustbench_cells.data.dataset import Dataset

    out = Dataset(dataset.images, lut[dataset.labels], tuple(class_names), source=dataset.source,
                  paths=dataset.paths, meta=dict(dataset.meta))
    return out.resized(int(image_size)) if image_size else out


def load_targets(targets: Sequence[Any], image_size: int | None, class_names: Sequence[str],
                 where: str = "matrix") -> dict[str, Any]:
    """Every ``[[targets]]`` entry (bench.matrix.TargetEntry) loaded and resized once: ``{name: Dataset}``."""
    out = {}
    for i, t in enumerate(targets):
        try:
            out[t.name] = load_target(t.data, image_size, class_names, t.classes, where=f"{where}: targets[{i}]")
        except CellbenchError as exc:
            msg = str(exc)
            raise CellbenchError(msg if msg.startswith(where) else f"{where}: targets[{i}] ({t.name}): {msg}") from None
    return out


def target_facts(targets: dict[str, Any]) -> dict[str, Any]:
    """Per target: fingerprint, size and per-class counts (recorded in the run row beside the scores)."""
    return {name: {"fingerprint": ds.fingerprint(), "images": len(ds),
                   "class_counts": {c: int(n) for c, n in zip(ds.class_names, ds.class_counts()) if n}}
            for name, ds in targets.items()}


__all__ = ["load_targets", "target_facts", "RunData", "prepare_run_data", "run_data_from_config", "stratified_subset", "load_target"]
