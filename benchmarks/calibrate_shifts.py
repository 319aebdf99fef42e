"""Calibrate the shift ladders on real PBC test images.

For every shift and severity 1..5: mean absolute difference to the clean image (0..255) and mean
SSIM (scikit-image, channel-wise), over N test images (balanced over the 8 classes). Writes the
preview grid used in docs/shifts.md.

    .venv/bin/python benchmarks/calibrate_shifts.py --n 256 --grid docs/img/shifts.png

How the ladders were chosen (see docs/shifts.md): severity 1 should be barely visible
(SSIM >~ 0.9 or a global change of a few grey levels), severity 5 strong but the cell still
recognisable to a person on the grid; MAD and SSIM must move monotonically from 1 to 5.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PBC = Path(os.environ.get("CELLBENCH_PBC", ROOT.parent / "shared" / "data" / "pbc96"))


def load_pbc_test(n: int, split: str = "test") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """*n* PBC images of *split*, balanced over classes (first files in SPLITS.csv order)."""
    if not (PBC / "SPLITS.csv").is_file():
        sys.exit(f"PBC data not found at {PBC} (set CELLBENCH_PBC)")
    rows = [r for r in csv.DictReader(open(PBC / "SPLITS.csv")) if r["split"] == split]
    classes = sorted({r["label"] for r in rows})
    per = {c: [r["path"] for r in rows if r["label"] == c] for c in classes}
    paths, labels = [], []
    i = 0
    while len(paths) < min(n, len(rows)):
        for k, c in enumerate(classes):
            if i < len(per[c]) and len(paths) < n:
                paths.append(per[c][i])
                labels.append(k)
        i += 1
    images = np.stack([cv2.cvtColor(cv2.imread(str(PBC / p)), cv2.COLOR_BGR2RGB) for p in paths])
    return images, np.array(labels), classes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--shifts", default="*")
    parser.add_argument("--grid", default="", help="write the preview grid PNG here")
    parser.add_argument("--no-ssim", action="store_true")
    args = parser.parse_args()

    from robustbench_cells import plugins
    from robustbench_cells.bench.shiftsets import shift_images

    images, labels, classes = load_pbc_test(args.n)
    names = [s.name for s in plugins.shifts().list(args.shifts)]
    if not args.no_ssim:
        from skimage.metrics import structural_similarity
    print(f"{len(images)} PBC test images; MAD = mean |shifted - clean| (0..255), SSIM = mean SSIM")
    print(f"{'shift':18s} " + " ".join(f"{'MAD' + str(s):>6s}" for s in range(1, 6))
          + ("" if args.no_ssim else "  " + " ".join(f"{'SSIM' + str(s):>6s}" for s in range(1, 6))))
    for name in names:
        mads, ssims = [], []
        for sev in range(1, 6):
            shifted = shift_images(images, name, sev, seed=0)
            mads.append(np.abs(shifted.astype(np.int16) - images).mean())
            if not args.no_ssim:
                ssims.append(np.mean([structural_similarity(a, b, channel_axis=-1) for a, b in
                                      zip(images[:64], shifted[:64])]))
        mono = all(b > a for a, b in zip(mads, mads[1:]))
        line = f"{name:18s} " + " ".join(f"{v:6.2f}" for v in mads)
        if ssims:
            line += "  " + " ".join(f"{v:6.3f}" for v in ssims)
        print(line + ("" if mono else "   <- MAD not monotone"))
    if args.grid:
        from robustbench_cells.cli.shifts_cmd import preview_grid
        from robustbench_cells.data.splits import one_per_class

        picked = one_per_class(labels, 8)
        fig = preview_grid(images[picked], names, seed=0,
                           row_labels=[classes[labels[picked[r % len(picked)]]] for r in range(len(names))])
        Path(args.grid).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.grid, dpi=80)
        from PIL import Image  # 256-colour palette: the grid stays a few hundred kB in the repository

        Image.open(args.grid).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(args.grid, optimize=True)
        print(f"wrote {args.grid}")


if __name__ == "__main__":
    main()
