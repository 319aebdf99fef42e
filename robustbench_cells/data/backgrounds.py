"""Background images for compositing: the shipped set or a user's folder.

The shipped images live in the top-level ``backgrounds/`` folder of the repository, installed as the
package ``robustbench_cells.backgrounds`` (pyproject's ``package-dir``). They are read through
:mod:`importlib.resources`, so they work from an installed wheel (or zip) as well as from an editable
install. ``MANIFEST.csv`` beside them records how each was made and its licence.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from robustbench_cells.errors import CellbenchError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
_SHIPPED_PACKAGE = "robustbench_cells.backgrounds"


def _decode(data: bytes, where: str) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise CellbenchError(f"backgrounds: cannot decode image {where}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _square(img: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square, then resize to ``size`` (area when shrinking: no aliasing)."""
    h, w = img.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    img = img[top:top + side, left:left + side]
    if side == size:
        return np.ascontiguousarray(img)
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


def shipped_folder() -> resources.abc.Traversable:
    """The folder of the shipped backgrounds and their ``MANIFEST.csv`` (``backgrounds/`` in the repository)."""
    return resources.files(_SHIPPED_PACKAGE)


def shipped_background_files() -> list[str]:
    """Names of the shipped background images (sorted)."""
    return sorted(p.name for p in shipped_folder().iterdir() if p.name.lower().endswith(IMAGE_SUFFIXES))


@functools.lru_cache(maxsize=8)
def _load_shipped(size: int) -> np.ndarray:
    folder = shipped_folder()
    names = shipped_background_files()
    if not names:
        raise CellbenchError("backgrounds: the shipped background folder is empty (broken install?)")
    return np.stack([_square(_decode(folder.joinpath(n).read_bytes(), n), size) for n in names])


def load_backgrounds(folder: str | Path | None = None, size: int = 96) -> np.ndarray:
    """Background images as uint8 ``(M, size, size, 3)`` RGB.

    ``folder=None``: the backgrounds shipped with cellbench. Otherwise every image file
    (png/jpg/jpeg/bmp/webp/tif) directly in *folder*, sorted by name, centre-cropped to a square and
    resized to *size*. A missing folder, a folder without images or an unreadable image raises
    :class:`CellbenchError` naming it. The shipped set is cached; the returned array is a copy.
    """
    if size < 8:
        raise CellbenchError(f"backgrounds: size must be at least 8, got {size}")
    if folder is None:
        return _load_shipped(int(size)).copy()
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise CellbenchError(f"backgrounds folder {str(folder)!r}: not a directory")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise CellbenchError(
            f"backgrounds folder {str(folder)!r}: no images ({', '.join(IMAGE_SUFFIXES)}) found"
        )
    return np.stack([_square(_decode(p.read_bytes(), str(p)), int(size)) for p in files])
