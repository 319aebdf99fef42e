"""The ``bloodmnist[:SIZE]`` format: MedMNIST's BloodMNIST npz (read by the npz format), found in
the MedMNIST root or downloaded by the optional ``medmnist`` package."""

from __future__ import annotations

import os
from pathlib import Path

from robustbench_cells.data.dataset import CELL_CLASSES, Dataset
from robustbench_cells.data.formats import DataPeek
from robustbench_cells.data.formats import npz
from robustbench_cells.data.formats.checks import short_error
from robustbench_cells.errors import CellbenchError

#: MedMNIST (v3, "MedMNIST+") files on Zenodo; size 28 is ``bloodmnist.npz``, others ``bloodmnist_SIZE.npz``.
MEDMNIST_URL = "https://zenodo.org/records/10519652/files/{file}?download=1"
BLOODMNIST_SIZES = (28, 64, 128, 224)
#: Where MedMNIST keeps its downloads; ``MEDMNIST_ROOT`` overrides (the medmnist package's default root).
MEDMNIST_ROOT_ENV = "MEDMNIST_ROOT"


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
    size = _size(arg, root)
    file = root / bloodmnist_filename(size)
    if not file.is_file():
        _download_bloodmnist(size, root, file)
    dataset = npz.load_npz(str(file))
    if dataset.num_classes != len(CELL_CLASSES):
        raise CellbenchError(f"{file}: expected the 8 BloodMNIST classes, found {dataset.num_classes}")
    dataset.source = f"bloodmnist:{size}"
    dataset.meta.update(loader="bloodmnist", size=size)
    return dataset


def peek(arg: str | None) -> DataPeek | None:
    """The npz format's :func:`~robustbench_cells.data.formats.npz.peek` of the local file; None
    before it is downloaded (or for a bad SIZE: the load says so)."""
    root = medmnist_root()
    try:
        file = root / bloodmnist_filename(_size(arg, root))
    except CellbenchError:
        return None
    return npz.peek(str(file)) if file.is_file() else None


def _size(arg: str | None, root: Path) -> int:
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
    return size


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
            f"bloodmnist:{size}: download failed ({type(exc).__name__}: {short_error(exc)}); {how}") from None
    if not file.is_file():
        raise CellbenchError(f"bloodmnist:{size}: medmnist did not produce {file}; {how}")
