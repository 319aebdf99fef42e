"""Test-time adaptation: run a chain of adapters on ONE unlabeled evaluation set and predict.

API contract (what the runner calls)
------------------------------------
Once per trained cell, on its (un-augmented, uint8) training images::

    stats = train_stats(train.images)                 # JSON-able dict
    save_model(model, {**meta, "train_stats": stats}, folder)

Once per cell x adapter x evaluation set (clean test, each shifted set, each target)::

    context = AdaptContext(model, meta, stats)        # or AdaptContext.from_cell(folder)
    probs = adapt_predict(["stain_norm", "bn_adapt"], context, images_uint8, seed=0, options=None)
    # probs: float32 (N, C); context.notes collects one-line notes ("no BatchNorm layer: ...")

- ``spec_or_chain``: an adapter name, a ``"+"``-joined chain (``"stain_norm+scale_norm+bn_adapt"``),
  a list of names, or :class:`~robustbench_cells.registry.AdapterSpec` objects. ``"none"`` (or an
  empty chain) is a plain :func:`~robustbench_cells.train.predict_proba`.
- Order: the chain is stably sorted by stage (image-space adapters, then model-space ones, then
  at most one prediction-time adapter such as ``tta``), so ``bn_adapt+stain_norm`` runs
  ``stain_norm`` first.
- ``options``: ``{adapter_name: {option: value}}``; for a chain of one adapter a flat
  ``{option: value}`` is accepted too. Unknown adapters/options raise :class:`CellbenchError`
  naming them (:func:`check_chain` validates a chain without running it, for config loading).
- ``seed``: every random choice derives from it; the same seed gives the same probabilities.
- Adapters never see labels, and the stored model is never modified (model-space adapters work on
  a copy).
- :func:`chain_label` gives the display form used in tables (``"stain_norm+bn_adapt"``, ``"none"``).

Adapters are plugins (hook ``register_adapters``); the built-ins live in
:mod:`robustbench_cells.default_plugins.adapters`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from robustbench_cells.errors import CellbenchError
from robustbench_cells.registry import ADAPTER_STAGES, AdapterSpec

#: The name of the identity adapter (plain prediction).
NONE = "none"
#: Key under which the runner stores :func:`train_stats` in a cell's ``meta.json``.
META_KEY = "train_stats"
#: Training images used for the statistics (a random subset above this: the stats are averages).
MAX_STATS_IMAGES = 2000


@dataclass
class AdaptContext:
    """A trained cell as an adapter sees it.

    ``model``: the Keras model (float32 RGB 0..255 in, softmax out; its preprocessing is inside).
    ``meta``: the cell's ``meta.json`` (``class_names``, ``input_size``, ``preprocessing``, ...).
    ``stats``: :func:`train_stats` of the training images (``{}`` when the cell has none; adapters
    that need them raise a clear error). ``notes``: adapters append one-line remarks here.
    """

    model: Any
    meta: Mapping[str, Any] = field(default_factory=dict)
    stats: Mapping[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # One working copy of the model per context, reset to the stored weights for each evaluation
    # set: cloning a Keras model and tracing its predict function again for every set cost more
    # than AdaBN itself. Not copied by :meth:`with_model` (init=False).
    _scratch: Any = field(default=None, init=False, repr=False, compare=False)

    def model_copy(self) -> Any:
        """A copy of :attr:`model` with the stored weights, for model-space adapters to change.

        The same copy is handed out again (weights reset) on the next call, so an adapter must
        not keep it beyond one :func:`adapt_predict`; :attr:`model` itself is never touched.
        """
        if self._scratch is None:
            import keras

            self._scratch = keras.models.clone_model(self.model)
        self._scratch.set_weights(self.model.get_weights())
        return self._scratch

    @classmethod
    def from_cell(cls, path: str | os.PathLike) -> AdaptContext:
        """Load ``model.keras`` + ``meta.json`` (with its ``train_stats``) from a run folder."""
        from robustbench_cells.train import load_model

        model, meta = load_model(path)
        return cls(model, meta, dict(meta.get(META_KEY) or {}))

    @property
    def class_names(self) -> list[str]:
        """Class names of the model's outputs (from the meta, else ``class_0..``)."""
        names = self.meta.get("class_names")
        return list(names) if names else [f"class_{i}" for i in range(int(self.model.output_shape[-1]))]

    def with_model(self, model: Any) -> AdaptContext:
        """The same context around another (adapted) model; notes are shared."""
        return replace(self, model=model)

    def require_stat(self, key: str, adapter: str) -> Any:
        """``stats[key]``, or an error saying the cell was saved without training statistics."""
        if key not in self.stats:
            raise CellbenchError(
                f"adapter {adapter!r}: the cell has no training statistics {key!r} "
                f"(retrain it, or compute them with robustbench_cells.adapters.train_stats)"
            )
        return self.stats[key]


