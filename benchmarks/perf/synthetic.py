"""Throughput of the synthetic-cells generator (target: >= 2,000 images/s).

Generates ``--n`` images ``--repeat`` times after a warm-up and prints wall-clock images/s (best and
median) and images per CPU-second of this process (robust to other load on a shared machine).
``--threads 1`` limits OpenCV and BLAS to one thread, to measure one core on a busy machine.

    .venv/bin/python benchmarks/perf/synthetic.py --n 4096 --repeat 3
    .venv/bin/python benchmarks/perf/synthetic.py --threads 1

``--hardness EPOCHS`` instead trains ``simple_cnn`` (~47k parameters, GroupNorm: BatchNorm's
moving statistics do not settle in a few hundred steps) on 2,000 images and scores 1,000 held-out
ones after every epoch, on synthetic cells or (``--data pbc``) on a random 3,000 of real PBC, and
prints the held-out confusion matrix:

    .venv/bin/python benchmarks/perf/synthetic.py --hardness 8 --seed 1
    .venv/bin/python benchmarks/perf/synthetic.py --hardness 6 --data pbc
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096, help="images per run")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="OpenCV/BLAS threads (0 = library default)")
    parser.add_argument("--hardness", type=int, default=0, metavar="EPOCHS", help="train/score instead of timing")
    parser.add_argument("--data", choices=("synthetic", "pbc"), default="synthetic", help="data for --hardness")
    args = parser.parse_args(argv)
    if args.hardness:
        return hardness(args.hardness, args.seed, args.data)
    if args.threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    import cv2

    if args.threads:
        cv2.setNumThreads(args.threads)
    from robustbench_cells.data.synthetic import generate

    generate(256, seed=args.seed)  # warm-up
    rates, cpu_rates = [], []
    for r in range(args.repeat):
        start, cpu = time.perf_counter(), time.process_time()
        generate(args.n, seed=args.seed + r + 1)
        rates.append(args.n / (time.perf_counter() - start))
        cpu_rates.append(args.n / (time.process_time() - cpu))
    # images per CPU-second (all threads of this process) is what a shared, busy machine cannot distort
    print(f"synthetic: {args.n} images x {args.repeat}: wall best {max(rates):,.0f} images/s, "
          f"median {statistics.median(rates):,.0f} images/s; CPU {statistics.median(cpu_rates):,.0f} images "
          f"per CPU-second (cpu_count={os.cpu_count()}, load={os.getloadavg()[0]:.1f}, "
          f"cv2 threads={cv2.getNumThreads()})")
    return 0


def hardness(epochs: int, seed: int, data: str) -> int:
    """Held-out accuracy per epoch of a small CNN: how many epochs the data set needs, and its ceiling."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from pathlib import Path

    import numpy as np

    if data == "synthetic":
        from robustbench_cells.data.synthetic import generate

        x, y, _ = generate(3000, seed)
    else:
        from robustbench_cells.data.specs import load_dataset

        root = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pbc96"
        ds = load_dataset(f"folder:{root}")
        pick = np.random.default_rng(seed).permutation(len(ds))[:3000]
        x, y = ds.images[pick], ds.labels[pick]
    import keras

    from robustbench_cells.models.simple import build_simple_cnn

    keras.utils.set_random_seed(seed)
    model = build_simple_cnn((96, 96, 3), 8, norm="group")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    hist = model.fit(x[:2000].astype("float32"), y[:2000], epochs=epochs, batch_size=32, verbose=0,
                     validation_data=(x[2000:].astype("float32"), y[2000:]))
    print(f"{data} seed {seed}: simple_cnn ({model.count_params():,} params, GroupNorm), 2,000 train / 1,000 held out, "
          f"{time.perf_counter() - start:.0f} s")
    print("train accuracy   ", " ".join(f"{a:.3f}" for a in hist.history["accuracy"]))
    print("held-out accuracy", " ".join(f"{a:.3f}" for a in hist.history["val_accuracy"]))
    pred = model.predict(x[2000:].astype("float32"), verbose=0).argmax(1)
    confusion = np.zeros((8, 8), int)
    np.add.at(confusion, (y[2000:], pred), 1)
    print("confusion (rows: true, columns: predicted; CELL_CLASSES order)")
    print(confusion)
    return 0


if __name__ == "__main__":
    sys.exit(main())
