"""A few clean test images kept in the run folder, so reports can show the shifts without the data set.

The runner writes ``RUN_DIR/samples.npz`` once per run: up to :data:`SAMPLES_PER_RUN` images of the
run's shift subset (the images every shifted set was made from, at the run's image size), one per
class in turn, with their labels. The HTML report draws its "sample images of every shift" strips
from them: it no longer reloads and re-splits the whole data set (most of a report's time on PBC),
and a run folder copied to another machine still shows its samples.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from robustbench_cells.atomic import atomic_path
from robustbench_cells.data.dataset import Dataset
from robustbench_cells.data.splits import one_per_class

SAMPLES_FILE = "samples.npz"
#: One per class for the 8 PBC classes; the report uses the first few.
SAMPLES_PER_RUN = 8


def save_samples(run_dir: str | os.PathLike, base: Dataset, count: int = SAMPLES_PER_RUN) -> Path | None:
    """Write the samples of *base* (the run's shift subset) unless the run folder already has a
    readable samples file (a damaged one is replaced).

    Atomic (:func:`~robustbench_cells.atomic.atomic_path`), so a killed run never leaves half a file; returns the
    path, or ``None`` when *base* is empty.
    """
    path = Path(run_dir) / SAMPLES_FILE
    if load_samples(run_dir) is not None:
        return path
    picked = one_per_class(base.labels, count)
    if len(picked) == 0:
        return None
    with atomic_path(path, ".npz") as tmp:
        np.savez(tmp, images=base.images[picked], labels=base.labels[picked])
    return path


def load_samples(run_dir: str | os.PathLike | None) -> tuple[np.ndarray, np.ndarray] | None:
    """``(images uint8 (N,H,W,3), labels)`` from the run folder, or ``None`` if it has no usable file."""
    if run_dir is None:
        return None
    path = Path(run_dir) / SAMPLES_FILE
    try:
        with np.load(path) as data:
            images, labels = data["images"], data["labels"]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):  # missing (older runs), damaged or foreign: fall back
        return None
    if (images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or labels.ndim != 1
            or len(labels) != len(images) or labels.dtype.kind not in "iu"):
        return None
    return images, labels