# ---------------------------------------------------------------------------------------------
# Training-set statistics
# ---------------------------------------------------------------------------------------------
def train_stats(images_uint8: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """JSON-able statistics of the training images that image-space adapters map the target onto.

    ``lab_mean``/``lab_std``: per-channel CIELAB mean/std over all pixels (Reinhard);
    ``macenko``: the set's two stain vectors and 99th-percentile concentrations (Macenko);
    ``cell_size``: median white-cell size (square root of the mask area, as a fraction of the image
    side, so it does not depend on the resolution); ``n``: images used. At most
    :data:`MAX_STATS_IMAGES` random images are used (drawn with *seed*).
    """
    from robustbench_cells.ops.scale import median_cell_size
    from robustbench_cells.ops.stain_norm import fit_macenko, lab_moments

    images = _check_images(images_uint8, "train_stats")
    if len(images) > MAX_STATS_IMAGES:
        idx = np.sort(np.random.default_rng(seed).choice(len(images), MAX_STATS_IMAGES, replace=False))
        images = images[idx]
    mean, std = lab_moments(images)
    stains, max_conc = fit_macenko(images)
    return {
        "n": int(len(images)), "image_size": [int(images.shape[1]), int(images.shape[2])],
        "lab_mean": [float(v) for v in mean], "lab_std": [float(v) for v in std],
        "macenko": {"stains": np.asarray(stains).round(6).tolist(),
                    "max_conc": [float(v) for v in max_conc]},
        "cell_size": float(median_cell_size(images)),
    }


# ---------------------------------------------------------------------------------------------
# Chains
# ---------------------------------------------------------------------------------------------
def parse_chain(spec_or_chain: str | AdapterSpec | Sequence[str | AdapterSpec] | None) -> list[str | AdapterSpec]:
    """``"a+b"`` / ``["a", "b"]`` / a spec -> list of names or specs, ``"none"`` entries dropped."""
    if spec_or_chain is None:
        return []
    if isinstance(spec_or_chain, (str, AdapterSpec)):
        items: list[Any] = [spec_or_chain]
    else:
        items = list(spec_or_chain)
    out: list[str | AdapterSpec] = []
    for item in items:
        if isinstance(item, str):
            out += [part.strip() for part in item.split("+") if part.strip() and part.strip() != NONE]
        elif isinstance(item, AdapterSpec):
            if item.name != NONE:
                out.append(item)
        else:
            raise CellbenchError(f"adapters: expected adapter names, got {item!r}")
    return out


def resolve_chain(spec_or_chain: Any) -> list[AdapterSpec]:
    """The chain's specs from the live registry, in run order (image, model, predict stages)."""
    from robustbench_cells import plugins

    registry = plugins.adapters()
    specs = [item if isinstance(item, AdapterSpec) else registry.get(item) for item in parse_chain(spec_or_chain)]
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise CellbenchError(f"adapters: {', '.join(dupes)} given twice in {'+'.join(names)!r}")
    for spec in specs:
        if spec.stage not in ADAPTER_STAGES:
            raise CellbenchError(f"adapter {spec.name!r} ({spec.plugin}): stage {spec.stage!r} is not one of "
                                 f"{', '.join(ADAPTER_STAGES)}")
    specs.sort(key=lambda s: ADAPTER_STAGES.index(s.stage))  # stable: user order within a stage
    predict = [s.name for s in specs if s.stage == "predict"]
    if len(predict) > 1:
        raise CellbenchError(f"adapters: at most one prediction-time adapter per chain, got {', '.join(predict)}")
    return specs


def chain_label(spec_or_chain: Any) -> str:
    """Display form in run order, e.g. ``"stain_norm+bn_adapt"``; ``"none"`` for the empty chain."""
    return "+".join(s.name for s in resolve_chain(spec_or_chain)) or NONE


def _split_options(specs: Sequence[AdapterSpec], options: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    options = dict(options or {})
    if isinstance(options.get(NONE), Mapping):
        # "none" is dropped from chains, but options given for it are still checked (it takes none).
        from robustbench_cells import plugins

        plugins.adapters().get(NONE).check_options(options.pop(NONE))
    names = {s.name for s in specs}
    if options and all(k in names and isinstance(v, Mapping) for k, v in options.items()):
        per = {k: dict(v) for k, v in options.items()}
    elif options and len(specs) == 1 and not any(k in names for k in options):
        per = {specs[0].name: options}
    elif options:
        unknown = sorted(k for k in options if k not in names)
        raise CellbenchError(
            f"adapter options: {', '.join(unknown) or 'flat options'} do not name an adapter of the chain "
            f"{'+'.join(s.name for s in specs) or NONE!r}; give {{adapter: {{option: value}}}}"
        )
    else:
        per = {}
    return {s.name: s.check_options(per.get(s.name)) for s in specs}


def check_chain(spec_or_chain: Any, options: Mapping[str, Any] | None = None) -> list[AdapterSpec]:
    """Validate names and options without running anything (config loading); returns the specs."""
    specs = resolve_chain(spec_or_chain)
    _split_options(specs, options)
    return specs


def _check_images(images: Any, where: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise CellbenchError(f"{where}: images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    return images


def adapt_predict(spec_or_chain: Any, context: AdaptContext, images_uint8: np.ndarray, seed: int = 0,
                  options: Mapping[str, Any] | None = None) -> np.ndarray:
    """Adapt to the unlabeled *images_uint8* with the chain and return float32 ``(N, C)`` probabilities.

    See the module docstring for the chain, options and seed rules. The context's model is never
    modified; model-space adapters return copies.
    """
    from robustbench_cells.train import predict_proba

    images = _check_images(images_uint8, "adapt_predict")
    specs = resolve_chain(spec_or_chain)
    per_options = _split_options(specs, options)
    ctx = context
    probs: np.ndarray | None = None
    for i, spec in enumerate(specs):
        # One generator per adapter, keyed by position: adding an adapter does not reshuffle the others.
        rng = np.random.default_rng([int(seed), i])
        opts = per_options[spec.name]
        if spec.stage == "image":
            out = np.asarray(spec.fn(ctx, images, rng, **opts))
            if out.shape != images.shape or out.dtype != np.uint8:
                raise CellbenchError(f"adapter {spec.name!r} ({spec.plugin}): returned {out.dtype} {out.shape}, "
                                     f"expected uint8 {images.shape}")
            images = out
        elif spec.stage == "model":
            model = spec.fn(ctx, images, rng, **opts)
            if model is context.model:
                raise CellbenchError(f"adapter {spec.name!r} ({spec.plugin}): must return a copy of the model")
            ctx = ctx.with_model(model)
        else:
            probs = np.asarray(spec.fn(ctx, images, rng, **opts), dtype=np.float32)
    if probs is None:
        probs = predict_proba(ctx.model, images)
    expected = (len(images), int(context.model.output_shape[-1]))
    if probs.shape != expected:
        raise CellbenchError(f"adapters {chain_label(specs)!r}: predictions of shape {probs.shape}, expected {expected}")
    return probs.astype(np.float32, copy=False)
