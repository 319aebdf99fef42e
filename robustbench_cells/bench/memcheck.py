"""Will a run's data fit in memory? Checked before a single image is decoded.

Without this, ``image_size = 1024`` on a large folder (or a data set far bigger than RAM) ends in
NumPy's ``ArrayMemoryError`` traceback minutes into loading, or in the kernel's OOM killer.
:func:`check_run_memory` estimates the peak from what the data set spec holds (image count and
size from ``data.specs.peek_dataset``: file listings and array headers, never pixels) and compares
it with the memory this process can still get (:func:`available_memory`).

The estimate follows the run-data path (``bench/rundata.py`` and ``bench/runner.py``), uint8 RGB
throughout (3 bytes a pixel); ``src`` is all images at the source size, ``run`` all images at the
run's ``image_size``, ``shift`` the shift subset at ``image_size``:

- loading: the format's own peak (``DataPeek.load_bytes``: an npz's arrays as stored plus the
  converted copy, a folder's one preallocated array);
- resizing: ``src + run`` (the source set is freed once the resized one exists);
- splitting: ``2 x run + shift`` (the resized set and its train/val/test copies, plus the subset);
- building the shifted sets: ``run + 3 x shift`` (the parts, the subset and two sets in flight).

The peak is the largest of these. Training and prediction work on batches and ``--jobs N`` workers
memory-map the prepared arrays, so neither adds a full copy; TensorFlow's own memory is not counted
(the check errs towards letting a run start).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from robustbench_cells.errors import CellbenchError

#: cgroup limits at or above this mean "no limit" (v1 reports 2**63 rounded down to a page).
_NO_LIMIT = 1 << 60


def available_memory() -> int | None:
    """Bytes this process can still allocate, or None where the machine does not say.

    ``MemAvailable`` from ``/proc/meminfo`` (else the physical memory from ``sysconf``, an upper
    bound), capped by the container's cgroup limit minus its usage (reclaimable page cache not
    counted as used), since inside a container the machine's free memory is not what we get.
    """
    values = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    if not values:
        values = [v for v in (_sysconf_total(),) if v is not None]
    return min(values) if values else None


def run_data_bytes(peek: Any, image_size: int | None, split_fractions: Sequence[float],
                   max_shift_images: int | None) -> int:
    """The estimated peak bytes of a run's data for *peek* (a ``data.formats.DataPeek``); see the module doc."""
    height, width = (image_size, image_size) if image_size else (peek.height, peek.width)
    pixel = 3  # uint8 RGB
    src = peek.n * peek.height * peek.width * pixel
    run = peek.n * height * width * pixel
    resizing = (height, width) != (peek.height, peek.width)
    n_test = peek.n_test if peek.n_test is not None else round(split_fractions[2] * peek.n)
    n_shift = min(n_test, max_shift_images) if max_shift_images else n_test
    shift = n_shift * height * width * pixel
    return max(peek.load_bytes, src + run if resizing else src, 2 * run + shift, run + 3 * shift)


def check_run_memory(data: Any, image_size: int | None, split_fractions: Sequence[float],
                     max_shift_images: int | None, available: int | None = None) -> None:
    """Raise a one-line :class:`CellbenchError` when the run's data cannot fit in memory.

    *data* is the run's data set spec (a Dataset already in memory is not checked); *available*
    overrides :func:`available_memory` (tests). Specs whose size cannot be known without loading
    them (plugin formats, a file still to download) pass unchecked: the load reports its own errors.
    """
    if not isinstance(data, str):
        return
    from robustbench_cells.data.specs import peek_dataset

    peek = peek_dataset(data)
    if peek is None or peek.n == 0:
        return
    have = available_memory() if available is None else available
    if have is None:
        return
    need = run_data_bytes(peek, image_size, split_fractions, max_shift_images)
    if need <= have:
        return
    from robustbench_cells.bench.cache_admin import human_size

    size = image_size or peek.height
    images = f"{peek.n} images of {data} at {size}x{size if image_size else peek.width} px"
    amounts = f"need about {human_size(need)} of memory, but this machine has {human_size(have)} available"
    if image_size and image_size * image_size > peek.height * peek.width:
        # enlarging is what costs: the option to change is image_size
        raise CellbenchError(f"image_size = {image_size}: {images} {amounts}; use a smaller image_size")
    raise CellbenchError(f"data = {data!r}: {images} {amounts}; use a smaller data set (or image_size)")


def _meminfo_available(path: str = "/proc/meminfo") -> int | None:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Limit minus usage of this process's memory cgroup (v2, else v1), page cache excluded; None without a limit."""
    for limit_file, usage_file, cache_key in (("memory.max", "memory.current", "inactive_file"),
                                              ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes",
                                               "total_inactive_file")):
        try:
            limit_text = (root / limit_file).read_text().strip()
            if limit_text == "max":
                return None
            limit = int(limit_text)
            if limit >= _NO_LIMIT:
                return None
            usage = int((root / usage_file).read_text().strip())
            stat = (root / limit_file).with_name("memory.stat").read_text()
        except (OSError, ValueError):
            continue
        cache = next((int(line.split()[1]) for line in stat.splitlines() if line.startswith(cache_key + " ")), 0)
        return max(0, limit - max(0, usage - cache))
    return None


def _sysconf_total() -> int | None:
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None
