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

from robustbench_cells.errors import CellbenchError
from robustbench_cells.explain.estimate import ESTIMATORS, all_estimates
from robustbench_cells.explain.fingerprint import STAT_NAMES, Reference, compare_to_reference, image_statistics
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


def _run_data(run_dir: Path) -> tuple[Any, dict[str, Any], Any, Any]:
    """(store, run config, train Dataset, val Dataset) rebuilt from the run row."""
    from robustbench_cells.bench.store import ResultStore
    from robustbench_cells.data.specs import load_dataset
    from robustbench_cells.data.splits import split_dataset

    store = ResultStore(run_dir)
    run = store.run()
    if run is None:
        raise CellbenchError(f"{run_dir}: the run folder has no run yet (did `cellbench run` start?)")
    config = run.config
    dataset = load_dataset(run.data_spec or config["data"])
    size = int(config.get("image_size", dataset.image_size[0]))
    if dataset.image_size != (size, size):
        # Same order as the runner (resize, then split, then shift), so the shifted reference sets
        # and the cells' stored probabilities are at the resolution the models saw.
        from robustbench_cells.data.resize import resize_images

        dataset = type(dataset)(resize_images(dataset.images, size), dataset.labels, dataset.class_names,
                                source=dataset.source, split=dataset.split, paths=dataset.paths,
                                meta=dict(dataset.meta))
    split = config.get("split", {})
    parts = split_dataset(dataset, seed=int(split.get("seed", 0)),
                          fractions=tuple(split.get("fractions", (0.7, 0.1, 0.2))))
    return store, config, parts["train"], parts["val"]


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
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, key=key, names=np.array(names), **{f"s{i}": a for i, a in enumerate(stats.values())})
    tmp.replace(path)
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


def explain(run_dir: str | Path, target_spec: str, options: ExplainOptions | None = None,
            progress: Progress | None = None) -> dict[str, Any]:
    """Fingerprint, nearest shifts, per-cell accuracy estimates and a recommendation for *target_spec*."""
    options = options or ExplainOptions()
    run_dir = Path(run_dir)
    say = progress or (lambda _msg: None)
    store, config, train, val = _run_data(run_dir)
    target = load_target(target_spec, with_labels=options.labels, class_names=val.class_names)
    from robustbench_cells.data.resize import resize_images

    size = val.images.shape[1:3]
    if target.images.shape[1:3] != size:
        # Fingerprints compare like with like: the target at the resolution the shifts were applied to.
        target.images = resize_images(target.images, size)

    shift_cfg = config.get("shifts", {})
    shifts = list(shift_cfg.get("names", []))
    severities = [int(s) for s in shift_cfg.get("severities", [1, 2, 3, 4, 5])]
    shift_seed = int(shift_cfg.get("seed", 0))
    ref_idx = _stratified_subset(val.labels, options.reference_images, options.seed)
    ref_images = val.images[ref_idx]
    say(f"fingerprinting {len(ref_images)} validation images under {len(shifts)} shifts x {len(severities)} severities")
    key = _cache_key(val.fingerprint(), shifts, severities, len(ref_images), shift_seed)
    shifted = _load_or_compute_shifted(run_dir, ref_images, key, shifts, severities, shift_seed, say)
    val_stats = shifted[("clean", 0)]
    reference = Reference.from_stats(val_stats)
    say(f"fingerprinting {len(target.images)} target images")
    target_stats = image_statistics(target.images)
    families = _shift_families(shifts)
    candidates = rank_candidates(target_stats, shifted, families, reference)
    fam_rank = rank_families(candidates)
    matches = [(c.shift, c.severity) for c in candidates[:options.neighbours]]

    result: dict[str, Any] = {
        "run_dir": str(run_dir), "target": target.source, "n_target": int(len(target.images)),
        "labels": bool(options.labels),
        "fingerprint": {
            "statistics": compare_to_reference(target_stats, val_stats, reference),
            "nearest": [c.as_dict() for c in candidates[:15]],
            "families": fam_rank,
        },
    }
    say("checking leakage and outliers")
    result["data_checks"] = _leakage_and_outliers(train.images, target, target_stats, reference, val_stats)
    result["cells"] = _estimate_cells(store, config, val, target, candidates, options, say)
    result["estimators"] = list(ESTIMATORS)
    if options.labels:
        result["estimator_errors"] = estimator_errors(result["cells"])
    aug_families = _augmentation_families()
    cell_inputs = [{**c, "accuracy": c["_accuracy"]} for c in result["cells"]]
    result["recommendation"] = recommend(cell_inputs, fam_rank, matches,
                                         candidates[0].distance if candidates else np.inf, aug_families)
    for c in result["cells"]:
        c.pop("_accuracy")
    return result


def _augmentation_families() -> dict[str, str]:
    from robustbench_cells import plugins

    return {spec.name: spec.family for spec in plugins.augmentations()}


def _estimate_cells(store: Any, config: dict[str, Any], val: Any, target: Target, candidates: list[Candidate],
                    options: ExplainOptions, say: Progress) -> list[dict[str, Any]]:
    load_model, predict_proba = _model_api()
    cells = store.cells(status="done")
    if not cells:
        raise CellbenchError(f"{store.path.parent}: no finished cells to estimate (run `cellbench run` first)")
    out = []
    for i, cell in enumerate(cells, 1):
        if not cell.model_path:
            continue  # ensembles have no model of their own
        say(f"cell {i}/{len(cells)}: {cell.model}/{cell.augmentation}/{cell.seed}")
        model, _meta = load_model(cell.model_path)
        val_p = _stored_val_proba(cell.model_path, len(val))
        if val_p is None:
            val_p = np.asarray(predict_proba(model, val.images))
        target_p = np.asarray(predict_proba(model, target.images))
        val_y = val.labels
        accuracy = _cell_accuracy(store, cell.key)
        estimates = all_estimates(val_p, val_y, target_p, candidates, accuracy, k=options.neighbours)
        row: dict[str, Any] = {
            "key": cell.key, "model": cell.model, "augmentation": cell.augmentation, "seed": cell.seed,
            "val_accuracy": float(np.mean(val_p.argmax(1) == val_y)),
            "clean_accuracy": accuracy.get(("clean", 0)),
            "target_mean_confidence": float(target_p.max(1).mean()),
            "estimates": estimates, "_accuracy": accuracy,
        }
        if options.labels and target.labels is not None:
            true = float(np.mean(target_p.argmax(1) == target.labels))
            row["true_accuracy"] = true
            row["errors"] = {k: (None if v is None else v - true) for k, v in estimates.items()}
        out.append(row)
    return out


def _stored_val_proba(model_path: str, n_val: int) -> np.ndarray | None:
    """The validation probabilities the runner saved beside the model (``probs.npz``), when they fit."""
    folder = Path(model_path)
    folder = folder if folder.is_dir() else folder.parent
    path = folder / "probs.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            p = z["val|clean|0"] if "val|clean|0" in z.files else None
    except (OSError, ValueError):
        return None
    return p if p is not None and len(p) == n_val else None


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
