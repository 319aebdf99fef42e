"""How close do the shifts bring PBC to real other-lab sets? Distances in the explain fingerprint space.

For every registered shift and severity: shift N PBC test images, summarise them with the shift
fingerprint (:mod:`robustbench_cells.explain.fingerprint`, standardised by PBC validation images)
and take the RMS distance of that set's summary vector to the summary vector of each real target
(tecom96, cellavision96). Smaller = the synthetic shift looks more like that lab. Prints a Markdown
table: the clean distance, the best non-lab shift and the lab family at severities 3..5.

    .venv/bin/python benchmarks/lab_fingerprint.py --n 128
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
SHARED = Path(os.environ.get("CELLBENCH_SHARED", ROOT.parent / "shared" / "data"))

from calibrate_shifts import load_pbc_test  # noqa: E402  (same balanced PBC loader)

from robustbench_cells import plugins  # noqa: E402
from robustbench_cells.bench.shiftsets import shift_images  # noqa: E402
from robustbench_cells.explain.fingerprint import Reference, image_statistics  # noqa: E402


def load_folder(root: Path, size: int = 96) -> np.ndarray:
    """Every image of a class-folder set, resized to *size* (area interpolation, like the loader)."""
    import cv2

    out = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".tif")):
        image = cv2.imread(str(path))
        if image is not None:
            out.append(cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (size, size), interpolation=cv2.INTER_AREA))
    return np.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128, help="PBC test images (balanced over classes)")
    args = parser.parse_args()
    test, _, _ = load_pbc_test(args.n)
    val, _, _ = load_pbc_test(args.n, split="val")
    ref = Reference.from_stats(image_statistics(val))
    targets = {name: ref.summary_vector(image_statistics(load_folder(SHARED / "crosslab" / name)))
               for name in ("tecom96", "cellavision96")}

    def dist(images: np.ndarray) -> dict[str, float]:
        v = ref.summary_vector(image_statistics(images))
        return {t: float(np.sqrt(np.mean((v - tv) ** 2))) for t, tv in targets.items()}

    clean = dist(test)
    rows: list[tuple[str, str, int, dict[str, float]]] = []
    for spec in plugins.shifts():
        for severity in range(1, 6):
            rows.append((spec.name, spec.family, severity, dist(shift_images(test, spec.name, severity, seed=0))))
    names = list(targets)
    print(f"PBC test images: {len(test)}; targets: " + ", ".join(names))
    print("\n| set | " + " | ".join(f"RMS distance to {t}" for t in names) + " |")
    print("|---|" + "---:|" * len(names))
    print("| clean PBC | " + " | ".join(f"{clean[t]:.2f}" for t in names) + " |")
    for t in names:
        best = min((r for r in rows if r[1] != "lab"), key=lambda r: r[3][t])
        print(f"| best non-lab shift for {t}: {best[0]} s{best[2]} | "
              + " | ".join(f"{best[3][u]:.2f}" for u in names) + " |")
    for name, family, severity, d in rows:
        if family == "lab" and severity >= 3:
            print(f"| {name} s{severity} | " + " | ".join(f"{d[t]:.2f}" for t in names) + " |")


if __name__ == "__main__":
    main()
