"""Augmentation chains: the one type for "which augmentations, with which options", and its label.

A chain is what a user writes for one training cell: a name (``"simple"``), a table
(``{name = "simple", rotation = 30}``), or a list of them (``["simple", "mixup"]``); ``"none"``
(or ``None``, or an empty list) is the empty chain. :class:`AugmentationChain` parses every such
form, checks names and options against the augmentation registry, and gives back

- ``label``: THE label format, ``simple(flip=horizontal,rotation=30)+mixup`` (options sorted,
  values as ``str``; ``"none"`` for the empty chain). Stored cells carry it, ``--cells`` patterns
  and ensemble members match it, and :meth:`AugmentationChain.from_label` reads it back (values
  are read as Python literals where they parse, else as text; so a text option that looks like a
  number comes back as a number, and one holding ``,``/``)`` does not round-trip);
- ``config()``: the structure ``TrainingBatches`` takes and cell keys hash (``"none"``, a name, a
  table, or a list). It is byte-for-byte what the matrix stored before this type existed, so the
  keys of existing runs (and their ``--resume``) do not change: a step written as a table stays a
  table even without options.

Order: a chain keeps the user's order (in ``steps`` and the label), but the pipeline runs the
per-image steps first and the batch steps (MixUp, CutMix) after, each kind in the user's order
(:meth:`AugmentationChain.run_order`): batch ops need whole, already-augmented batches, so
``["mixup", "simple"]`` trains like ``["simple", "mixup"]`` but is a different cell.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from robustbench_cells.errors import CellbenchError

if TYPE_CHECKING:
    from robustbench_cells.registry import AugmentationSpec, Registry

NONE = "none"
_OPEN, _CLOSE = "([{", ")]}"


@dataclass(frozen=True)
class ChainStep:
    """One augmentation of a chain: its name and the options the user gave (defaults not merged in)."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    table: bool = False  # written as a {name=...} table: kept so the cell-key structure stays as stored

    @property
    def label(self) -> str:
        """``name`` or ``name(k=v,...)`` with the options sorted."""
        if not self.options:
            return self.name
        return f"{self.name}({','.join(f'{k}={v}' for k, v in sorted(self.options.items()))})"

    def config(self) -> str | dict[str, Any]:
        """The step as the pipeline takes it: the name, or ``{"name": ..., **options}``."""
        return {"name": self.name, **self.options} if self.table or self.options else self.name


