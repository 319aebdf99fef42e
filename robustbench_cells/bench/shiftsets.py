"""Shifted test sets: deterministic generation and an on-disk cache.

- :func:`shift_images` applies a registered shift at a severity with randomness drawn per fixed
  chunk of :data:`CHUNK` images from ``default_rng([seed, stable_hash(shift), severity, chunk])``,
  so the same (images, shift, severity, seed) gives identical bytes whoever calls it, in any order,
  in any process.
- :class:`ShiftCache` stores each generated set once per (data fingerprint, shift, severity, seed,
  :data:`SUITE_VERSION`, the shift's plugin name/version and severity table, OpenCV, NumPy and
  simplejpeg versions) under
  ``$CELLBENCH_CACHE/shifts`` (default ``~/.cache/cellbench/shifts``). Files are written atomically
  (temporary file + ``os.replace``) with a SHA-256 of the pixels in their header; a file that fails
  the check, or whose header describes another key, is reported with a warning and regenerated.
- :meth:`ShiftCache.build_all` fills the cache for many (shift, severity) pairs in parallel.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from robustbench_cells.atomic import atomic_path
from robustbench_cells.errors import CellbenchError
from robustbench_cells.registry import Registry, ShiftSpec

#: Bump when any built-in severity table or shift function changes (it is part of every cache key).
SUITE_VERSION = 2  # 2: JPEG through simplejpeg (libjpeg-turbo's TurboJPEG API) instead of OpenCV
#: Images per random stream. Fixed forever for a SUITE_VERSION: changing it changes the bytes.
CHUNK = 64
#: Smallest image side the shifts are defined for.
MIN_SIZE = 28
CACHE_ENV = "CELLBENCH_CACHE"
_MAGIC = b"CBSHIFT1\n"


class ShiftCacheWarning(UserWarning):
    """A cached shifted set was corrupt or stale and has been regenerated, or could not be stored."""


def stable_hash(text: str) -> int:
    """A 63-bit hash of *text* that is the same in every process (unlike ``hash()``)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def _registry(registry: Registry[ShiftSpec] | None) -> Registry[ShiftSpec]:
    if registry is not None:
        return registry
    from robustbench_cells import plugins

    return plugins.shifts()


def _check_images(images: np.ndarray) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise CellbenchError(
            f"shifted sets need uint8 (N, H, W, 3) images, got {getattr(images, 'dtype', type(images).__name__)} "
            f"{getattr(images, 'shape', '')}"
        )
    if min(images.shape[1:3]) < MIN_SIZE:
        raise CellbenchError(f"shifted sets need images of at least {MIN_SIZE} px, got {images.shape[1]}x{images.shape[2]}")


