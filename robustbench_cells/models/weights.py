"""The ``weights`` option: ``none``, ``imagenet`` (Keras' download cache) or a local file.

Offline, an ImageNet download must fail within seconds with a message naming the file and the
cache path where a user can place it by hand: :func:`imagenet_download_guard` shortens the socket
timeout while Keras tries, and turns the failure into a :class:`CellbenchError`.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
import threading
import urllib.parse
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from robustbench_cells.errors import CellbenchError

#: Seconds a single network operation may block while Keras fetches ImageNet weights.
DOWNLOAD_TIMEOUT_S = 5.0


def normalize_weights(weights: str | os.PathLike | None) -> str | None:
    """``None``/``"none"``/``""`` -> ``None``; ``"imagenet"`` stays; anything else is a path string."""
    if weights is None:
        return None
    text = os.fspath(weights).strip()
    if text.lower() in ("", "none", "null", "random"):
        return None
    return "imagenet" if text.lower() == "imagenet" else text


def check_own_weights(weights: str | None, model: str) -> None:
    """Our own CNNs have no ImageNet weights: say so instead of silently training from scratch."""
    if normalize_weights(weights) == "imagenet":
        raise CellbenchError(f"model {model!r} has no imagenet weights; use weights='none' or a weights file path")


def keras_cache_dir() -> Path:
    """Where Keras' ``get_file`` caches application weights (mirrors its own fallback rules)."""
    from keras.src.backend import config  # only called once Keras is loaded anyway

    home = os.path.expanduser(config.keras_home())
    if not os.access(home, os.W_OK):  # Keras falls back to /tmp/.keras when its home is not writable
        home = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    return Path(home) / "models"


def _reachable(url: str, timeout_s: float) -> str:
    """``""`` when *url*'s host accepts a TCP connection within *timeout_s*, else the reason.

    Runs in a daemon thread because name resolution ignores socket timeouts and can hang for
    tens of seconds on a machine without DNS.
    """
    parts = urllib.parse.urlsplit(url)
    result: list[str] = []

    def probe() -> None:
        try:
            with socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout_s):
                result.append("")
        except OSError as exc:
            result.append(" ".join(str(exc).split()) or type(exc).__name__)

    thread = threading.Thread(target=probe, daemon=True, name="cellbench-weights-probe")
    thread.start()
    thread.join(timeout_s)
    return result[0] if result else f"no answer from {parts.hostname} within {timeout_s:g} s"


def _offline_error(model: str, fname: str, url: str, reason: str) -> CellbenchError:
    return CellbenchError(
        f"model {model!r}: cannot download imagenet weights ({reason}); place {fname} in {keras_cache_dir()} "
        f"(download it from {url}) or pass its path as weights, or use weights='none'"
    )


@contextlib.contextmanager
def imagenet_download_guard(model: str, timeout_s: float = DOWNLOAD_TIMEOUT_S) -> Iterator[None]:
    """Run a Keras application build that may download ImageNet weights; fail fast and clearly offline.

    Keras looks for the file in its cache (``~/.keras/models``) first and only downloads when it
    is absent, so a file placed there by hand is used without any network access. When it must
    download, the host is probed first (bounded by *timeout_s*, DNS included) and an unreachable
    host becomes a one-line CellbenchError naming the file and the cache folder.
    """
    from keras.src.utils import file_utils  # applications call file_utils.get_file(...)

    original = file_utils.get_file

    def guarded_get_file(fname: str | None = None, origin: str | None = None, *args: Any, **kwargs: Any) -> Any:
        name = fname or os.path.basename(urllib.parse.urlsplit(origin or "").path)
        subdir = kwargs.get("cache_subdir", "datasets")
        if origin and not (keras_cache_dir().parent / subdir / name).is_file():
            reason = _reachable(origin, timeout_s)
            if reason:
                raise _offline_error(model, name, origin, reason)
        return original(fname, origin, *args, **kwargs)

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)  # a reachable but stalled server must not hang the download either
    file_utils.get_file = guarded_get_file
    try:
        yield
    except CellbenchError:
        raise
    except Exception as exc:
        text = " ".join(str(exc).split())
        if "URL fetch failure" not in text and not isinstance(exc, OSError):
            raise
        url = re.search(r"https?://[^\s:]+(?::\d+)?[^\s:]*", text)
        origin = url.group(0) if url else "the Keras applications URL"
        raise _offline_error(model, origin.rsplit("/", 1)[-1], origin, text[:300]) from None
    finally:
        file_utils.get_file = original
        socket.setdefaulttimeout(previous)


def check_weights_path(weights: str, model: str) -> Path:
    """The weights file as a Path, or a CellbenchError naming it when it does not exist."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise CellbenchError(f"model {model!r}: weights file {weights} does not exist "
                             "(weights must be 'none', 'imagenet' or a path to a .keras/.weights.h5/.h5 file)")
    return path


def load_weights_file(model: Any, weights: str | None, name: str, base: Any = None) -> Any:
    """Load a local weights file into *model* (or, failing that, into its pretrained *base*).

    A ``.keras`` or ``.weights.h5`` file saved from the same cellbench model fills the whole model;
    a Keras-applications ``.h5`` file (e.g. ImageNet weights downloaded by hand) fills the base.
    Returns *model*; ``weights`` of ``None``/``"imagenet"`` are left to the caller.
    """
    weights = normalize_weights(weights)
    if weights is None or weights == "imagenet":
        return model
    path = check_weights_path(weights, name)
    errors = []
    for target in (model, base):
        if target is None:
            continue
        try:
            # A failed attempt warns once per skipped container: keep those out of the user's way.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                target.load_weights(str(path))
        except Exception as exc:  # a mismatching file: try the base next, then report both
            errors.append(" ".join(str(exc).split())[:200])
            continue
        if caught:
            warnings.warn(f"model {name!r}: weights file {path}: {len(caught)} warning(s) while loading, "
                          f"first: {' '.join(str(caught[0].message).split())[:200]}", stacklevel=2)
        return model
    raise CellbenchError(f"model {name!r}: weights file {path} does not fit this model: {' | '.join(errors)}")
