"""Data set loaders: ``npz:PATH`` (AN2DL and MedMNIST layouts), ``folder:PATH`` and ``bloodmnist[:SIZE]``.

Every loader validates what it reads and raises a one-line :class:`CellbenchError` naming the file
and the problem. Recoverable oddities (grayscale/RGBA images converted to RGB, odd-sized images
resized, corrupt image files skipped) are reported with :func:`warnings.warn`, one line each, and
recorded in ``Dataset.meta``.
"""

from __future__ import annotations

import csv
import os
import threading
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from robustbench_cells.data.dataset import CELL_CLASSES, SPLIT_NAMES, Dataset
from robustbench_cells.errors import CellbenchError

#: File suffixes the folder loader decodes (case-insensitive).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

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

#: MedMNIST (v3, "MedMNIST+") files on Zenodo; size 28 is ``bloodmnist.npz``, others ``bloodmnist_SIZE.npz``.
MEDMNIST_URL = "https://zenodo.org/records/10519652/files/{file}?download=1"
BLOODMNIST_SIZES = (28, 64, 128, 224)
#: Where MedMNIST keeps its downloads; ``MEDMNIST_ROOT`` overrides (the medmnist package's default root).
MEDMNIST_ROOT_ENV = "MEDMNIST_ROOT"

# Above this many threads the decode of 96x96 JPEGs stops scaling (I/O + GIL hand-offs).
_MAX_DECODE_THREADS = 8


# -- npz -----------------------------------------------------------------------------------------

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
        images = _as_rgb_uint8(arrays["images"], where, "images")
        if len(images) == 0:
            raise CellbenchError(f"{where}: contains no images")
        return images, None
    dataset = _npz_dataset(arrays, path, where)
    return dataset.images, dataset


def _npz_dataset(arrays: dict[str, np.ndarray], path: Path, where: str) -> Dataset:
    """A Dataset from the arrays of an npz file (either layout), validated."""
    if "images" in arrays:
        images = _as_rgb_uint8(arrays["images"], where, "images")
        labels = _as_label_vector(arrays.get("labels"), len(images), where, "labels")
        split = None
    elif any(f"{s}_images" in arrays for s in SPLIT_NAMES):
        parts_img, parts_lab, parts_split = [], [], []
        for s in SPLIT_NAMES:
            if f"{s}_images" not in arrays:
                continue
            imgs = _as_rgb_uint8(arrays[f"{s}_images"], where, f"{s}_images")
            parts_img.append(imgs)
            parts_lab.append(_as_label_vector(arrays.get(f"{s}_labels"), len(imgs), where, f"{s}_labels"))
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
    class_names = _npz_class_names(arrays.get("class_names"), labels, where, check_gaps=not one_hot)
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
        raise CellbenchError(f"{where}: truncated or corrupt npz file ({type(exc).__name__}: {_short(exc)})") from None
    return arrays


def _as_rgb_uint8(images: np.ndarray, where: str, key: str) -> np.ndarray:
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


def _as_label_vector(labels: np.ndarray | None, n: int, where: str, key: str) -> np.ndarray:
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


def _npz_class_names(names: np.ndarray | None, labels: np.ndarray, where: str,
                     check_gaps: bool = True) -> tuple[str, ...]:
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
        raise CellbenchError(f"{where}: labels {_ranges(empty)} have no images; relabel to 0..K-1 or add a "
                             "'class_names' array naming every class")
    if top == len(CELL_CLASSES):
        return CELL_CLASSES
    return tuple(f"class_{i}" for i in range(top))


def _ranges(values: np.ndarray, shown: int = 5) -> str:
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


# -- folder --------------------------------------------------------------------------------------

