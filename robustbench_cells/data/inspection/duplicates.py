"""Exact duplicates (same pixels) and near duplicates (re-encoded, slightly shifted or recoloured copies).

Near duplicates are found in three stages, each cheaper per pair than the next is precise:

1. candidates: every image's few most similar images by correlation of 16x16 grey thumbnails
   (mean/std normalised, so brightness and contrast changes cancel), with blocked matrix products;
2. coarse check: the best correlation over ±1 px shifts of 32x32 thumbnails (drops ~90% of pairs);
3. final check: the best normalised cross-correlation over integer shifts up to ``max_shift`` px of
   the full-size, lightly blurred grey images (cv2.matchTemplate). A copy scores > 0.99 (JPEG q70,
   ±3 px, ±10% brightness), while different PBC cells, however alike, stay below ~0.95.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import cv2
import numpy as np

#: Final-stage correlation at or above which two images are called near duplicates.
NEAR_THRESHOLD = 0.97
#: Coarse-stage correlation below which a candidate pair is dropped.
COARSE_FLOOR = 0.85
#: Candidates per image from the thumbnail search.
CANDIDATES = 4
#: Largest shift (pixels) between copies that the final check tolerates.
MAX_SHIFT = 4


def exact_duplicate_groups(images: np.ndarray) -> list[list[int]]:
    """Groups (>= 2) of indices whose pixels are identical; sorted, by first index."""
    first: dict[bytes, list[int]] = {}
    for i, img in enumerate(images):
        first.setdefault(hashlib.blake2b(np.ascontiguousarray(img).data, digest_size=16).digest(), []).append(i)
    return sorted((g for g in first.values() if len(g) > 1), key=lambda g: g[0])


def _grey(images: np.ndarray, size: int | None = None, sigma: float = 0.0) -> np.ndarray:
    """Grey float32 ``(N, s, s)`` (area-resized to *size*, optionally blurred)."""
    h, w = images.shape[1:3]
    out = np.empty((len(images), size or h, size or w), np.float32)
    for i, img in enumerate(images):
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        if size:
            g = cv2.resize(g, (size, size), interpolation=cv2.INTER_AREA)
        out[i] = cv2.GaussianBlur(g, (0, 0), sigma) if sigma else g
    return out


def _normalise(x: np.ndarray) -> np.ndarray:
    x = x.reshape(len(x), -1)
    x = x - x.mean(axis=1, keepdims=True)
    return x / (np.sqrt(np.einsum("ij,ij->i", x, x))[:, None] + 1e-6)


def _candidate_pairs(images: np.ndarray, k: int, block: int = 512) -> np.ndarray:
    """``(P, 2)`` pairs ``i < j``: each image with its k most correlated 16x16 thumbnails."""
    d = _normalise(_grey(images, 16)).astype(np.float32)
    k = min(k, len(d) - 1)
    pairs = []
    for s in range(0, len(d), block):
        sim = d[s:s + block] @ d.T
        sim[np.arange(len(sim)), np.arange(s, s + len(sim))] = -np.inf
        nn = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        rows = np.repeat(np.arange(s, s + len(sim)), k)
        pairs.append(np.stack([rows, nn.ravel()], axis=1))
    p = np.sort(np.concatenate(pairs), axis=1)
    return np.unique(p, axis=0)


def _shifted_correlation(grey: np.ndarray, pairs: np.ndarray, shift: int, chunk: int = 8192) -> np.ndarray:
    """Per pair ``(i, j)``: best correlation of image i's centre with image j's windows shifted by
    up to ±shift. Each image's centre and shifted windows are normalised once, not once per pair."""
    s = grey.shape[1]
    m = shift
    centre = _normalise(grey[:, m:s - m, m:s - m])
    best = np.full(len(pairs), -1.0, np.float32)
    for dy in range(-shift, shift + 1):
        for dx in range(-shift, shift + 1):
            win = _normalise(grey[:, m + dy:s - m + dy, m + dx:s - m + dx])
            for c in range(0, len(pairs), chunk):
                i, j = pairs[c:c + chunk, 0], pairs[c:c + chunk, 1]
                best[c:c + chunk] = np.maximum(best[c:c + chunk], np.einsum("ij,ij->i", centre[i], win[j]))
    return best


def _final_correlation(images: np.ndarray, pairs: np.ndarray, max_shift: int) -> np.ndarray:
    """Best normalised cross-correlation over integer shifts up to *max_shift*, full size."""
    idx = np.unique(pairs)
    grey = dict(zip(idx.tolist(), _grey(images[idx], sigma=1.0)))
    m = max_shift
    out = np.empty(len(pairs), np.float32)
    for p, (i, j) in enumerate(pairs):
        a, b = grey[int(i)], grey[int(j)]
        out[p] = cv2.matchTemplate(b, a[m:-m, m:-m], cv2.TM_CCOEFF_NORMED).max()
    return out


def _components(n: int, pairs: np.ndarray) -> list[list[int]]:
    """Connected components (size >= 2) of the graph on ``0..n-1`` with edges *pairs*."""
    parent = np.arange(n)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in pairs:
        ri, rj = find(int(i)), find(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, list[int]] = {}
    for i in np.unique(pairs):
        groups.setdefault(find(int(i)), []).append(int(i))
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: g[0])


@dataclass
class NearDuplicates:
    """Near-duplicate groups (indices into the data set) and the verified pairs with their scores."""

    groups: list[list[int]] = field(default_factory=list)
    pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


def near_duplicates(images: np.ndarray, among: np.ndarray | None = None, threshold: float = NEAR_THRESHOLD,
                    max_shift: int = MAX_SHIFT, candidates: int = CANDIDATES) -> NearDuplicates:
    """Near-duplicate groups among ``images[among]`` (default: all); indices refer to *images*.

    Pass the first image of each exact-duplicate group (and every unique image) as *among* so that
    exact copies are reported once, as exact duplicates.
    """
    among = np.arange(len(images)) if among is None else np.asarray(among, np.int64)
    h, w = images.shape[1:3]
    if len(among) < 2 or min(h, w) <= 2 * max_shift + 4:
        return NearDuplicates()
    sub = images[among]
    pairs = _candidate_pairs(sub, candidates)
    coarse = min(32, h, w)
    g32 = _grey(sub, coarse)
    shift32 = max(1, int(np.ceil(max_shift * coarse / min(h, w) - 0.34)))  # ±4 px at 96 -> ±1 at 32
    keep = _shifted_correlation(g32, pairs, shift32) >= COARSE_FLOOR
    pairs = pairs[keep]
    if len(pairs) == 0:
        return NearDuplicates()
    scores = _final_correlation(sub, pairs, max_shift)
    hit = scores >= threshold
    pairs, scores = among[pairs[hit]], scores[hit]
    return NearDuplicates(_components(len(images), pairs), pairs, scores)


def label_conflicts(groups: list[list[int]], labels: np.ndarray) -> list[list[int]]:
    """The groups whose members carry more than one label."""
    return [g for g in groups if len(set(labels[g].tolist())) > 1]
