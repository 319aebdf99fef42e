"""cellbench: augmentation and robustness benchmarking for blood-cell image classifiers.

The Python API (see :mod:`robustbench_cells.api`): ``list_shifts``, ``list_augmentations``,
``list_models``, ``list_adapters``, ``shift``, ``augment``, ``load_dataset``, ``evaluate`` (->
``Results``) and ``explain``. Plugins use ``hookimpl``; user errors are ``CellbenchError``.
"""

from robustbench_cells.hookspecs import hookimpl
from robustbench_cells.errors import CellbenchError

__version__ = "0.1.0"

from robustbench_cells.api import (  # noqa: E402  (after __version__: the API's modules read it)
    Results, augment, evaluate, explain, list_adapters, list_augmentations, list_models, list_shifts,
    load_dataset, shift,
)

__all__ = ["hookimpl", "CellbenchError", "__version__", "Results", "augment", "evaluate", "explain",
           "list_adapters", "list_augmentations", "list_models", "list_shifts", "load_dataset", "shift"]


class _Package(type(__import__("sys"))):
    """This package's module type: keeps the API function ``explain`` bound as ``robustbench_cells.explain``.

    Why: importing the subpackage :mod:`robustbench_cells.explain` makes the import system set the
    package attribute of the same name to the submodule, which would replace the function the
    moment the CLI or :func:`explain` itself imported it. The submodule stays importable by name
    (``from robustbench_cells.explain import core``; it is in ``sys.modules``).
    """

    def __setattr__(self, name: str, value: object) -> None:
        if name == "explain" and isinstance(value, type(__import__("sys"))):
            return
        super().__setattr__(name, value)


__import__("sys").modules[__name__].__class__ = _Package
