"""Keep TensorFlow's import-time C++ INFO lines off the user's terminal.

Since TensorFlow 2.17 the native libraries log through absl before ``absl::InitializeLog()`` has
run, and such lines ignore ``TF_CPP_MIN_LOG_LEVEL`` (tensorflow/tensorflow#100442): every command
that trains or predicts printed "oneDNN custom operations are on" and "Could not find cuda
drivers" twice, on stderr, before its own output. :func:`install` adds an import hook so that the
first ``import tensorflow`` (directly or through Keras) runs with file descriptor 2 piped through a
small filter process that drops absl INFO lines and the absl pre-initialisation banner and passes
everything else on as it comes. Warnings, errors and Python tracebacks still show, and because the
filter is a separate process, so does a fatal message printed just before TensorFlow aborts the
import (e.g. a CPU without the instructions the wheel was built for). With
``TF_CPP_MIN_LOG_LEVEL=0`` (asking for INFO) the hook is not installed; when stderr is closed or
no filter process can be started, the import runs unfiltered.
"""

from __future__ import annotations

import importlib.abc
import logging
import os
import re
import subprocess
import sys
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

#: The filter process: stdin -> stdout line by line, without the :data:`NOISE` lines.
_FILTER = (
    "import re, sys\n"
    f"noise = re.compile({NOISE.pattern!r})\n"
    "out = sys.stdout.buffer\n"
    "for line in iter(sys.stdin.buffer.readline, b''):\n"
    "    if not noise.match(line):\n"
    "        out.write(line)\n"
    "        out.flush()\n"
)


@contextmanager
def filtered_native_stderr() -> Iterator[None]:
    """Run the body with fd 2 going through the filter process; fd 2 is restored afterwards and the
    filter has written everything out before this returns."""
    if sys.stderr is None:  # stderr closed (2>&-, pythonw): nothing to protect
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        # stdout=saved: the filter writes to the real stderr; -I -S: isolated and fast to start
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _FILTER], stdin=subprocess.PIPE, stdout=saved)
    except (OSError, ValueError):
        os.close(saved)
        yield
        return
    assert proc.stdin is not None
    try:
        os.dup2(proc.stdin.fileno(), 2)
        yield
    finally:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(saved, 2)
        os.close(saved)
        proc.stdin.close()  # EOF: the filter drains the pipe and exits
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a process started during the import still holds the pipe
            proc.kill()


class _QuietLoader(importlib.abc.Loader):
    """Wraps the real loader of the ``tensorflow`` package; everything but execution is delegated."""

    def __init__(self, inner: Any, finder: _TensorFlowImportFilter) -> None:
        self._inner = inner
        self._finder = finder

    def create_module(self, spec: Any) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        if self._finder in sys.meta_path:  # one import only: later lookups go straight to the real finders
            sys.meta_path.remove(self._finder)
        with filtered_native_stderr():
            self._inner.exec_module(module)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, get_data, ...
        return getattr(self._inner, name)


class _TensorFlowImportFilter(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` with the other finders and hands back its spec with a quiet loader.

    It stays installed until the package is actually executed, so a mere ``find_spec`` probe
    (``importlib.util.find_spec("tensorflow")``) does not use it up.
    """

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "tensorflow":
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _QuietLoader(spec.loader, self)
                return spec
        return None


def _not_retracing(record: logging.LogRecord) -> bool:
    """False for tf.function's "triggered tf.function retracing" advice: every run predicts sets of
    several sizes (and adapters copy models), so it fires on every run and says nothing to a user."""
    return "tf.function retracing" not in record.getMessage()


def install() -> None:
    """Filter the first TensorFlow import of this process (no-op if it already happened, if the
    hook is already there, or if ``TF_CPP_MIN_LOG_LEVEL`` asks for INFO lines), and drop the
    retracing advice from TensorFlow's Python logger."""
    tf_logger = logging.getLogger("tensorflow")
    if _not_retracing not in tf_logger.filters:
        tf_logger.addFilter(_not_retracing)
    if "tensorflow" in sys.modules or any(isinstance(f, _TensorFlowImportFilter) for f in sys.meta_path):
        return
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") in ("", "0"):
        return
    sys.meta_path.insert(0, _TensorFlowImportFilter())
