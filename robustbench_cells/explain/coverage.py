"""Coverage: is the target like anything the run benchmarked, or outside everything it knows?

Two views, both in the standardised fingerprint space of :mod:`.nearest`:

- **Set coverage**: the target's distance to its nearest shifted set divided by the typical distance
  between a benchmarked set and its nearest set of *another family* (how far apart the run's own
  shifts are). A ratio near or below 1 means the target sits among the benchmarked shifts; 3 means it
  is three times further from all of them than they are from each other.
- **Image coverage**: the share of target images with no close reference image. "Close" is the 95 %
  quantile of the distance from a reference image to its nearest reference image made from a
  *different* source image (shifted copies of one image are trivially close), so about 5 % of images
  drawn like the references are "uncovered" by chance.

The ``scale`` widens the intervals of :mod:`.intervals`: errors measured on benchmarked shifts say
little about a target unlike all of them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from robustbench_cells.explain.fingerprint import Reference
from robustbench_cells.explain.nearest import set_distances

#: Status thresholds on (distance ratio, uncovered share).
INSIDE = (1.25, 0.25)
EDGE = (2.5, 0.6)
MESSAGES = {
    "inside": "the target is like the benchmarked shifts: the intervals below were measured on shifts like it",
    "edge": "the target is at the edge of the benchmarked shifts: the estimates below are rough, intervals widened",
    "outside": "this test set is unlike every benchmarked shift: the estimates below are guesses",
}


def _nn_distance(query: np.ndarray, pool: np.ndarray, exclude: np.ndarray | None = None,
                 query_ids: np.ndarray | None = None, chunk: int = 256) -> np.ndarray:
    """Euclidean distance from each query row to its nearest pool row (skipping pool rows whose
    source id equals the query's, when ids are given)."""
    pool_sq = (pool ** 2).sum(1)
    out = np.empty(len(query))
    for start in range(0, len(query), chunk):
        q = query[start:start + chunk]
        d2 = (q ** 2).sum(1)[:, None] + pool_sq[None, :] - 2 * q @ pool.T
        if exclude is not None and query_ids is not None:
            d2[query_ids[start:start + chunk, None] == exclude[None, :]] = np.inf
        out[start:start + chunk] = np.sqrt(np.maximum(d2.min(1), 0.0))
    return out


def coverage(target_stats: np.ndarray, shifted_stats: Mapping[tuple[str, int], np.ndarray],
             families: Mapping[str, str], reference: Reference, max_pool: int = 4000,
             seed: int = 0) -> dict[str, object]:
    """How well the run's shifted sets cover the target (see the module docstring).

    Returns ``status`` (``inside`` / ``edge`` / ``outside``), ``message``, ``distance`` (to the
    nearest set), ``typical_distance`` (between benchmarked sets), ``ratio``, ``uncovered_share``,
    ``expected_uncovered`` (the share for a target drawn like the references) and ``scale`` (>= 1,
    the factor intervals are widened by).
    """
    keys = list(shifted_stats)
    fam = {key: "clean" if key[0] == "clean" else families.get(key[0], key[0]) for key in keys}
    d_target = set_distances(target_stats, shifted_stats, reference)
    nearest = min(d_target.values())
    # Typical spacing of the benchmark: each set's distance to its nearest set of another family.
    spacing = []
    for key in keys:
        others = {k: v for k, v in shifted_stats.items() if fam[k] != fam[key]}
        if others:
            spacing.append(min(set_distances(shifted_stats[key], others, reference).values()))
    typical = float(np.median(spacing)) if spacing else float("nan")
    ratio = float(nearest / max(typical, 1e-6)) if spacing else float("inf")

    n_ref = min(len(shifted_stats[key]) for key in keys)
    pool = np.concatenate([reference.standardize(shifted_stats[key][:n_ref]) for key in keys])
    ids = np.tile(np.arange(n_ref), len(keys))
    pool = np.clip(pool, -20, 20)  # one wild statistic must not decide alone
    rng = np.random.default_rng(seed)
    probe = rng.choice(len(pool), size=min(len(pool), 600), replace=False)
    ref_nn = _nn_distance(pool[probe], pool, exclude=ids, query_ids=ids[probe])
    fence = float(np.quantile(ref_nn, 0.95))
    if len(pool) > max_pool:
        pool = pool[rng.choice(len(pool), size=max_pool, replace=False)]
    target_nn = _nn_distance(np.clip(reference.standardize(target_stats), -20, 20), pool)
    uncovered = float(np.mean(target_nn > fence))
    if ratio <= INSIDE[0] and uncovered <= INSIDE[1]:
        status = "inside"
    elif ratio <= EDGE[0] and uncovered <= EDGE[1]:
        status = "edge"
    else:
        status = "outside"
    # Widen by how much further the target is than the benchmark's own spacing, and by the share of
    # images nothing benchmarked resembles (at most x2 for that part).
    scale = max(1.0, ratio) * (1.0 + max(0.0, uncovered - 0.05) / 0.95)
    return {"status": status, "message": MESSAGES[status], "distance": float(nearest),
            "typical_distance": typical, "ratio": ratio, "uncovered_share": uncovered,
            "expected_uncovered": 0.05, "scale": float(min(scale, 10.0))}
