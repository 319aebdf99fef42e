"""``cellbench export CELL --format keras|savedmodel|onnx --out PATH``: a trained cell as a submission artefact.

The exported model holds only built-in Keras layers (older artefacts' custom preprocessing layer is
rewritten into built-ins), takes float32 RGB images on the 0..255 scale at the model's input size
and returns class probabilities. It loads with plain ``keras.models.load_model`` (``keras``) or
``tf.saved_model.load`` / TF Serving (``savedmodel``) where cellbench is not installed, or with
onnxruntime (``onnx``: Keras' own ``model.export(format="onnx")`` through tf2onnx, the ``[onnx]``
extra; ``cellbench evaluate model.onnx`` scores it). The cell's ``meta.json`` (class names, input
size, preprocessing) is written beside it: ``PATH.meta.json`` for ``keras`` and ``onnx``,
``PATH/meta.json`` for ``savedmodel``.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from robustbench_cells.cli.console import err_console
from robustbench_cells.errors import CellbenchError

FORMATS = ("keras", "savedmodel", "onnx")
SUFFIXES = {"keras": ".keras", "onnx": ".onnx"}  # single-file formats; a SavedModel is a folder


def _check_onnx_extra() -> None:
    """tf2onnx and onnx are importable, or one line naming the extra (Keras would fail deep inside export)."""
    try:
        import onnx  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError:
        from robustbench_cells.onnx_model import EXTRA

        raise CellbenchError(f"--format onnx: needs tf2onnx and onnx ({EXTRA})") from None


def _export_onnx(model, out: Path) -> None:
    """``model.export(out, format="onnx")``; a graph that does not take one image input is refused."""
    import warnings

    import numpy as np
    import onnx

    model(np.zeros((1, *model.input_shape[1:]), np.float32))  # Keras exports only a model that has been called
    try:
        with warnings.catch_warnings():  # tf2onnx 1.17 probes np.object: NumPy 2 warns, nothing the user can act on
            warnings.filterwarnings("ignore", message=r"In the future `np\.object`", category=FutureWarning)
            model.export(str(out), format="onnx", verbose=False)
    except Exception as exc:  # a layer tf2onnx cannot convert
        out.unlink(missing_ok=True)
        raise CellbenchError(f"--out {out}: cannot write an ONNX model ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:200]})") from None
    graph = onnx.load(str(out), load_external_data=False).graph
    constants = {t.name for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in constants]
    if len(inputs) != 1:  # tf2onnx turns some constants (Keras Normalization's) into graph inputs
        out.unlink()
        raise CellbenchError(f"--out {out}: tf2onnx wrote {len(inputs)} graph inputs ({', '.join(inputs)}), not one "
                             "image input; export --format keras or savedmodel instead")


def export_model(cell: str | Path, fmt: str, out: str | Path) -> Path:
    """Write cell *cell* (a cell folder or ``.keras`` file) to *out* in format *fmt*; return the metadata file."""
    from robustbench_cells.models.layers import portable_clone
    from robustbench_cells.training.artefacts import load_model

    if fmt not in FORMATS:
        raise CellbenchError(f"--format {fmt}: not one of {', '.join(FORMATS)}")
    out = Path(out)
    if fmt in SUFFIXES and out.suffix != SUFFIXES[fmt]:
        what = "a Keras" if fmt == "keras" else "an ONNX"
        raise CellbenchError(f"--out {out}: {what} file must end in {SUFFIXES[fmt]}")
    if out.exists():
        raise CellbenchError(f"--out {out}: already exists (remove it first)")
    if fmt == "onnx":
        _check_onnx_extra()  # before the model loads
    model, meta = load_model(cell)
    model = portable_clone(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "input": "float32 RGB 0..255, (N, H, W, 3) at input_size; output: class probabilities",
            "input_size": list(model.input_shape[1:3]), "format": fmt}
    if fmt == "keras":
        model.save(out)
        meta_file = out.with_name(out.name + ".meta.json")
    elif fmt == "onnx":
        _export_onnx(model, out)
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
    fmt: str = typer.Option("keras", "--format", help="keras (.keras file), savedmodel (TensorFlow folder) "
                            "or onnx (.onnx file; the [onnx] extra)."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the model (.keras / .onnx file or folder)."),
) -> None:
    """Export a trained model so it loads without cellbench (competition submissions)."""
    meta_file = export_model(cell, fmt.lower(), out)
    err_console.print(f"wrote {out} (metadata: {meta_file})", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``export``."""
    app.command("export")(export_command)
