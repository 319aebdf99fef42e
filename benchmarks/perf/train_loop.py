"""cellbench's training loop vs a plain ``model.fit`` on the same model, data and batch size.

Usage (from the project root)::

    nice -n 10 .venv/bin/python benchmarks/perf/train_loop.py --images 4096 --epochs 3

Both sides train ``simple_cnn`` at 96x96 from the same initial weights on the same uint8 images
(no augmentation, no validation). ``model.fit`` gets the whole set pre-converted to float32 in
memory, so it is the best case for Keras; cellbench goes through TrainingBatches (shuffle,
per-batch float conversion, background prefetch) and its compiled step. The first epoch of each
side (tracing) is excluded; the figure is the ratio of the median later epoch times. The two sides
alternate for ``--rounds`` rounds so that load from other processes hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="cellbench loop vs model.fit")
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per side per round (first one is warm-up)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", default="simple_cnn")
    args = parser.parse_args(argv)

    import keras

    from robustbench_cells import train as T
    from robustbench_cells.data.dataset import CELL_CLASSES, Dataset
    from robustbench_cells.pipeline import TrainingBatches

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 8, args.images)
    images = rng.integers(0, 256, (args.images, args.size, args.size, 3), dtype=np.uint8)
    ds = Dataset(images, labels, CELL_CLASSES, source="random")
    x = images.astype(np.float32)
    y = np.eye(8, dtype=np.float32)[labels]
    recipe = T.Recipe(epochs=args.epochs, batch_size=args.batch_size)

    def fit_side() -> list[float]:
        keras.utils.set_random_seed(0)
        model = T.build_model(args.model, (args.size, args.size, 3), 8)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
        times: list[float] = []

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self.t)

        model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, shuffle=True, verbose=0, callbacks=[Timer()])
        return times

    def cellbench_side() -> list[float]:
        stamps = [time.perf_counter()]
        batches = TrainingBatches(ds, "none", batch_size=args.batch_size, seed=0)
        T.train_cell(args.model, ds, None, augmentation="none", recipe=recipe, seed=0, batches=batches,
                     on_epoch=lambda e, logs: stamps.append(time.perf_counter()))
        return list(np.diff(stamps))  # first interval includes model build + tracing, dropped below

    fit_epochs: list[float] = []
    cb_epochs: list[float] = []
    for r in range(args.rounds):
        f = fit_side()
        c = cellbench_side()
        fit_epochs += f[1:]
        cb_epochs += c[1:]
        print(f"round {r + 1}: fit {['%.2f' % t for t in f]} s/epoch, cellbench {['%.2f' % t for t in c]} s/epoch",
              flush=True)
    fit_med, cb_med = statistics.median(fit_epochs), statistics.median(cb_epochs)
    row = {"model": args.model, "images": args.images, "size": args.size, "batch_size": args.batch_size,
           "fit_s_per_epoch": round(fit_med, 3), "cellbench_s_per_epoch": round(cb_med, 3),
           "ratio": round(cb_med / fit_med, 3), "fit_img_per_s": round(args.images / fit_med, 1),
           "cellbench_img_per_s": round(args.images / cb_med, 1), "load_avg_1m": round(os.getloadavg()[0], 2)}
    print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
