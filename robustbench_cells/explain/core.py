"""Orchestrate ``cellbench explain``: a run folder + a target spec -> one JSON-ready result.

Steps: rebuild the run's validation split from its stored config; fingerprint a fixed subset of it,
every (shift, severity) version of that subset, and the target; rank the shifted sets by distance;
for every trained cell predict validation and target, and estimate target accuracy without labels;
recommend a cell. Shifted-set statistics are cached in ``RUN_DIR/explain_cache.npz`` (they depend
only on the run's data and shift suite), so a second target costs only its own predictions.
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
from robustbench_cells.explain.recommend import recommend
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

    def load_target(self, spec: str) -> Target:
        """Load *spec* (labels only with ``options.labels``) at the run's image size."""
        return load_target(spec, with_labels=self.options.labels, class_names=self.val.class_names)

    def _model(self, cell: Any) -> tuple[Any, np.ndarray, dict[tuple[str, int], tuple[np.ndarray, np.ndarray]], float]:
        """(model, validation probabilities, stored shifted-set probabilities, fitted temperature) of *cell*, loaded once."""
        if cell.key not in self._models:
            load_model, predict_proba = _model_api()
            model, _meta = load_model(cell.model_path)
            stored = _stored_proba(cell.model_path)
            val_p = stored.get("val|clean|0")
            if val_p is None or len(val_p) != len(self.val):
                val_p = np.asarray(predict_proba(model, self.val.images))
            shifted = {("clean", 0): (val_p, self.val.labels)}
            for name, p in stored.items():
                split, shift, sev = name.split("|")
                if split == "test" and shift != "clean" and len(p) == len(self.shift_labels):
                    shifted[(shift, int(sev))] = (p, self.shift_labels)
            from robustbench_cells.explain.calibration import fit_temperature

            self._models[cell.key] = (model, val_p, shifted, fit_temperature(val_p, self.val.labels))
        return self._models[cell.key]

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
        result["cells"] = self._estimate_cells(target, candidates)
        result["estimators"] = list(ESTIMATORS)
        if options.labels:
            result["estimator_errors"] = estimator_errors(result["cells"])
        cell_inputs = [{**c, "accuracy": c["_accuracy"]} for c in result["cells"]]
        result["recommendation"] = recommend(cell_inputs, fam_rank, matches,
                                             candidates[0].distance if candidates else np.inf,
                                             _augmentation_families())
        self._add_intervals(result, cov)
        for c in result["cells"]:
            c.pop("_accuracy")
        return result

    def _add_intervals(self, result: dict[str, Any], cov: dict[str, Any]) -> None:
        """Intervals on every estimate, the run's default estimator and the lower-bound choice."""
        from robustbench_cells.explain.intervals import best_estimator, choose_cell, interval

        calib = self.calibrate()
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
            accuracy = {k: v for k, v in _cell_accuracy(self.store, cell.key).items() if k not in hide}
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

    def calibrate(self) -> dict[str, Any] | None:
        """Leave-one-family-out errors of every estimator on the run's own shifted sets (once per run).

        ``None`` when the cells have no stored predictions on shifted sets (nothing to hold out)."""
        if hasattr(self, "_calibration"):
            return self._calibration
        from robustbench_cells.explain.intervals import summarize_errors

        sets = [k for k in self.shifted if k[0] != "clean"
                and all(k in self._model(c)[2] for c in self.cells)]
        fams = sorted({self.families.get(k[0], "?") for k in sets})
        errors: dict[str, list[tuple[str, float]]] = {name: [] for name in ESTIMATORS}
        if len(fams) >= 2:
            self.say(f"calibrating: leave-one-family-out over {len(sets)} shifted sets in {len(fams)} families")
            for fam in fams:
                hidden = {k for k in self.shifted if self.families.get(k[0]) == fam and k[0] != "clean"}
                others = {k: v for k, v in self.shifted.items() if k not in hidden}
                for key in [k for k in sets if k in hidden]:
                    cands = rank_candidates(self.shifted[key], others, self.families, self.reference)
                    probs = [self._model(c)[2][key] for c in self.cells]
                    ests = self._set_estimates([p for p, _y in probs], cands, hidden)
                    for est, (p, y) in zip(ests, probs):
                        truth = float(np.mean(p.argmax(1) == y))
                        for name, value in est.items():
                            if value is not None:
                                errors[name].append((fam, float(value) - truth))
        summary = summarize_errors(errors)
        self._calibration = {"families": fams, "n_sets": len(sets), "estimators": summary} if summary else None
        return self._calibration

    def _estimate_cells(self, target: Target, candidates: list[Candidate]) -> list[dict[str, Any]]:
        _load, predict_proba = _model_api()
        val_y = self.val.labels
        target_ps = []
        for i, cell in enumerate(self.cells, 1):
            self.say(f"cell {i}/{len(self.cells)}: {cell.model}/{cell.augmentation}/{cell.seed}")
            model = self._model(cell)[0]
            target_ps.append(np.asarray(predict_proba(model, target.images)))
        out = []
        for cell, target_p, estimates in zip(self.cells, target_ps, self._set_estimates(target_ps, candidates)):
            _model, val_p, _shifted, temp = self._model(cell)
            accuracy = _cell_accuracy(self.store, cell.key)
            row: dict[str, Any] = {
                "key": cell.key, "model": cell.model, "augmentation": cell.augmentation, "seed": cell.seed,
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


def explain(run_dir: str | Path, target_spec: str, options: ExplainOptions | None = None,
            progress: Progress | None = None) -> dict[str, Any]:
    """Fingerprint, nearest shifts, per-cell accuracy estimates and a recommendation for *target_spec*."""
    explainer = Explainer(run_dir, options, progress)
    return explainer.explain(explainer.load_target(target_spec))


def _augmentation_families() -> dict[str, str]:
    from robustbench_cells import plugins

    return {spec.name: spec.family for spec in plugins.augmentations()}


def _stored_proba(model_path: str) -> dict[str, np.ndarray]:
    """The probabilities the runner saved beside the model (``probs.npz``: ``split|shift|severity`` -> (N, C))."""
    folder = Path(model_path)
    folder = folder if folder.is_dir() else folder.parent
    path = folder / "probs.npz"
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
