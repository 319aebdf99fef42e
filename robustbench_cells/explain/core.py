"""Orchestrate ``cellbench explain``: a run folder + a target spec -> one JSON-ready result.

Steps: rebuild the run's validation split from its stored config; fingerprint a fixed subset of it,
every (shift, severity) version of that subset, and the target; rank the shifted sets by distance;
for every trained cell predict validation and target, and estimate target accuracy without labels;
recommend a cell. Shifted-set statistics are cached in ``RUN_DIR/explain_cache.npz`` (they depend
only on the run's data and shift suite), so a second target costs only its own predictions.

Adapted cells (config kind ``adapt``) run their adapter chain on the target images; every cell's
estimates get intervals from a leave-one-group-out calibration over the run's shift families and
labelled targets (:meth:`Explainer.calibrate`), which also fits the meta-regression (:mod:`.metareg`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robustbench_cells.atomic import atomic_path
from robustbench_cells.errors import CellbenchError
from robustbench_cells.explain.estimate import (ESTIMATORS, all_estimates, atc_estimate, atc_matched_estimate,
                                                doc_estimate)
from robustbench_cells.explain.fingerprint import Reference, compare_to_reference, image_statistics
from robustbench_cells.explain.nearest import Candidate, rank_candidates, rank_families
from robustbench_cells.explain.recommend import likely_families, recommend, suggest_augmentations
from robustbench_cells.explain.target import Target, load_target

CACHE_FILENAME = "explain_cache.npz"
#: Bump when fingerprint statistics change, so stale caches are recomputed.
FINGERPRINT_VERSION = 1

Progress = Callable[[str], None]


@dataclass
class ExplainOptions:
    """Sizes and knobs of an explain run (defaults keep a 20-shift suite under a minute on 2 cores)."""

    reference_images: int = 200  # validation images fingerprinted per shifted set
    neighbours: int = 3  # (shift, severity) sets averaged by the shift-matched estimate
    seed: int = 0
    labels: bool = False


def _stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """At most *n* indices, the same share of every class, in a seeded order."""
    if n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng([seed, 7])
    idx = rng.permutation(len(labels))
    # Sorting a permutation by label then rank-within-class and taking every k-th keeps the classes balanced.
    order = idx[np.argsort(labels[idx], kind="stable")]
    picks = order[np.linspace(0, len(order) - 1, n).astype(int)]
    return np.sort(picks)


def _run_data(run_dir: Path) -> tuple[Any, dict[str, Any], Any, Any, np.ndarray]:
    """(store, run config, train Dataset, val Dataset, labels of the shifted test subset) from the run row."""
    from robustbench_cells.bench.store import ResultStore

    store = ResultStore(run_dir)
    run = store.run()
    if run is None:
        raise CellbenchError(f"{run_dir}: the run folder has no run yet (did `cellbench run` start?)")
    from robustbench_cells.bench.rundata import run_data_from_config

    config = run.config
    # the one run-data path (bench/rundata.py): resize, split and shift subset exactly as the runner did
    data = run_data_from_config(config, run.data_spec)
    return store, config, data.train, data.val, data.shift_base.labels


def _shift_families(names: list[str]) -> dict[str, str]:
    from robustbench_cells import plugins

    registry = plugins.shifts()
    return {name: registry.get(name).family if name in registry else "?" for name in names}


def _cache_key(data_fingerprint: str, shifts: list[str], severities: list[int], n: int, seed: int) -> str:
    try:
        from robustbench_cells.bench.shiftsets import SUITE_VERSION
    except ImportError:
        SUITE_VERSION = 0
    payload = json.dumps([FINGERPRINT_VERSION, SUITE_VERSION, data_fingerprint,
                          shifts, severities, n, seed])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


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


def _load_or_compute_shifted(run_dir: Path, images: np.ndarray, key: str, shifts: list[str], severities: list[int],
                             seed: int, progress: Progress | None) -> dict[tuple[str, int], np.ndarray]:
    path = run_dir / CACHE_FILENAME
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) == key:
                    names = [str(s) for s in z["names"]]
                    return {(n.rsplit("@", 1)[0], int(n.rsplit("@", 1)[1])): z[f"s{i}"] for i, n in enumerate(names)}
        except (OSError, KeyError, ValueError):
            pass  # unreadable or old cache: recompute below
    stats = shifted_statistics(images, shifts, severities, seed, progress)
    names = [f"{s}@{v}" for s, v in stats]
    with atomic_path(path, ".npz") as tmp:
        np.savez(tmp, key=key, names=np.array(names), **{f"s{i}": a for i, a in enumerate(stats.values())})
    return stats


def _cell_accuracy(store: Any, key: str) -> dict[tuple[str, int], float]:
    """The cell's stored accuracy per (shift, severity) on the shifted test sets (clean = ("clean", 0))."""
    rows = store.scores(cell_key=key)
    by_split: dict[str, dict[tuple[str, int], float]] = {}
    for s in rows:
        by_split.setdefault(s.split, {})[(s.shift, int(s.severity))] = float(s.accuracy)
    # Shifted sets are scored on the test split; fall back to whichever split has them.
    for split in ("test", "val"):
        if split in by_split and len(by_split[split]) > 1:
            return by_split[split]
    return next(iter(by_split.values()), {})