@dataclass(frozen=True)
class AugmentationChain:
    """An ordered chain of augmentation steps (empty = no augmentation); see the module docstring."""

    steps: tuple[ChainStep, ...] = ()

    # -- parsing -----------------------------------------------------------------------------------
    @classmethod
    def parse(cls, value: AugmentationArg) -> AugmentationChain:
        """A chain from a name, a ``{"name": ..., **options}`` table, or a list of them.

        Structure only (names and options are checked by :meth:`check`); ``"none"`` steps are
        dropped, so ``["simple", "none"]`` is ``simple``.
        """
        if isinstance(value, AugmentationChain):
            return value
        if value is None:
            return cls()
        if isinstance(value, (str, Mapping)):
            value = [value]
        if not isinstance(value, Sequence):
            raise CellbenchError("augmentation must be a name, a {name = ..., options} table or a list of them, "
                                 f"got {type(value).__name__}")
        steps = (_step(entry) for entry in value)
        return cls(tuple(s for s in steps if s.name != NONE))

    @classmethod
    def from_label(cls, label: str) -> AugmentationChain:
        """Read a :attr:`label` back (``simple(rotation=30)+mixup``).

        Steps are split on ``+`` (or ``,``, as ``cellbench preview`` has always taken) outside
        brackets, so ``simple(a=1+2)`` is one step; option values are read by :func:`parse_value`.
        """
        parts = split_outside_brackets(label, "+,")
        if any(not p.strip() for p in parts):
            raise CellbenchError(f"augmentation {label!r}: an empty step (steps are joined by '+')")
        return cls.parse([_step_from_label(p.strip(), label) for p in parts])

    # -- checking ----------------------------------------------------------------------------------
    def check(self, registry: Registry[AugmentationSpec] | None = None) -> AugmentationChain:
        """*self*, once every name is registered and every option passes the spec's ``check_options``."""
        for step, spec in self.specs(registry):
            spec.check_options(step.options)
        return self

    def specs(self, registry: Registry[AugmentationSpec] | None = None) -> list[tuple[ChainStep, AugmentationSpec]]:
        """Each step with its spec, in the chain's order (an unknown name is a one-line error)."""
        if registry is None:
            from robustbench_cells import plugins

            registry = plugins.augmentations()
        return [(step, registry.get(step.name)) for step in self.steps]

    def run_order(self, registry: Registry[AugmentationSpec] | None = None) -> list[tuple[ChainStep, AugmentationSpec]]:
        """:meth:`specs` in the order the pipeline runs them: per-image steps, then batch steps."""
        pairs = self.specs(registry)
        return [p for p in pairs if p[1].kind == "image"] + [p for p in pairs if p[1].kind == "batch"]

    # -- output forms ------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """THE label: ``simple(rotation=30)+mixup``, ``"none"`` for the empty chain."""
        return "+".join(s.label for s in self.steps) or NONE

    @property
    def names(self) -> tuple[str, ...]:
        """The augmentation names, in the chain's order."""
        return tuple(s.name for s in self.steps)

    def entries(self) -> list[str | dict[str, Any]]:
        """The steps as the matrix lists them (``["none"]`` for the empty chain)."""
        return [s.config() for s in self.steps] or [NONE]

    def config(self) -> str | dict[str, Any] | list[str | dict[str, Any]]:
        """What ``TrainingBatches`` takes and cell keys hash: ``"none"``, one step, or a list of steps."""
        entries = self.entries()
        return entries[0] if len(entries) == 1 else entries

    def tables(self) -> list[dict[str, Any]]:
        """Every step as a ``{"name": ..., **options}`` table."""
        return [{"name": s.name, **s.options} for s in self.steps]


#: What the pipeline, the matrix and the Python API accept as an augmentation.
AugmentationArg = None | str | Mapping[str, Any] | Sequence[str | Mapping[str, Any]] | AugmentationChain


def augmentation_label(augmentation: AugmentationArg) -> str:
    """The label of any augmentation form, e.g. ``"simple+mixup"`` or ``"none"``."""
    return AugmentationChain.parse(augmentation).label


def parse_value(text: str) -> Any:
    """An option value written as text: a Python literal (``0.5``, ``(0.8, 1.2)``, ``['noise']``,
    ``True``) where it parses, else the text itself (``horizontal``)."""
    text = text.strip()
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def split_outside_brackets(text: str, separators: str) -> list[str]:
    """*text* split on any character of *separators* that is outside ``()``, ``[]``, ``{}`` and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif ch in separators and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0 or quote:
        raise CellbenchError(f"augmentation {text!r}: unbalanced brackets or quotes")
    return parts + [text[start:]]


def _step(entry: Any) -> ChainStep:
    if isinstance(entry, str):
        return ChainStep(entry.strip())
    if isinstance(entry, Mapping):
        options = dict(entry)
        name = options.pop("name", None)
        if not isinstance(name, str):
            raise CellbenchError(f"augmentation table {dict(entry)!r} has no 'name' (a string)")
        return ChainStep(name.strip(), options, table=True)
    raise CellbenchError(f"augmentation step must be a name or a {{name = ..., options}} table, got {entry!r}")


def _step_from_label(part: str, label: str) -> str | dict[str, Any]:
    """``name`` (or ``name()``) -> the name; ``name(k=v,...)`` -> a table."""
    name, paren, rest = part.partition("(")
    if not paren:
        return name
    if not rest.endswith(")"):
        raise CellbenchError(f"augmentation {label!r}: {part!r} must be name(key=value,...)")
    table: dict[str, Any] = {"name": name.strip()}
    inside = rest[:-1]
    for item in split_outside_brackets(inside, ",") if inside.strip() else []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise CellbenchError(f"augmentation {label!r}: option {item.strip()!r} of {name.strip()!r} must be key=value")
        table[key.strip()] = parse_value(value)
    return table if len(table) > 1 else table["name"]  # a label does not say "written as a table"
