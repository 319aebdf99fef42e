"""``cellbench predict MODEL INPUT...``: class probabilities for images, a folder, an npz or a data set spec.

MODEL is a trained cell's folder (``model.keras`` + ``meta.json``) or a ``.keras`` file, loaded in
Keras' safe mode. Images are resized to the model's input size. When the input carries labels
(class sub-folders, an npz with ``labels``, a data set spec) the accuracy is printed too.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import typer
from rich.table import Table

from robustbench_cells.cli.console import console, err_console, user_text
from robustbench_cells.errors import CellbenchError

OUT_FORMATS = (".csv", ".json", ".npz")


@dataclass
class Inputs:
    """Images to predict, their names, and labels (indices into *class_names*) when known."""

    images: np.ndarray
    names: list[str]
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None


def _label_of(folder_name: str, class_names: tuple[str, ...]) -> int | None:
    from robustbench_cells.data.loaders import canonical_class

    for candidate in (folder_name, canonical_class(folder_name)):
        if candidate in class_names:
            return class_names.index(candidate)
    return None


def _image_paths(folder: Path) -> list[Path]:
    from robustbench_cells.data.loaders import IMAGE_SUFFIXES

    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _from_files(paths: list[Path], where: str, class_names: tuple[str, ...], root: Path | None) -> Inputs:
    from robustbench_cells.data.loaders import decode_images

    images, ok, _ = decode_images(paths, where)
    keep = np.flatnonzero(ok)
    paths = [paths[i] for i in keep]
    images = images[keep]
    names = [str(p.relative_to(root)) if root else str(p) for p in paths]
    labels = [_label_of(p.parent.name, class_names) for p in paths] if root else [None]
    if root and all(label is not None for label in labels):
        return Inputs(images, names, np.asarray(labels, dtype=np.int64), class_names)
    return Inputs(images, names)


def _from_npz(arg: str, class_names: tuple[str, ...]) -> Inputs:
    """An npz through the data loader (same checks as ``run``); its test split when it has one.

    Labels are kept when the file names the model's classes, or names none and its indices fit
    the model (index i then means the model's class i).
    """
    from robustbench_cells.data.loaders import load_npz_images
    from robustbench_cells.data.splits import test_part

    images, ds = load_npz_images(arg)
    name = Path(arg).name
    if ds is None:
        return Inputs(images, [f"{name}[{i}]" for i in range(len(images))])
    index = np.arange(len(ds))
    if ds.split is not None and (ds.split == "test").any():
        index = np.flatnonzero(ds.split == "test")  # MedMNIST layout: predict its held-out part
    ds = test_part(ds)
    fits = (tuple(ds.class_names) == tuple(class_names)
            or (not ds.meta.get("named_classes") and int(ds.labels.max()) < len(class_names)))
    return Inputs(ds.images, [f"{name}[{i}]" for i in index], ds.labels if fits else None)


def read_inputs(specs: list[str], class_names: tuple[str, ...]) -> Inputs:
    """Resolve the INPUT arguments: image files, one folder, one ``.npz`` or one data set spec."""
    from robustbench_cells.data.loaders import IMAGE_SUFFIXES

    paths = [Path(s).expanduser() for s in specs]
    if all(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for p in paths):
        return _from_files(paths, "predict", class_names, root=None)
    if len(specs) != 1:
        bad = next(s for s, p in zip(specs, paths) if not (p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        raise CellbenchError(f"predict: {bad}: give image files, or a single folder, .npz or data set spec")
    path, spec = paths[0], specs[0]
    if path.is_dir():
        files = _image_paths(path)
        if not files:
            raise CellbenchError(f"predict: folder {spec} has no image files")
        return _from_files(files, spec, class_names, root=path)
    if spec.startswith("npz:"):
        return _from_npz(spec[len("npz:"):], class_names)
    if path.suffix == ".npz":
        if not path.is_file():
            raise CellbenchError(f"predict: {spec}: no such file")
        return _from_npz(spec, class_names)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise CellbenchError(f"predict: {spec}: no such file")
    from robustbench_cells.data.specs import load_dataset

    ds = load_dataset(spec)
    names = list(ds.paths) if ds.paths is not None else [f"{ds.source}[{i}]" for i in range(len(ds))]
    labels = ds.labels if tuple(ds.class_names) == tuple(class_names) else None
    return Inputs(ds.images, [str(n) for n in names], labels)


def _write(out: Path, inputs: Inputs, probs: np.ndarray, class_names: tuple[str, ...]) -> None:
    pred = probs.argmax(1)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npz":
        extra = {} if inputs.labels is None else {"labels": inputs.labels}
        np.savez_compressed(out, probabilities=probs, predictions=pred, names=np.asarray(inputs.names),
                            class_names=np.asarray(class_names), **extra)
    elif out.suffix == ".json":
        rows = [{"name": n, "prediction": class_names[p], "confidence": float(pr[p]),
                 "probabilities": {c: round(float(v), 6) for c, v in zip(class_names, pr)}}
                for n, p, pr in zip(inputs.names, pred, probs)]
        out.write_text(json.dumps(rows, indent=1))
    else:
        with open(out, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["name", "prediction", "confidence", *class_names]
                            + ([] if inputs.labels is None else ["label"]))
            for i, (name, p, pr) in enumerate(zip(inputs.names, pred, probs)):
                row = [name, class_names[p], f"{pr[p]:.6f}", *(f"{v:.6f}" for v in pr)]
                writer.writerow(row + ([] if inputs.labels is None else [class_names[inputs.labels[i]]]))


def predict_command(
    model_path: Path = typer.Argument(..., help="Trained cell folder (model.keras + meta.json) or a .keras file."),
    inputs: list[str] = typer.Argument(..., help="Image files, or one folder / .npz / data set spec."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write all predictions to .csv, .json or .npz."),
    show: int = typer.Option(20, "--show", help="Rows to print (0: none)."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Images per inference batch."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary instead of tables."),
) -> None:
    """Predict cell classes with a trained model."""
    from robustbench_cells.train import load_model, model_input_size, predict_proba

    if out is not None and out.suffix not in OUT_FORMATS:
        raise CellbenchError(f"--out {out}: unknown format {out.suffix!r} (use {', '.join(OUT_FORMATS)})")
    model, meta = load_model(model_path)
    num_classes = int(model.output_shape[-1])
    class_names = tuple(meta.get("class_names") or (f"class_{i}" for i in range(num_classes)))
    if len(class_names) != num_classes:
        raise CellbenchError(f"{model_path}: meta.json names {len(class_names)} classes, the model outputs {num_classes}")
    data = read_inputs(inputs, class_names)
    if data.labels is not None and data.labels.size and data.labels.max() >= num_classes:
        data.labels = None  # labels from another class set cannot be scored
    probs = predict_proba(model, data.images, batch_size=batch_size)
    pred = probs.argmax(1)
    if out is not None:
        _write(out, data, probs, class_names)
    counts = np.bincount(pred, minlength=num_classes)
    summary = {"model": str(model_path), "images": len(pred), "input_size": list(model_input_size(model)),
               "predicted_counts": {c: int(n) for c, n in zip(class_names, counts)}}
    if data.labels is not None:
        summary["accuracy"] = float((pred == data.labels).mean())
    if out is not None:
        summary["out"] = str(out)
    if as_json:
        rows = [{"name": n, "prediction": class_names[p], "confidence": round(float(probs[i, p]), 6)}
                for i, (n, p) in enumerate(zip(data.names, pred))][: max(show, 0)]
        console.print_json(json.dumps({**summary, "rows": rows}))
        return
    if show > 0:
        table = Table(title=f"predictions ({min(show, len(pred))} of {len(pred)})")
        for col in ("image", "prediction", "confidence") + (("label",) if data.labels is not None else ()):
            table.add_column(col, overflow="fold")
        for i in range(min(show, len(pred))):
            row = [user_text(data.names[i]), user_text(class_names[pred[i]]), f"{probs[i, pred[i]]:.3f}"]
            if data.labels is not None:
                row.append(user_text(class_names[data.labels[i]]))
            table.add_row(*row)
        console.print(table)
    shares = ", ".join(f"{c} {n}" for c, n in zip(class_names, counts) if n)
    console.print(f"{len(pred)} images -> {shares}", markup=False)
    if "accuracy" in summary:
        console.print(f"accuracy: {summary['accuracy']:.4f}")
    if out is not None:
        err_console.print(f"wrote {out}", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``predict``."""
    app.command("predict")(predict_command)
