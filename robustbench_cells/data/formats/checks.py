"""Validation shared by the data set formats: images to uint8 RGB, labels to class indices, class names.

Every format module (``npz.py``, ``folder.py``, ...) hands what it read through these, so the same
bad input gets the same one-line :class:`CellbenchError` whatever the format, and recoverable
oddities (grayscale, RGBA) the same one-line warning.
"""

from __future__ import annotations

import warnings

import numpy as np

from robustbench_cells.data.dataset import CELL_CLASSES
from robustbench_cells.errors import CellbenchError, one_line


def as_rgb_uint8(images: np.ndarray, where: str, key: str) -> np.ndarray:
    """(N,H,W,3) uint8; grayscale (N,H,W)/(N,H,W,1) is replicated and RGBA loses alpha, with a warning."""
    if images.dtype != np.uint8:
        if np.issubdtype(images.dtype, np.integer) and images.size and images.min() >= 0 and images.max() <= 255:
            images = images.astype(np.uint8)  # lossless: e.g. int64 arrays written by some tools
        else:
            hint = " (scale floats to 0..255 and cast to uint8)" if np.issubdtype(images.dtype, np.floating) else ""
            raise CellbenchError(f"{where}: {key!r} must be uint8 images, got dtype {images.dtype}{hint}")
    if images.ndim == 3:
        warnings.warn(f"{where}: {key!r} is grayscale {images.shape}; replicated to RGB", stacklevel=3)
        return np.repeat(images[..., None], 3, axis=-1)
    if images.ndim != 4:
        raise CellbenchError(f"{where}: {key!r} must have shape (N, H, W, 3), got {images.shape}")
    channels = images.shape[-1]
    if channels == 3:
        return images
    if channels == 1:
        warnings.warn(f"{where}: {key!r} is grayscale {images.shape}; replicated to RGB", stacklevel=3)
        return np.repeat(images, 3, axis=-1)
    if channels == 4:
        warnings.warn(f"{where}: {key!r} is RGBA {images.shape}; alpha channel dropped", stacklevel=3)
        return np.ascontiguousarray(images[..., :3])
    if images.shape[1] in (1, 3, 4):
        raise CellbenchError(f"{where}: {key!r} looks channels-first {images.shape}; expected (N, H, W, 3)")
    raise CellbenchError(f"{where}: {key!r} must have shape (N, H, W, 3), got {images.shape}")


def as_label_vector(labels: np.ndarray | None, n: int, where: str, key: str) -> np.ndarray:
    """Integer labels (N,) from (N,), (N,1) or one-hot (N,C); length and sign are checked."""
    if labels is None:
        raise CellbenchError(f"{where}: no {key!r} array next to the images")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    elif labels.ndim == 2 and labels.shape[1] > 1:
        if not (np.isin(labels, (0, 1)).all() and (labels.sum(axis=1) == 1).all()):
            raise CellbenchError(f"{where}: {key!r} has shape {labels.shape}; expected (N,), (N, 1) or one-hot (N, C)")
        labels = labels.argmax(axis=1)
    if labels.ndim != 1:
        raise CellbenchError(f"{where}: {key!r} must have shape (N,) or (N, 1), got {labels.shape}")
    if np.issubdtype(labels.dtype, np.floating) and np.isfinite(labels).all() and (labels == np.round(labels)).all():
        labels = labels.astype(np.int64)  # float labels that are whole numbers (some exporters do this)
    if not np.issubdtype(labels.dtype, np.integer):
        raise CellbenchError(f"{where}: {key!r} must be integer class indices, got dtype {labels.dtype}")
    if len(labels) != n:
        raise CellbenchError(f"{where}: {n} images but {len(labels)} labels in {key!r}")
    if n and labels.min() < 0:
        raise CellbenchError(f"{where}: {key!r} has negative labels (min {int(labels.min())})")
    return labels.astype(np.int64)


def class_names_for(names: np.ndarray | None, labels: np.ndarray, where: str,
                    check_gaps: bool = True) -> tuple[str, ...]:
    """The class names of integer *labels*: the given string array, else CELL_CLASSES for 8 classes,
    else ``class_0..``. Without names, a label value no image has is an error (*check_gaps*)."""
    top = int(labels.max()) + 1 if len(labels) else 0
    if names is not None:
        if names.ndim != 1 or names.dtype.kind not in "US":
            raise CellbenchError(f"{where}: 'class_names' must be a 1-D string array, got {names.dtype} {names.shape}")
        out = tuple(str(n.decode() if isinstance(n, bytes) else n) for n in names)
        if top > len(out):
            raise CellbenchError(f"{where}: labels go up to {top - 1} but 'class_names' has {len(out)} entries")
        return out
    empty = np.setdiff1d(np.arange(top), labels) if check_gaps else np.array([], np.int64)
    if len(empty):
        # Without names a gap is almost always a labelling mistake (e.g. 500 for "unknown"): it
        # would silently become a 501-class problem trained and scored at 0 %.
        raise CellbenchError(f"{where}: labels {ranges(empty)} have no images; relabel to 0..K-1 or add a "
                             "'class_names' array naming every class")
    if top == len(CELL_CLASSES):
        return CELL_CLASSES
    return tuple(f"class_{i}" for i in range(top))


def ranges(values: np.ndarray, shown: int = 5) -> str:
    """``7..499, 501`` for sorted integers (a short description of which labels are meant)."""
    runs: list[str] = []
    start = prev = int(values[0])
    for v in [int(x) for x in values[1:]] + [None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        runs.append(str(start) if start == prev else f"{start}..{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(runs[:shown]) + (" ..." if len(runs) > shown else "")


def short_error(exc: BaseException, width: int = 120) -> str:
    """*exc*'s message on one line (:func:`errors.one_line`), cut to *width* characters: for the
    ``(ErrorType: message)`` part of a loader's error, where a library may say a lot."""
    text = one_line(exc, with_type=False)
    return text if len(text) <= width else text[: width - 1] + "…"