def _leakage_and_outliers(train_images: np.ndarray, target: Target, target_stats: np.ndarray,
                          reference: Reference, val_stats: np.ndarray) -> dict[str, Any]:
    """Near-duplicates of target images in the training data, target outliers, and how much of the
    target lies outside everything validation looks like.

    Reuses the data inspection's near-duplicate search (on target + train together, keeping only
    target-train pairs) and outlier scoring (within the target: a few images unlike the rest).
    """
    from robustbench_cells.data.inspection.duplicates import near_duplicates
    from robustbench_cells.data.inspection.outliers import find_outliers

    n_t = len(target.images)
    if train_images.shape[1:] != target.images.shape[1:]:
        from robustbench_cells.data.resize import resize_images

        train_images = resize_images(train_images, target.images.shape[1:3])
    found = near_duplicates(np.concatenate([target.images, train_images]))
    pairs, scores = found.pairs, found.scores
    cross = (pairs[:, 0] < n_t) != (pairs[:, 1] < n_t) if len(pairs) else np.zeros(0, bool)
    leaks = []
    for (a, b), score in zip(pairs[cross], scores[cross]):
        t, tr = (int(a), int(b) - n_t) if a < n_t else (int(b), int(a) - n_t)
        leaks.append({"target": target.paths[t], "train_index": tr, "correlation": round(float(score), 4)})
    leaked_images = sorted({leak["target"] for leak in leaks})
    outliers = find_outliers(target.images)
    # Share of target images outside the validation bulk: RMS robust z over the statistics above
    # validation's own 99 % quantile (about 1 % for a target drawn like validation).
    def rms(stats: np.ndarray) -> np.ndarray:
        return np.sqrt(np.mean(np.clip(reference.standardize(stats), -20, 20) ** 2, axis=1))

    fence = float(np.quantile(rms(val_stats), 0.99))
    return {
        "leakage_count": len(leaked_images),
        "leakage": leaks[:50],
        "outlier_count": int(len(outliers.flagged)),
        "outliers": [{"path": target.paths[int(i)], "score": round(float(outliers.scores[int(i)]), 3)}
                     for i in outliers.flagged[:20]],
        "unlike_validation": float(np.mean(rms(target_stats) > fence)),
    }


