"""Benchmark matrices: the TOML schema and its up-front validation into a :class:`Matrix`.

The list-valued keys (models, augmentations, ensembles, targets, adapters) are validated in
:mod:`~robustbench_cells.bench.matrix_entries`; the expansion into cells is
:mod:`~robustbench_cells.bench.cells` (its names are importable from here too).

A matrix file (``benchmarks/*.toml``) declares one benchmark::

    name = "quick"
    data = "synthetic:1200"          # any data set spec (cellbench ls datasets)
    image_size = 48
    seeds = [0]
    models = ["simple_cnn", { name = "mobilenetv2", options = { alpha = 0.35 }, train = { epochs = 2 } },
              { path = "mine.keras", preprocess = "unit" }]   # trained elsewhere: scored, not trained
    augmentations = ["none", "simple", ["simple", "mixup"]]
    executor = "local"               # local | ray
    jobs = 1

    [split]                          # used when the data set has no split of its own
    seed = 0
    fractions = [0.7, 0.1, 0.2]

    [train]                          # the training recipe (train.Recipe)
    epochs = 3

    [shifts]
    include = ["*"]                  # fnmatch patterns on shift names or families
    exclude = []
    severities = [1, 2, 3, 4, 5]
    max_images = 300                 # fixed stratified subset of the test split used for shifts
    seed = 0

    [[ensembles]]                    # optional: average the probabilities of trained cells
    name = "cnn-ensemble"
    members = ["simple_cnn/none", "simple_cnn/simple"]   # model/augmentation[/seed]

Everything is checked before any data is loaded: an unknown key, plugin name or bad value is a
one-line :class:`CellbenchError` naming the file, the key and (for names) the closest matches.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustbench_cells import plugins
from robustbench_cells.augchain import AugmentationChain, augmentation_label
# Re-exported: these names have been imported from here since before the module was split.
from robustbench_cells.bench.cells import KEY_LENGTH, cell_key, cell_label, expand_cells, select_cells
from robustbench_cells.bench.matrix_entries import (
    EnsembleEntry, ModelEntry, ScoreEntry, TargetEntry, Where, member_label, parse_adapters, parse_augmentations,
    parse_ensembles, parse_models, parse_targets, validate_recipe,
)
from robustbench_cells.errors import CellbenchError, did_you_mean

__all__ = ["KEY_LENGTH", "EnsembleEntry", "Matrix", "ModelEntry", "ScoreEntry", "TargetEntry", "augmentation_label",
           "cell_key", "cell_label", "expand_cells", "load_matrix", "member_label", "parse_matrix", "resolve_shifts",
           "select_cells"]

TOP_KEYS = ("name", "description", "data", "image_size", "seeds", "models", "augmentations", "executor",
            "jobs", "split", "train", "shifts", "ensembles", "predict_batch_size", "targets", "adapters")
SPLIT_KEYS = ("seed", "fractions")
SHIFT_KEYS = ("include", "exclude", "severities", "max_images", "seed")
EXECUTORS = ("local", "ray")
MAX_IMAGE_SIZE = 1024


@dataclass
class Matrix:
    """A validated benchmark matrix."""

    name: str
    path: Path | None
    data: str
    image_size: int
    seeds: list[int]
    models: list[ModelEntry | ScoreEntry]  # a ScoreEntry (``{ path = ... }``) is one score-only cell
    augmentations: list[AugmentationChain]  # in matrix order; labels unique
    train: dict[str, Any]
    shifts: list[str]  # resolved shift names, sorted
    severities: list[int]
    max_shift_images: int | None
    shift_seed: int
    split_seed: int
    split_fractions: tuple[float, float, float]
    executor: str = "local"
    jobs: int = 1
    description: str = ""
    ensembles: list[EnsembleEntry] = field(default_factory=list)
    predict_batch_size: int = 256
    targets: list[TargetEntry] = field(default_factory=list)
    adapters: list[str] = field(default_factory=lambda: ["none"])  # chain labels; "none" = plain predict
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def shift_sets(self) -> tuple[tuple[str, int], ...]:
        """Every (shift, severity) set a cell is scored on, shifts first: the runner's and each cell kind's order."""
        return tuple((shift, int(severity)) for shift in self.shifts for severity in self.severities)

    def config(self) -> dict[str, Any]:
        """Everything that defines the results (not how they are computed): stored in the run row.

        ``explain`` and ``report`` rebuild the data and shifted sets from it.
        """
        return {
            "name": self.name, "data": self.data, "image_size": self.image_size, "seeds": self.seeds,
            "models": [m.__dict__ for m in self.models],
            "augmentations": [a.entries() for a in self.augmentations], "train": self.train,
            "split": {"seed": self.split_seed, "fractions": list(self.split_fractions)},
            "shifts": {"names": self.shifts, "severities": self.severities, "max_images": self.max_shift_images,
                       "seed": self.shift_seed},
            "ensembles": [{"name": e.name, "members": list(e.members)} for e in self.ensembles],
            # only when present, so the config of runs made before targets existed stays the same on --resume
            **({"targets": [t.__dict__ for t in self.targets]} if self.targets else {}),
            **({"adapters": list(self.adapters)} if self.adapters != ["none"] else {}),
        }


# -- parsing helpers -------------------------------------------------------------------------------
def _int(where: Where, key: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise where.error(key, f"must be an integer >= {minimum}, got {value!r}")
    return value


def _known(registry: Any) -> str:
    names = registry.names()
    return f"; known: {', '.join(names[:12])}{' ...' if len(names) > 12 else ''}" if names else f"; no {registry.kind}s are registered"


def resolve_shifts(where: Where, include: list[str], exclude: list[str]) -> list[str]:
    """Shift names matching any *include* pattern (name or family) and no *exclude* pattern."""
    registry = plugins.shifts()
    chosen: set[str] = set()
    for i, pattern in enumerate(include):
        if not isinstance(pattern, str):
            raise where.error(f"shifts.include[{i}]", f"must be a string pattern, got {pattern!r}")
        matched = {s.name for s in registry.list(pattern)}
        if not matched:
            hint = did_you_mean(pattern, registry.names()) or _known(registry)
            raise where.error(f"shifts.include[{i}]", f"pattern {pattern!r} matches no shift{hint}")
        chosen |= matched
    for i, pattern in enumerate(exclude):
        if not isinstance(pattern, str):
            raise where.error(f"shifts.exclude[{i}]", f"must be a string pattern, got {pattern!r}")
        chosen -= {s.name for s in registry.list(pattern)}
    return sorted(chosen)


# -- loading ---------------------------------------------------------------------------------------
def load_matrix(path: str | Path, *, data: str | None = None) -> Matrix:
    """Read and validate the matrix TOML at *path*; *data* overrides its data set spec."""
    path = Path(path)
    if not path.is_file():
        raise CellbenchError(f"{path}: matrix file not found")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise CellbenchError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise CellbenchError(f"{path}: not UTF-8 text (byte {exc.start}); TOML files are UTF-8") from None
    return parse_matrix(raw, path=path, data=data)


def parse_matrix(raw: dict[str, Any], *, path: Path | None = None, data: str | None = None) -> Matrix:
    """Validate a parsed matrix table (see the module docstring for the schema)."""
    where = Where(path)
    raw = copy.deepcopy(raw)
    where.check_keys(raw, TOP_KEYS)
    for required in ("models", "augmentations"):
        if required not in raw:
            raise where.error(required, "missing (required)")
    name = raw.get("name", path.stem if path else "matrix")
    if not isinstance(name, str) or not name or any(c in name for c in "/\\ "):
        raise where.error("name", f"must be a non-empty name without spaces or slashes, got {name!r}")
    data_spec = data if data is not None else raw.get("data", "synthetic")
    if not isinstance(data_spec, str) or not data_spec:
        raise where.error("data", f"must be a data set spec string, got {data_spec!r}")
    image_size = _int(where, "image_size", raw.get("image_size", 96), 8)
    if image_size > MAX_IMAGE_SIZE:  # bounded up front: 100000 px would fail allocating, with a traceback
        raise where.error("image_size", f"{image_size} is above {MAX_IMAGE_SIZE}, the largest size cellbench trains at")
    seeds = raw.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if not isinstance(seeds, list) or not seeds:
        raise where.error("seeds", f"must be a non-empty list of integers, got {seeds!r}")
    seeds = [_int(where, "seeds", s) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise where.error("seeds", f"listed twice: {seeds}")
    executor = raw.get("executor", "local")
    if executor not in EXECUTORS:
        raise where.error("executor", f"must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    jobs = _int(where, "jobs", raw.get("jobs", 1), 1)
    predict_batch_size = _int(where, "predict_batch_size", raw.get("predict_batch_size", 256), 1)

    split = raw.get("split", {})
    if not isinstance(split, dict):
        raise where.error("split", "must be a table")
    where.check_keys(split, SPLIT_KEYS, "split.")
    split_seed = _int(where, "split.seed", split.get("seed", 0))
    fractions = split.get("fractions", [0.7, 0.1, 0.2])
    if (not isinstance(fractions, list) or len(fractions) != 3
            or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and f >= 0 for f in fractions)
            or abs(sum(fractions) - 1) > 1e-6):
        raise where.error("split.fractions", f"must be three non-negative numbers summing to 1, got {fractions!r}")

    models = parse_models(where, raw["models"])
    augmentations = parse_augmentations(where, raw["augmentations"])

    train = raw.get("train", {})
    if not isinstance(train, dict):
        raise where.error("train", "must be a table")
    train = validate_recipe(where, "train", train)
    for i, m in enumerate(models):
        if isinstance(m, ModelEntry) and m.train:
            validate_recipe(where, f"models[{i}].train", {**train, **m.train})

    shifts = raw.get("shifts", {})
    if not isinstance(shifts, dict):
        raise where.error("shifts", "must be a table")
    where.check_keys(shifts, SHIFT_KEYS, "shifts.")
    include = shifts.get("include", ["*"])
    exclude = shifts.get("exclude", [])
    include = [include] if isinstance(include, str) else include
    exclude = [exclude] if isinstance(exclude, str) else exclude
    if not isinstance(include, list) or not isinstance(exclude, list):
        raise where.error("shifts.include", "include and exclude must be lists of fnmatch patterns")
    shift_names = resolve_shifts(where, include, exclude) if include else []
    severities = shifts.get("severities", [1, 2, 3, 4, 5])
    if isinstance(severities, int) and not isinstance(severities, bool):
        severities = [severities]
    if (not isinstance(severities, list) or not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 5
                                                      for s in severities)):
        raise where.error("shifts.severities", f"must be a list of integers in 1..5, got {severities!r}")
    severities = sorted(set(severities))
    if shift_names and not severities:
        raise where.error("shifts.severities", "is empty but shifts are selected")
    if shift_names:
        from robustbench_cells.bench.shiftsets import MIN_SIZE

        if image_size < MIN_SIZE:
            raise where.error("image_size", f"{image_size} is below {MIN_SIZE}, the smallest size the shifts support")
    max_images = shifts.get("max_images")
    if max_images is not None:
        max_images = _int(where, "shifts.max_images", max_images, 1)
    shift_seed = _int(where, "shifts.seed", shifts.get("seed", 0))

    matrix = Matrix(
        name=name, path=path, data=data_spec, image_size=image_size, seeds=seeds, models=models,
        augmentations=augmentations, train=train, shifts=shift_names, severities=severities,
        max_shift_images=max_images, shift_seed=shift_seed, split_seed=split_seed,
        split_fractions=tuple(float(f) for f in fractions), executor=executor, jobs=jobs,
        description=str(raw.get("description", "")), predict_batch_size=predict_batch_size, raw=raw,
    )
    matrix.ensembles = parse_ensembles(where, raw.get("ensembles", []), models, augmentations, seeds)
    matrix.targets = parse_targets(where, raw.get("targets", []))
    matrix.adapters = parse_adapters(where, raw.get("adapters", ["none"]))
    return matrix
