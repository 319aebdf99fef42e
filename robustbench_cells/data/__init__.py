"""Data sets: the :class:`Dataset` type, loaders, splits, synthetic cells and inspection."""

from robustbench_cells.data.dataset import CELL_CLASSES, Dataset

__all__ = ["CELL_CLASSES", "Dataset"]
