"""Throughput of the synthetic-cells generator (target: >= 2,000 images/s).

Generates ``--n`` images ``--repeat`` times after a warm-up and prints wall-clock images/s (best and
median) and images per CPU-second of this process (robust to other load on a shared machine).
``--threads 1`` limits OpenCV and BLAS to one thread, to measure one core on a busy machine.

    .venv/bin/python benchmarks/perf/synthetic.py --n 4096 --repeat 3
    .venv/bin/python benchmarks/perf/synthetic.py --threads 1
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
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
