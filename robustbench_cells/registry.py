"""Plugin spec dataclasses and name lookup with fnmatch filters.

One :class:`Registry` per kind of plugin (augmentations, shifts, models, datasets). Specs are
immutable; the registry stamps each with the name of the plugin that registered it, so a clash can
name both plugins.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Literal, TypeVar

import numpy as np

from robustbench_cells.errors import CellbenchError, did_you_mean, unknown_name_error

#: The shift families, in the order tables show them.
SHIFT_FAMILIES = (
    "noise", "blur", "digital", "photometric", "stain", "microscopy", "geometric", "background",
    "occlusion", "lab",
)


@dataclass(frozen=True)
class AugmentationSpec:
    """A training augmentation.

    ``kind="image"``: ``factory(**options)`` returns ``fn(images_uint8 (N,H,W,3), rng) -> uint8``
    applying independent random parameters per image.
    ``kind="batch"``: ``factory(**options)`` returns
    ``fn(images_float32 (N,H,W,3) in 0..255, labels_float32 (N,C), rng) -> (images, labels)``
    (MixUp, CutMix: they mix labels too).
    ``options`` is derived from ``factory``'s keyword defaults (see :func:`option_defaults`, which
    also says what an ``options=`` given here may do); unknown option names are refused by :meth:`build`.
    """

    name: str
    family: str
    kind: Literal["image", "batch"]
    factory: Callable[..., Callable[..., Any]]
    description: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    plugin: str = ""
    choices: Mapping[str, Sequence[Any]] = field(default_factory=dict)  # allowed values of string options

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", option_defaults(f"augmentation {self.name!r}", self.factory, 0,
                                                            self.options))

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults merged with *options*, names, types and choices checked (one line on error)."""
        return check_option_values(f"augmentation {self.name!r}", self.options, options, self.choices)

    def build(self, **options: Any) -> Callable[..., Any]:
        """Instantiate the augmentation with *options* (validated first)."""
        return self.factory(**self.check_options(options))