def canonical_class(folder_name: str) -> str | None:
    """The CELL_CLASSES name a folder name stands for (``ig`` -> ``immature_granulocyte``), or None."""
    key = folder_name.strip().lower().replace("-", "_").replace(" ", "_")
    return CLASS_ALIASES.get(key)


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
                files = _image_files(folder)
                rel = f"{parent}/{folder.name}" if parent else folder.name
                if not files:
                    raise CellbenchError(f"{where}: class folder {rel!r} has no images ({', '.join(IMAGE_SUFFIXES)})")
                rel_paths += [f"{rel}/{f}" for f in files]
                labels += [class_names.index(class_of_folder[folder.name])] * len(files)
                split_list += [split_dirs[parent]] * len(files) if parent else []
        split = np.asarray(split_list, dtype="<U5") if split_list else None

    images, ok, notes = decode_images([root / p for p in rel_paths], where)
    keep = np.flatnonzero(ok)
    labels_arr = np.asarray(labels, dtype=np.int64)
    paths_arr = np.asarray(rel_paths)
    if len(keep) < len(rel_paths):
        images, labels_arr, paths_arr = images[keep], labels_arr[keep], paths_arr[keep]
        split = None if split is None else split[keep]
    if len(images) == 0:
        raise CellbenchError(f"{where}: none of the {len(rel_paths)} image files could be decoded")
    return Dataset(images=images, labels=labels_arr, class_names=class_names, source=where, split=split,
                   paths=paths_arr, meta={"loader": "folder", "root": str(root), **notes})


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


def _image_files(folder: Path) -> list[str]:
    # Hidden files are skipped on purpose: macOS litters folders with ._x.jpg / .DS_x.jpg non-images.
    return sorted(e.name for e in os.scandir(folder)
                  if e.is_file() and not e.name.startswith(".") and e.name.lower().endswith(IMAGE_SUFFIXES))


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
    real_root = root.resolve()
    if not rows:
        raise CellbenchError(f"{csv_path}: has a header but no rows")
    rel_paths, labels, split = [], [], []
    for lineno, row in enumerate(rows, start=2):
        label = class_of_folder.get(row["label"]) or canonical_class(row["label"]) or row["label"]
        if label not in class_names:
            raise CellbenchError(f"{csv_path} line {lineno}: unknown label {row['label']!r}")
        if row["split"] not in SPLIT_NAMES:
            raise CellbenchError(f"{csv_path} line {lineno}: split must be train/val/test, got {row['split']!r}")
        if not _inside(real_root, row["path"] or ""):
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
        if counts.get(class_names.index(cls), 0) == 0 and not _image_files(root / folder):
            raise CellbenchError(f"{where}: class folder {folder!r} has no images")
    listed = set(rel_paths)
    unlisted = sum(1 for folder in class_of_folder for f in _image_files(root / folder)
                   if f"{folder}/{f}" not in listed)
    if unlisted:
        warnings.warn(f"{where}: {unlisted} image file(s) are not listed in SPLITS.csv and were ignored", stacklevel=3)
    return rel_paths, labels, np.asarray(split, dtype="<U5")


def _inside(real_root: Path, rel: str) -> bool:
    """Whether *rel* (a SPLITS.csv path) names a file inside *real_root*, symlinks resolved."""
    if not rel or Path(rel).is_absolute() or rel.startswith(("/", "\\")):
        return False
    try:
        (real_root / rel).resolve().relative_to(real_root)
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop
        return False
    return True


def _decode_one(path: Path) -> tuple[np.ndarray | None, str]:
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
    n = len(paths)
    threads = threads or min(_MAX_DECODE_THREADS, (os.cpu_count() or 1) * 2)
    probe_idx = np.unique(np.linspace(0, n - 1, min(n, 64)).astype(int)) if n else np.array([], int)
    probe = {int(i): _decode_one(paths[int(i)]) for i in probe_idx}
    sizes = Counter(img.shape[:2] for img, _ in probe.values() if img is not None)
    if not sizes:  # the sample was all corrupt: fall back to decoding everything before choosing
        probe = {i: _decode_one(p) for i, p in enumerate(paths)}
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
        img, note = probe[i] if i in probe else _decode_one(paths[i])
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
    if bad:
        bad.sort()
        shown = "; ".join(f"{p} ({why})" for p, why in bad[:3])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        warnings.warn(f"{where}: skipped {len(bad)} unreadable image file(s): {shown}{more}", stacklevel=3)
        notes["skipped_files"] = [p for p, _ in bad]
    if resized:
        resized.sort()
        warnings.warn(f"{where}: resized {len(resized)} image(s) to the majority size {height}x{width}, "
                      f"e.g. {resized[0]}", stacklevel=3)
        notes["resized_files"] = resized
    if converted:
        what = ", ".join(f"{k} {v}" for k, v in sorted(converted.items()))
        warnings.warn(f"{where}: converted to 8-bit RGB: {what} image(s)", stacklevel=3)
        notes["converted"] = dict(converted)
    return images, ok, notes


