"""Throughput of the shift suite on real 96x96 PBC test images.

Single thread (OpenCV and BLAS limited to one thread): images/s per shift at each severity, next to
the fastest peer measured on this machine (imagecorruptions 1.1.2, medmnistc 0.1.0,
albumentations 2.0.8; severity 3, 512 images). ``--suite`` also times the whole suite x 5 severities
over all PBC test images through ``ShiftCache.build_all`` (generation + verified cache writes) with
``--jobs`` threads.

    .venv/bin/python benchmarks/perf/shifts.py --n 512 --repeat 3
    .venv/bin/python benchmarks/perf/shifts.py --suite --jobs 2
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # single-thread BLAS (the stain matrix products) before numpy loads
os.environ.setdefault("CELLBENCH_NO_ENTRY_POINTS", "1")  # the built-in suite only (not installed plugins)

import argparse  # noqa: E402
import csv  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PBC = Path(os.environ.get("CELLBENCH_PBC", ROOT.parent / "shared" / "data" / "pbc96"))

#: Fastest peer on the same corruption, images/s, one thread, 512 PBC images, severity 3 (from the issue).
PEERS: dict[str, tuple[str, float]] = {
    "gaussian_noise": ("albumentations GaussNoise", 9917),
    "shot_noise": ("imagecorruptions", 496),
    "impulse_noise": ("imagecorruptions", 1948),
    "defocus_blur": ("medmnistc", 2874),
    "motion_blur": ("albumentations MotionBlur", 14195),
    "zoom_blur": ("albumentations ZoomBlur", 5186),
    "glass_blur": ("imagecorruptions", 7.9),
    "elastic_transform": ("imagecorruptions", 655),
    "jpeg_compression": ("albumentations ImageCompression", 15729),
    "pixelate": ("imagecorruptions", 18141),
    "brightness_up": ("medmnistc", 23024),
    "brightness_down": ("medmnistc", 23024),
    "contrast_up": ("imagecorruptions", 4321),
    "contrast_down": ("imagecorruptions", 4321),
    "saturate": ("medmnistc", 677),
    "stain_deposit": ("medmnistc", 8079),
    "bubble": ("medmnistc", 15173),
}


def load_pbc(split: str = "test", n: int | None = None) -> np.ndarray:
    """PBC images of *split* (all, or the first *n* balanced over classes)."""
    if not (PBC / "SPLITS.csv").is_file():
        sys.exit(f"PBC data not found at {PBC} (set CELLBENCH_PBC)")
    rows = [r for r in csv.DictReader(open(PBC / "SPLITS.csv")) if r["split"] == split]
    if n is not None:
        by_class: dict[str, list[str]] = {}
        for r in rows:
            by_class.setdefault(r["label"], []).append(r["path"])
        order = [p for group in zip(*by_class.values()) for p in group]
        paths = order[:n]
    else:
        paths = [r["path"] for r in rows]
    return np.stack([cv2.cvtColor(cv2.imread(str(PBC / p)), cv2.COLOR_BGR2RGB) for p in paths])


def _best_seconds(fn, repeat: int, clock: str) -> float:
    """The fastest of *repeat* calls of *fn*, in seconds of wall clock or of the thread's CPU time."""
    timer = time.perf_counter if clock == "wall" else time.thread_time
    best = float("inf")
    for _ in range(repeat):
        t0 = timer()
        fn()
        best = min(best, timer() - t0)
    return best


def _time_shift(images: np.ndarray, name: str, repeat: int, clock: str) -> list[float]:
    """Best-of-*repeat* seconds of one shift at severities 1..5."""
    from robustbench_cells.bench.shiftsets import shift_images

    cv2.setNumThreads(1)
    return [_best_seconds(lambda: shift_images(images, name, sev, seed=0), repeat, clock) for sev in range(1, 6)]


def _isolated(label: str, fn, *args):
    """``fn(*args)`` in a forked child where fork exists, so that each shift is timed from the same
    memory state: run one after another in one process, the heap left by earlier shifts made later
    ones up to 15% slower (JPEG, whose output pages are faulted in afresh)."""
    import multiprocessing as mp

    if "fork" not in mp.get_all_start_methods():
        return fn(*args)
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)

    def run() -> None:
        child.send(fn(*args))

    proc = ctx.Process(target=run)
    proc.start()
    child.close()  # only the child writes: its exit (even by an exception) then ends recv()
    try:
        result = parent.recv()
    except EOFError:
        proc.join()
        sys.exit(f"{label}: the timing process failed (exit code {proc.exitcode})")
    proc.join()
    return result


