"""How close an unlabeled target set is to each synthetic shifted set, in fingerprint space.

Two views, both on statistics standardised by the validation spread (:class:`Reference`):

- **Set distance**: Euclidean distance between the standardised per-set summary vectors (mean, std,
  quantiles of every statistic), divided by ``sqrt(dimension)`` so it reads as "typical z per
  summary". Ranks ``(shift, severity)`` pairs; a family's distance is that of its nearest member.
- **Composition**: every target image votes for the ``(shift, severity)`` sets of its k nearest
  reference images (per-image standardised statistics). The vote shares describe a *mixture* — a
  target where half the images are blurred and half are noisy gets both families, which a single
  set distance cannot say.

``clean`` (severity 0, the validation images themselves) is always one of the candidates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from robustbench_cells.explain.fingerprint import Reference

CLEAN = ("clean", 0)
#: Sets closer than this to the clean set cannot be told from clean by the fingerprint (two clean
#: samples of 200 and 400 PBC validation images are ~0.10 apart): flips, the mildest blurs/stains.
CLEAN_FLOOR = 0.12


@dataclass(frozen=True)
class Candidate:
    """One shifted reference set and its distance to the target."""

    shift: str
    severity: int
    family: str
    distance: float
    share: float = 0.0  # fraction of target images whose neighbours come from this set
    to_clean: float = float("inf")  # distance of this set from the clean set (small: invisible shift)

    @property
    def visible(self) -> bool:
        """Whether the fingerprint can tell this set from clean at all."""
        return self.shift == "clean" or self.to_clean >= CLEAN_FLOOR

    def as_dict(self) -> dict[str, object]:
        return {"shift": self.shift, "severity": self.severity, "family": self.family,
                "distance": round(self.distance, 4), "share": round(self.share, 4),
                "to_clean": round(min(self.to_clean, 1e6), 4), "visible": self.visible}


def set_distances(target_stats: np.ndarray, shifted_stats: Mapping[tuple[str, int], np.ndarray],
                  reference: Reference) -> dict[tuple[str, int], float]:
    """Distance from the target to every shifted set: ``{(shift, severity): distance}``."""
    t = reference.summary_vector(target_stats)
    out = {}
    for key, stats in shifted_stats.items():
        diff = reference.summary_vector(stats) - t
        out[key] = float(np.sqrt(np.mean(diff ** 2)))
    return out


def composition(target_stats: np.ndarray, shifted_stats: Mapping[tuple[str, int], np.ndarray],
                reference: Reference, k: int = 10, chunk: int = 256) -> dict[tuple[str, int], float]:
    """Share of target images whose k nearest reference images come from each ``(shift, severity)`` set.

    Every set contributes the same number of reference images (the smallest set's size) so that no
    set wins by being bigger. Shares sum to 1.
    """
    keys = list(shifted_stats)
    n_ref = min(len(shifted_stats[key]) for key in keys)
    ref = np.concatenate([reference.standardize(shifted_stats[key][:n_ref]) for key in keys])
    owner = np.repeat(np.arange(len(keys)), n_ref)
    target = reference.standardize(target_stats)
    k = max(1, min(k, len(ref)))
    votes = np.zeros(len(keys))
    ref_sq = (ref ** 2).sum(1)
    for start in range(0, len(target), chunk):
        t = target[start:start + chunk]
        d2 = (t ** 2).sum(1)[:, None] + ref_sq[None, :] - 2 * t @ ref.T
        nearest = np.argpartition(d2, k - 1, axis=1)[:, :k]
        np.add.at(votes, owner[nearest].ravel(), 1.0 / k)
    shares = votes / max(len(target), 1)
    return {key: float(s) for key, s in zip(keys, shares)}


def rank_candidates(target_stats: np.ndarray, shifted_stats: Mapping[tuple[str, int], np.ndarray],
                    families: Mapping[str, str], reference: Reference, k: int = 10) -> list[Candidate]:
    """Every ``(shift, severity)`` set as a :class:`Candidate`, nearest first.

    ``families`` maps shift name -> family (``clean`` -> ``"clean"``).
    """
    if not shifted_stats:
        raise ValueError("rank_candidates needs at least one shifted set")
    dist = set_distances(target_stats, shifted_stats, reference)
    shares = composition(target_stats, shifted_stats, reference, k=k)
    to_clean = (set_distances(shifted_stats[CLEAN], shifted_stats, reference) if CLEAN in shifted_stats
                else {key: float("inf") for key in shifted_stats})
    out = [Candidate(shift, sev, families.get(shift, "clean" if shift == "clean" else "?"), dist[(shift, sev)],
                     shares[(shift, sev)], to_clean[(shift, sev)]) for shift, sev in shifted_stats]
    return sorted(out, key=lambda c: (c.distance, c.shift, c.severity))


def rank_families(candidates: list[Candidate]) -> list[dict[str, object]]:
    """Families ranked for the report: nearest member's distance and the family's composition share.

    The order is by *score* = share minus a distance penalty, so a family that explains many target
    images ranks high even when a pure single-shift set of another family is a little closer on
    average (mixtures), while a close family still wins when shares are split.
    """
    fams: dict[str, dict[str, object]] = {}
    for c in candidates:
        if not c.visible:
            # An invisible shift (flip, the mildest blur) looks exactly like clean: its votes are clean votes.
            c = Candidate("clean", 0, "clean", c.distance, c.share, 0.0)
        f = fams.setdefault(c.family, {"family": c.family, "distance": np.inf, "share": 0.0,
                                        "nearest_shift": c.shift, "nearest_severity": c.severity})
        if c.distance < f["distance"]:
            f.update(distance=c.distance, nearest_shift=c.shift, nearest_severity=c.severity)
        f["share"] = float(f["share"]) + c.share
    rows = list(fams.values())
    best = min(float(r["distance"]) for r in rows)
    for r in rows:
        # Relative distance: 0 for the nearest family, 1 when twice as far.
        r["score"] = float(r["share"]) - 0.5 * (float(r["distance"]) - best) / max(best, 1e-6)
        r["distance"] = float(r["distance"])
    return sorted(rows, key=lambda r: -float(r["score"]))
