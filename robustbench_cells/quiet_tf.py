"""Keep TensorFlow's import-time C++ INFO lines off the user's terminal.

Since TensorFlow 2.17 the native libraries log through absl before ``absl::InitializeLog()`` has
run, and such lines ignore ``TF_CPP_MIN_LOG_LEVEL`` (tensorflow/tensorflow#100442): every command
that trains or predicts printed "oneDNN custom operations are on" and "Could not find cuda
drivers" twice, on stderr, before its own output. :func:`install` adds an import hook so that the
first ``import tensorflow`` (directly or through Keras) runs with file descriptor 2 pointed at a
temporary file; afterwards every captured line goes back to stderr except absl INFO lines and the
absl pre-initialisation banner. Warnings, errors and Python tracebacks still show. With
``TF_CPP_MIN_LOG_LEVEL=0`` (asking for INFO) the hook is not installed.
"""

from __future__ import annotations

import importlib.abc
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

#: absl/glog INFO lines ("I0000 00:00:1795.325177   17619 port.cc:153] ..."), the banner absl prints
#: before it is initialised, and the continuation line of TensorFlow's CPU-feature notice.
NOISE = re.compile(
    rb"^(I\d{4} [\d:.]+\s+\d+ [\w.\-/]+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|To enable the following instructions: )"
)


def drop_noise(captured: bytes) -> bytes:
    """*captured* without the lines :data:`NOISE` matches (line endings kept)."""
    return b"".join(line for line in captured.splitlines(keepends=True) if not NOISE.match(line))


@contextmanager
def filtered_native_stderr() -> Iterator[None]:
    """Run the body with fd 2 captured; write back what is left after :func:`drop_noise`."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                tmp.seek(0)
                kept = drop_noise(tmp.read())
                if kept:
                    os.write(2, kept)
    finally:
        os.close(saved)


class _QuietLoader(importlib.abc.Loader):
    """Wraps the real loader of the ``tensorflow`` package; everything but execution is delegated."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def create_module(self, spec: Any) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with filtered_native_stderr():
            self._inner.exec_module(module)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, get_data, ...
        return getattr(self._inner, name)


class _TensorFlowImportFilter(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` with the other finders and hands back its spec with a quiet loader."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)  # one import only: later lookups go straight to the real finders
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _QuietLoader(spec.loader)
                return spec
        return None


def install() -> None:
    """Filter the first TensorFlow import of this process (no-op if it already happened, if the
    hook is already there, or if ``TF_CPP_MIN_LOG_LEVEL`` asks for INFO lines)."""
    if "tensorflow" in sys.modules or any(isinstance(f, _TensorFlowImportFilter) for f in sys.meta_path):
        return
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") in ("", "0"):
        return
    sys.meta_path.insert(0, _TensorFlowImportFilter())
