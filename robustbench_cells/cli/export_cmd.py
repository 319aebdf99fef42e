"""``cellbench export CELL --format keras|savedmodel --out PATH``: a trained cell as a submission artefact.

The exported model holds only built-in Keras layers (older artefacts' custom preprocessing layer is
rewritten into built-ins), takes float32 RGB images on the 0..255 scale at the model's input size
and returns class probabilities. It loads with plain ``keras.models.load_model`` (``keras``) or
``tf.saved_model.load`` / TF Serving (``savedmodel``) where cellbench is not installed. The cell's
``meta.json`` (class names, input size, preprocessing) is written beside it: ``PATH.meta.json`` for
``keras``, ``PATH/meta.json`` for ``savedmodel``.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from robustbench_cells.cli.console import err_console
from robustbench_cells.errors import CellbenchError

FORMATS = ("keras", "savedmodel")


def export_model(cell: str | Path, fmt: str, out: str | Path) -> Path:
    """Write cell *cell* (a cell folder or ``.keras`` file) to *out* in format *fmt*; return the metadata file."""
    from robustbench_cells.models.layers import portable_clone
    from robustbench_cells.training.artefacts import load_model

    if fmt not in FORMATS:
        raise CellbenchError(f"--format {fmt}: not one of {', '.join(FORMATS)}")
    out = Path(out)
    if fmt == "keras" and out.suffix != ".keras":
        raise CellbenchError(f"--out {out}: a Keras file must end in .keras")
    if out.exists():
        raise CellbenchError(f"--out {out}: already exists (remove it first)")
    model, meta = load_model(cell)
    model = portable_clone(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "input": "float32 RGB 0..255, (N, H, W, 3) at input_size; output: class probabilities",
            "input_size": list(model.input_shape[1:3]), "format": fmt}
    if fmt == "keras":
        model.save(out)
        meta_file = out.with_name(out.name + ".meta.json")
    else:
        try:
            model.export(str(out), format="tf_saved_model", verbose=False)
        except Exception as exc:  # no TensorFlow backend, or a graph TF cannot trace
            raise CellbenchError(f"--out {out}: cannot write a SavedModel ({type(exc).__name__}: {exc})") from None
        meta_file = out / "meta.json"
    meta_file.write_text(json.dumps(meta, indent=2, default=str))
    return meta_file


def export_command(
    cell: Path = typer.Argument(..., help="Trained cell folder (model.keras + meta.json) or a .keras file."),
    fmt: str = typer.Option("keras", "--format", help="keras (.keras file) or savedmodel (TensorFlow folder)."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the model (.keras file or folder)."),
) -> None:
    """Export a trained model so it loads without cellbench (competition submissions)."""
    meta_file = export_model(cell, fmt.lower(), out)
    err_console.print(f"wrote {out} (metadata: {meta_file})", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``export``."""
    app.command("export")(export_command)
