"""cellbench: augmentation and robustness benchmarking for blood-cell image classifiers."""

from robustbench_cells.hookspecs import hookimpl
from robustbench_cells.errors import CellbenchError

__version__ = "0.1.0"
__all__ = ["hookimpl", "CellbenchError", "__version__"]
