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


@contextlib.contextmanager
def imagenet_download_guard(model: str, timeout_s: float = DOWNLOAD_TIMEOUT_S) -> Iterator[None]:
    """Run a Keras application build that may download ImageNet weights; fail fast and clearly offline.

    Keras first looks for the file in its cache (``~/.keras/models``) and only downloads when it is
    absent, so a file placed there by hand is used without any network access.
    """
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)
    try:
        yield
    except Exception as exc:
        text = " ".join(str(exc).split())
        if "URL fetch failure" not in text and not isinstance(exc, (OSError, socket.timeout)):
            raise
        url = re.search(r"https?://\S+?(?=:\s|\s|$)", text)
        fname = url.group(0).rstrip(":").rsplit("/", 1)[-1] if url else "<weights file>"
        raise CellbenchError(
            f"model {model!r}: cannot download imagenet weights ({text[:160]}); "
            f"place {fname} in {keras_cache_dir()} (from {url.group(0).rstrip(':') if url else 'the Keras applications URL'}) "
            f"or use weights='none' or a local weights file"
        ) from None
    finally:
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