class Explainer:
    """A run folder prepared once (data, shifted-set fingerprints, models, validation probabilities)
    to explain any number of targets; :func:`explain` is the one-shot form."""

    def __init__(self, run_dir: str | Path, options: ExplainOptions | None = None,
                 progress: Progress | None = None) -> None:
        self.options = options or ExplainOptions()
        self.run_dir = Path(run_dir)
        self.say = progress or (lambda _msg: None)
        self.store, self.config, self.train, self.val, self.shift_labels = _run_data(self.run_dir)
        shift_cfg = self.config.get("shifts", {})
        shifts = list(shift_cfg.get("names", []))
        severities = [int(s) for s in shift_cfg.get("severities", [1, 2, 3, 4, 5])]
        shift_seed = int(shift_cfg.get("seed", 0))
        ref_images = self.val.images[_stratified_subset(self.val.labels, self.options.reference_images,
                                                        self.options.seed)]
        self.say(f"fingerprinting {len(ref_images)} validation images under {len(shifts)} shifts"
                 f" x {len(severities)} severities")
        key = _cache_key(self.val.fingerprint(), shifts, severities, len(ref_images), shift_seed)
        self.shifted = _load_or_compute_shifted(self.run_dir, ref_images, key, shifts, severities, shift_seed,
                                                self.say)
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
            self._probs[cell.key] = _stored_proba(self.run_dir, cell)
        return self._probs[cell.key]

    def _stored_accuracy(self, cell: Any) -> dict[tuple[str, int], float]:
        if cell.key not in self._accuracy:
            self._accuracy[cell.key] = _cell_accuracy(self.store, cell.key)
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
            result["data_checks"] = _leakage_and_outliers(self.train.images, target, target_stats, self.reference,
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
        self._add_intervals(result, cov, exclude)
        result["adapters"] = adapter_effects(result["cells"], result["default_estimator"])
        for c in result["cells"]:
            c.pop("_accuracy")
        return result

    def _add_intervals(self, result: dict[str, Any], cov: dict[str, Any], exclude: frozenset[str] = frozenset()) -> None:
        """Intervals on every estimate, the run's default estimator and the lower-bound choice."""
        from robustbench_cells.explain.intervals import best_estimator, choose_cell, interval

        calib = self.calibrate(exclude)
        stats = calib["estimators"] if calib else {}
        default = best_estimator(stats) if stats else None
        result["calibration"] = calib
        result["default_estimator"] = default
        for c in result["cells"]:
            c["intervals"] = {name: interval(v, stats.get(name), cov["scale"]) for name, v in c["estimates"].items()}
        pick = choose_cell(result["cells"], default, cov["status"])
        rec = result["recommendation"]
        if pick["choice"] is not None:
            # The evidence-based choice replaces the fixed-order one; the old reason stays as context.
            rec.update(choice=pick["choice"], estimator=default, lower_bound=pick["lower_bound"],
                       upper_bound=pick["upper_bound"])
        rec["reason"] = pick["reason"] if pick["choice"] is not None else pick["reason"] + "; " + rec.get("reason", "")
        rec["supported"] = pick["supported"]
        chosen = next((c for c in result["cells"] if c["key"] == rec.get("choice")), None)
        # "cell + adapter": an adapted cell is submitted as its base model run through the chain at test time
        rec["adapter"] = chosen["adapter"] if chosen else None
        if chosen and chosen["adapter"] != "none":
            rec["reason"] += f"; submit the base cell's model with the test-time adapter chain {chosen['adapter']}"
        if cov["status"] == "outside":
            rec["confidence"] = "none"
        elif cov["status"] == "edge" and rec.get("confidence") == "high":
            rec["confidence"] = "medium"

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

    def labelled_targets(self) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The run's ``[[targets]]`` that every cell was scored on: ``{name: (images, labels, fingerprint stats)}``.

        Loaded once, at the run's image size. A target that cannot be loaded any more (moved, or a
        relative path from another folder) is left out of the calibration with a note."""
        if self._targets is not None:
            return self._targets
        from robustbench_cells.bench.matrix import TargetEntry
        from robustbench_cells.bench.rundata import load_target as load_run_target

        self._targets = {}
        for entry in self.config.get("targets", []):
            name = entry.get("name", "?")
            if not all(f"target|{name}|0" in self._stored(c) for c in self.cells):
                self.target_notes.append(f"target {name}: not every cell has predictions on it; left out")
                continue
            try:
                t = TargetEntry(**entry)
                ds = load_run_target(t.data, self.val.images.shape[1], self.val.class_names, t.classes,
                                     where=f"target {name}")
            except (CellbenchError, OSError, TypeError) as exc:
                self.target_notes.append(f"target {name}: {exc}; left out of the calibration")
                continue
            scored = len(self._stored(self.cells[0])[f"target|{name}|0"])
            if len(ds) != scored:
                self.target_notes.append(f"target {name}: {len(ds)} images now, not the {scored} the cells were "
                                         "scored on; left out of the calibration")
                continue
            self._targets[name] = (ds.images, ds.labels, image_statistics(ds.images))
        return self._targets

    def _calibration_rows(self) -> list[dict[str, Any]]:
        """Every held-out (group, set, cell): all estimates (own group hidden), meta-regression
        features and the true accuracy. Computed once per run; groups are shift families and
        ``target:NAME`` for each labelled target of the run."""
        if self._rows is not None:
            return self._rows
        sets = [k for k in self.shifted if k[0] != "clean"
                and all(k in self._model(c)[2] for c in self.cells)]
        fams = sorted({self.families.get(k[0], "?") for k in sets})
        targets = self.labelled_targets()
        rows: list[dict[str, Any]] = []
        if len(fams) + len(targets) < 2:
            self._rows = rows
            return rows
        self.say(f"calibrating: leave-one-family-out over {len(sets)} shifted sets in {len(fams)} families"
                 + (f" and {len(targets)} labelled target(s)" if targets else ""))
        for fam in fams:
            hidden = {k for k in self.shifted if self.families.get(k[0]) == fam and k[0] != "clean"}
            others = {k: v for k, v in self.shifted.items() if k not in hidden}
            for key in [k for k in sets if k in hidden]:
                cands = rank_candidates(self.shifted[key], others, self.families, self.reference)
                probs = [self._model(c)[2][key] for c in self.cells]
                rows += self._rows_for_set(fam, f"{key[0]}@{key[1]}", cands, [p for p, _y in probs], probs[0][1],
                                           hidden)
        for name, (_images, labels, stats) in targets.items():
            # A labelled target is held out like a family: it hides nothing the shift estimators use.
            cands = rank_candidates(stats, self.shifted, self.families, self.reference)
            probs = [self._stored(c)[f"target|{name}|0"] for c in self.cells]
            rows += self._rows_for_set(f"target:{name}", f"target:{name}", cands, probs, labels, set())
        self._rows = rows
        return rows

    def _rows_for_set(self, group: str, name: str, cands: list[Candidate], probs: list[np.ndarray],
                      labels: np.ndarray, hidden: set[tuple[str, int]]) -> list[dict[str, Any]]:
        from robustbench_cells.explain.metareg import feature_row

        ests = self._set_estimates(probs, cands, hidden)
        out = []
        for i, (est, sig, p) in enumerate(zip(ests, self._signals(probs, cands), probs)):
            out.append({"group": group, "set": name, "cell": i, "estimates": est,
                        "features": feature_row(est, sig), "truth": float(np.mean(p.argmax(1) == labels))})
        return out

    def _signals(self, probs: list[np.ndarray], cands: list[Candidate]) -> list[dict[str, float]]:
        """Meta-regression signals of every cell on one set (see :func:`.metareg.signals`)."""
        from robustbench_cells.explain.metareg import signals

        models = [self._model(c) for c in self.cells]
        clean = next((c.distance for c in cands if c.shift == "clean"), np.nan)
        return signals([m[1] for m in models], self.val.labels, [m[3] for m in models], probs, clean,
                       cands[0].distance if cands else np.nan)

    def calibrate(self, exclude: frozenset[str] = frozenset()) -> dict[str, Any] | None:
        """Leave-one-family-out errors of every estimator on the run's own shifted sets and labelled
        targets, without the groups in *exclude* (the target being explained, when it is one of the
        run's own labelled targets: its truth must not calibrate its own estimate).

        ``None`` when there is nothing to hold out (no stored predictions on shifted sets, or fewer
        than two groups). The fitted meta-regression is kept for :meth:`explain`."""
        if exclude in self._calibrations:
            return self._calibrations[exclude][0]
        from robustbench_cells.explain.intervals import summarize_errors
        from robustbench_cells.explain.metareg import MetaRegression, held_out_errors

        rows = [r for r in self._calibration_rows() if r["group"] not in exclude]
        groups = sorted({r["group"] for r in rows})
        errors: dict[str, list[tuple[str, float]]] = {name: [] for name in ESTIMATORS}
        model = None
        if len(groups) >= 2:
            for r in rows:
                for name, value in r["estimates"].items():
                    if value is not None:
                        errors[name].append((r["group"], float(value) - r["truth"]))
            x = np.stack([r["features"] for r in rows])
            y = np.array([r["truth"] for r in rows])
            g = [r["group"] for r in rows]
            errors["metareg"] = held_out_errors(x, y, g)
            model = MetaRegression.fit(x, y, g)
        summary = summarize_errors(errors)
        calib = None
        if summary:
            calib = {"families": groups, "n_sets": len({r["set"] for r in rows}), "estimators": summary,
                     "targets": [gr.split(":", 1)[1] for gr in groups if gr.startswith("target:")],
                     "excluded": sorted(exclude), "notes": list(self.target_notes),
                     "metareg": model.as_dict() if model is not None else None}
        self._calibrations[exclude] = (calib, model)
        return calib

    def _own_targets(self, target: Target) -> frozenset[str]:
        """Calibration groups of the run's labelled targets that *are* this target (same images)."""
        out = set()
        for name, (images, _labels, _stats) in self.labelled_targets().items():
            if images.shape == target.images.shape and float(
                    np.mean(np.abs(images.astype(np.float32) - target.images.astype(np.float32)))) < 2.0:
                out.add(f"target:{name}")
        return frozenset(out)

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


def adapter_effects(cells: list[dict[str, Any]], estimator: str | None) -> list[dict[str, Any]]:
    """Per adapted cell: its estimate and interval beside its base cell's, and the expected gain.

    What a user needs before submitting ``bn_adapt``: is adapting expected to help on THIS target?
    ``helps`` is ``True`` when the adapted cell's lower bound beats the base cell's estimate,
    ``False`` when its upper bound is below it, ``None`` (can't tell) in between."""
    if estimator is None:
        return []
    by_key = {c["key"]: c for c in cells}
    out = []
    for c in cells:
        base = by_key.get(c.get("base") or "")
        est, base_est = c["estimates"].get(estimator), base["estimates"].get(estimator) if base else None
        if base is None or est is None or base_est is None:
            continue
        iv = c["intervals"].get(estimator)
        helps = None if iv is None else (True if iv[0] > base_est else False if iv[1] < base_est else None)
        row = {"key": c["key"], "base": base["key"], "base_cell": f"{base['model']}/{base['augmentation']}/{base['seed']}",
               "adapter": c["adapter"], "estimate": est, "base_estimate": base_est, "gain": est - base_est,
               "interval": iv, "helps": helps}
        if c.get("true_accuracy") is not None and base.get("true_accuracy") is not None:
            row["true_gain"] = c["true_accuracy"] - base["true_accuracy"]
        out.append(row)
    return sorted(out, key=lambda r: -r["gain"])


def explain(run_dir: str | Path, target_spec: str, options: ExplainOptions | None = None,
            progress: Progress | None = None) -> dict[str, Any]:
    """Fingerprint, nearest shifts, per-cell accuracy estimates and a recommendation for *target_spec*."""
    explainer = Explainer(run_dir, options, progress)
    return explainer.explain(explainer.load_target(target_spec))


def _augmentation_families() -> dict[str, str]:
    from robustbench_cells import plugins

    return {spec.name: spec.family for spec in plugins.augmentations()}


def _stored_proba(run_dir: Path, cell: Any) -> dict[str, np.ndarray]:
    """The probabilities the runner saved for *cell* (``probs.npz``: ``split|shift|severity`` -> (N, C)).

    The cell's own folder ``RUN_DIR/cells/KEY`` first: an adapted cell shares its base cell's model
    but has probabilities of its own there. Else the folder beside the model."""
    own = run_dir / "cells" / cell.key / "probs.npz"
    folder = Path(cell.model_path)
    folder = folder if folder.is_dir() else folder.parent
    path = own if own.is_file() else folder / "probs.npz"
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError):
        return {}


def estimator_errors(cells: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per estimator over cells: mean absolute error (points of accuracy x 100) and Spearman with the truth."""
    from robustbench_cells.explain.estimate import spearman

    out = {}
    labelled = [c for c in cells if c.get("true_accuracy") is not None]
    for name in ESTIMATORS:
        pairs = [(c["estimates"][name], c["true_accuracy"]) for c in labelled if c["estimates"].get(name) is not None]
        if not pairs:
            out[name] = {"mae": None, "spearman": None}
            continue
        est, true = np.array(pairs).T
        rho = spearman(est, true)
        out[name] = {"mae": float(np.mean(np.abs(est - true)) * 100), "spearman": None if np.isnan(rho) else rho}
    return out
