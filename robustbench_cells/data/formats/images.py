"""Decoding image files (the folder format, ``predict`` on a folder): one preallocated uint8 array.

OpenCV's own log lines (``[ WARN:0@0.5] global grfmt_png.cpp ... chunk data is too large``) are
silenced while decoding: a corrupt file is reported once, by cellbench's warning naming the file.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from robustbench_cells.errors import CellbenchError

#: File suffixes the folder loader decodes (case-insensitive).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

# Above this many threads the decode of 96x96 JPEGs stops scaling (I/O + GIL hand-offs).
_MAX_DECODE_THREADS = 8

# OpenCV's log level is process-wide: nested or concurrent quiet sections share one counter, and
# the level is restored only when the last one ends.
_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved: int | None = None


@contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own stderr logging (``[ WARN:0@...]``, ``[ERROR:0@...]``) inside the block."""
    global _quiet_depth, _quiet_saved
    logging = getattr(getattr(cv2, "utils", None), "logging", None)  # absent in some minimal builds
    if logging is None:
        yield
        return
    with _quiet_lock:
        if _quiet_depth == 0:
            _quiet_saved = logging.getLogLevel()
            logging.setLogLevel(logging.LOG_LEVEL_SILENT)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _quiet_saved is not None:
                logging.setLogLevel(_quiet_saved)


def image_files(folder: Path) -> list[str]:
    """Sorted names of the image files directly in *folder* (by suffix; hidden files skipped)."""
    # Hidden files are skipped on purpose: macOS litters folders with ._x.jpg / .DS_x.jpg non-images.
    return sorted(e.name for e in os.scandir(folder)
                  if e.is_file() and not e.name.startswith(".") and e.name.lower().endswith(IMAGE_SUFFIXES))


def decode_one(path: Path) -> tuple[np.ndarray | None, str]:
    """RGB uint8 image and a note ('' / 'gray' / 'rgba' / '16bit'), or (None, reason)."""
    try:
        data = np.fromfile(path, dtype=np.uint8)  # fromfile + imdecode: non-ASCII paths work too
    except OSError as exc:
        return None, f"unreadable ({exc.strerror or exc})"
    if data.size == 0:
        return None, "empty file"
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        return None, "not a decodable image"
    note = ""
    if img.dtype != np.uint8:
        img = (img >> 8).astype(np.uint8) if img.dtype == np.uint16 else None
        if img is None:
            return None, "unsupported pixel type"
        note = "16bit"
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB), note or "gray"
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB), note or "rgba"
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), note


def decode_images(paths: Sequence[Path], where: str, threads: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """Decode *paths* into one preallocated uint8 ``(N, H, W, 3)`` array.

    Returns ``(images, ok, notes)``: ``ok[i]`` is False for files that could not be decoded (their
    rows are zeros). The target size is the most common size among up to 64 files sampled evenly;
    images of another size are resized to it. Warnings name the files concerned.
    """
    with quiet_opencv():
        return _decode_images(paths, where, threads)


def _decode_images(paths: Sequence[Path], where: str, threads: int | None
                   ) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    n = len(paths)
    threads = threads or min(_MAX_DECODE_THREADS, (os.cpu_count() or 1) * 2)
    probe_idx = np.unique(np.linspace(0, n - 1, min(n, 64)).astype(int)) if n else np.array([], int)
    probe = {int(i): decode_one(paths[int(i)]) for i in probe_idx}
    sizes = Counter(img.shape[:2] for img, _ in probe.values() if img is not None)
    if not sizes:  # the sample was all corrupt: fall back to decoding everything before choosing
        probe = {i: decode_one(p) for i, p in enumerate(paths)}
        sizes = Counter(img.shape[:2] for img, _ in probe.values() if img is not None)
        if not sizes:
            raise CellbenchError(f"{where}: none of the {n} image files could be decoded (first: {paths[0]})")
    height, width = sizes.most_common(1)[0][0]
    images = np.empty((n, height, width, 3), dtype=np.uint8)
    ok = np.ones(n, dtype=bool)
    bad: list[tuple[str, str]] = []
    resized: list[str] = []
    converted: Counter[str] = Counter()
    lock = threading.Lock()  # guards the three report lists/counters shared by the workers

    def work(i: int) -> None:
        img, note = probe[i] if i in probe else decode_one(paths[i])
        if img is None:
            ok[i] = False
            images[i] = 0
            with lock:
                bad.append((str(paths[i]), note))
            return
        if img.shape[:2] != (height, width):
            img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
            with lock:
                resized.append(str(paths[i]))
        if note:
            with lock:
                converted[note] += 1
        images[i] = img

    def work_chunk(start: int) -> None:
        for i in range(start, min(start + 256, n)):
            work(i)

    # cv2.imdecode and file reads release the GIL, so threads decode in parallel; chunks keep the
    # per-future overhead small. list() re-raises any unexpected worker exception here.
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(work_chunk, range(0, n, 256)))

    notes: dict[str, object] = {}
    # stacklevel 4: past this helper and decode_images, to the loader's caller (as before the split)
    if bad:
        bad.sort()
        shown = "; ".join(f"{p} ({why})" for p, why in bad[:3])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        warnings.warn(f"{where}: skipped {len(bad)} unreadable image file(s): {shown}{more}", stacklevel=4)
        notes["skipped_files"] = [p for p, _ in bad]
    if resized:
        resized.sort()
        warnings.warn(f"{where}: resized {len(resized)} image(s) to the majority size {height}x{width}, "
                      f"e.g. {resized[0]}", stacklevel=4)
        notes["resized_files"] = resized
    if converted:
        what = ", ".join(f"{k} {v}" for k, v in sorted(converted.items()))
        warnings.warn(f"{where}: converted to 8-bit RGB: {what} image(s)", stacklevel=4)
        notes["converted"] = dict(converted)
    return images, ok, notes
