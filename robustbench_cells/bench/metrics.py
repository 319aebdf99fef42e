"""Summary metrics of a run, computed from the stored score rows (never stored twice).

Definitions (the report and the docs use exactly these):

All of these use one *metric* of the rows: ``accuracy`` (default) or ``balanced_accuracy`` (the
mean per-class recall, fairer on PBC's imbalanced test set); rBE always uses balanced error.

- *clean val* / *clean test*: accuracy of the ``shift="clean", severity=0`` row of the split.
- *mean shifted*: mean accuracy over every ``(shift, severity >= 1)`` row of the **test** split
  (each row weighs the same, so a family with more shifts weighs more).
- *per family*: mean over that family's shifts and severities; *worst family*: the lowest of those.
- *per shift*: mean over that shift's five severities.
- *gap*: clean val - mean shifted (what validation promised minus what shifted data gives).
- *rBE* (relative balanced error, after MedMNIST-C): per shift
  ``sum_s(BE_s - BE_clean) / sum_s(BE_ref,s - BE_ref,clean)`` with ``BE = 1 - balanced accuracy``,
  then the mean over the shifts where the reference degrades at all. 1.0 = as robust as the
  reference, < 1 = more robust, > 1 = less.
- *ECE*: stored per row; the clean value is the clean test row's, the shifted value the mean over
  the shifted test rows.

A shift that is no longer registered (its plugin was uninstalled) gets the family ``"unknown"``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustbench_cells.bench.store import NO_ADAPTER, Cell, ResultStore, Run, Score, cell_adapter, cell_model
from robustbench_cells.errors import CellbenchError
from robustbench_cells.registry import SHIFT_FAMILIES

CLEAN = "clean"
UNKNOWN_FAMILY = "unknown"
#: Row fields a summary can be computed from, with the words tables use for them.
METRICS = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy"}


def check_metric(metric: str) -> str:
    """*metric* if it is one of :data:`METRICS`, else a one-line error naming ``--metric``."""
    if metric not in METRICS:
        raise CellbenchError(f"--metric {metric!r} is not one of {', '.join(METRICS)}")
    return metric


def shift_family(shift: str) -> str:
    """The family of a registered shift, or ``"unknown"`` when no loaded plugin provides it."""
    from robustbench_cells import plugins

    try:
        return plugins.shifts().get(shift).family
    except CellbenchError:
        return UNKNOWN_FAMILY


def family_order(families: Iterable[str]) -> list[str]:
    """Families in table order: :data:`SHIFT_FAMILIES` first, then plugin families A-Z, ``unknown`` last."""
    present = set(families)
    known = [f for f in SHIFT_FAMILIES if f in present]
    extra = sorted(f for f in present if f not in SHIFT_FAMILIES and f != UNKNOWN_FAMILY)
    return known + extra + ([UNKNOWN_FAMILY] if UNKNOWN_FAMILY in present else [])


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass
class CellSummary:
    """One cell's metrics. Numbers are ``None`` when the cell has no such rows (failed, pending)."""

    cell: Cell
    scores: list[Score] = field(default_factory=list)
    clean_val: float | None = None
    clean_test: float | None = None
    clean_test_balanced: float | None = None
    mean_shifted: float | None = None
    mean_shifted_balanced: float | None = None
    per_family: dict[str, float] = field(default_factory=dict)
    per_shift: dict[str, float] = field(default_factory=dict)
    worst_family: str | None = None
    worst_shift: str | None = None
    gap: float | None = None
    ece_clean: float | None = None
    ece_shifted: float | None = None
    rbe: float | None = None
    reference_key: str | None = None
    metric: str = "accuracy"

    def value(self, score: Score) -> float:
        """The summary's metric of one row."""
        return getattr(score, self.metric)

    @property
    def key(self) -> str:
        return self.cell.key

    @property
    def done(self) -> bool:
        return self.cell.status == "done"

    def test_rows(self) -> dict[tuple[str, int], Score]:
        """``(shift, severity) -> Score`` of the test split (clean is ``("clean", 0)``)."""
        return {(s.shift, s.severity): s for s in self.scores if s.split == "test"}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the raw rows)."""
        c = self.cell
        return {
            "key": c.key, "model": c.model, "augmentation": c.augmentation, "seed": c.seed, "recipe": c.recipe,
            "status": c.status, "error": c.error, "params": c.params, "epochs": c.epochs,
            "train_seconds": c.train_seconds, "eval_seconds": c.eval_seconds,
            "clean_val": self.clean_val, "clean_test": self.clean_test,
            "clean_test_balanced": self.clean_test_balanced, "mean_shifted": self.mean_shifted,
            "mean_shifted_balanced": self.mean_shifted_balanced, "per_family": self.per_family,
            "per_shift": self.per_shift, "worst_family": self.worst_family, "worst_shift": self.worst_shift,
            "gap": self.gap, "ece_clean": self.ece_clean, "ece_shifted": self.ece_shifted, "rbe": self.rbe,
            "rbe_reference": self.reference_key, "metric": self.metric,
        }


def summarize_cell(cell: Cell, scores: Sequence[Score], families: dict[str, str],
                   metric: str = "accuracy") -> CellSummary:
    """Every metric of one cell that does not need a reference (rBE is filled by :func:`summarize_run`)."""
    out = CellSummary(cell=cell, scores=list(scores), metric=check_metric(metric))
    if cell.status != "done":
        return out  # a failed/pending cell may hold no rows; it never contributes numbers
    for s in scores:
        if s.shift == CLEAN and s.severity == 0:
            if s.split == "val":
                out.clean_val = out.value(s)
            elif s.split == "test":
                out.clean_test, out.clean_test_balanced, out.ece_clean = out.value(s), s.balanced_accuracy, s.ece
    shifted = [s for s in scores if s.split == "test" and s.shift != CLEAN and s.severity > 0]
    out.mean_shifted = _mean([out.value(s) for s in shifted])
    out.mean_shifted_balanced = _mean([s.balanced_accuracy for s in shifted])
    out.ece_shifted = _mean([s.ece for s in shifted])
    by_family: dict[str, list[float]] = defaultdict(list)
    by_shift: dict[str, list[float]] = defaultdict(list)
    for s in shifted:
        by_family[families.get(s.shift, UNKNOWN_FAMILY)].append(out.value(s))
        by_shift[s.shift].append(out.value(s))
    out.per_family = {f: sum(by_family[f]) / len(by_family[f]) for f in family_order(by_family)}
    out.per_shift = {name: sum(v) / len(v) for name, v in sorted(by_shift.items())}
    if out.per_family:
        out.worst_family = min(out.per_family, key=lambda f: out.per_family[f])
        out.worst_shift = min(out.per_shift, key=lambda name: out.per_shift[name])
    if out.clean_val is not None and out.mean_shifted is not None:
        out.gap = out.clean_val - out.mean_shifted
    return out


def relative_balanced_error(cell: CellSummary, reference: CellSummary) -> float | None:
    """MedMNIST-C style rBE of *cell* against *reference* (see module docstring); ``None`` if undefined."""
    rows, ref_rows = cell.test_rows(), reference.test_rows()
    if (CLEAN, 0) not in rows or (CLEAN, 0) not in ref_rows:
        return None
    be_clean = 1.0 - rows[(CLEAN, 0)].balanced_accuracy
    ref_be_clean = 1.0 - ref_rows[(CLEAN, 0)].balanced_accuracy
    per_shift: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for (shift, sev), s in rows.items():
        ref = ref_rows.get((shift, sev))
        if shift == CLEAN or sev == 0 or ref is None:
            continue
        acc = per_shift[shift]
        acc[0] += (1.0 - s.balanced_accuracy) - be_clean
        acc[1] += (1.0 - ref.balanced_accuracy) - ref_be_clean
    # A shift that does not hurt the reference gives no scale to compare against: leave it out
    # rather than divide by ~0 and let one shift dominate the mean.
    ratios = [num / den for num, den in per_shift.values() if den > 1e-6]
    return sum(ratios) / len(ratios) if ratios else None


@dataclass
class RunSummary:
    """All cells of a run with their metrics, plus what the tables need to lay them out."""

    run: Run | None
    cells: list[CellSummary]
    families: dict[str, str]
    reference: str | None = None  # the --reference given, or None for the per-model default
    metric: str = "accuracy"

    @property
    def metric_label(self) -> str:
        """``"accuracy"`` or ``"balanced accuracy"`` (for titles)."""
        return METRICS[self.metric]

    @property
    def done(self) -> list[CellSummary]:
        """Done cells, best mean shifted first, then any without shifted rows by clean test (the table order)."""
        done = [c for c in self.cells if c.done and c.mean_shifted is not None]
        # a run without shifts still gets a ranking: by clean test accuracy
        no_shift = [c for c in self.cells if c.done and c.mean_shifted is None]
        no_shift.sort(key=lambda c: (-(c.clean_test if c.clean_test is not None else -1.0), c.cell.position))
        return sorted(done, key=lambda c: (-c.mean_shifted, c.cell.position, c.key)) + no_shift

    @property
    def not_done(self) -> list[CellSummary]:
        return [c for c in self.cells if not c.done]

    @property
    def family_list(self) -> list[str]:
        return family_order(self.families.values())

    @property
    def class_names(self) -> list[str]:
        return list(self.run.class_names) if self.run else []

    def get(self, key_prefix: str) -> CellSummary:
        """The cell whose key starts with *key_prefix* (or ``model/augmentation`` when that is unique)."""
        matches = [c for c in self.cells if c.key.startswith(key_prefix)]
        if not matches and "/" in key_prefix:
            model, _, aug = key_prefix.partition("/")
            matches = [c for c in self.cells if c.cell.model == model and c.cell.augmentation == aug]
        if len(matches) != 1:
            what = "no cell" if not matches else f"{len(matches)} cells"
            known = ", ".join(f"{c.key[:8]} ({c.cell.model}/{c.cell.augmentation})" for c in self.cells[:8])
            raise CellbenchError(f"--cell {key_prefix!r}: {what} match; cells: {known or 'none'}")
        return matches[0]

    def grid(self) -> tuple[list[str], list[str], dict[tuple[str, str], list[float]]]:
        """``(models, augmentations, {(model, aug): [mean shifted per seed]})`` over done cells."""
        models: list[str] = []
        augs: list[str] = []
        values: dict[tuple[str, str], list[float]] = defaultdict(list)
        for c in sorted(self.cells, key=lambda c: (c.cell.position, c.key)):
            if c.cell.model not in models:
                models.append(c.cell.model)
            if c.cell.augmentation not in augs:
                augs.append(c.cell.augmentation)
            if c.done and c.mean_shifted is not None:
                values[(c.cell.model, c.cell.augmentation)].append(c.mean_shifted)
        return models, augs, dict(values)


def _pick_reference(cell: CellSummary, candidates: list[CellSummary]) -> CellSummary | None:
    """Among *candidates* the one with *cell*'s seed, else the first."""
    if not candidates:
        return None
    same_seed = [c for c in candidates if c.cell.seed == cell.cell.seed]
    return (same_seed or candidates)[0]


