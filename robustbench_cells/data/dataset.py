"""The in-memory data set every part of cellbench passes around."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robustbench_cells.errors import CellbenchError

#: The eight PBC / BloodMNIST classes, in the order cellbench uses for labels.
CELL_CLASSES: tuple[str, ...] = (
    "basophil", "eosinophil", "erythroblast", "immature_granulocyte",
    "lymphocyte", "monocyte", "neutrophil", "platelet",
)
SPLIT_NAMES = ("train", "val", "test")


@dataclass
class Dataset:
    """Images, labels and where they came from.

    - ``images``: uint8 ``(N, H, W, 3)``; ``labels``: int64 ``(N,)`` in ``0..len(class_names)-1``.
    - ``split``: optional per-image ``"train"``/``"val"``/``"test"`` (the data set's own split).
    - ``paths``: optional per-image provenance (file path or ``"file.npz[i]"``).
    - ``source``: the spec it was loaded from; ``meta``: free-form provenance. Arrays under
      ``meta["per_image"]`` (a dict of length-N arrays, e.g. the synthetic nuisance values) are
      sliced along with the images by :meth:`subset`.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    source: str = ""
    split: np.ndarray | None = None
    paths: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    _fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = self.source or "data set"
        imgs, labels = self.images, self.labels
        if not isinstance(imgs, np.ndarray) or imgs.dtype != np.uint8 or imgs.ndim != 4 or imgs.shape[-1] != 3:
            shape = getattr(imgs, "shape", None)
            dtype = getattr(imgs, "dtype", type(imgs).__name__)
            raise CellbenchError(f"{where}: images must be uint8 (N, H, W, 3), got {dtype} {shape}")
        labels = np.asarray(labels)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise CellbenchError(f"{where}: labels must be integers of shape (N,), got {labels.dtype} {labels.shape}")
        if len(labels) != len(imgs):
            raise CellbenchError(f"{where}: {len(imgs)} images but {len(labels)} labels")
        self.labels = labels.astype(np.int64, copy=False)
        self.class_names = tuple(self.class_names)
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise CellbenchError(
                f"{where}: labels must be in 0..{len(self.class_names) - 1}, "
                f"found {int(self.labels.min())}..{int(self.labels.max())}"
            )
        for name in ("split", "paths"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value)
                if len(value) != len(imgs):
                    raise CellbenchError(f"{where}: {name} has {len(value)} entries for {len(imgs)} images")
                setattr(self, name, value)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[1]), int(self.images.shape[2])

    def subset(self, index: np.ndarray | slice, source_suffix: str = "") -> Dataset:
        """A new data set with the selected images (a view where NumPy allows it)."""
        meta = dict(self.meta)
        if isinstance(meta.get("per_image"), dict):
            meta["per_image"] = {k: np.asarray(v)[index] for k, v in meta["per_image"].items()}
        return Dataset(
            images=self.images[index], labels=self.labels[index], class_names=self.class_names,
            source=self.source + source_suffix,
            split=None if self.split is None else self.split[index],
            paths=None if self.paths is None else self.paths[index],
            meta=meta,
        )

    def resized(self, size: int) -> Dataset:
        """This data set with square ``size`` x ``size`` images (itself when already that size).

        Labels, split, paths and meta are kept: resizing is the first step of a run's data path
        (bench/rundata.py), before the split and the shift subset.
        """
        if self.image_size == (size, size):
            return self
        from robustbench_cells.data.resize import resize_images

        return Dataset(resize_images(self.images, size), self.labels, self.class_names, source=self.source,
                       split=self.split, paths=self.paths, meta=dict(self.meta))

    def class_counts(self) -> np.ndarray:
        """Images per class, ``(num_classes,)``."""
        return np.bincount(self.labels, minlength=self.num_classes)

    def fingerprint(self) -> str:
        """A content hash of images, labels and class names (stable across loads; cached)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(repr((self.images.shape, self.class_names)).encode())
            h.update(np.ascontiguousarray(self.images).data)
            h.update(self.labels.astype("<i8").tobytes())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint
