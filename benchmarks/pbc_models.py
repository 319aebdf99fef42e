"""Real-data training figures: train a model on the PBC set at 96x96 and report clean test accuracy.

Usage (from the project root; the figures in docs/models.md came from these commands)::

    nice -n 10 .venv/bin/python benchmarks/pbc_models.py --model simple_cnn --augmentation none --epochs 20
    nice -n 10 .venv/bin/python benchmarks/pbc_models.py --model mobilenetv2 --augmentation simple \
        --epochs 3 --train-subset 4000
    .venv/bin/python benchmarks/pbc_models.py --params      # check every declared parameter count

Each run prints one JSON line (and appends it to ``--out`` when given): model, augmentation,
epochs run, best epoch, clean val/test accuracy, wall time, images/s, the recipe and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "pbc96"


def check_params() -> int:
    """Build every registered model at 96x96x3 / 8 classes and compare with its declared count."""
    from robustbench_cells import plugins

    bad = 0
    for spec in plugins.models():
        n = spec.build((96, 96, 3), 8).count_params()
        ok = n == spec.params
        bad += not ok
        print(f"{spec.name:18s} declared {spec.params:>11,d} built {n:>11,d} {'ok' if ok else 'MISMATCH'}", flush=True)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", action="store_true", help="only check declared parameter counts")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="PBC folder (with SPLITS.csv)")
    parser.add_argument("--model", default="simple_cnn")
    parser.add_argument("--augmentation", default="none", help="augmentation name(s), comma-separated")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--schedule", default="cosine")
    parser.add_argument("--patience", type=int, default=5, help="early stopping patience (0: off)")
    parser.add_argument("--train-subset", type=int, default=0, help="use a stratified random subset of train")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default="", help="folder to save the trained cell (model.keras + meta.json)")
    parser.add_argument("--out", default="", help="append the JSON result line to this file")
    args = parser.parse_args(argv)
    if args.params:
        return check_params()

    from robustbench_cells import train as T
    from robustbench_cells.data.specs import load_dataset
    from robustbench_cells.data.splits import split_dataset

    t0 = time.perf_counter()
    parts = split_dataset(load_dataset(f"folder:{args.data}"), seed=args.seed)
    load_s = time.perf_counter() - t0
    train = parts["train"]
    if args.train_subset and args.train_subset < len(train):
        rng = np.random.default_rng([args.seed, 99])
        train = train.subset(np.sort(rng.choice(len(train), args.train_subset, replace=False)), "[subset]")
    augmentation = [a for a in args.augmentation.split(",") if a] or "none"
    recipe = T.Recipe(learning_rate=args.learning_rate, batch_size=args.batch_size, epochs=args.epochs,
                      schedule=args.schedule, early_stopping_patience=args.patience or None,
                      early_stopping_monitor="val_accuracy")

    def report(epoch: int, logs: dict) -> None:
        print(f"epoch {epoch + 1}: " + " ".join(f"{k}={v:.4g}" for k, v in logs.items()), flush=True)

    result = T.train_cell(args.model, train, parts["val"], augmentation=augmentation, recipe=recipe,
                          seed=args.seed, on_epoch=report)
    t1 = time.perf_counter()
    test = T.evaluate(result.model, parts["test"])
    val = T.evaluate(result.model, parts["val"])
    eval_s = time.perf_counter() - t1
    row = {
        "model": args.model, "augmentation": args.augmentation, "train_images": len(train),
        "test_images": len(parts["test"]), "epochs_run": result.epochs, "best_epoch": result.best_epoch,
        "val_accuracy": round(val["accuracy"], 4), "test_accuracy": round(test["accuracy"], 4),
        "train_seconds": round(result.train_seconds, 1), "eval_seconds": round(eval_s, 1),
        "load_seconds": round(load_s, 1),
        "train_images_per_s": round(len(train) * result.epochs / result.train_seconds, 1),
        "params": result.params, "recipe": {k: v for k, v in recipe.to_dict().items() if v != getattr(T.Recipe(), k)},
        "seed": args.seed, "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
    }
    if args.save:
        meta = T.model_meta(args.model, train, augmentation=augmentation, recipe=recipe, seed=args.seed,
                            result=result, test_accuracy=test["accuracy"])
        T.save_model(result.model, meta, args.save)
    line = json.dumps(row)
    print(line, flush=True)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
