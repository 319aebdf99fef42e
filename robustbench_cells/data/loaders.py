"""The built-in data set loaders, re-exported from their format modules (``data/formats/``).

Kept so existing imports (``default_plugins/datasets.py``, ``cli/predict_cmd.py``, user code) keep
working; new code imports from ``robustbench_cells.data.formats.<format>``. Each loader validates
what it reads and raises a one-line :class:`CellbenchError` naming the file and the problem;
recoverable oddities are one-line warnings, recorded in ``Dataset.meta``.
"""

from __future__ import annotations

from robustbench_cells.data.formats.bloodmnist import (
    BLOODMNIST_SIZES, MEDMNIST_ROOT_ENV, MEDMNIST_URL, bloodmnist_filename, load_bloodmnist, medmnist_root,
)
from robustbench_cells.data.formats.folder import CLASS_ALIASES, SPLIT_FOLDERS, canonical_class, load_folder
from robustbench_cells.data.formats.images import IMAGE_SUFFIXES, decode_images
from robustbench_cells.data.formats.npz import load_npz, load_npz_images

__all__ = [
    "BLOODMNIST_SIZES", "CLASS_ALIASES", "IMAGE_SUFFIXES", "MEDMNIST_ROOT_ENV", "MEDMNIST_URL", "SPLIT_FOLDERS",
    "bloodmnist_filename", "canonical_class", "decode_images", "load_bloodmnist", "load_folder", "load_npz",
    "load_npz_images", "medmnist_root",
]
