"""Orchestrate ``cellbench explain``: a run folder + a target spec -> one JSON-ready result.

Steps: rebuild the run's validation split from its stored config; fingerprint a fixed subset of it,
every (shift, severity) version of that subset, and the target; rank the shifted sets by distance;
for every trained cell predict validation and target, and estimate target accuracy without labels;
recommend a cell. Shifted-set statistics are cached in ``RUN_DIR/explain_cache.npz`` (they depend
only on the run's data and shift suite), so a second target costs only its own predictions.

Adapted cells (config kind ``adapt``) run their adapter chain on the target images; every cell's
estimates get intervals from a leave-one-group-out calibration over the run's shift families and
labelled targets (:meth:`Explainer.calibrate`), which also fits the meta-regression (:mod:`.metareg`).

This module keeps the steps and the seams tests replace (``_shift_fn``, ``_model_api``, ``_adapt_fn``,
``_shift_families``); the parts are :mod:`.runfolder` (run data, stored scores and probabilities, the
cache), :mod:`.heldout` (the calibration), :mod:`.datachecks` (leakage, outliers) and :mod:`.summaries`
(intervals and choice, adapter effects, estimator errors).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robustbench_cells.errors import CellbenchError
from robustbench_cells.explain.datachecks import leakage_and_outliers
from robustbench_cells.explain.estimate import (ESTIMATORS, all_estimates, atc_estimate, atc_matched_estimate,
                                                doc_estimate)
from robustbench_cells.explain.fingerprint import Reference, compare_to_reference, image_statistics
from robustbench_cells.explain.heldout import HeldOutCalibration
from robustbench_cells.explain.nearest import Candidate, rank_candidates, rank_families
from robustbench_cells.explain.recommend import likely_families, recommend, suggest_augmentations
# CACHE_FILENAME is re-exported: callers and tests find the cache file as ``core.CACHE_FILENAME``.
from robustbench_cells.bench.rundata import stratified_subset
from robustbench_cells.explain.runfolder import (CACHE_FILENAME, cell_accuracy, load_or_compute_shifted, open_run,
                                                 shifted_cache_key, stored_proba)
from robustbench_cells.explain.summaries import add_intervals, adapter_effects, estimator_errors
from robustbench_cells.explain.target import Target, load_target

__all__ = ["CACHE_FILENAME", "ExplainOptions", "Explainer", "Progress", "adapter_effects", "estimator_errors",
           "explain", "shifted_statistics"]


Progress = Callable[[str], None]


@dataclass
class ExplainOptions:
    """Sizes and knobs of an explain run (defaults keep a 20-shift suite under a minute on 2 cores)."""

    reference_images: int = 200  # validation images fingerprinted per shifted set
    neighbours: int = 3  # (shift, severity) sets averaged by the shift-matched estimate
    seed: int = 0
    labels: bool = False


def _shift_families(names: list[str]) -> dict[str, str]:
    from robustbench_cells import plugins

    registry = plugins.shifts()
    return {name: registry.get(name).family if name in registry else "?" for name in names}


def _shift_fn() -> Callable[[np.ndarray, str, int, int], np.ndarray]:
    """``shift_images(images, shift, severity, seed)`` (a seam the tests replace)."""
    from robustbench_cells.bench.shiftsets import shift_images

    return shift_images


def _model_api() -> tuple[Callable[..., Any], Callable[..., np.ndarray]]:
    """``(load_model, predict_proba)`` from :mod:`robustbench_cells.train` (a seam the tests replace)."""
    from robustbench_cells.train import load_model, predict_proba

    return load_model, predict_proba


def _adapt_fn() -> Callable[[str, Any, dict[str, Any], np.ndarray, int], np.ndarray]:
    """``adapt(chain, model, meta, images, seed) -> probabilities`` (a seam the tests replace).

    The adapter chain of an adapted cell runs on the unlabeled images themselves, exactly as the runner
    scored that cell on each of its sets (:mod:`robustbench_cells.bench.adapting`)."""
    from robustbench_cells.adapters import META_KEY, AdaptContext, adapt_predict

    def adapt(chain: str, model: Any, meta: dict[str, Any], images: np.ndarray, seed: int) -> np.ndarray:
        context = AdaptContext(model, meta, dict(meta.get(META_KEY) or {}))
        return adapt_predict(chain, context, images, seed=seed)

    return adapt


def shifted_statistics(images: np.ndarray, shifts: list[str], severities: list[int], seed: int,
                       progress: Progress | None = None) -> dict[tuple[str, int], np.ndarray]:
    """Fingerprint statistics of *images* under every ``(shift, severity)`` (plus ``("clean", 0)``)."""
    shift_images = _shift_fn()
    out = {("clean", 0): image_statistics(images)}
    for name in shifts:
        if progress:
            progress(f"fingerprinting shift {name}")
        for sev in severities:
            out[(name, sev)] = image_statistics(shift_images(images, name, sev, seed))
    return out


class Explainer(HeldOutCalibration):
    """A run folder prepared once (data, shifted-set fingerprints, models, validation probabilities)
    to explain any number of targets; :func:`explain` is the one-shot form."""

    def __init__(self, run_dir: str | Path, options: ExplainOptions | None = None,
                 progress: Progress | None = None) -> None:
        self.options = options or ExplainOptions()
        self.run_dir = Path(run_dir)
        self.say = progress or (lambda _msg: None)
        self.store, self.config, self.train, self.val, self.shift_labels = open_run(self.run_dir)
        shift_cfg = self.config.get("shifts", {})
        shifts = list(shift_cfg.get("names", []))
        severities = [int(s) for s in shift_cfg.get("severities", [1, 2, 3, 4, 5])]
        shift_seed = int(shift_cfg.get("seed", 0))
        # the run's one stratified subset (bench/rundata.py), of the validation split
        ref_images = self.val.images[stratified_subset(self.val.labels, self.options.reference_images,
                                                       self.options.seed)]
        self.say(f"fingerprinting {len(ref_images)} validation images under {len(shifts)} shifts"
                 f" x {len(severities)} severities")
        key = shifted_cache_key(self.val.fingerprint(), shifts, severities, len(ref_images), shift_seed,
                                self.options.seed)
        self.shifted = load_or_compute_shifted(
            self.run_dir, key, lambda: shifted_statistics(ref_images, shifts, severities, shift_seed, self.say))
        self.val_stats = self.shifted[("clean", 0)]
        self.reference = Reference.from_stats(self.val_stats)
        self.families = _shift_families(shifts)
        self.cells = [c for c in self.store.cells(status="done") if c.model_path]
        if not self.cells:
            raise CellbenchError(f"{self.run_dir}: no finished cells to estimate (run `cellbench run` first)")
        self._models: dict[str, Any] = {}
        self._loaded: dict[str, tuple[Any, dict[str, Any]]] = {}  # model_path -> (model, meta): bases load once
        self._accuracy: dict[str, dict[tuple[str, int], float]] = {}
        self._probs: dict[str, dict[str, np.ndarray]] = {}
        self._rows: list[dict[str, Any]] | None = None
        self._calibrations: dict[frozenset[str], tuple[dict[str, Any] | None, Any]] = {}
        self._targets: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        self.target_notes: list[str] = []

    def load_target(self, spec: str) -> Target:
        """Load *spec* (labels only with ``options.labels``) at the run's image size."""
        return load_target(spec, with_labels=self.options.labels, class_names=self.val.class_names)

    def _model(self, cell: Any) -> tuple[Any, np.ndarray, dict[tuple[str, int], tuple[np.ndarray, np.ndarray]], float]:
        """(model, validation probabilities, stored shifted-set probabilities, fitted temperature) of *cell*, loaded once.

        An adapted cell's model is its base cell's (loaded once for all its adapters); its probabilities
        are its own (the adapter chain run on each set)."""
        if cell.key not in self._models:
            if cell.model_path not in self._loaded:
                load_model, _predict = _model_api()
                self._loaded[cell.model_path] = load_model(cell.model_path)
            model = self._loaded[cell.model_path][0]
            stored = self._stored(cell)
            val_p = stored.get("val|clean|0")
            if val_p is None or len(val_p) != len(self.val):
                val_p = self._predict(cell, self.val.images)
            shifted = {("clean", 0): (val_p, self.val.labels)}
            for name, p in stored.items():
                split, shift, sev = name.split("|")
                if split == "test" and shift != "clean" and len(p) == len(self.shift_labels):
                    shifted[(shift, int(sev))] = (p, self.shift_labels)
            from robustbench_cells.explain.calibration import fit_temperature

            self._models[cell.key] = (model, val_p, shifted, fit_temperature(val_p, self.val.labels))
        return self._models[cell.key]

    def _predict(self, cell: Any, images: np.ndarray) -> np.ndarray:
        """*cell*'s probabilities on unlabeled *images*: its model, through its adapter chain for an adapted cell."""
        if cell.model_path not in self._loaded:
            self._model(cell)
        model, meta = self._loaded[cell.model_path]
        chain = _adapter(cell)
        if chain != "none":
            return np.asarray(_adapt_fn()(chain, model, dict(meta or {}), images, int(cell.config.get("seed", 0))))
        return np.asarray(_model_api()[1](model, images))

    def _stored(self, cell: Any) -> dict[str, np.ndarray]:
        """The cell's stored probabilities (``probs.npz``), read once."""
        if cell.key not in self._probs:
            self._probs[cell.key] = stored_proba(self.run_dir, cell)
        return self._probs[cell.key]

    def _stored_accuracy(self, cell: Any) -> dict[tuple[str, int], float]:
        if cell.key not in self._accuracy:
            self._accuracy[cell.key] = cell_accuracy(self.store, cell.key)
        return self._accuracy[cell.key]

    def explain(self, target: Target, *, data_checks: bool = True) -> dict[str, Any]:
        """The whole result for *target* (see the module docstring)."""
        from robustbench_cells.data.resize import resize_images

        options, say = self.options, self.say
        size = self.val.images.shape[1:3]
        if target.images.shape[1:3] != size:
            # Fingerprints compare like with like: the target at the resolution the shifts were applied to.
            target = Target(resize_images(target.images, size), target.labels, target.paths, target.source)
        say(f"fingerprinting {len(target.images)} target images")
        target_stats = image_statistics(target.images)
        candidates = rank_candidates(target_stats, self.shifted, self.families, self.reference)
        fam_rank = rank_families(candidates)
        matches = [(c.shift, c.severity) for c in candidates[:options.neighbours]]
        from robustbench_cells.explain.coverage import coverage

        cov = coverage(target_stats, self.shifted, self.families, self.reference, seed=options.seed)
        # Coverage first: a reader (or a script) must see "these are guesses" before any number.
        result: dict[str, Any] = {
            "coverage": cov,
            "run_dir": str(self.run_dir), "target": target.source, "n_target": int(len(target.images)),
            "labels": bool(options.labels),
            "fingerprint": {
                "statistics": compare_to_reference(target_stats, self.val_stats, self.reference),
                "nearest": [c.as_dict() for c in candidates[:15]],
                "families": fam_rank,
            },
        }
        if data_checks:
            say("checking leakage and outliers")
            result["data_checks"] = leakage_and_outliers(self.train.images, target, target_stats, self.reference,
                                                         self.val_stats)
        exclude = self._own_targets(target)
        result["cells"] = self._estimate_cells(target, candidates, exclude)
        result["estimators"] = list(ESTIMATORS)
        if options.labels:
            result["estimator_errors"] = estimator_errors(result["cells"])
        cell_inputs = [{**c, "accuracy": c["_accuracy"]} for c in result["cells"]]
        result["recommendation"] = recommend(cell_inputs, fam_rank, matches,
                                             candidates[0].distance if candidates else np.inf,
                                             _augmentation_families())
        if any(c["adapter"] != "none" for c in cell_inputs):
            # Augmentation advice compares how cells were *trained*: adapted copies would count twice.
            result["recommendation"]["augmentations"] = suggest_augmentations(
                [c for c in cell_inputs if c["adapter"] == "none"], matches,
                likely_families(fam_rank), _augmentation_families())
        add_intervals(result, self.calibrate(exclude), cov)
        result["adapters"] = adapter_effects(result["cells"], result["default_estimator"])
        for c in result["cells"]:
            c.pop("_accuracy")
        return result

    def _set_estimates(self, target_ps: list[np.ndarray], candidates: list[Candidate],
                       held_out: set[tuple[str, int]] | None = None) -> list[dict[str, float | None]]:
        """Every estimator for every cell on one set (the target, or a held-out benchmarked set whose
        own family's sets in *held_out* are hidden from the shift-based estimators)."""
        from robustbench_cells.explain.agreement import aol_estimates
        from robustbench_cells.explain.calibration import apply_temperature

        hide = held_out or set()
        val_y = self.val.labels
        out = []
        for cell, target_p in zip(self.cells, target_ps):
            _model, val_p, shifted_p, temp = self._model(cell)
            accuracy = {k: v for k, v in self._stored_accuracy(cell).items() if k not in hide}
            known = {k: v for k, v in shifted_p.items() if k not in hide}
            est = all_estimates(val_p, val_y, target_p, candidates, accuracy, k=self.options.neighbours)
            est["atc_matched"] = atc_matched_estimate(candidates, known, target_p, k=self.options.neighbours)
            val_t, target_t = apply_temperature(val_p, temp), apply_temperature(target_p, temp)
            est["atc_ts"] = atc_estimate(val_t, val_y, target_t, "entropy")
            est["doc_ts"] = doc_estimate(val_t, val_y, target_t)
            out.append(est)
        for est, aol in zip(out, aol_estimates([self._model(c)[1] for c in self.cells], val_y, target_ps)):
            est["aol"] = aol
        return out

    def _estimate_cells(self, target: Target, candidates: list[Candidate],
                        exclude: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
        from robustbench_cells.explain.metareg import feature_row

        val_y = self.val.labels
        target_ps = []
        for i, cell in enumerate(self.cells, 1):
            adapter = _adapter(cell)
            self.say(f"cell {i}/{len(self.cells)}: {cell.model}/{cell.augmentation}/{cell.seed}"
                     + (f" (adapting to the target with {adapter})" if adapter != "none" else ""))
            target_ps.append(self._predict(cell, target.images))
        all_estimates_ = self._set_estimates(target_ps, candidates)
        self.calibrate(exclude)
        metareg = self._calibrations[exclude][1]
        if metareg is not None:
            # The meta-regression learned on the held-out sets maps the same signals, on the target, to accuracy.
            for est, sig in zip(all_estimates_, self._signals(target_ps, candidates)):
                est["metareg"] = float(metareg.predict(feature_row(est, sig))[0])
        out = []
        for cell, target_p, estimates in zip(self.cells, target_ps, all_estimates_):
            _model, val_p, _shifted, temp = self._model(cell)
            accuracy = self._stored_accuracy(cell)
            row: dict[str, Any] = {
                "key": cell.key, "model": cell.model, "augmentation": cell.augmentation, "seed": cell.seed,
                "adapter": _adapter(cell), "base": cell.config.get("base") if _adapter(cell) != "none" else None,
                "val_accuracy": float(np.mean(val_p.argmax(1) == val_y)),
                "clean_accuracy": accuracy.get(("clean", 0)),
                "target_mean_confidence": float(target_p.max(1).mean()), "temperature": temp,
                "estimates": estimates, "_accuracy": accuracy,
            }
            if self.options.labels and target.labels is not None:
                true = float(np.mean(target_p.argmax(1) == target.labels))
                row["true_accuracy"] = true
                row["errors"] = {k: (None if v is None else v - true) for k, v in estimates.items()}
            out.append(row)
        return out


def _adapter(cell: Any) -> str:
    """The adapter chain label of an adapted cell (config kind ``adapt``), ``"none"`` for any other cell."""
    config = cell.config or {}
    return str(config.get("adapter", "none")) if config.get("kind") == "adapt" else "none"


def explain(run_dir: str | Path, target_spec: str, options: ExplainOptions | None = None,
            progress: Progress | None = None) -> dict[str, Any]:
    """Fingerprint, nearest shifts, per-cell accuracy estimates and a recommendation for *target_spec*."""
    explainer = Explainer(run_dir, options, progress)
    return explainer.explain(explainer.load_target(target_spec))


def _augmentation_families() -> dict[str, str]:
    from robustbench_cells import plugins

    return {spec.name: spec.family for spec in plugins.augmentations()}


