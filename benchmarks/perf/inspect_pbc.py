"""Benchmark: `cellbench data inspect` on the whole of pbc96 (time, findings, planted-case recall).

    .venv/bin/python benchmarks/perf/inspect_pbc.py [--root ../shared/data/pbc96] [--plant] [--subsets]

Prints: load and inspection seconds (per stage); exact/near-duplicate groups and outliers found on
the clean data; how many of the bluish-background images (pbc96_META.csv) the outlier ranking puts
in its top k. With --plant, the same on the whole set plus planted cases (1,000 exact copies, 100 of
them across classes; 1,000 near copies; 400 composites on generated backgrounds and 200 on the shipped
ones): recall of each and the false-positive rate on the clean images. With --subsets, the share
of clean random subsets (300 to 5,000 images) flagged as outliers.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np

from robustbench_cells.data.dataset import Dataset
from robustbench_cells.data.inspection import inspect_dataset
from robustbench_cells.data.inspection.planted import foreign_background_composites, near_copies
from robustbench_cells.data.specs import load_dataset

ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pbc96"


def _bluish(ds: Dataset, root: Path) -> np.ndarray:
    meta = root.parent / "pbc96_META.csv"
    flags = {r["path"]: int(r["bluish_background"]) for r in csv.DictReader(open(meta))}
    return np.array([flags.get(str(p), 0) for p in ds.paths])


def _clean_run(ds: Dataset, root: Path) -> None:
    t, c = time.perf_counter(), time.process_time()
    report = inspect_dataset(ds)
    total, cpu = time.perf_counter() - t, time.process_time() - c
    print(f"inspect: {total:.1f} s wall, {cpu:.1f} s CPU "
          f"({', '.join(f'{k} {v:.1f} s' for k, v in report.seconds.items())})")
    print(f"exact duplicate groups: {len(report.exact_groups)}")
    print(f"near duplicate groups: {len(report.near_groups)}")
    for g in report.near_groups:
        print("   ", " = ".join(str(ds.paths[i]) for i in g))
    n_out = len(report.outliers.flagged)
    print(f"outliers flagged: {n_out} ({100 * n_out / len(ds):.2f}%), threshold {report.outliers.threshold:.1f}")
    bluish = _bluish(ds, root)
    ranking = report.outliers.ranking()
    for k in (int(bluish.sum()), 500, 1000):
        print(f"bluish-background images in the top {k} of the outlier ranking: "
              f"{int(bluish[ranking[:k]].sum())} of {int(bluish.sum())}")


def _planted_run(ds: Dataset, seed: int = 0) -> None:
    from robustbench_cells.data.backgrounds import load_backgrounds
    from robustbench_cells.ops.composite import composite_backgrounds
    from robustbench_cells.ops.mask import cell_mask

    rng = np.random.default_rng(seed)
    n = len(ds)
    src = rng.permutation(n)
    ex, nr, cp, sh = src[:1000], src[1000:2000], src[2000:2400], src[2400:2600]
    ex_labels = ds.labels[ex].copy()
    ex_labels[:100] = (ex_labels[:100] + 1) % ds.num_classes
    shipped = composite_backgrounds(ds.images[sh], cell_mask(ds.images[sh]), load_backgrounds(), rng)
    images = np.concatenate([ds.images, ds.images[ex], near_copies(ds.images[nr], rng),
                             foreign_background_composites(ds.images[cp], rng), shipped])
    labels = np.concatenate([ds.labels, ex_labels, ds.labels[nr], ds.labels[cp], ds.labels[sh]])
    planted = Dataset(images, labels, ds.class_names, source="pbc96+planted")
    t = time.perf_counter()
    report = inspect_dataset(planted)
    print(f"\nplanted: {len(planted)} images inspected in {time.perf_counter() - t:.1f} s")

    def same_group(groups, pairs):
        member = {i: k for k, g in enumerate(groups) for i in g}
        return np.mean([member.get(int(a), -1) == member.get(int(b), -2) for a, b in pairs])

    base = np.cumsum([n, 1000, 1000, 400, 200])
    print(f"exact-duplicate recall: {same_group(report.exact_groups, zip(ex, range(base[0], base[1]))):.3f}; "
          f"cross-class groups flagged as label conflicts: {len(report.exact_conflicts)} (planted 100)")
    print(f"near-duplicate recall: {same_group(report.near_groups, zip(nr, range(base[1], base[2]))):.3f}")
    flagged = np.zeros(len(planted), bool)
    flagged[report.outliers.flagged] = True
    print(f"composite recall, generated backgrounds: {flagged[base[2]:base[3]].mean():.3f}; "
          f"shipped backgrounds: {flagged[base[3]:base[4]].mean():.3f}; "
          f"false-positive rate on the clean images: {flagged[:n].mean():.4f}")


def _subset_run(ds: Dataset, sizes=(300, 500, 1000, 2000, 5000), repeats: int = 5, seed: int = 0) -> None:
    """Outlier false-positive rate on random clean subsets (smaller sets: a sparser bulk)."""
    from robustbench_cells.data.inspection.outliers import find_outliers, outlier_features

    feats = outlier_features(ds.images)
    rng = np.random.default_rng(seed)
    print("\nflagged share of clean random subsets (mean / max over", repeats, "draws):")
    for n in sizes:
        rates = [len(find_outliers(None, features=feats[rng.choice(len(ds), n, replace=False)]).flagged) / n
                 for _ in range(repeats)]
        print(f"  n={n:5d}: {100 * np.mean(rates):.2f}% / {100 * np.max(rates):.2f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--plant", action="store_true", help="also measure recall on planted cases")
    parser.add_argument("--subsets", action="store_true", help="also measure outlier rates on clean subsets")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} (other work slows the wall clock)")
    t, c = time.perf_counter(), time.process_time()
    ds = load_dataset(f"folder:{args.root}")
    print(f"load: {len(ds)} images in {time.perf_counter() - t:.1f} s wall, {time.process_time() - c:.1f} s CPU")
    _clean_run(ds, args.root)
    if args.plant:
        _planted_run(ds)
    if args.subsets:
        _subset_run(ds)


if __name__ == "__main__":
    main()