def per_shift(images: np.ndarray, pattern: str, repeat: int, clock: str = "wall") -> None:
    from robustbench_cells import plugins

    names = [s.name for s in plugins.shifts().list(pattern)]
    print(f"{len(images)} PBC test images 96x96, one thread, best of {repeat}, each shift in a fresh "
          f"forked process; images/s "
          f"({'wall clock' if clock == 'wall' else 'CPU time of the thread'}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print("| shift | sev 1 | sev 2 | sev 3 | sev 4 | sev 5 | fastest peer (sev 3) | |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    total_time = 0.0
    total_images = 0
    for name in names:
        times = _isolated(name, _time_shift, images, name, repeat, clock)
        rates = [len(images) / t for t in times]
        total_time += sum(times)
        total_images += len(images) * len(times)
        peer = PEERS.get(name)
        verdict = "" if peer is None else ("faster" if rates[2] >= peer[1] else "SLOWER")
        peer_txt = f"{peer[1]:,.0f} ({peer[0]})" if peer else "-"
        print(f"| {name} | " + " | ".join(f"{r:,.0f}" for r in rates) + f" | {peer_txt} | {verdict} |")
    print(f"\nwhole suite, {len(names)} shifts x 5 severities: {total_images / total_time:,.0f} image-shifts/s "
          f"on one thread ({total_time:.1f} s for {total_images:,} image-shifts)")


def live_peers(images: np.ndarray, repeat: int, clock: str) -> None:
    """albumentations (installed with cellbench) on the same images, same thread, same moment:
    the comparison that does not depend on how busy the machine was when the issue's figures were taken."""
    import albumentations as A

    from robustbench_cells.bench.shiftsets import shift_images

    cv2.setNumThreads(1)
    pairs = {  # our shift at severity 3 vs the albumentations transform at a matching strength
        "gaussian_noise": A.GaussNoise(std_range=(0.05, 0.05), p=1.0),
        "motion_blur": A.MotionBlur(blur_limit=(5, 5), p=1.0),
        "defocus_blur": A.Defocus(radius=(2, 2), alias_blur=(0.1, 0.1), p=1.0),
        "zoom_blur": A.ZoomBlur(max_factor=(1.1, 1.1), p=1.0),
        "jpeg_compression": A.ImageCompression(quality_range=(25, 25), p=1.0),
        # albumentations' own strengths are not in our units; these look about as strong at 96 px
        "glass_blur": A.GlassBlur(sigma=0.6, max_delta=1, iterations=2, p=1.0),
        "elastic_transform": A.ElasticTransform(alpha=30, sigma=5, p=1.0),
    }

    def best_of(fn) -> float:
        return len(images) / _best_seconds(fn, repeat, clock)

    print(f"\nlive comparison, {len(images)} images, one thread, severity 3; images/s")
    print("| shift | cellbench | albumentations 2.0.8 (per image) |")
    print("|---|---:|---:|")
    for name, transform in pairs.items():
        ours = best_of(lambda: shift_images(images, name, 3, seed=0))
        theirs = best_of(lambda: [transform(image=img)["image"] for img in images])
        print(f"| {name} | {ours:,.0f} | {theirs:,.0f} |")

    # JPEG cost depends on the quality, so compare every rung of the ladder at the same quality
    from robustbench_cells import plugins

    print("\nJPEG at every severity, same quality for both; images/s")
    print("| severity | quality | cellbench | albumentations 2.0.8 |")
    print("|---:|---:|---:|---:|")
    for sev, quality in enumerate(plugins.shifts().get("jpeg_compression").severities, start=1):
        transform = A.ImageCompression(quality_range=(quality, quality), p=1.0)
        ours = best_of(lambda: shift_images(images, "jpeg_compression", sev, seed=0))
        theirs = best_of(lambda: [transform(image=img)["image"] for img in images])
        print(f"| {sev} | {quality} | {ours:,.0f} | {theirs:,.0f} |")


def whole_suite(jobs: int) -> None:
    from robustbench_cells import plugins
    from robustbench_cells.bench.shiftsets import ShiftCache, images_fingerprint

    images = load_pbc("test")
    names = plugins.shifts().names()
    with tempfile.TemporaryDirectory() as tmp:
        cache = ShiftCache(tmp)
        fingerprint = images_fingerprint(images)
        t0, c0 = time.perf_counter(), time.process_time()
        cache.build_all(images, fingerprint, names, (1, 2, 3, 4, 5), seed=0, jobs=jobs)
        built, built_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        cache.build_all(images, fingerprint, names, (1, 2, 3, 4, 5), seed=0, jobs=jobs)
        reread = time.perf_counter() - t0
    sets = len(names) * 5
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"whole suite: {len(names)} shifts x 5 severities over {len(images):,} PBC test images "
          f"({sets} sets, {sets * len(images):,} image-shifts), jobs={jobs}: generated and cached in "
          f"{built:.1f} s wall ({built_cpu:.1f} s CPU over all threads, i.e. {built_cpu / jobs:.1f} s on {jobs} "
          f"dedicated cores); second call (all cache hits, verified) {reread:.1f} s wall")


def main() -> None:
    parser = argparse.ArgumentParser(description="Shift-suite throughput on real PBC images.")
    parser.add_argument("--n", type=int, default=512, help="images for the per-shift table")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shifts", default="*", help="fnmatch pattern")
    parser.add_argument("--suite", action="store_true", help="time the whole suite on all test images instead")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--peers", action="store_true", help="also time albumentations live on the same images")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: the thread's CPU time (robust when other processes share the cores)")
    args = parser.parse_args()
    if args.suite:
        whole_suite(args.jobs)
    else:
        images = load_pbc("test", args.n)
        per_shift(images, args.shifts, args.repeat, args.clock)
        if args.peers:
            live_peers(images, args.repeat, args.clock)


if __name__ == "__main__":
    main()
