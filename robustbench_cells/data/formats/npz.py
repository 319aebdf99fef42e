"""The ``npz:PATH`` format: a NumPy archive in the AN2DL layout or MedMNIST's split layout.

Loaded with ``allow_pickle=False``; every failure mode of the archive is a one-line error naming
the file. :func:`peek` reads the array headers only (shape and dtype, nothing decompressed beyond
them), for the memory check a run does before loading (``bench/memcheck.py``).
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from robustbench_cells.data.dataset import SPLIT_NAMES, Dataset
from robustbench_cells.data.formats import DataPeek
from robustbench_cells.data.formats.checks import as_label_vector, as_rgb_uint8, class_names_for, short_error
from robustbench_cells.errors import CellbenchError


def load_npz(arg: str | None) -> Dataset:
    """Load ``npz:PATH``.

    Layouts: ``images`` (N,H,W,3) uint8 + ``labels`` (N,) / (N,1) / one-hot (N,C) (the AN2DL
    homework format), or MedMNIST's ``train_images``/``train_labels``/``val_*``/``test_*`` (their
    split is kept). An optional string array ``class_names`` names the classes; otherwise 8
    classes are CELL_CLASSES and other counts ``class_0..``. Loaded with ``allow_pickle=False``.
    """
    if not arg:
        raise CellbenchError("data set 'npz' needs a path: npz:PATH")
    path = Path(arg).expanduser()
    where = f"npz:{arg}"
    return _npz_dataset(_read_npz(path, where), path, where)


def load_npz_images(arg: str) -> tuple[np.ndarray, Dataset | None]:
    """The images of ``npz:PATH`` and, when the file has labels, the whole labelled Dataset.

    For predicting: an npz of unlabelled ``images`` is fine; everything else is validated exactly
    as :func:`load_npz` does (uint8 only, labels non-negative, not empty).
    """
    path = Path(arg).expanduser()
    where = f"npz:{arg}"
    arrays = _read_npz(path, where)
    if "images" in arrays and "labels" not in arrays:
        images = as_rgb_uint8(arrays["images"], where, "images")
        if len(images) == 0:
            raise CellbenchError(f"{where}: contains no images")
        return images, None
    dataset = _npz_dataset(arrays, path, where)
    return dataset.images, dataset


def peek(arg: str | None) -> DataPeek | None:
    """Image count and size of ``npz:PATH`` from the array headers; None when the file cannot tell
    (missing, not an npz, no image arrays: :func:`load_npz` then says what is wrong)."""
    if not arg:
        return None
    headers = _array_headers(Path(arg).expanduser())
    keys = ["images"] if "images" in headers else [f"{s}_images" for s in SPLIT_NAMES if f"{s}_images" in headers]
    shapes = [headers[k] for k in keys]
    if not shapes or any(len(shape) not in (3, 4) for shape, _ in shapes):
        return None
    n = sum(shape[0] for shape, _ in shapes)
    height, width = shapes[0][0][1:3]
    raw = sum(int(np.prod(shape)) * dtype.itemsize for shape, dtype in shapes)
    out = n * height * width * 3
    # np.load holds every array as stored; a dtype/channel conversion or the concatenation of the
    # MedMNIST splits makes the uint8 RGB result a second array beside them.
    same = len(shapes) == 1 and shapes[0][1] == np.uint8 and len(shapes[0][0]) == 4 and shapes[0][0][3] == 3
    test = headers.get("test_images", ((0,), None))[0][0] if keys != ["images"] else None
    return DataPeek(n=n, height=height, width=width, load_bytes=raw if same else raw + out, n_test=test)


def _array_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{array name: (shape, dtype)}`` of an npz, from each member's .npy header; {} when unreadable."""
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if not name.endswith(".npy"):
                    continue
                with archive.open(name) as fh:
                    version = np.lib.format.read_magic(fh)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(fh)  # the header only: the data stays compressed
                out[name[:-4]] = (tuple(int(d) for d in shape), np.dtype(dtype))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
        return {}
    return out


def _npz_dataset(arrays: dict[str, np.ndarray], path: Path, where: str) -> Dataset:
    """A Dataset from the arrays of an npz file (either layout), validated."""
    if "images" in arrays:
        images = as_rgb_uint8(arrays["images"], where, "images")
        labels = as_label_vector(arrays.get("labels"), len(images), where, "labels")
        split = None
    elif any(f"{s}_images" in arrays for s in SPLIT_NAMES):
        parts_img, parts_lab, parts_split = [], [], []
        for s in SPLIT_NAMES:
            if f"{s}_images" not in arrays:
                continue
            imgs = as_rgb_uint8(arrays[f"{s}_images"], where, f"{s}_images")
            parts_img.append(imgs)
            parts_lab.append(as_label_vector(arrays.get(f"{s}_labels"), len(imgs), where, f"{s}_labels"))
            parts_split.append(np.full(len(imgs), s, dtype="<U5"))
        sizes = {p.shape[1:] for p in parts_img}
        if len(sizes) > 1:
            raise CellbenchError(f"{where}: the splits have different image shapes {sorted(sizes)}")
        images = np.concatenate(parts_img) if len(parts_img) > 1 else parts_img[0]
        labels = np.concatenate(parts_lab)
        split = np.concatenate(parts_split)
    else:
        raise CellbenchError(
            f"{where}: no 'images' array (found: {', '.join(sorted(arrays)) or 'nothing'}); expected "
            "'images' + 'labels' or MedMNIST's 'train_images', 'train_labels', ..."
        )
    if len(images) == 0:
        raise CellbenchError(f"{where}: contains no images")
    one_hot = any(v.ndim == 2 and v.shape[1] > 1 for k, v in arrays.items() if k.endswith("labels"))
    class_names = class_names_for(arrays.get("class_names"), labels, where, check_gaps=not one_hot)
    return Dataset(images=images, labels=labels, class_names=class_names, source=where, split=split,
                   meta={"loader": "npz", "file": str(path), "named_classes": "class_names" in arrays})


def _read_npz(path: Path, where: str) -> dict[str, np.ndarray]:
    """All arrays of the archive, decompressed; every failure mode becomes a one-line error."""
    if not path.exists():
        raise CellbenchError(f"{where}: file not found")
    if path.is_dir():
        raise CellbenchError(f"{where}: is a directory, not an .npz file (use folder:{path} for image folders)")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic[:2] != b"PK":
        kind = "a single .npy array" if magic.startswith(b"\x93NUM") else "not a zip archive"
        raise CellbenchError(f"{where}: not an npz file ({kind}); save with numpy.savez(path, images=..., labels=...)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            arrays = {}
            for name in names:
                try:
                    arrays[name] = npz[name]
                except ValueError as exc:
                    if "pickle" in str(exc).lower() or "object" in str(exc).lower():
                        raise CellbenchError(
                            f"{where}: array {name!r} holds pickled Python objects; cellbench loads npz files with "
                            "allow_pickle=False: save plain numeric/string arrays"
                        ) from None
                    raise
    except CellbenchError:
        raise
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError, ValueError, KeyError) as exc:
        raise CellbenchError(f"{where}: truncated or corrupt npz file ({type(exc).__name__}: {short_error(exc)})") from None
    return arrays