@dataclass(frozen=True)
class ShiftSpec:
    """A synthetic test-time shift with five severities.

    ``fn(images_uint8 (N,H,W,3), param, rng) -> uint8`` where ``param = severities[s - 1]``;
    randomness only from ``rng``. Severity 0 is the identity.
    """

    name: str
    family: str
    fn: Callable[[np.ndarray, Any, np.random.Generator], np.ndarray]
    severities: tuple[Any, Any, Any, Any, Any]
    description: str = ""
    plugin: str = ""

    def apply(self, images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
        """Shift a uint8 batch at *severity* (0..5)."""
        if not 0 <= severity <= len(self.severities):
            raise CellbenchError(f"shift {self.name!r}: severity must be 0..{len(self.severities)}, got {severity}")
        if severity == 0:
            return images.copy()
        return self.fn(images, self.severities[severity - 1], rng)


@dataclass(frozen=True)
class ModelSpec:
    """A classifier builder.

    ``builder(input_shape, num_classes, weights, **options) -> keras.Model``. The model takes
    float32 images on the 0..255 scale and does its own preprocessing inside (so a saved model
    carries it). ``weights`` is ``None``, ``"imagenet"`` or a file path. ``options`` is derived
    from the builder's keyword defaults after those three arguments (see :func:`option_defaults`).
    """

    name: str
    family: str
    builder: Callable[..., Any]
    default_input_size: int = 96
    min_input_size: int = 32
    preprocessing: str = "scale to [0, 1]"
    params: int | None = None  # trainable + frozen parameters at 96x96x3 with 8 classes
    description: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    plugin: str = ""
    choices: Mapping[str, Sequence[Any]] = field(default_factory=dict)  # allowed values of string options

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", option_defaults(f"model {self.name!r}", self.builder, 3, self.options))

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults merged with *options*, names, types and choices checked (one line on error)."""
        return check_option_values(f"model {self.name!r}", self.options, options, self.choices)

    def build(self, input_shape: tuple[int, int, int], num_classes: int, weights: str | None = None,
              **options: Any) -> Any:
        """Build the Keras model (validates its options first)."""
        return self.builder(input_shape, num_classes, weights, **self.check_options(options))


@dataclass(frozen=True)
class DatasetSpec:
    """A data set source, addressed as ``NAME`` or ``NAME:ARG`` (e.g. ``folder:PATH``, ``synthetic:2000``).

    ``loader(arg: str | None) -> Dataset``.
    """

    name: str
    loader: Callable[[str | None], Any]
    description: str = ""
    example: str = ""
    plugin: str = ""


#: Adapter stages, in the order a chain runs them (see :class:`AdapterSpec`).
ADAPTER_STAGES = ("image", "model", "predict")


@dataclass(frozen=True)
class AdapterSpec:
    """A test-time adapter: sees a trained cell and the unlabeled images of ONE evaluation set.

    ``stage`` says what ``fn`` does, and so where it runs in a chain (image, then model, then predict):

    - ``"image"``: ``fn(context, images_uint8 (N,H,W,3), rng, **options) -> uint8 images`` (same shape);
    - ``"model"``: ``fn(context, images_uint8, rng, **options) -> keras.Model``, an adapted COPY
      (the stored model must stay untouched);
    - ``"predict"``: ``fn(context, images_uint8, rng, **options) -> float32 (N, C)`` probabilities
      (at most one per chain, last).

    ``context`` is a :class:`robustbench_cells.adapters.AdaptContext` (model, meta, training-set
    statistics, notes). Adapters never receive labels. ``options`` is derived from ``fn``'s keyword
    defaults after those three arguments (see :func:`option_defaults`; ``options`` stays the third
    positional field so older plugins keep working); unknown option names, wrong types and values
    outside ``choices`` are refused by :meth:`check_options`. ``reference`` cites the method's source.
    """

    name: str
    description: str
    options: Mapping[str, Any] | None = None
    fn: Callable[..., Any] = None  # type: ignore[assignment]  # required: checked in __post_init__
    stage: Literal["image", "model", "predict"] = "model"
    reference: str = ""
    plugin: str = ""
    choices: Mapping[str, Sequence[Any]] = field(default_factory=dict)  # allowed values of string options

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise CellbenchError(f"adapter {self.name!r}: fn must be a function, got {type(self.fn).__name__}")
        object.__setattr__(self, "options", option_defaults(f"adapter {self.name!r}", self.fn, 3, self.options))

    def check_options(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults merged with *options*, names, types and choices checked (one line on error)."""
        return check_option_values(f"adapter {self.name!r}", self.options, dict(options or {}), self.choices)


SpecT = TypeVar("SpecT", AugmentationSpec, ShiftSpec, ModelSpec, DatasetSpec, AdapterSpec)


class Registry(Generic[SpecT]):
    """Name -> spec, with duplicate detection and fnmatch listing."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._specs: dict[str, SpecT] = {}

    def register(self, spec: SpecT, plugin: str = "") -> None:
        """Add *spec*; a name registered twice is an error naming both plugins."""
        if not getattr(spec, "name", None) or not isinstance(spec.name, str):
            raise CellbenchError(f"plugin {plugin!r} registered a {self.kind} without a name")
        if spec.name in self._specs:
            other = self._specs[spec.name].plugin
            raise CellbenchError(
                f"{self.kind} {spec.name!r} is registered twice: by plugin {other!r} and by plugin {plugin!r}"
            )
        self._specs[spec.name] = replace(spec, plugin=plugin) if plugin else spec

    def get(self, name: str) -> SpecT:
        """The spec called *name*, or a :class:`CellbenchError` suggesting close matches."""
        try:
            return self._specs[name]
        except KeyError:
            raise unknown_name_error(self.kind, name, self._specs) from None

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted names matching the fnmatch *pattern*."""
        return sorted(n for n in self._specs if fnmatch.fnmatchcase(n, pattern))

    def list(self, pattern: str = "*") -> list[SpecT]:
        """Specs whose name (or family, for shifts/augmentations/models) matches *pattern*."""
        out = []
        for name in sorted(self._specs):
            spec = self._specs[name]
            family = getattr(spec, "family", None)
            if fnmatch.fnmatchcase(name, pattern) or (family and fnmatch.fnmatchcase(family, pattern)):
                out.append(spec)
        return out

    def by_plugin(self, plugin: str) -> list[str]:
        """Names registered by *plugin*."""
        return sorted(n for n, s in self._specs.items() if s.plugin == plugin)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[SpecT]:
        return iter(self._specs[n] for n in sorted(self._specs))

    def __len__(self) -> int:
        return len(self._specs)


def option_defaults(what: str, factory: Callable[..., Any], passed: int,
                    declared: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A plugin's option defaults, read from *factory*'s signature: declared once, where they are used.

    The options are the keyword parameters with a default after the first *passed* positional
    ones (which cellbench passes itself: 0 for augmentation factories, 3 for model builders and
    adapters), in signature order. *declared* is a spec's ``options=``, still accepted so plugins
    written before this rule keep working; it is checked, not trusted:

    - an option the signature has a default for must have the same default there (a mismatch is
      a :class:`CellbenchError` naming the option: two defaults would disagree at some point);
    - an option the signature names without a default, or any option of a factory that takes
      ``**kwargs`` (or whose signature cannot be read), takes its default from *declared*, the only
      source then;
    - an option the factory does not take is an error.

    A parameter left without any default is an error too: :meth:`build` passes only the defaults
    and the user's options, so the factory could never be called.
    """
    declared = dict(declared or {})
    try:
        params = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):  # a builtin or C callable without a readable signature
        return declared
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    skipped = [p for p in params if p.kind in positional][:passed]
    named = [p for p in params if p not in skipped and p.kind in (*positional, inspect.Parameter.KEYWORD_ONLY)]
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    defaults = {p.name: p.default for p in named if p.default is not inspect.Parameter.empty}
    for key, value in declared.items():
        if key in defaults:
            if not _same_default(value, defaults[key]):
                raise CellbenchError(f"{what}: option {key!r}: options= says {value!r} but the factory's default is "
                                     f"{defaults[key]!r} (declare defaults once, in the factory's signature)")
        elif not takes_kwargs and key not in {p.name for p in named}:
            raise CellbenchError(f"{what}: options= names {key!r}, which the factory does not take"
                                 f"{did_you_mean(key, [p.name for p in named])}")
    missing = [p.name for p in named if p.default is inspect.Parameter.empty and p.name not in declared]
    if missing:
        raise CellbenchError(f"{what}: parameter {missing[0]!r} of the factory has no default "
                             "(options are defaults a user may override)")
    return {**defaults, **{k: v for k, v in declared.items() if k not in defaults}}


def _same_default(a: Any, b: Any) -> bool:
    """Equal defaults, a list and a tuple of the same items alike (TOML and Python spell pairs differently)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_default(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    try:
        return bool(a == b)
    except Exception:  # e.g. arrays: ambiguous truth value
        return a is b


def check_option_values(what: str, defaults: Mapping[str, Any], options: Mapping[str, Any],
                        choices: Mapping[str, Sequence[Any]] | None = None) -> dict[str, Any]:
    """Defaults merged with *options*, each value checked against its default's type and *choices*.

    The one place option values are validated, so a matrix with ``severity = "high"`` or
    ``norm = "groupp"`` fails at validation, before any data is loaded, with one line naming the
    option. An option whose default is ``None`` takes any value (its factory checks it).
    """
    choices = choices or {}
    for key, value in options.items():
        if key not in defaults:
            raise CellbenchError(f"{what}: unknown option {key!r}{did_you_mean(key, defaults)}; "
                                 f"options: {', '.join(defaults) or 'none'}")
        default = defaults[key]
        if key in choices and value not in choices[key]:
            raise CellbenchError(f"{what}: option {key!r} = {value!r} is not one of "
                                 f"{', '.join(map(str, choices[key]))}{did_you_mean(str(value), map(str, choices[key]))}")
        expected = _option_type(default)
        if expected is not None and not _fits(value, expected):
            kind = {int: "a number", float: "a number", bool: "true or false", list: "a list", str: "a string"}
            raise CellbenchError(f"{what}: option {key!r} = {value!r} must be {kind.get(expected, expected.__name__)} "
                                 f"(default {default!r})")
    return {**defaults, **options}


def _option_type(default: Any) -> type | None:
    if default is None:
        return None
    if isinstance(default, bool):
        return bool
    if isinstance(default, (int, float)):
        return float if isinstance(default, float) else int
    if isinstance(default, (list, tuple)):
        return list
    return None  # strings and tables: some take several forms (a name or a list); choices and factories check


def _fits(value: Any, expected: type) -> bool:
    if expected is bool:
        return isinstance(value, bool)
    if expected in (int, float):  # numbers are interchangeable (TOML writes 2 and 2.0 alike); ranges are the factory's
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is list:
        return isinstance(value, (list, tuple))
    return isinstance(value, expected)


@dataclass(frozen=True)
class ReportFormatSpec:
    """An output format of ``cellbench report --format NAME`` (hook ``register_report_formats``).

    ``render(ctx) -> str`` makes the whole report as text from a
    :class:`robustbench_cells.report.context.ReportContext` (``ctx.summary``, ``ctx.run_dir``,
    ``ctx.cell``, ``ctx.samples``). It goes to stdout, or to ``--out``; a format with a
    ``default_file`` (``"report.html"``) is always written to a file, ``RUN_DIR/<default_file>``
    unless ``--out`` says otherwise. ``show(ctx, console)``, if given, draws the report on a rich
    console instead when it goes to the terminal (the ``table`` format: colours, the terminal's width).
    """

    name: str
    description: str
    render: Callable[[Any], str]
    default_file: str | None = None
    show: Callable[[Any, Any], None] | None = None
    plugin: str = ""


@dataclass(frozen=True)
class ReportSectionSpec:
    """A section of the HTML report (hook ``register_report_sections``).

    ``build(ctx) -> (title, html_fragment) | [(title, html_fragment), ...] | None`` (None: nothing
    to show for this run). Sections appear by ``order``, then name: the built-ins use 10-90 (summary 10,
    grid 20, curves 30, targets 40, cell 50, samples 60, explain 90), so the default 100 puts a
    plugin's section after them. Titles are escaped; fragments are inserted as given (escape user text
    with ``report.html.esc``, embed images with ``report.html.img_tag``). A section that raises
    becomes a note naming it, not a crashed report.
    """

    name: str
    build: Callable[[Any], Any]
    description: str = ""
    order: int = 100
    plugin: str = ""
