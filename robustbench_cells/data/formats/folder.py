"""The ``folder:PATH`` format: one sub-folder of images per class, the split from ``SPLITS.csv``
or ``train/ val/ test/`` sub-folders.

The folder is listed (:func:`_listing`) before anything is decoded, so :func:`peek` knows the
image count for the memory check (``bench/memcheck.py``) at the cost of reading one image.
"""

from __future__ import annotations

import csv
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robustbench_cells.data.dataset import CELL_CLASSES, SPLIT_NAMES, Dataset
from robustbench_cells.data.formats import DataPeek
from robustbench_cells.data.formats.images import IMAGE_SUFFIXES, decode_images, decode_one, image_files, quiet_opencv
from robustbench_cells.errors import CellbenchError

#: Folder names (normalised: lower case, spaces/hyphens as ``_``) that mean one of CELL_CLASSES.
CLASS_ALIASES: dict[str, str] = {
    **{name: name for name in CELL_CLASSES},
    **{name + "s": name for name in CELL_CLASSES},
    "ig": "immature_granulocyte", "igs": "immature_granulocyte", "immature": "immature_granulocyte",
    "ba": "basophil", "eo": "eosinophil", "eos": "eosinophil", "erb": "erythroblast",
    "ly": "lymphocyte", "lym": "lymphocyte", "mo": "monocyte", "mono": "monocyte",
    "ne": "neutrophil", "neut": "neutrophil", "plt": "platelet", "thrombocyte": "platelet",
    "thrombocytes": "platelet",
}

#: Top-level folder names that mean a split (``folder:PATH`` with ``train/``, ``val/``, ``test/``).
SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "test": "test", "testing": "test"}


def canonical_class(folder_name: str) -> str | None:
    """The CELL_CLASSES name a folder name stands for (``ig`` -> ``immature_granulocyte``), or None."""
    key = folder_name.strip().lower().replace("-", "_").replace(" ", "_")
    return CLASS_ALIASES.get(key)


@dataclass
class _Listing:
    """What a folder holds, before any image is decoded."""

    root: Path
    where: str
    rel_paths: list[str]
    labels: list[int]
    split: np.ndarray | None
    class_names: tuple[str, ...]


def load_folder(arg: str | None) -> Dataset:
    """Load ``folder:PATH``: one sub-folder per class, optional ``SPLITS.csv`` (``path,label,split``).

    A ``train/``, ``val/``, ``test/`` layout (each with class sub-folders) is read as the data
    set's own split.

    Class order is CELL_CLASSES when every folder name maps onto a PBC class (``ig`` and other
    aliases included), else the sorted folder names. Images are decoded in a thread pool into one
    preallocated uint8 array. Corrupt files are skipped with a warning naming them; images whose
    size differs from the majority are resized to it with a warning; grayscale and RGBA files
    are converted to RGB with a warning.
    """
    listing = _listing(arg)
    root, where, rel_paths, split = listing.root, listing.where, listing.rel_paths, listing.split
    images, ok, notes = decode_images([root / p for p in rel_paths], where)
    keep = np.flatnonzero(ok)
    labels_arr = np.asarray(listing.labels, dtype=np.int64)
    paths_arr = np.asarray(rel_paths)
    if len(keep) < len(rel_paths):
        images, labels_arr, paths_arr = images[keep], labels_arr[keep], paths_arr[keep]
        split = None if split is None else split[keep]
    if len(images) == 0:
        raise CellbenchError(f"{where}: none of the {len(rel_paths)} image files could be decoded")
    return Dataset(images=images, labels=labels_arr, class_names=listing.class_names, source=where, split=split,
                   paths=paths_arr, meta={"loader": "folder", "root": str(root), **notes})


