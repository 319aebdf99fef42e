"""What ``cellbench explain`` reads from a run folder: its data, each cell's stored scores and
probabilities, and the shifted-set fingerprint cache (``RUN_DIR/explain_cache.npz``).

The cache depends only on the run's data and shift suite, so a second target costs only its own
predictions; :func:`load_or_compute_shifted` recomputes it when its key (fingerprint and suite
versions, data, shifts, severities, subset size, seed) changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from robustbench_cells.atomic import atomic_path
from robustbench_cells.errors import CellbenchError

CACHE_FILENAME = "explain_cache.npz"
#: Bump when fingerprint statistics change, so stale caches are recomputed.
FINGERPRINT_VERSION = 2  # 2: the reference subset is bench.rundata.stratified_subset


def open_run(run_dir: Path) -> tuple[Any, dict[str, Any], Any, Any, np.ndarray]:
    """(store, run config, train Dataset, val Dataset, labels of the shifted test subset) from the run row."""
    from robustbench_cells.bench.store import ResultStore

    store = ResultStore(run_dir)
    run = store.run()
    if run is None:
        raise CellbenchError(f"{run_dir}: the run folder has no run yet (did `cellbench run` start?)")
    from robustbench_cells.bench.rundata import run_data_from_config

    config = run.config
    # the one run-data path (bench/rundata.py): resize, split and shift subset exactly as the runner did
    data = run_data_from_config(config, run.data_spec)
    return store, config, data.train, data.val, data.shift_base.labels


def shifted_cache_key(data_fingerprint: str, shifts: list[str], severities: list[int], n: int, seed: int,
                      reference_seed: int = 0) -> str:
    """Key of the shifted-set cache: changes with anything the statistics depend on."""
    try:
        from robustbench_cells.bench.shiftsets import SUITE_VERSION
    except ImportError:
        SUITE_VERSION = 0
    payload = json.dumps([FINGERPRINT_VERSION, SUITE_VERSION, data_fingerprint,
                          shifts, severities, n, seed, reference_seed])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def load_or_compute_shifted(run_dir: Path, key: str, compute: Callable[[], dict[tuple[str, int], np.ndarray]]
                            ) -> dict[tuple[str, int], np.ndarray]:
    """The shifted-set statistics cached under *key* in *run_dir*, else ``compute()`` (then cached)."""
    path = run_dir / CACHE_FILENAME
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) == key:
                    names = [str(s) for s in z["names"]]
                    return {(n.rsplit("@", 1)[0], int(n.rsplit("@", 1)[1])): z[f"s{i}"] for i, n in enumerate(names)}
        except (OSError, KeyError, ValueError):
            pass  # unreadable or old cache: recompute below
    stats = compute()
    names = [f"{s}@{v}" for s, v in stats]
    with atomic_path(path, ".npz") as tmp:
        np.savez(tmp, key=key, names=np.array(names), **{f"s{i}": a for i, a in enumerate(stats.values())})
    return stats

def cell_accuracy(store: Any, key: str) -> dict[tuple[str, int], float]:
    """The cell's stored accuracy per (shift, severity) on the shifted test sets (clean = ("clean", 0))."""
    rows = store.scores(cell_key=key)
    by_split: dict[str, dict[tuple[str, int], float]] = {}
    for s in rows:
        by_split.setdefault(s.split, {})[(s.shift, int(s.severity))] = float(s.accuracy)
    # Shifted sets are scored on the test split; fall back to whichever split has them.
    for split in ("test", "val"):
        if split in by_split and len(by_split[split]) > 1:
            return by_split[split]
    return next(iter(by_split.values()), {})


def stored_proba(run_dir: Path, cell: Any) -> dict[str, np.ndarray]:
    """The probabilities the runner saved for *cell* (``probs.npz``: ``split|shift|severity`` -> (N, C)).

    The cell's own folder ``RUN_DIR/cells/KEY`` first: an adapted cell shares its base cell's model
    but has probabilities of its own there. Else the folder beside the model."""
    own = run_dir / "cells" / cell.key / "probs.npz"
    folder = Path(cell.model_path)
    folder = folder if folder.is_dir() else folder.parent
    path = own if own.is_file() else folder / "probs.npz"
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError):
        return {}
