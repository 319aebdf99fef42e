"""SQLite results store of a run folder (``RUN_DIR/results.sqlite``).

One run, its cells (model x augmentation x seed x recipe, keyed by a hash of the cell's full config),
and each cell's scores (split x shift x severity; clean data is ``shift="clean", severity=0``).
Summary metrics are computed from these rows (``bench/metrics.py``), never stored twice.

Crash safety: WAL journal, one writer (the driver process). A cell's scores and its ``done`` status
are written in ONE transaction, so a ``kill -9`` leaves either a finished cell with all its rows or an
unfinished cell with none; ``--resume`` redoes unfinished cells.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from robustbench_cells.bench.scoring import Score  # the scores table's row type; most callers import it from here
from robustbench_cells.errors import CellbenchError

STORE_FILENAME = "results.sqlite"
SCHEMA_VERSION = 1
CELL_STATUSES = ("pending", "running", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    config_json TEXT NOT NULL,
    versions_json TEXT NOT NULL,
    data_spec TEXT NOT NULL,
    data_fingerprint TEXT NOT NULL,
    class_names_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cells (
    key TEXT PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    position INTEGER NOT NULL DEFAULT 0,
    model TEXT NOT NULL,
    augmentation TEXT NOT NULL,
    seed INTEGER NOT NULL,
    recipe_json TEXT NOT NULL,
    config_json TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    params INTEGER,
    model_path TEXT,
    error TEXT,
    started REAL,
    finished REAL,
    train_seconds REAL,
    eval_seconds REAL,
    epochs INTEGER
);
CREATE TABLE IF NOT EXISTS scores (
    cell_key TEXT NOT NULL REFERENCES cells(key),
    split TEXT NOT NULL,
    shift TEXT NOT NULL,
    severity INTEGER NOT NULL,
    accuracy REAL NOT NULL,
    balanced_accuracy REAL NOT NULL,
    per_class_json TEXT NOT NULL,
    mean_confidence REAL NOT NULL,
    ece REAL NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (cell_key, split, shift, severity)
);
"""


@dataclass
class Run:
    """The run row: what was asked for and on which data."""

    id: int
    name: str
    created: float
    config: dict[str, Any]
    versions: dict[str, str]
    data_spec: str
    data_fingerprint: str
    class_names: list[str]


@dataclass
class Cell:
    """One matrix cell. ``augmentation`` is the display form (``"simple+mixup"``); the full config is in ``config``."""

    key: str
    model: str
    augmentation: str
    seed: int
    recipe: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    status: str = "pending"
    position: int = 0
    params: int | None = None
    model_path: str | None = None
    error: str | None = None
    started: float | None = None
    finished: float | None = None
    train_seconds: float | None = None
    eval_seconds: float | None = None
    epochs: int | None = None


# -- model, adapter, augmentation of a stored cell -------------------------------------------------
#: The adapter label of a cell scored without test-time adaptation.
NO_ADAPTER = "none"


def cell_adapter(cell: Cell) -> str:
    """The adapter chain of *cell*: ``config["adapter"]`` of an adapted or evaluated cell, else ``"none"``."""
    adapter = (cell.config or {}).get("adapter")
    return adapter if isinstance(adapter, str) and adapter else NO_ADAPTER


def cell_model(cell: Cell) -> str:
    """The model label without the adapter: an adapted cell is stored as ``model+chain``."""
    suffix = f"+{cell_adapter(cell)}"
    if suffix != f"+{NO_ADAPTER}" and cell.model.endswith(suffix) and len(cell.model) > len(suffix):
        return cell.model[: -len(suffix)]
    return cell.model


def cell_augmentation(cell: Cell) -> str:
    """The augmentation label without the adapter (``cellbench evaluate`` stores ``external+adapt:CHAIN``)."""
    suffix = f"+adapt:{cell_adapter(cell)}"
    if cell.augmentation.endswith(suffix) and len(cell.augmentation) > len(suffix):
        return cell.augmentation[: -len(suffix)]
    return cell.augmentation


