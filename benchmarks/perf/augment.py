"""Throughput of the training augmentations and the training slowdown they cause.

1. images/s of every registered augmentation on real 96x96 PBC training images (batches of 64,
   as the pipeline calls them; best of ``--repeat`` runs), optionally next to the Keras 3 AugMix
   layer (``--keras``).
2. Training slowdown: seconds per epoch of ``simple_cnn`` (~48k parameters) through
   ``train.train_cell`` (the real training loop, with the pipeline's background prefetch) with
   ``none``, ``simple`` and ``augmix``; the ratio to ``none`` is what the targets refer to
   (``simple`` <= 1.3x, ``augmix`` <= 2x). The first epoch (graph tracing) is not timed.

    .venv/bin/python benchmarks/perf/augment.py                  # both parts
    .venv/bin/python benchmarks/perf/augment.py --skip-training --keras
    .venv/bin/python benchmarks/perf/augment.py --train-n 4096 --epochs 3
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
PBC = Path(os.environ.get("CELLBENCH_PBC", ROOT.parent / "shared" / "data" / "pbc96"))
TARGETS = {"simple": 6000, "augmix": 2000}  # images/s, from the issue


def load_pbc(split: str, n: int) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The first *n* images of *split*, balanced over the 8 classes, as uint8 RGB + labels."""
    if not (PBC / "SPLITS.csv").is_file():
        sys.exit(f"PBC data not found at {PBC} (set CELLBENCH_PBC)")
    rows = [r for r in csv.DictReader(open(PBC / "SPLITS.csv")) if r["split"] == split]
    classes = tuple(sorted({r["label"] for r in rows}))
    per_class = -(-n // len(classes))
    picked: list[dict] = []
    for c in classes:
        picked += [r for r in rows if r["label"] == c][:per_class]
    picked = picked[:n]
    images = np.stack([cv2.cvtColor(cv2.imread(str(PBC / r["path"])), cv2.COLOR_BGR2RGB) for r in picked])
    labels = np.array([classes.index(r["label"]) for r in picked])
    return images, labels, classes


def throughput(images: np.ndarray, repeat: int, batch: int = 64) -> list[tuple[str, str, float]]:
    """images/s of every registered augmentation (best of *repeat*)."""
    from robustbench_cells import plugins

    rows = []
    onehot = np.eye(8, dtype=np.float32)[np.arange(len(images)) % 8]
    for spec in plugins.augmentations():
        fn = spec.build()
        best = 0.0
        for r in range(repeat + 1):  # run 0 warms caches (backgrounds, lazy imports)
            rng = np.random.default_rng(r)
            start = time.perf_counter()
            for b in range(0, len(images), batch):
                if spec.kind == "image":
                    fn(images[b:b + batch], rng)
                else:
                    fn(images[b:b + batch].astype(np.float32), onehot[b:b + batch], rng)
            if r:
                best = max(best, len(images) / (time.perf_counter() - start))
        rows.append((spec.name, spec.kind, best))
    return rows


def keras_augmix(images: np.ndarray, repeat: int, batch: int = 64) -> float:
    """images/s of ``keras.layers.AugMix`` on the same batches (value_range 0..255)."""
    import keras

    layer = keras.layers.AugMix(value_range=(0, 255), seed=0)
    best = 0.0
    for r in range(repeat + 1):
        start = time.perf_counter()
        for b in range(0, len(images), batch):
            np.asarray(layer(images[b:b + batch].astype(np.float32), training=True))
        if r:
            best = max(best, len(images) / (time.perf_counter() - start))
    return best


def albumentations_simple(images: np.ndarray, repeat: int) -> float:
    """images/s of the equivalent albumentations 2.0 pipeline (the issue's 6,199 images/s anchor)."""
    import albumentations as A

    pipe = A.Compose([A.HorizontalFlip(), A.VerticalFlip(),
                      A.Affine(rotate=(-180, 180), scale=(0.9, 1.1), translate_percent=(-0.1, 0.1), p=1.0),
                      A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0.2, p=1.0)], seed=0)
    best = 0.0
    for r in range(repeat + 1):
        start = time.perf_counter()
        for img in images:
            pipe(image=img)
        if r:
            best = max(best, len(images) / (time.perf_counter() - start))
    return best


def epoch_seconds(images, labels, classes, augmentation: str, epochs: int, seed: int = 0) -> float:
    """Mean seconds of epochs 2..E of simple_cnn trained with *augmentation* (no validation)."""
    from robustbench_cells import train
    from robustbench_cells.data.dataset import Dataset

    ds = Dataset(images, labels, classes, source="pbc-bench")
    stamps: list[float] = []
    recipe = train.Recipe(epochs=epochs, batch_size=64)
    start = time.perf_counter()
    train.train_cell("simple_cnn", ds, None, augmentation=augmentation, recipe=recipe, seed=seed,
                     on_epoch=lambda e, logs: stamps.append(time.perf_counter()))
    times = np.diff([start] + stamps)
    return float(np.mean(times[1:]))  # epoch 1 includes tf.function tracing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1024, help="images for the throughput table")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keras", action="store_true",
                        help="also time keras.layers.AugMix and the albumentations simple pipeline (same load)")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--train-n", type=int, default=4096, help="training images for the slowdown ratios")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is not timed)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("CELLBENCH_NO_ENTRY_POINTS", "1")

    images, _, _ = load_pbc("train", args.n)
    print(f"augmentation throughput: {len(images)} PBC train images 96x96, batches of 64, best of {args.repeat}, "
          f"cv2 threads {cv2.getNumThreads()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} "
          "(shared machine: compare with the reference rows of the same run)")
    print(f"{'augmentation':<16}{'kind':<7}{'images/s':>10}  target")
    for name, kind, ips in throughput(images, args.repeat):
        target = TARGETS.get(name)
        verdict = "" if target is None else f">= {target:,}  {'ok' if ips >= target else 'MISSED'}"
        print(f"{name:<16}{kind:<7}{ips:>10,.0f}  {verdict}")
    if args.keras:
        print(f"{'keras AugMix':<16}{'layer':<7}{keras_augmix(images[:256], args.repeat):>10,.0f}  (reference)")
        print(f"{'albu. simple':<16}{'image':<7}{albumentations_simple(images, args.repeat):>10,.0f}  (reference)")

    if args.skip_training:
        return
    train_images, train_labels, classes = load_pbc("train", args.train_n)
    print(f"\ntraining slowdown: simple_cnn, {len(train_images)} images, batch 64, "
          f"mean of epochs 2..{args.epochs}, load average {os.getloadavg()[0]:.1f}")
    base = None
    for aug, limit in (("none", None), ("simple", 1.3), ("augmix", 2.0)):
        sec = epoch_seconds(train_images, train_labels, classes, aug, args.epochs)
        base = base or sec
        ratio = sec / base
        verdict = "" if limit is None else f"<= {limit}x  {'ok' if ratio <= limit else 'MISSED'}"
        print(f"{aug:<10}{sec:8.2f} s/epoch {len(train_images) / sec:8,.0f} img/s  x{ratio:.2f}  {verdict}")


if __name__ == "__main__":
    main()