# -- bloodmnist ----------------------------------------------------------------------------------

def medmnist_root() -> Path:
    """The MedMNIST download folder: ``$MEDMNIST_ROOT`` or ``~/.medmnist`` (medmnist's default)."""
    return Path(os.environ.get(MEDMNIST_ROOT_ENV) or Path.home() / ".medmnist").expanduser()


def bloodmnist_filename(size: int) -> str:
    """``bloodmnist.npz`` for 28x28, ``bloodmnist_SIZE.npz`` otherwise (MedMNIST's naming)."""
    return "bloodmnist.npz" if size == 28 else f"bloodmnist_{size}.npz"


def load_bloodmnist(arg: str | None) -> Dataset:
    """Load ``bloodmnist[:SIZE]`` (SIZE 28, 64, 128 or 224) with its own train/val/test split.

    Without SIZE: the first BloodMNIST file already in the MedMNIST root (64, 28, 128, 224), else 64.

    Uses the file in the MedMNIST root when it is there; otherwise asks the ``medmnist`` package
    to download it; offline (or without the package) the error says how to get the file.
    """
    root = medmnist_root()
    if not arg:
        # No size asked for: any BloodMNIST file already downloaded will do (64 preferred).
        have = [s for s in (64, 28, 128, 224) if (root / bloodmnist_filename(s)).is_file()]
        arg = str(have[0] if have else 64)
    try:
        size = int(arg)
    except ValueError:
        raise CellbenchError(f"bloodmnist:{arg}: SIZE must be one of {', '.join(map(str, BLOODMNIST_SIZES))}") from None
    if size not in BLOODMNIST_SIZES:
        raise CellbenchError(f"bloodmnist:{arg}: SIZE must be one of {', '.join(map(str, BLOODMNIST_SIZES))}")
    file = root / bloodmnist_filename(size)
    if not file.is_file():
        _download_bloodmnist(size, root, file)
    dataset = load_npz(str(file))
    if dataset.num_classes != len(CELL_CLASSES):
        raise CellbenchError(f"{file}: expected the 8 BloodMNIST classes, found {dataset.num_classes}")
    dataset.source = f"bloodmnist:{size}"
    dataset.meta.update(loader="bloodmnist", size=size)
    return dataset


def _download_bloodmnist(size: int, root: Path, file: Path) -> None:
    url = MEDMNIST_URL.format(file=file.name)
    how = (f"download {url} into {root}/ (or anywhere, then load it with npz:PATH); "
           f"set ${MEDMNIST_ROOT_ENV} to use another folder")
    try:
        import medmnist  # optional dependency: it pulls in torch
    except ImportError:
        raise CellbenchError(
            f"bloodmnist:{size}: {file} not found and the medmnist package is not installed; {how}") from None
    try:
        root.mkdir(parents=True, exist_ok=True)
        medmnist.BloodMNIST(split="test", download=True, size=size, root=str(root))
    except Exception as exc:  # no network, Zenodo down, old medmnist without size=...
        raise CellbenchError(
            f"bloodmnist:{size}: download failed ({type(exc).__name__}: {_short(exc)}); {how}") from None
    if not file.is_file():
        raise CellbenchError(f"bloodmnist:{size}: medmnist did not produce {file}; {how}")


def _short(exc: BaseException, width: int = 120) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= width else text[: width - 1] + "…"