class ResultStore:
    """Read/write access to ``RUN_DIR/results.sqlite``."""

    def __init__(self, path: str | Path, *, create: bool = False) -> None:
        path = Path(path)
        if path.is_dir() or path.suffix != ".sqlite":
            path = path / STORE_FILENAME
        self.path = path
        if not create and not path.is_file():
            raise CellbenchError(f"{path.parent}: not a cellbench run folder (no {STORE_FILENAME})")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            if create:
                self._db.executescript(_SCHEMA)
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            version = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise CellbenchError(f"{path}: not a readable results store ({exc})") from None
        if version is None or int(version[0]) != SCHEMA_VERSION:
            raise CellbenchError(f"{path}: results store schema {version and version[0]} is not {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on error)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- runs ------------------------------------------------------------------------------------
    def create_run(self, name: str, config: dict[str, Any], versions: dict[str, str], data_spec: str,
                   data_fingerprint: str, class_names: Iterable[str]) -> Run:
        """Insert the run row (a run folder holds one run)."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO runs (name, created, config_json, versions_json, data_spec, data_fingerprint,"
                " class_names_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, time.time(), json.dumps(config), json.dumps(versions), data_spec, data_fingerprint,
                 json.dumps(list(class_names))),
            )
        run = self.run()
        assert run is not None and run.id == cur.lastrowid
        return run

    def run(self) -> Run | None:
        """The run of this folder, or ``None`` before it was created."""
        row = self._db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        id_, name, created, config, versions, spec, fp, classes = row
        return Run(id_, name, created, json.loads(config), json.loads(versions), spec, fp, json.loads(classes))

    # -- cells -----------------------------------------------------------------------------------
    def add_cells(self, run_id: int, cells: Iterable[Cell]) -> None:
        """Insert cells not yet present (existing keys keep their status: that is what makes --resume work)."""
        with self.transaction() as db:
            for c in cells:
                db.execute(
                    "INSERT OR IGNORE INTO cells (key, run_id, position, model, augmentation, seed, recipe_json,"
                    " config_json, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                    (c.key, run_id, c.position, c.model, c.augmentation, c.seed, json.dumps(c.recipe),
                     json.dumps(c.config)),
                )

    def cells(self, status: str | None = None) -> list[Cell]:
        """All cells in matrix order, optionally only those with *status*."""
        sql = "SELECT * FROM cells" + (" WHERE status = ?" if status else "") + " ORDER BY position, key"
        cols = [d[0] for d in self._db.execute("SELECT * FROM cells LIMIT 0").description]
        out = []
        for row in self._db.execute(sql, (status,) if status else ()):
            d = dict(zip(cols, row))
            d.pop("run_id")
            d["recipe"] = json.loads(d.pop("recipe_json"))
            d["config"] = json.loads(d.pop("config_json"))
            out.append(Cell(**d))
        return out

    def cell(self, key: str) -> Cell:
        """The cell with *key* (a unique prefix is enough)."""
        matches = [c for c in self.cells() if c.key.startswith(key)]
        if len(matches) != 1:
            raise CellbenchError(f"{self.path}: {'no' if not matches else 'more than one'} cell matches key {key!r}")
        return matches[0]

    def mark_running(self, key: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE cells SET status='running', started=?, error=NULL WHERE key=?", (time.time(), key))

    def mark_failed(self, key: str, error: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE cells SET status='failed', finished=?, error=? WHERE key=?", (time.time(), error, key))

    def finish_cell(self, key: str, scores: Iterable[Score], *, params: int | None, model_path: str | None,
                    train_seconds: float | None, eval_seconds: float | None, epochs: int | None) -> None:
        """Write all of a cell's scores and mark it done, atomically."""
        with self.transaction() as db:
            db.execute("DELETE FROM scores WHERE cell_key=?", (key,))
            db.executemany(
                "INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(key, s.split, s.shift, s.severity, s.accuracy, s.balanced_accuracy, json.dumps(s.per_class),
                  s.mean_confidence, s.ece, s.n) for s in scores],
            )
            db.execute(
                "UPDATE cells SET status='done', finished=?, params=?, model_path=?, train_seconds=?,"
                " eval_seconds=?, epochs=?, error=NULL WHERE key=?",
                (time.time(), params, model_path, train_seconds, eval_seconds, epochs, key),
            )

    # -- scores ----------------------------------------------------------------------------------
    def scores(self, cell_key: str | None = None, split: str | None = None) -> list[Score]:
        """Score rows, optionally for one cell and/or split."""
        where, args = [], []
        if cell_key:
            where.append("cell_key = ?")
            args.append(cell_key)
        if split:
            where.append("split = ?")
            args.append(split)
        sql = "SELECT * FROM scores" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY cell_key, split, shift, severity"
        return [
            Score(k, sp, sh, sev, acc, bacc, json.loads(pc), conf, ece, n)
            for k, sp, sh, sev, acc, bacc, pc, conf, ece, n in self._db.execute(sql, args)
        ]


def score_to_dict(score: Score) -> dict[str, Any]:
    """A flat dict of a score row (for JSON/CSV export)."""
    return asdict(score)
