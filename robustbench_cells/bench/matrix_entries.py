"""The list-valued parts of a benchmark matrix: models, augmentations, ensembles, targets, adapters.

Each ``parse_*`` function validates one top-level key of the matrix TOML (schema in
:mod:`robustbench_cells.bench.matrix`) and returns its entries; a problem is a one-line
:class:`CellbenchError` naming the file and the key (``m.toml: models[1].options.widht: ...``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustbench_cells import plugins
from robustbench_cells.augchain import AugmentationChain
from robustbench_cells.errors import CellbenchError, did_you_mean, unknown_name_error

MODEL_KEYS = ("name", "options", "train")
SCORE_KEYS = ("path", "name", "preprocess", "classes")  # a model trained elsewhere: scored, not trained
ENSEMBLE_KEYS = ("name", "members")
TARGET_KEYS = ("name", "data", "classes")


class Where:
    """Builds error messages that name the matrix file and the key."""

    def __init__(self, path: Path | str | None) -> None:
        self.file = str(path) if path else "matrix"

    def error(self, key: str, problem: str) -> CellbenchError:
        return CellbenchError(f"{self.file}: {key}: {problem}")

    def check_keys(self, table: dict[str, Any], allowed: tuple[str, ...], prefix: str = "") -> None:
        for key in table:
            if key not in allowed:
                raise self.error(prefix + key, f"unknown key{did_you_mean(key, allowed)}; allowed: {', '.join(allowed)}")


@dataclass(frozen=True)
class ModelEntry:
    """One model row of the matrix: registry name, builder options and per-model recipe overrides."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)  # e.g. {epochs = 3, weights = "imagenet"}

    @property
    def label(self) -> str:
        """How the model shows up in cell labels: the name, plus options when it has any."""
        if not self.options:
            return self.name
        return f"{self.name}({','.join(f'{k}={v}' for k, v in sorted(self.options.items()))})"


@dataclass(frozen=True)
class ScoreEntry:
    """A model trained elsewhere (``{ path = "my.keras", preprocess, classes, name }``): one score-only cell.

    *config* is :func:`robustbench_cells.bench.scoring_cells.score_config`'s (absolute path, digest,
    preprocess, classes, seed), checked when the matrix is parsed; *label* is the given ``name`` or
    the model's file name.
    """

    label: str
    config: dict[str, Any]

    @property
    def seed(self) -> int:
        """The one seed of its cell (scoring draws nothing at random; adapters get this seed)."""
        return int(self.config["seed"])


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


def validate_recipe(where: Where, key: str, recipe: dict[str, Any]) -> dict[str, Any]:
    """Check a ``[train]`` table through ``train.Recipe`` and return its canonical (complete) dict."""
    from robustbench_cells.train import Recipe

    return Recipe.from_dict(dict(recipe), where=f"{where.file}: {key}").to_dict()


def _name(where: Where, key: str, value: Any, registry: Any) -> str:
    if not isinstance(value, str):
        raise where.error(key, f"must be a name (string), got {value!r}")
    if value not in registry:
        raise where.error(key, str(unknown_name_error(registry.kind, value, registry.names())))
    return value


def _no_duplicates(where: Where, key: str, labels: list[str]) -> None:
    dupes = sorted({lab for lab in labels if labels.count(lab) > 1})
    if dupes:
        raise where.error(key, f"listed twice: {', '.join(dupes)}")


def parse_score_entry(where: Where, key: str, item: dict[str, Any]) -> ScoreEntry:
    """``{ path = "my.keras", preprocess = "unit", classes = [...], name = "mine" }``: checked before any data loads.

    A relative ``path`` is relative to the matrix file's folder.
    """
    from robustbench_cells.bench.scoring_cells import score_config, score_label

    where.check_keys(item, SCORE_KEYS, f"{key}.")
    base_dir = Path(where.file).parent if where.file != "matrix" else None
    config = score_config(item["path"], preprocess=item.get("preprocess", "none"), classes=item.get("classes"),
                          where=f"{where.file}: {key}", base_dir=base_dir)
    label = _entry_name(where, key, item, "/") if "name" in item else score_label(config)
    if "/" in label:  # a file name cannot hold one, a folder path given with a trailing slash resolves away
        raise where.error(f"{key}.name", f"must be a non-empty name without '/', got {label!r}")
    return ScoreEntry(label, config)


