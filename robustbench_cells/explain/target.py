"""Load the target set of ``cellbench explain``: any data set spec, or a plain folder of unlabeled images.

The data set loaders expect class sub-folders; a user's unlabeled test set is usually a flat folder
of images, so ``folder:PATH`` (or a bare ``PATH``) whose images lie directly inside is read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robustbench_cells.errors import CellbenchError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class Target:
    """Target images (uint8 ``(N, H, W, 3)``), their labels when known, and where they came from."""

    images: np.ndarray
    labels: np.ndarray | None
    paths: list[str]
    source: str


def _flat_image_folder(spec: str) -> Path | None:
    """The folder when *spec* names a folder holding image files directly (not only class sub-folders)."""
    name, sep, arg = spec.partition(":")
    path = Path(arg if sep and name == "folder" else spec)
    if not path.is_dir():
        return None
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir() if p.is_file()):
        return path
    return None


def load_image_folder(folder: Path) -> Target:
    """Read every image directly inside *folder* (sorted by name) as RGB uint8; sizes must agree."""
    import cv2

    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    images = []
    for p in files:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            raise CellbenchError(f"{p}: not a readable image")
        images.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise CellbenchError(f"{folder}: images have different sizes {sorted(shapes)[:3]}; resize them to one size")
    return Target(np.stack(images), None, [str(p) for p in files], f"folder:{folder}")


def load_target(spec: str, *, with_labels: bool, class_names: tuple[str, ...] | None = None) -> Target:
    """Load the target of *spec*. With ``with_labels`` the spec must carry labels (npz or class folders).

    Labels are re-indexed to *class_names* (the run's classes) by name when both are known.
    """
    flat = _flat_image_folder(spec)
    if flat is not None:
        if with_labels:
            raise CellbenchError(f"--labels: {spec} is a folder of unlabeled images (use class sub-folders or an npz)")
        return load_image_folder(flat)
    from robustbench_cells.data.specs import load_dataset

    ds = load_dataset(spec)
    if len(ds) == 0:
        raise CellbenchError(f"target {spec}: no images")
    labels = None
    if with_labels:
        labels = ds.labels
        if class_names is not None and tuple(ds.class_names) != tuple(class_names):
            missing = [c for c in ds.class_names if c not in class_names]
            if missing:
                raise CellbenchError(f"target {spec}: classes {missing} are not among the run's classes")
            remap = np.array([list(class_names).index(c) for c in ds.class_names])
            labels = remap[labels]
    paths = [str(p) for p in ds.paths] if ds.paths is not None else [f"{spec}[{i}]" for i in range(len(ds))]
    return Target(ds.images, labels, paths, spec)
