"""Resolve a data set spec string (``synthetic:2000``, ``npz:PATH``, ``folder:PATH``, ...) to a Dataset."""

from __future__ import annotations

from pathlib import Path

from robustbench_cells import plugins
from robustbench_cells.data import formats
from robustbench_cells.data.dataset import Dataset
from robustbench_cells.data.formats import DataPeek
from robustbench_cells.errors import CellbenchError, unknown_name_error


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split ``NAME[:ARG]``. A bare existing path is understood as ``folder:`` or ``npz:``."""
    spec = spec.strip()
    if not spec:
        raise CellbenchError("data set spec is empty (try synthetic, npz:PATH or folder:PATH)")
    name, sep, arg = spec.partition(":")
    if sep and name in plugins.datasets():
        return name, arg or None
    if not sep and name in plugins.datasets():
        return name, None
    path = Path(spec)
    if path.is_dir():
        return "folder", spec
    if path.suffix == ".npz":
        return "npz", spec
    raise unknown_name_error("data set", name if sep else spec, plugins.datasets().names())


def peek_dataset(spec: str) -> DataPeek | None:
    """How many images of which size *spec* holds, without decoding them (``data/formats/``), or
    None when that cannot be known up front: a plugin's own format, a bad spec (its load then
    raises the one-line error), a file still to be downloaded."""
    try:
        name, arg = parse_spec(spec)
        if plugins.datasets().get(name).plugin != "datasets":  # a plugin's format, maybe of the same name
            return None
    except CellbenchError:
        return None
    return formats.peek(name, arg)


def load_dataset(spec: str) -> Dataset:
    """Load the data set described by *spec* through the registered data set plugins."""
    name, arg = parse_spec(spec)
    dataset = plugins.datasets().get(name).loader(arg)
    if not isinstance(dataset, Dataset):
        raise CellbenchError(f"data set plugin {name!r} returned {type(dataset).__name__}, not a Dataset")
    if not dataset.source:
        dataset.source = spec
    return dataset