def parse_models(where: Where, value: Any) -> list[ModelEntry | ScoreEntry]:
    """``models = ["simple_cnn", { name = ..., options = {...}, train = {...} }, { path = "my.keras", ... }]``.

    A table with ``path`` is a model trained elsewhere (:func:`parse_score_entry`): a score-only cell.
    """
    if not isinstance(value, list) or not value:
        raise where.error("models", "must be a non-empty list of model names or tables")
    registry = plugins.models()
    out: list[ModelEntry | ScoreEntry] = []
    for i, item in enumerate(value):
        key = f"models[{i}]"
        if isinstance(item, str):
            out.append(ModelEntry(_name(where, key, item, registry)))
            continue
        if isinstance(item, dict) and "path" in item:
            out.append(parse_score_entry(where, key, item))
            continue
        if not isinstance(item, dict) or "name" not in item:
            raise where.error(key, "must be a model name, a table with 'name' or a table with 'path' "
                              f"(a model trained elsewhere), got {item!r}")
        where.check_keys(item, MODEL_KEYS, f"{key}.")
        name = _name(where, f"{key}.name", item["name"], registry)
        options = item.get("options", {})
        train = item.get("train", {})
        if not isinstance(options, dict) or not isinstance(train, dict):
            raise where.error(key, "options and train must be tables")
        spec = registry.get(name)
        for opt in options:  # named with its full key path, which check_options cannot know
            if opt not in spec.options:
                raise where.error(f"{key}.options.{opt}", f"model {name!r} has no option {opt!r}"
                                  f"{did_you_mean(opt, spec.options)}; options: {', '.join(spec.options) or 'none'}")
        try:
            spec.check_options(options)  # values too: a typo fails here, not in every cell an hour later
        except CellbenchError as exc:
            raise where.error(f"{key}.options", str(exc)) from None
        out.append(ModelEntry(name, dict(options), dict(train)))
    _no_duplicates(where, "models", [m.label for m in out])
    return out


def parse_augmentations(where: Where, value: Any) -> list[AugmentationChain]:
    """``augmentations = ["none", "simple", ["simple", "mixup"], { name = "augmix", severity = 5.0 }]``.

    Each item is one :class:`AugmentationChain`, its names and option values checked against the
    registry; two items with the same label (``["simple", "none"]`` is ``simple``) are refused.
    """
    if not isinstance(value, list) or not value:
        raise where.error("augmentations", "must be a non-empty list (each item a name or a list of names)")
    out = []
    for i, item in enumerate(value):
        if item == []:
            raise where.error(f"augmentations[{i}]", "an empty list; use \"none\" for no augmentation")
        try:
            out.append(AugmentationChain.parse(item).check())
        except CellbenchError as exc:
            raise where.error(f"augmentations[{i}]", str(exc)) from None
    _no_duplicates(where, "augmentations", [a.label for a in out])
    return out


def parse_adapters(where: Where, value: Any) -> list[str]:
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


def _tables(where: Where, key: str, value: Any, allowed: tuple[str, ...], needs: str) -> Iterator[tuple[str, dict]]:
    """``(key[i], table)`` for each table of the ``[[key]]`` array *value*, its keys checked."""
    if not isinstance(value, list):
        raise where.error(key, f"must be an array of tables ([[{key}]])")
    for i, item in enumerate(value):
        item_key = f"{key}[{i}]"
        if not isinstance(item, dict):
            raise where.error(item_key, f"must be a table with {needs}")
        where.check_keys(item, allowed, f"{item_key}.")
        yield item_key, item


def _entry_name(where: Where, key: str, item: dict[str, Any], forbidden: str) -> str:
    """The ``name`` of an ``[[array]]`` table: non-empty, without *forbidden* (the label separator)."""
    name = item.get("name")
    if not isinstance(name, str) or not name.strip() or forbidden in name:
        raise where.error(f"{key}.name", f"must be a non-empty name without {forbidden!r}, got {name!r}")
    return name


