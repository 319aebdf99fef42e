"""Time ``folder:../shared/data/pbc96`` (17,072 JPEGs + SPLITS.csv) through the registered loader (target < 30 s).

    .venv/bin/python benchmarks/perf/load_pbc.py
    .venv/bin/python benchmarks/perf/load_pbc.py --path /elsewhere/pbc96 --repeat 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default=str(ROOT.parent / "shared" / "data" / "pbc96"))
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    from robustbench_cells.data.specs import load_dataset

    for _ in range(args.repeat):
        start = time.perf_counter()
        ds = load_dataset(f"folder:{args.path}")
        seconds = time.perf_counter() - start
        splits = {s: int((ds.split == s).sum()) for s in ("train", "val", "test")} if ds.split is not None else {}
        print(f"folder:{args.path}: {len(ds):,} images {ds.images.shape[1:]} {ds.images.nbytes / 2**20:,.0f} MiB "
              f"in {seconds:.1f} s ({len(ds) / seconds:,.0f} images/s); split {splits}; "
              f"cpu_count={os.cpu_count()}, load={os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