def shift_images(images: np.ndarray, shift_name: str, severity: int, seed: int = 0,
                 registry: Registry[ShiftSpec] | None = None, first_index: int = 0) -> np.ndarray:
    """Apply shift *shift_name* at *severity* (0 = identity) to uint8 ``(N, H, W, 3)`` *images*.

    Deterministic: image ``i`` depends only on the images of its chunk ``i // CHUNK``, the shift,
    the severity and *seed*, never on the order of calls or on threads. A caller that processes a
    large set in pieces passes each piece's position as *first_index* (a multiple of ``CHUNK``) and
    gets exactly the bytes of the one-call result.
    """
    if first_index % CHUNK:
        raise CellbenchError(f"shift_images: first_index must be a multiple of {CHUNK}, got {first_index}")
    _check_images(images)
    spec = _registry(registry).get(shift_name)
    if not 0 <= int(severity) <= len(spec.severities):
        raise CellbenchError(f"shift {shift_name!r}: severity must be 0..{len(spec.severities)}, got {severity}")
    if int(seed) < 0:
        raise CellbenchError(f"shift seed must be >= 0, got {seed}")
    if severity == 0:
        return images.copy()
    out = np.empty_like(images)
    name_hash = stable_hash(shift_name)
    for chunk, start in enumerate(range(0, len(images), CHUNK)):
        rng = np.random.default_rng([int(seed), name_hash, int(severity), first_index // CHUNK + chunk])
        part = images[start:start + CHUNK].view()
        part.flags.writeable = False  # a shift that writes into its input fails loudly, not silently
        result = spec.fn(part, spec.severities[severity - 1], rng)
        if not isinstance(result, np.ndarray) or result.dtype != np.uint8 or result.shape != part.shape:
            raise CellbenchError(
                f"shift {shift_name!r} (plugin {spec.plugin!r}) returned "
                f"{getattr(result, 'dtype', type(result).__name__)} {getattr(result, 'shape', '')}, "
                f"expected uint8 {part.shape}"
            )
        out[start:start + CHUNK] = result
    return out


def images_fingerprint(images: np.ndarray) -> str:
    """Content hash of an image array (for callers without a Dataset fingerprint)."""
    h = hashlib.sha256(repr(images.shape).encode())
    h.update(np.ascontiguousarray(images).data)
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _library_versions() -> dict[str, str]:
    """Versions of the libraries whose code decides the pixels (OpenCV, NumPy, simplejpeg's libjpeg-turbo).

    Not :func:`robustbench_cells.training.artefacts.versions` (the one provenance record of runs and
    cells): this is part of every cached set's key, so it names only what changes shifted pixels,
    under keys that must stay stable (changing them would invalidate every cache on disk).
    """
    import cv2
    import simplejpeg

    return {"opencv": cv2.__version__, "numpy": np.__version__, "simplejpeg": simplejpeg.__version__}


def default_cache_root() -> Path:
    """``$CELLBENCH_CACHE/shifts``, or ``~/.cache/cellbench/shifts``."""
    base = os.environ.get(CACHE_ENV)
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "cellbench") / "shifts"


class ShiftCache:
    """Shifted sets on disk, generated once per key, verified on every read.

    ``registry`` defaults to the process-wide shift registry; ``root`` to :func:`default_cache_root`.
    """

    def __init__(self, root: str | os.PathLike | None = None, registry: Registry[ShiftSpec] | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_root()
        self._registry = registry
        self.generated = 0  # sets generated by this object (tests and progress reports read it)
        self.hits = 0
        self._lock = threading.Lock()

    # -- keys and paths ------------------------------------------------------------------------
    @property
    def registry(self) -> Registry[ShiftSpec]:
        return _registry(self._registry)

    def _plugin_version(self, spec: ShiftSpec) -> str:
        if self._registry is not None:
            return "-"
        from robustbench_cells import plugins

        info = next((i for i in plugins.get_host().infos if i.name == spec.plugin), None)
        return info.version if info is not None else "-"

    def key_fields(self, images_shape: tuple[int, ...], fingerprint: str, shift_name: str, severity: int,
                   seed: int) -> dict[str, Any]:
        """Everything that decides the bytes of a shifted set (hashed into the cache key)."""
        spec = self.registry.get(shift_name)
        return {
            "suite_version": SUITE_VERSION, "chunk": CHUNK, "fingerprint": fingerprint, "shape": list(images_shape),
            "shift": shift_name, "severity": int(severity), "seed": int(seed), "plugin": spec.plugin,
            "plugin_version": self._plugin_version(spec), "severities": repr(spec.severities),
            # the bytes are only guaranteed for the same libraries: an upgrade regenerates the sets
            **_library_versions(),
        }

    def path_for(self, fields: dict[str, Any]) -> Path:
        key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:20]
        return self.root / fields["shift"] / f"s{fields['severity']}-seed{fields['seed']}-{fields['fingerprint']}-{key}.bin"

    # -- reading and writing -------------------------------------------------------------------
    @staticmethod
    def read_header(f: BinaryIO) -> dict[str, Any]:
        """The JSON header of an open cache file (``fields`` and ``sha256``), leaving *f* at the pixels;
        raises ``ValueError`` for a file that is not a readable cache file."""
        if f.read(len(_MAGIC)) != _MAGIC:
            raise ValueError("not a cellbench shift-cache file")
        try:
            header = json.loads(f.readline())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError("unreadable header") from None
        if not isinstance(header, dict) or not isinstance(header.get("fields"), dict):
            raise ValueError("unreadable header")
        return header

    @classmethod
    def _read(cls, path: Path, fields: dict[str, Any]) -> np.ndarray:
        """Load and verify a cache file; raises ``ValueError`` describing what is wrong."""
        with open(path, "rb") as f:
            header = cls.read_header(f)
            if header.get("fields") != fields:
                raise ValueError("stale: written for another suite version, plugin or severity table")
            shape = tuple(header["fields"]["shape"])
            data = bytearray(f.read())
        if len(data) != int(np.prod(shape)):
            raise ValueError(f"truncated: {len(data)} bytes for shape {shape}")
        if hashlib.sha256(data).hexdigest() != header.get("sha256"):
            raise ValueError("checksum mismatch (corrupted)")
        return np.frombuffer(data, dtype=np.uint8).reshape(shape)

    @staticmethod
    def _write(path: Path, fields: dict[str, Any], images: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = np.ascontiguousarray(images).data
        header = json.dumps({"fields": fields, "sha256": hashlib.sha256(data).hexdigest()}, sort_keys=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            f.write(_MAGIC + header.encode() + b"\n")
            f.write(data)

    def get(self, images: np.ndarray, fingerprint: str | None, shift_name: str, severity: int,
            seed: int = 0) -> np.ndarray:
        """The shifted set, from the cache when a valid file exists, else generated and stored.

        *fingerprint* identifies *images* (``Dataset.fingerprint()``); ``None`` hashes the pixels.
        Severity 0 is the clean images (never cached).
        """
        _check_images(images)
        if severity == 0:
            self.registry.get(shift_name)  # still refuse unknown names
            return images.copy()
        fingerprint = fingerprint or images_fingerprint(images)
        fields = self.key_fields(images.shape, fingerprint, shift_name, severity, seed)
        path = self.path_for(fields)
        if path.exists():
            try:
                result = self._read(path, fields)
                with self._lock:
                    self.hits += 1
                return result
            except (OSError, ValueError, KeyError, TypeError) as exc:
                warnings.warn(f"shift cache {path}: {exc}; regenerating", ShiftCacheWarning, stacklevel=2)
        result = shift_images(images, shift_name, severity, seed, registry=self.registry)
        self._store(path, fields, result)
        with self._lock:
            self.generated += 1
        return result

    def _store(self, path: Path, fields: dict[str, Any], images: np.ndarray) -> None:
        """Best effort: the cache saves time, it is not needed for correct results. A full disk, a
        read-only cache or a folder removed by ``cellbench cache clear`` mid-write costs a warning
        (and, for the folder, one retry), never the run."""
        for attempt in (1, 2):
            try:
                self._write(path, fields, images)
                return
            except FileNotFoundError as exc:  # the shift folder vanished between mkdir and write
                if attempt == 2:
                    warnings.warn(f"shift cache {path}: not stored ({exc}); using the set uncached",
                                  ShiftCacheWarning, stacklevel=3)
            except OSError as exc:
                warnings.warn(f"shift cache {path}: not stored ({exc.strerror or exc}); using the set uncached",
                              ShiftCacheWarning, stacklevel=3)
                return

    def ensure(self, images: np.ndarray, fingerprint: str | None, shift_name: str, severity: int,
               seed: int = 0) -> Path:
        """Make sure a valid cache file exists for the set (generating it if needed); its path."""
        fingerprint = fingerprint or images_fingerprint(images)
        self.get(images, fingerprint, shift_name, severity, seed)
        return self.path_for(self.key_fields(images.shape, fingerprint, shift_name, severity, seed))

    def build_all(self, images: np.ndarray, fingerprint: str | None, shifts: Iterable[str],
                  severities: Sequence[int] = (1, 2, 3, 4, 5), seed: int = 0, jobs: int = 2,
                  progress: Callable[[str, int], None] | None = None) -> dict[tuple[str, int], Path]:
        """Generate (or verify) every (shift, severity) set, *jobs* at a time; ``{(shift, sev): path}``.

        Threads suffice: NumPy and OpenCV release the GIL in the heavy calls, and threads are safe
        after TensorFlow has started (forking a process with TF loaded is not). OpenCV's own thread
        pool is limited to one thread per job while this runs, so the jobs do not oversubscribe cores.
        *progress* is called with ``(shift, severity)`` after each set.
        """
        import cv2

        _check_images(images)
        fingerprint = fingerprint or images_fingerprint(images)
        pairs = [(s, int(v)) for s in shifts for v in severities if int(v) > 0]
        for name, _ in pairs:
            self.registry.get(name)  # unknown names fail before any work

        def one(pair: tuple[str, int]) -> tuple[tuple[str, int], Path]:
            path = self.ensure(images, fingerprint, pair[0], pair[1], seed)
            if progress is not None:
                progress(*pair)
            return pair, path

        old_threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            if jobs <= 1:
                done = [one(p) for p in pairs]
            else:
                with ThreadPoolExecutor(max_workers=jobs) as pool:
                    done = list(pool.map(one, pairs))
        finally:
            cv2.setNumThreads(old_threads)
        return dict(done)
