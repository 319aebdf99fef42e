"""Draw docs/img/synthetic_vs_real.png: synthetic cells (left) next to real PBC crops (right), one row per class.

    .venv/bin/python benchmarks/figures/synthetic_vs_real.py [--per-class 5] [--seed 0]

The real crops come from ../shared/data/pbc96 (Acevedo et al. 2020, CC BY 4.0): the first test-split
images of each class in SPLITS.csv order, so the figure is reproducible.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
PBC = ROOT.parent / "shared" / "data" / "pbc96"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "docs" / "img" / "synthetic_vs_real.png"))
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from robustbench_cells.data.dataset import CELL_CLASSES
    from robustbench_cells.data.synthetic import generate

    k = args.per_class
    images, labels, _ = generate(64 * k, seed=args.seed)
    rows = list(csv.DictReader(open(PBC / "SPLITS.csv")))
    real: dict[str, list[str]] = {}
    for row in rows:
        if row["split"] == "test" and len(real.setdefault(row["label"], [])) < k:
            real[row["label"]].append(row["path"])
    gap = np.full((96, 12, 3), 255, np.uint8)
    lines = []
    for c, name in enumerate(CELL_CLASSES):
        syn = list(images[labels == c][:k])
        pbc = [cv2.cvtColor(cv2.imread(str(PBC / p)), cv2.COLOR_BGR2RGB) for p in real[name]]
        lines.append(np.concatenate(syn + [gap] + pbc, axis=1))
    grid = np.concatenate([np.concatenate([line, np.full((4, line.shape[1], 3), 255, np.uint8)]) for line in lines])
    fig, ax = plt.subplots(figsize=(2 * k * 1.0 + 2.2, 8 * 1.0 + 0.6), dpi=90)
    ax.imshow(grid)
    ax.set_xticks([48 * k, 96 * k + 12 + 48 * k], [f"synthetic (seed {args.seed})", "real PBC (test split)"])
    ax.xaxis.tick_top()
    ax.set_yticks([50 + 100 * i for i in range(8)], [n.replace("_", "\n") for n in CELL_CLASSES], fontsize=8)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
