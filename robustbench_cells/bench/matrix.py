"""Benchmark matrices: the TOML schema, its up-front validation and the expansion into cells.

A matrix file (``benchmarks/*.toml``) declares one benchmark::

    name = "quick"
    data = "synthetic:1200"          # any data set spec (cellbench ls datasets)
    image_size = 48
    seeds = [0]
    models = ["simple_cnn", { name = "mobilenetv2", options = { alpha = 0.35 }, train = { epochs = 2 } }]
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
import fnmatch
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustbench_cells import plugins
from robustbench_cells.bench.store import Cell
from robustbench_cells.errors import CellbenchError, did_you_mean

TOP_KEYS = ("name", "description", "data", "image_size", "seeds", "models", "augmentations", "executor",
            "jobs", "split", "train", "shifts", "ensembles", "predict_batch_size", "targets", "adapters")
SPLIT_KEYS = ("seed", "fractions")
SHIFT_KEYS = ("include", "exclude", "severities", "max_images", "seed")
MODEL_KEYS = ("name", "options", "train")
ENSEMBLE_KEYS = ("name", "members")
TARGET_KEYS = ("name", "data", "classes")
EXECUTORS = ("local", "ray")
KEY_LENGTH = 16
MAX_IMAGE_SIZE = 1024


@dataclass(frozen=True)
class ModelEntry:
    """One model row of the matrix: registry name, builder options and per-model recipe overrides."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)  # e.g. {epochs = 3, weights = "imagenet"}


@dataclass(frozen=True)
class EnsembleEntry:
    """An ensemble: the probabilities of its member cells (``model/augmentation[/seed]``) averaged."""

    name: str
    members: tuple[str, ...]


@dataclass
class TargetEntry:
    """One ``[[targets]]`` table: an external labelled test set (another lab), scored for every cell."""

    name: str
    data: str  # any data set spec
    classes: dict[str, str] = field(default_factory=dict)  # target class name -> training class name


@dataclass
class Matrix:
    """A validated benchmark matrix."""

    name: str
    path: Path | None
    data: str
    image_size: int
    seeds: list[int]
    models: list[ModelEntry]
    augmentations: list[list[Any]]  # each a list of augmentation steps (a name or {"name":..., **options})
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

    def config(self) -> dict[str, Any]:
        """Everything that defines the results (not how they are computed): stored in the run row.

        ``explain`` and ``report`` rebuild the data and shifted sets from it.
        """
        return {
            "name": self.name, "data": self.data, "image_size": self.image_size, "seeds": self.seeds,
            "models": [m.__dict__ for m in self.models],
            "augmentations": self.augmentations, "train": self.train,
            "split": {"seed": self.split_seed, "fractions": list(self.split_fractions)},
            "shifts": {"names": self.shifts, "severities": self.severities, "max_images": self.max_shift_images,
                       "seed": self.shift_seed},
            "ensembles": [{"name": e.name, "members": list(e.members)} for e in self.ensembles],
            # only when present, so the config of runs made before targets existed stays the same on --resume
            **({"targets": [t.__dict__ for t in self.targets]} if self.targets else {}),
            **({"adapters": list(self.adapters)} if self.adapters != ["none"] else {}),
        }


# -- parsing helpers -------------------------------------------------------------------------------
class _Where:
    """Builds error messages that name the matrix file and the key."""

    def __init__(self, path: Path | str | None) -> None:
        self.file = str(path) if path else "matrix"

    def error(self, key: str, problem: str) -> CellbenchError:
        return CellbenchError(f"{self.file}: {key}: {problem}")

    def check_keys(self, table: dict[str, Any], allowed: tuple[str, ...], prefix: str = "") -> None:
        for key in table:
            if key not in allowed:
                raise self.error(prefix + key, f"unknown key{did_you_mean(key, allowed)}; allowed: {', '.join(allowed)}")


def _int(where: _Where, key: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise where.error(key, f"must be an integer >= {minimum}, got {value!r}")
    return value


def _name(where: _Where, key: str, value: Any, registry: Any) -> str:
    if not isinstance(value, str):
        raise where.error(key, f"must be a name (string), got {value!r}")
    if value not in registry:
        raise where.error(key, f"unknown {registry.kind} {value!r}{did_you_mean(value, registry.names())}"
                               f"{'' if did_you_mean(value, registry.names()) else _known(registry)}")
    return value


def _known(registry: Any) -> str:
    names = registry.names()
    return f"; known: {', '.join(names[:12])}{' ...' if len(names) > 12 else ''}" if names else f"; no {registry.kind}s are registered"


def _models(where: _Where, value: Any) -> list[ModelEntry]:
    if not isinstance(value, list) or not value:
        raise where.error("models", "must be a non-empty list of model names or tables")
    registry = plugins.models()
    out = []
    for i, item in enumerate(value):
        key = f"models[{i}]"
        if isinstance(item, str):
            out.append(ModelEntry(_name(where, key, item, registry)))
            continue
        if not isinstance(item, dict) or "name" not in item:
            raise where.error(key, f"must be a model name or a table with 'name', got {item!r}")
        where.check_keys(item, MODEL_KEYS, f"{key}.")
        name = _name(where, f"{key}.name", item["name"], registry)
        options = item.get("options", {})
        train = item.get("train", {})
        if not isinstance(options, dict) or not isinstance(train, dict):
            raise where.error(key, "options and train must be tables")
        spec = registry.get(name)
        for opt in options:
            if opt not in spec.options:
                raise where.error(f"{key}.options.{opt}", f"model {name!r} has no option {opt!r}"
                                  f"{did_you_mean(opt, spec.options)}; options: {', '.join(spec.options) or 'none'}")
        try:
            spec.check_options(options)  # values too: a typo fails here, not in every cell an hour later
        except CellbenchError as exc:
            raise where.error(f"{key}.options", str(exc)) from None
        out.append(ModelEntry(name, dict(options), dict(train)))
    labels = [_model_label(m) for m in out]
    dupes = sorted({lab for lab in labels if labels.count(lab) > 1})
    if dupes:
        raise where.error("models", f"listed twice: {', '.join(dupes)}")
    return out


def _model_label(model: ModelEntry) -> str:
    """How a model shows up in cell labels: the name, plus options when it has any."""
    if not model.options:
        return model.name
    opts = ",".join(f"{k}={v}" for k, v in sorted(model.options.items()))
    return f"{model.name}({opts})"


def _augmentation_step(where: _Where, key: str, step: Any) -> Any:
    registry = plugins.augmentations()
    if isinstance(step, str):
        if step == "none":
            return step
        return _name(where, key, step, registry)
    if isinstance(step, dict) and "name" in step:
        name = _name(where, f"{key}.name", step["name"], registry)
        spec = registry.get(name)
        for opt in step:
            if opt != "name" and opt not in spec.options:
                raise where.error(f"{key}.{opt}", f"augmentation {name!r} has no option {opt!r}"
                                  f"{did_you_mean(opt, spec.options)}; options: {', '.join(spec.options) or 'none'}")
        try:
            spec.check_options({k: v for k, v in step.items() if k != "name"})
        except CellbenchError as exc:
            raise where.error(key, str(exc)) from None
        return dict(step)
    raise where.error(key, f"must be an augmentation name, a table with 'name', or a list of them, got {step!r}")


def _augmentations(where: _Where, value: Any) -> list[list[Any]]:
    if not isinstance(value, list) or not value:
        raise where.error("augmentations", "must be a non-empty list (each item a name or a list of names)")
    out = []
    for i, item in enumerate(value):
        steps = item if isinstance(item, list) else [item]
        if not steps:
            raise where.error(f"augmentations[{i}]", "an empty list; use \"none\" for no augmentation")
        parsed = [_augmentation_step(where, f"augmentations[{i}]", s) for s in steps]
        # "none" inside a combination is meaningless; alone it means no augmentation.
        parsed = [s for s in parsed if s != "none"] or ["none"]
        out.append(parsed)
    labels = [augmentation_label(a) for a in out]
    dupes = sorted({lab for lab in labels if labels.count(lab) > 1})
    if dupes:
        raise where.error("augmentations", f"listed twice: {', '.join(dupes)}")
    return out


def augmentation_label(steps: list[Any]) -> str:
    """Display form of an augmentation: ``"simple+mixup"``; options shown as ``name(k=v)``."""
    parts = []
    for s in steps:
        if isinstance(s, str):
            parts.append(s)
        else:
            opts = ",".join(f"{k}={v}" for k, v in sorted(s.items()) if k != "name")
            parts.append(f"{s['name']}({opts})" if opts else s["name"])
    return "+".join(parts)


def _pipeline_augmentation(steps: list[Any]) -> Any:
    """The form ``TrainingBatches``/``train_cell`` take: ``"none"``, a name, or a list of steps."""
    if steps == ["none"]:
        return "none"
    return steps[0] if len(steps) == 1 else list(steps)


def resolve_shifts(where: _Where, include: list[str], exclude: list[str]) -> list[str]:
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


def _validate_recipe(where: _Where, key: str, recipe: dict[str, Any]) -> dict[str, Any]:
    """Check a ``[train]`` table through ``train.Recipe`` and return its canonical (complete) dict."""
    from robustbench_cells.train import Recipe

    return Recipe.from_dict(dict(recipe), where=f"{where.file}: {key}").to_dict()


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
    where = _Where(path)
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

    models = _models(where, raw["models"])
    augmentations = _augmentations(where, raw["augmentations"])

    train = raw.get("train", {})
    if not isinstance(train, dict):
        raise where.error("train", "must be a table")
    train = _validate_recipe(where, "train", train)
    for i, m in enumerate(models):
        if m.train:
            _validate_recipe(where, f"models[{i}].train", {**train, **m.train})

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
    matrix.ensembles = _ensembles(where, raw.get("ensembles", []), matrix)
    matrix.targets = _targets(where, raw.get("targets", []))
    matrix.adapters = _adapters(where, raw.get("adapters", ["none"]))
    return matrix


def _adapters(where: _Where, value: Any) -> list[str]:
    """``adapters = ["none", "bn_adapt", ["stain_norm", "bn_adapt"]]``: test-time adapter chains, as labels."""
    from robustbench_cells.adapters import chain_label, check_chain

    if not isinstance(value, list) or not value:
        raise where.error("adapters", "must be a non-empty array of adapter names or name lists")
    labels: list[str] = []
    for i, chain in enumerate(value):
        if not (isinstance(chain, str) or (isinstance(chain, list) and all(isinstance(c, str) for c in chain))):
            raise where.error(f"adapters[{i}]", "must be an adapter name or a list of names")
        try:
            check_chain(chain)
        except CellbenchError as exc:
            raise where.error(f"adapters[{i}]", str(exc)) from None
        label = chain_label(chain)
        if label in labels:
            raise where.error(f"adapters[{i}]", f"{label!r} is listed twice")
        labels.append(label)
    return labels


def _targets(where: _Where, value: Any) -> list[TargetEntry]:
    """``[[targets]]``: name, data spec and an optional class mapping (names checked when the data loads)."""
    if not isinstance(value, list):
        raise where.error("targets", "must be an array of tables ([[targets]])")
    out = []
    for i, item in enumerate(value):
        key = f"targets[{i}]"
        if not isinstance(item, dict):
            raise where.error(key, "must be a table with name and data")
        where.check_keys(item, TARGET_KEYS, f"{key}.")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip() or "|" in name:
            raise where.error(f"{key}.name", f"must be a non-empty name without '|', got {name!r}")
        data = item.get("data")
        if not isinstance(data, str) or not data.strip():
            raise where.error(f"{key}.data", f"must be a data set spec (cellbench ls datasets), got {data!r}")
        classes = item.get("classes", {})
        if not isinstance(classes, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                    for k, v in classes.items()):
            raise where.error(f"{key}.classes", "must map target class names to training class names, "
                              'e.g. { lymph = "lymphocyte" }')
        out.append(TargetEntry(name, data, dict(classes)))
    if len({t.name for t in out}) != len(out):
        raise where.error("targets", "two targets share a name")
    return out


def _ensembles(where: _Where, value: Any, matrix: Matrix) -> list[EnsembleEntry]:
    if not isinstance(value, list):
        raise where.error("ensembles", "must be an array of tables ([[ensembles]])")
    labels = {member_label(_model_label(m), augmentation_label(a)) for m in matrix.models for a in matrix.augmentations}
    model_labels = {_model_label(m) for m in matrix.models}
    out = []
    for i, item in enumerate(value):
        key = f"ensembles[{i}]"
        if not isinstance(item, dict):
            raise where.error(key, "must be a table with name and members")
        where.check_keys(item, ENSEMBLE_KEYS, f"{key}.")
        name = item.get("name")
        if not isinstance(name, str) or not name or "/" in name:
            raise where.error(f"{key}.name", f"must be a non-empty name without '/', got {name!r}")
        if name in model_labels:
            raise where.error(f"{key}.name", f"{name!r} is also a model of this matrix")
        members = item.get("members")
        if not isinstance(members, list) or len(members) < 2:
            raise where.error(f"{key}.members", "must list at least two cells as 'model/augmentation[/seed]'")
        for j, member in enumerate(members):
            if not isinstance(member, str) or member.count("/") not in (1, 2):
                raise where.error(f"{key}.members[{j}]", f"must be 'model/augmentation[/seed]', got {member!r}")
            model_aug, _, seed = _split_member(member)
            if model_aug not in labels:
                raise where.error(f"{key}.members[{j}]", f"{member!r} is not a cell of this matrix"
                                  f"{did_you_mean(model_aug, labels)}")
            if seed is not None and seed not in matrix.seeds:
                raise where.error(f"{key}.members[{j}]", f"seed {seed} is not in seeds {matrix.seeds}")
        if len(set(members)) != len(members):
            raise where.error(f"{key}.members", f"lists a cell twice: {members}")
        out.append(EnsembleEntry(name, tuple(members)))
    if len({e.name for e in out}) != len(out):
        raise where.error("ensembles", "two ensembles share a name")
    return out


def member_label(model_label: str, aug_label: str) -> str:
    return f"{model_label}/{aug_label}"


def _split_member(member: str) -> tuple[str, str, int | None]:
    parts = member.split("/")
    model_aug = "/".join(parts[:2])
    if len(parts) == 3:
        try:
            return model_aug, parts[1], int(parts[2])
        except ValueError:
            return model_aug, parts[1], -1
    return model_aug, parts[1], None


# -- expansion -------------------------------------------------------------------------------------
def cell_key(config: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a cell's full config, truncated."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:KEY_LENGTH]


def cell_label(cell: Cell) -> str:
    """``model/augmentation/seed``: what ``--cells`` patterns match and progress shows."""
    return f"{cell.model}/{cell.augmentation}/{cell.seed}"


def expand_cells(matrix: Matrix, data_fingerprint: str) -> list[Cell]:
    """Training cells (model x augmentation x seed), ensemble cells, then adapted cells, in matrix order.

    A training cell's ``config`` holds everything that determines its results (the key hashes it):
    ``{"kind": "train", model, model_options, augmentation, seed, recipe, image_size, data, split}``.
    An ensemble cell's config is ``{"kind": "ensemble", "name", "members": [keys], "seed"}``.
    An adapted cell (one per training cell x adapter chain other than ``none``) is
    ``{"kind": "adapt", "base": key, "base_label", "adapter": chain label, "seed"}``; its model label
    is ``model+chain`` so tables show the adapter beside the plain cell.
    """
    cells: list[Cell] = []
    by_label: dict[str, Cell] = {}
    for model in matrix.models:
        recipe = {**matrix.train, **model.train}
        if model.train:
            recipe = _validate_recipe(_Where(matrix.path), "train", recipe)
        for steps in matrix.augmentations:
            for seed in matrix.seeds:
                config = {
                    "kind": "train", "model": model.name, "model_options": model.options,
                    "augmentation": _pipeline_augmentation(steps), "seed": seed, "recipe": recipe,
                    "image_size": matrix.image_size, "data": data_fingerprint,
                    "split": {"seed": matrix.split_seed, "fractions": list(matrix.split_fractions)},
                }
                cell = Cell(cell_key(config), _model_label(model), augmentation_label(steps), seed,
                            recipe=recipe, config=config, position=len(cells))
                cells.append(cell)
                by_label[cell_label(cell)] = cell
    for ens in matrix.ensembles:
        seeds = {s for m in ens.members for s in [_split_member(m)[2]] if s is not None}
        for seed in (sorted(seeds) if seeds else matrix.seeds):
            member_cells = []
            for m in ens.members:
                model_aug, _, member_seed = _split_member(m)
                member_cells.append(by_label[f"{model_aug}/{seed if member_seed is None else member_seed}"])
            augs = {c.augmentation for c in member_cells}
            config = {"kind": "ensemble", "name": ens.name, "members": [c.key for c in member_cells],
                      "member_labels": [cell_label(c) for c in member_cells], "seed": seed}
            cells.append(Cell(cell_key(config), ens.name, augs.pop() if len(augs) == 1 else "mixed", seed,
                              recipe={}, config=config, position=len(cells)))
            if seeds:
                break  # members name their seeds explicitly: one ensemble
    for base in [c for c in cells if c.config["kind"] == "train"]:
        for adapter in matrix.adapters:
            if adapter == "none":
                continue  # the training cell itself
            config = {"kind": "adapt", "base": base.key, "base_label": cell_label(base), "adapter": adapter,
                      "seed": base.seed}
            cells.append(Cell(cell_key(config), f"{base.model}+{adapter}", base.augmentation, base.seed,
                              recipe=base.recipe, config=config, position=len(cells)))
    return cells


def select_cells(cells: list[Cell], patterns: list[str] | None) -> list[Cell]:
    """Cells whose ``model/augmentation/seed`` label matches any fnmatch pattern, plus ensemble members."""
    if not patterns:
        return cells
    chosen = {c.key for c in cells if any(fnmatch.fnmatchcase(cell_label(c), p) for p in patterns)}
    if not chosen:
        labels = [cell_label(c) for c in cells]
        raise CellbenchError(f"--cells {' '.join(patterns)}: matches no cell; cells are: {', '.join(labels[:10])}"
                             f"{' ...' if len(labels) > 10 else ''}")
    for c in cells:  # an ensemble needs its members, an adapted cell its trained model
        if c.key in chosen and c.config.get("kind") == "ensemble":
            chosen |= set(c.config["members"])
        if c.key in chosen and c.config.get("kind") == "adapt":
            chosen.add(c.config["base"])
    return [c for c in cells if c.key in chosen]
