"""KerasCV's RandAugment through ``keras_layer`` beside cellbench's built-in ``randaugment``.

512 real 96x96 PBC training images (or uniform noise with ``--noise`` where the shared data are
absent), batches of 64 as the training pipeline calls augmentations, best of ``--repeat``:
images/s of each, and whether the same seed gives the same bytes twice (cellbench's augmentation
contract). Needs the ``[kerascv]`` extra (KerasCV is unmaintained upstream).

    .venv/bin/python benchmarks/perf/kerascv_randaugment.py --repeat 2
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("CELLBENCH_NO_ENTRY_POINTS", "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PBC = Path(os.environ.get("CELLBENCH_PBC", ROOT.parent / "shared" / "data" / "pbc96"))


def images(n: int, noise: bool) -> np.ndarray:
    if noise or not (PBC / "SPLITS.csv").is_file():
        return np.random.default_rng(0).integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)
    import cv2

    rows = [r for r in csv.DictReader(open(PBC / "SPLITS.csv")) if r["split"] == "train"][:n]
    return np.stack([cv2.cvtColor(cv2.imread(str(PBC / r["path"])), cv2.COLOR_BGR2RGB) for r in rows])


def run(fn, x: np.ndarray, seed: int, batch: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([fn(x[i:i + batch], rng) for i in range(0, len(x), batch)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--noise", action="store_true", help="uniform noise images instead of PBC")
    args = parser.parse_args()

    from robustbench_cells import plugins

    x = images(args.n, args.noise)
    registry = plugins.augmentations()
    t0 = time.perf_counter()
    import keras_cv

    print(f"keras-cv {keras_cv.__version__} imported in {time.perf_counter() - t0:.1f} s; {len(x)} images "
          f"{x.shape[1]}x{x.shape[2]}, batches of 64, best of {args.repeat}, {os.cpu_count()} CPU cores (shared)")
    candidates = {
        "randaugment (cellbench)": registry.get("randaugment").build(),
        "keras_cv.layers.RandAugment": registry.get("keras_layer").build(
            layer="keras_cv.layers.RandAugment", args={"value_range": [0, 255], "augmentations_per_image": 2,
                                                       "magnitude": 0.9}),
    }
    for name, fn in candidates.items():
        run(fn, x[:64], 0)  # warm-up (graph building, first-call costs)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = run(fn, x, 0)
            times.append(time.perf_counter() - t0)
        same = np.array_equal(out, run(fn, x, 0))
        print(f"{name:<30} {len(x) / min(times):>8.0f} images/s   same seed, same bytes: {same}")


if __name__ == "__main__":
    main()