def _resolve_reference(spec: str, done: list[CellSummary]) -> list[CellSummary]:
    """Cells named by ``--reference`` (a key prefix, or ``model/augmentation`` for every seed)."""
    by_key = [c for c in done if c.key.startswith(spec)]
    if len(by_key) == 1:
        return by_key
    if "/" in spec:
        model, _, aug = spec.partition("/")
        hits = [c for c in done if c.cell.model == model and c.cell.augmentation == aug]
        if hits:
            return hits
    choices = ", ".join(sorted({f"{c.cell.model}/{c.cell.augmentation}" for c in done})) or "none"
    what = "more than one done cell matches" if by_key else "no done cell matches"
    raise CellbenchError(f"--reference {spec!r}: {what}; use a key prefix or one of: {choices}")


def summarize_run(store: ResultStore, reference: str | None = None, metric: str = "accuracy") -> RunSummary:
    """Read every row of *store* once and compute all metrics.

    *reference* selects the rBE reference: a cell key prefix or ``model/augmentation``. By default
    each cell is compared with its own model's ``none`` cell without adapter (same seed if there is one), else with
    the first done cell. *metric* is the row field every summary number uses (see :data:`METRICS`).
    """
    check_metric(metric)
    cells = store.cells()
    rows: dict[str, list[Score]] = defaultdict(list)
    for s in store.scores():
        rows[s.cell_key].append(s)
    families = {name: shift_family(name) for name in sorted({s.shift for r in rows.values() for s in r})
                if name != CLEAN}
    summaries = [summarize_cell(c, rows.get(c.key, []), families, metric) for c in cells]
    done = [c for c in summaries if c.done]
    explicit = _resolve_reference(reference, done) if reference else None
    first = sorted(done, key=lambda c: (c.cell.position, c.key))[:1]
    for c in done:
        if explicit is not None:
            ref = _pick_reference(c, explicit)
        else:
            # an adapted cell (stored as model+chain) is compared with its model's plain none cell
            own_none = [d for d in done if cell_model(d.cell) == cell_model(c.cell)
                        and d.cell.augmentation == "none" and cell_adapter(d.cell) == NO_ADAPTER]
            ref = _pick_reference(c, own_none) or _pick_reference(c, first)
        if ref is not None:
            c.reference_key = ref.key
            c.rbe = relative_balanced_error(c, ref)
    return RunSummary(run=store.run(), cells=summaries, families=families, reference=reference, metric=metric)


def load_summary(run_dir: str | Path, reference: str | None = None, metric: str = "accuracy") -> RunSummary:
    """Open ``RUN_DIR/results.sqlite`` and summarize it (clear error if it is not a run)."""
    path = Path(run_dir)
    if not path.exists():
        raise CellbenchError(f"{run_dir}: no such run folder")
    with ResultStore(path) as store:
        if store.run() is None:
            raise CellbenchError(f"{run_dir}: the results store holds no run yet")
        return summarize_run(store, reference, metric)


def severity_curve(summary: CellSummary, family: str, families: dict[str, str]) -> list[float | None]:
    """Mean test metric of *family*'s shifts at severities 0..5 (0 = clean test) for one cell."""
    rows = summary.test_rows()
    curve: list[float | None] = [summary.value(rows[(CLEAN, 0)]) if (CLEAN, 0) in rows else None]
    max_sev = max((sev for (_, sev) in rows), default=0)
    for sev in range(1, max(max_sev, 5) + 1):
        vals = [summary.value(s) for (shift, sv), s in rows.items() if sv == sev and families.get(shift) == family]
        curve.append(_mean(vals))
    return curve


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation (0 for one value)."""
    m = sum(values) / len(values)
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / len(values))
