"""Inference speed of ``cellbench evaluate model.onnx`` (onnxruntime) beside Keras on the same model.

Builds cellbench models (untrained weights: speed does not depend on them), converts each with
Keras' ``model.export(format="onnx")`` (tf2onnx, in the ``[onnx]`` extra), and times 1,000 96x96 images, batch 256, best of
``--repeat``: onnxruntime on the CPU, cellbench's compiled Keras path (``predict_proba``, what
``evaluate`` uses for a ``.keras`` file) and plain ``model.predict``. Also prints the largest
probability difference between onnxruntime and Keras.

    .venv/bin/python benchmarks/perf/onnx_predict.py --models simple_cnn,mobilenetv2 --repeat 3
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("CELLBENCH_NO_ENTRY_POINTS", "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="simple_cnn,mobilenetv2")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from robustbench_cells import plugins
    from robustbench_cells.evaluation import load_any_model
    from robustbench_cells.training.artefacts import predict_proba

    images = np.random.default_rng(0).integers(0, 256, (args.n, args.size, args.size, 3), dtype=np.uint8)
    print(f"{args.n} images {args.size}x{args.size}, batch 256, best of {args.repeat}, "
          f"{os.cpu_count()} CPU cores (shared)")
    print(f"{'model':<14} {'params':>9} {'convert s':>9} {'onnxruntime':>12} {'keras (cellbench)':>18} "
          f"{'model.predict':>14} {'max |dp|':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            import keras

            keras.utils.set_random_seed(0)
            model = plugins.models().get(name).build((args.size, args.size, 3), 8)
            path = Path(tmp) / f"{name}.onnx"
            p_keras = predict_proba(model, images[:256])  # also: Keras exports only a model that was called
            t0 = time.perf_counter()
            model.export(str(path), format="onnx", verbose=False)
            convert = time.perf_counter() - t0
            onnx_model, _meta = load_any_model(path)
            p_onnx = onnx_model(images[:256])
            t_onnx = best_of(args.repeat, lambda: onnx_model(images))
            t_keras = best_of(args.repeat, lambda: predict_proba(model, images))
            x = images.astype(np.float32)
            t_predict = best_of(args.repeat, lambda: model.predict(x, batch_size=256, verbose=0))
            print(f"{name:<14} {model.count_params():>9,} {convert:>9.1f} {args.n / t_onnx:>8.0f} im/s "
                  f"{args.n / t_keras:>13.0f} im/s {args.n / t_predict:>9.0f} im/s "
                  f"{np.abs(p_onnx - p_keras).max():>9.1e}")


if __name__ == "__main__":
    main()