def peek(arg: str | None) -> DataPeek | None:
    """Image count of ``folder:PATH`` from its listing, the size from the first decodable of a few
    files; None when the folder cannot be listed (:func:`load_folder` then says why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the load that follows warns once
            listing = _listing(arg)
    except CellbenchError:
        return None
    n = len(listing.rel_paths)
    with quiet_opencv():
        for rel in listing.rel_paths[:: max(1, n // 8)][:8]:
            img, _ = decode_one(listing.root / rel)
            if img is not None:
                height, width = img.shape[:2]
                n_test = None if listing.split is None else int((listing.split == "test").sum())
                # decode_images fills one preallocated array: nothing beside it while loading
                return DataPeek(n=n, height=height, width=width, load_bytes=n * height * width * 3, n_test=n_test)
    return None


def _listing(arg: str | None) -> _Listing:
    """The files, labels, split and class order of a class-folder tree; every layout error here."""
    if not arg:
        raise CellbenchError("data set 'folder' needs a path: folder:PATH")
    root = Path(arg).expanduser()
    where = f"folder:{arg}"
    if not root.exists():
        raise CellbenchError(f"{where}: folder not found")
    if not root.is_dir():
        hint = f" (use npz:{arg})" if root.suffix == ".npz" else ""
        raise CellbenchError(f"{where}: not a folder{hint}")
    folders = _subfolders(root)
    if not folders:
        raise CellbenchError(f"{where}: no class sub-folders (expected one sub-folder of images per class)")
    split_dirs = {f.name: SPLIT_FOLDERS[f.name.lower()] for f in folders if f.name.lower() in SPLIT_FOLDERS}
    splits_csv = root / "SPLITS.csv"
    if split_dirs and len(split_dirs) == len(folders) and not splits_csv.is_file():
        # train/ val/ test/ layout, each holding the class folders: the folder names are the split.
        class_folders = {d: _subfolders(root / d) for d in split_dirs}
        for d, subs in class_folders.items():
            if not subs:
                raise CellbenchError(f"{where}: split folder {d!r} has no class sub-folders")
        folders = [f for subs in class_folders.values() for f in subs]
    else:
        class_folders = {"": folders}
    class_of_folder, class_names = _class_names(folders, where)

    if splits_csv.is_file():
        rel_paths, labels, split = _read_splits_csv(root, splits_csv, class_of_folder, class_names, where)
    else:
        rel_paths, labels, split_list = [], [], []
        for parent, subs in class_folders.items():
            for folder in subs:
                files = image_files(folder)
                rel = f"{parent}/{folder.name}" if parent else folder.name
                if not files:
                    raise CellbenchError(f"{where}: class folder {rel!r} has no images ({', '.join(IMAGE_SUFFIXES)})")
                rel_paths += [f"{rel}/{f}" for f in files]
                labels += [class_names.index(class_of_folder[folder.name])] * len(files)
                split_list += [split_dirs[parent]] * len(files) if parent else []
        split = np.asarray(split_list, dtype="<U5") if split_list else None
    return _Listing(root, where, rel_paths, labels, split, class_names)


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def _class_names(folders: Sequence[Path], where: str) -> tuple[dict[str, str], tuple[str, ...]]:
    """Folder name -> class name, and the class order (the same folder name may recur per split)."""
    names = sorted({f.name for f in folders})
    canon = {name: canonical_class(name) for name in names}
    if all(canon.values()):
        seen: dict[str, str] = {}
        for folder, cls in canon.items():
            if cls in seen:
                raise CellbenchError(f"{where}: folders {seen[cls]!r} and {folder!r} both mean class {cls!r}")
            seen[cls] = folder
        return {k: v for k, v in canon.items() if v}, CELL_CLASSES
    return {name: name for name in names}, tuple(names)


def _read_splits_csv(root: Path, csv_path: Path, class_of_folder: dict[str, str], class_names: tuple[str, ...],
                     where: str) -> tuple[list[str], list[int], np.ndarray]:
    """Files, labels and splits from SPLITS.csv; every row's file must exist, labels must be known classes."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing_cols = {"path", "label", "split"} - set(reader.fieldnames or ())
            if missing_cols:
                raise CellbenchError(
                    f"{csv_path}: missing column(s) {', '.join(sorted(missing_cols))} (need path,label,split)")
            rows = list(reader)
    except UnicodeDecodeError as exc:
        raise CellbenchError(f"{csv_path}: not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV") from None
    except csv.Error as exc:
        raise CellbenchError(f"{csv_path}: not a valid CSV file ({exc})") from None
    real_root, real_dirs = os.path.realpath(root), {}
    if not rows:
        raise CellbenchError(f"{csv_path}: has a header but no rows")
    rel_paths, labels, split = [], [], []
    for lineno, row in enumerate(rows, start=2):
        label = class_of_folder.get(row["label"]) or canonical_class(row["label"]) or row["label"]
        if label not in class_names:
            raise CellbenchError(f"{csv_path} line {lineno}: unknown label {row['label']!r}")
        if row["split"] not in SPLIT_NAMES:
            raise CellbenchError(f"{csv_path} line {lineno}: split must be train/val/test, got {row['split']!r}")
        if not _inside(real_root, row["path"] or "", real_dirs):
            # The CSV is untrusted input: '../x', absolute paths and symlinks out of the folder
            # would silently read files elsewhere on the machine as data.
            raise CellbenchError(f"{csv_path} line {lineno}: path outside the folder: {row['path']!r}")
        rel_paths.append(row["path"])
        labels.append(class_names.index(label))
        split.append(row["split"])
    missing = [p for p in rel_paths if not (root / p).is_file()]
    if missing:
        raise CellbenchError(f"{csv_path}: {len(missing)} listed file(s) do not exist, e.g. {missing[0]}")
    counts = Counter(labels)
    for folder, cls in class_of_folder.items():
        if counts.get(class_names.index(cls), 0) == 0 and not image_files(root / folder):
            raise CellbenchError(f"{where}: class folder {folder!r} has no images")
    listed = set(rel_paths)
    unlisted = sum(1 for folder in class_of_folder for f in image_files(root / folder)
                   if f"{folder}/{f}" not in listed)
    if unlisted:
        # stacklevel 4: _read_splits_csv <- _listing <- load_folder <- its caller
        warnings.warn(f"{where}: {unlisted} image file(s) are not listed in SPLITS.csv and were ignored", stacklevel=4)
    return rel_paths, labels, np.asarray(split, dtype="<U5")


def _inside(real_root: str, rel: str, real_dirs: dict[str, str]) -> bool:
    """Whether *rel* (a SPLITS.csv path) names a file inside *real_root*, symlinks resolved.

    *real_dirs* caches each directory's resolved path: a SPLITS.csv lists thousands of files in a
    handful of folders, and resolving every file costs seconds (PBC: 17,072 rows); only a file
    that is itself a symlink (or ``..``) is resolved on its own.
    """
    if not rel or os.path.isabs(rel) or rel.startswith(("/", "\\")):
        return False
    head, tail = os.path.split(rel)
    try:
        parent = real_dirs.get(head)
        if parent is None:
            parent = real_dirs[head] = os.path.realpath(os.path.join(real_root, head))
        target = os.path.join(parent, tail)
        if tail in ("", ".", "..") or os.path.islink(target):
            target = os.path.realpath(target)
    except (ValueError, OSError):
        return False
    return target == real_root or target.startswith(real_root.rstrip(os.sep) + os.sep)
