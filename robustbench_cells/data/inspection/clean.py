"""Write a de-duplicated, outlier-free copy of a data set, never touching the input."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from robustbench_cells.data.dataset import Dataset
from robustbench_cells.errors import CellbenchError


def removed_csv_path(out: Path) -> Path:
    """Where the list of removed images goes: ``OUT/removed.csv`` (folder) or ``OUT.removed.csv`` (npz)."""
    return out.with_name(out.stem + ".removed.csv") if out.suffix == ".npz" else out / "removed.csv"


def check_clean_target(out: str | Path, input_path: str | Path | None = None) -> Path:
    """Refuse an output that exists, or that is (inside) the input; returns the output path."""
    out = Path(out).expanduser()
    if out.exists():
        raise CellbenchError(f"--clean {out}: already exists; choose a new path (the input is never overwritten)")
    if input_path is not None:
        src = Path(input_path).expanduser().resolve()
        dst = out.resolve()
        if dst == src or src in dst.parents:
            raise CellbenchError(f"--clean {out}: is inside the input {input_path}; choose a path outside it")
    if out.suffix == ".npz" and not out.parent.exists():
        raise CellbenchError(f"--clean {out}: folder {out.parent} does not exist")
    return out


def _file_names(dataset: Dataset, keep: np.ndarray) -> list[str]:
    """Original file stems when they are unique within each class, else the data set index."""
    if dataset.paths is not None:
        stems = [(int(dataset.labels[i]), Path(str(dataset.paths[i])).stem) for i in keep]
        if len(set(stems)) == len(stems):
            return [f"{s}.png" for _, s in stems]
    return [f"{int(i):06d}.png" for i in keep]


def write_clean_copy(dataset: Dataset, plan: dict[int, str], out: str | Path) -> tuple[Path, Path]:
    """Write ``dataset`` minus the images in *plan* (index -> reason) to *out*.

    ``*.npz`` -> ``images``, ``labels``, ``class_names`` (+ ``split`` when the data set has one);
    anything else -> a folder with one sub-folder of lossless PNGs per class (+ ``SPLITS.csv`` when
    there is a split). The removed images, with the reason, go to a CSV (:func:`removed_csv_path`).
    Returns ``(out, removed_csv)``.
    """
    out = check_clean_target(out)
    keep = np.array([i for i in range(len(dataset)) if i not in plan], np.int64)
    if out.suffix == ".npz":
        arrays = {"images": dataset.images[keep], "labels": dataset.labels[keep],
                  "class_names": np.array(dataset.class_names)}
        if dataset.split is not None:
            arrays["split"] = np.asarray(dataset.split[keep]).astype(str)
        np.savez_compressed(out, **arrays)
    else:
        out.mkdir(parents=True)
        names = _file_names(dataset, keep)
        rows = []
        for i, name in zip(keep, names):
            cls = dataset.class_names[dataset.labels[i]]
            (out / cls).mkdir(exist_ok=True)
            rel = f"{cls}/{name}"
            if not cv2.imwrite(str(out / rel), cv2.cvtColor(dataset.images[i], cv2.COLOR_RGB2BGR)):
                raise CellbenchError(f"--clean {out}: could not write {rel}")
            if dataset.split is not None:
                rows.append((rel, cls, str(dataset.split[i])))
        if rows:
            with open(out / "SPLITS.csv", "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["path", "label", "split"])
                w.writerows(rows)
    removed = removed_csv_path(out)
    with open(removed, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "label", "path", "reason"])
        for i in sorted(plan):
            path = "" if dataset.paths is None else str(dataset.paths[i])
            w.writerow([i, dataset.class_names[dataset.labels[i]], path, plan[i]])
    return out, removed