def _unique_names(where: Where, key: str, entries: list[Any]) -> None:
    if len({e.name for e in entries}) != len(entries):
        raise where.error(key, f"two {key} share a name")


def parse_targets(where: Where, value: Any) -> list[TargetEntry]:
    """``[[targets]]``: name, data spec and an optional class mapping (names checked when the data loads)."""
    out = []
    for key, item in _tables(where, "targets", value, TARGET_KEYS, "name and data"):
        name = _entry_name(where, key, item, "|")
        data = item.get("data")
        if not isinstance(data, str) or not data.strip():
            raise where.error(f"{key}.data", f"must be a data set spec (cellbench ls datasets), got {data!r}")
        classes = item.get("classes", {})
        if not isinstance(classes, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                    for k, v in classes.items()):
            raise where.error(f"{key}.classes", "must map target class names to training class names, "
                              'e.g. { lymph = "lymphocyte" }')
        out.append(TargetEntry(name, data, dict(classes)))
    _unique_names(where, "targets", out)
    return out


def parse_ensembles(where: Where, value: Any, models: list[ModelEntry | ScoreEntry],
                    augmentations: list[AugmentationChain], seeds: list[int]) -> list[EnsembleEntry]:
    """``[[ensembles]]``: a name and at least two member cells ``model/augmentation[/seed]`` of this matrix.

    A score-only model is the member ``label/external``: its one cell, whatever the ensemble's seed.
    """
    from robustbench_cells.bench.scoring_cells import SCORE_AUGMENTATION

    score_seeds = {member_label(m.label, SCORE_AUGMENTATION): m.seed for m in models if isinstance(m, ScoreEntry)}
    labels = {member_label(m.label, a.label) for m in models if isinstance(m, ModelEntry)
              for a in augmentations} | set(score_seeds)
    model_labels = {m.label for m in models}
    out = []
    for key, item in _tables(where, "ensembles", value, ENSEMBLE_KEYS, "name and members"):
        name = _entry_name(where, key, item, "/")
        if name in model_labels:
            raise where.error(f"{key}.name", f"{name!r} is also a model of this matrix")
        members = item.get("members")
        if not isinstance(members, list) or len(members) < 2:
            raise where.error(f"{key}.members", "must list at least two cells as 'model/augmentation[/seed]'")
        for j, member in enumerate(members):
            if not isinstance(member, str) or member.count("/") not in (1, 2):
                raise where.error(f"{key}.members[{j}]", f"must be 'model/augmentation[/seed]', got {member!r}")
            model_aug, _, seed = split_member(member)
            if model_aug not in labels:
                raise where.error(f"{key}.members[{j}]", f"{member!r} is not a cell of this matrix"
                                  f"{did_you_mean(model_aug, labels)}")
            if model_aug in score_seeds:
                if seed is not None and seed != score_seeds[model_aug]:
                    raise where.error(f"{key}.members[{j}]", f"{model_aug!r} is scored once, at seed "
                                      f"{score_seeds[model_aug]}; leave the seed out")
            elif seed is not None and seed not in seeds:
                raise where.error(f"{key}.members[{j}]", f"seed {seed} is not in seeds {seeds}")
        if len(set(members)) != len(members):
            raise where.error(f"{key}.members", f"lists a cell twice: {members}")
        out.append(EnsembleEntry(name, tuple(members)))
    _unique_names(where, "ensembles", out)
    return out


def member_label(model_label: str, aug_label: str) -> str:
    """``model/augmentation``: an ensemble member without its seed."""
    return f"{model_label}/{aug_label}"


def split_member(member: str) -> tuple[str, str, int | None]:
    """``model/aug[/seed]`` -> ``("model/aug", "aug", seed or None)``; a seed that is not a number is -1."""
    parts = member.split("/")
    model_aug = "/".join(parts[:2])
    if len(parts) == 3:
        try:
            return model_aug, parts[1], int(parts[2])
        except ValueError:
            return model_aug, parts[1], -1
    return model_aug, parts[1], None
