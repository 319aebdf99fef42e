"""Leave-one-group-out calibration of explain's estimators on the run's own labelled sets.

Groups are the run's shift families and ``target:NAME`` for each labelled ``[[targets]]`` set;
every held-out (group, set, cell) gives every estimate (its own group hidden from the shift-based
estimators), meta-regression features and the true accuracy. Their errors become the intervals
(:mod:`.intervals`) and fit the meta-regression (:mod:`.metareg`).

:class:`HeldOutCalibration` is a part of :class:`.core.Explainer`, kept apart because it is its own
job: it works on the explainer's prepared run (the attributes annotated below) and its per-set
estimates (``_set_estimates``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from robustbench_cells.errors import CellbenchError
from robustbench_cells.explain.estimate import ESTIMATORS
from robustbench_cells.explain.fingerprint import Reference, image_statistics
from robustbench_cells.explain.nearest import Candidate, rank_candidates
from robustbench_cells.explain.target import Target


class HeldOutCalibration:
    """:meth:`calibrate` and the labelled sets it holds out, for :class:`.core.Explainer`."""

    # Prepared by Explainer.__init__; Explainer also gives _model, _stored and _set_estimates.
    say: Callable[[str], None]
    config: dict[str, Any]
    cells: list[Any]
    val: Any
    shifted: dict[tuple[str, int], np.ndarray]
    families: dict[str, str]
    reference: Reference
    _rows: list[dict[str, Any]] | None
    _calibrations: dict[frozenset[str], tuple[dict[str, Any] | None, Any]]
    _targets: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None
    target_notes: list[str]

    def labelled_targets(self) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The run's ``[[targets]]`` that every cell was scored on: ``{name: (images, labels, fingerprint stats)}``.

        Loaded once, at the run's image size. A target that cannot be loaded any more (moved, or a
        relative path from another folder) is left out of the calibration with a note."""
        if self._targets is not None:
            return self._targets
        from robustbench_cells.bench.matrix import TargetEntry
        from robustbench_cells.bench.rundata import load_target as load_run_target

        self._targets = {}
        for entry in self.config.get("targets", []):
            name = entry.get("name", "?")
            if not all(f"target|{name}|0" in self._stored(c) for c in self.cells):
                self.target_notes.append(f"target {name}: not every cell has predictions on it; left out")
                continue
            try:
                t = TargetEntry(**entry)
                ds = load_run_target(t.data, self.val.images.shape[1], self.val.class_names, t.classes,
                                     where=f"target {name}")
            except (CellbenchError, OSError, TypeError) as exc:
                self.target_notes.append(f"target {name}: {exc}; left out of the calibration")
                continue
            scored = len(self._stored(self.cells[0])[f"target|{name}|0"])
            if len(ds) != scored:
                self.target_notes.append(f"target {name}: {len(ds)} images now, not the {scored} the cells were "
                                         "scored on; left out of the calibration")
                continue
            self._targets[name] = (ds.images, ds.labels, image_statistics(ds.images))
        return self._targets

    def _calibration_rows(self) -> list[dict[str, Any]]:
        """Every held-out (group, set, cell): all estimates (own group hidden), meta-regression
        features and the true accuracy. Computed once per run; groups are shift families and
        ``target:NAME`` for each labelled target of the run."""
        if self._rows is not None:
            return self._rows
        sets = [k for k in self.shifted if k[0] != "clean"
                and all(k in self._model(c)[2] for c in self.cells)]
        fams = sorted({self.families.get(k[0], "?") for k in sets})
        targets = self.labelled_targets()
        rows: list[dict[str, Any]] = []
        if len(fams) + len(targets) < 2:
            self._rows = rows
            return rows
        self.say(f"calibrating: leave-one-family-out over {len(sets)} shifted sets in {len(fams)} families"
                 + (f" and {len(targets)} labelled target(s)" if targets else ""))
        for fam in fams:
            hidden = {k for k in self.shifted if self.families.get(k[0]) == fam and k[0] != "clean"}
            others = {k: v for k, v in self.shifted.items() if k not in hidden}
            for key in [k for k in sets if k in hidden]:
                cands = rank_candidates(self.shifted[key], others, self.families, self.reference)
                probs = [self._model(c)[2][key] for c in self.cells]
                rows += self._rows_for_set(fam, f"{key[0]}@{key[1]}", cands, [p for p, _y in probs], probs[0][1],
                                           hidden)
        for name, (_images, labels, stats) in targets.items():
            # A labelled target is held out like a family: it hides nothing the shift estimators use.
            cands = rank_candidates(stats, self.shifted, self.families, self.reference)
            probs = [self._stored(c)[f"target|{name}|0"] for c in self.cells]
            rows += self._rows_for_set(f"target:{name}", f"target:{name}", cands, probs, labels, set())
        self._rows = rows
        return rows

    def _rows_for_set(self, group: str, name: str, cands: list[Candidate], probs: list[np.ndarray],
                      labels: np.ndarray, hidden: set[tuple[str, int]]) -> list[dict[str, Any]]:
        from robustbench_cells.explain.metareg import feature_row

        ests = self._set_estimates(probs, cands, hidden)
        out = []
        for i, (est, sig, p) in enumerate(zip(ests, self._signals(probs, cands), probs)):
            out.append({"group": group, "set": name, "cell": i, "estimates": est,
                        "features": feature_row(est, sig), "truth": float(np.mean(p.argmax(1) == labels))})
        return out

    def _signals(self, probs: list[np.ndarray], cands: list[Candidate]) -> list[dict[str, float]]:
        """Meta-regression signals of every cell on one set (see :func:`.metareg.signals`)."""
        from robustbench_cells.explain.metareg import signals

        models = [self._model(c) for c in self.cells]
        clean = next((c.distance for c in cands if c.shift == "clean"), np.nan)
        return signals([m[1] for m in models], self.val.labels, [m[3] for m in models], probs, clean,
                       cands[0].distance if cands else np.nan)

    def calibrate(self, exclude: frozenset[str] = frozenset()) -> dict[str, Any] | None:
        """Leave-one-family-out errors of every estimator on the run's own shifted sets and labelled
        targets, without the groups in *exclude* (the target being explained, when it is one of the
        run's own labelled targets: its truth must not calibrate its own estimate).

        ``None`` when there is nothing to hold out (no stored predictions on shifted sets, or fewer
        than two groups). The fitted meta-regression is kept for :meth:`explain`."""
        if exclude in self._calibrations:
            return self._calibrations[exclude][0]
        from robustbench_cells.explain.intervals import summarize_errors
        from robustbench_cells.explain.metareg import MetaRegression, held_out_errors

        rows = [r for r in self._calibration_rows() if r["group"] not in exclude]
        groups = sorted({r["group"] for r in rows})
        errors: dict[str, list[tuple[str, float]]] = {name: [] for name in ESTIMATORS}
        model = None
        if len(groups) >= 2:
            for r in rows:
                for name, value in r["estimates"].items():
                    if value is not None:
                        errors[name].append((r["group"], float(value) - r["truth"]))
            x = np.stack([r["features"] for r in rows])
            y = np.array([r["truth"] for r in rows])
            g = [r["group"] for r in rows]
            errors["metareg"] = held_out_errors(x, y, g)
            model = MetaRegression.fit(x, y, g)
        summary = summarize_errors(errors)
        calib = None
        if summary:
            calib = {"families": groups, "n_sets": len({r["set"] for r in rows}), "estimators": summary,
                     "targets": [gr.split(":", 1)[1] for gr in groups if gr.startswith("target:")],
                     "excluded": sorted(exclude), "notes": list(self.target_notes),
                     "metareg": model.as_dict() if model is not None else None}
        self._calibrations[exclude] = (calib, model)
        return calib

    def _own_targets(self, target: Target) -> frozenset[str]:
        """Calibration groups of the run's labelled targets that *are* this target (same images)."""
        out = set()
        for name, (images, _labels, _stats) in self.labelled_targets().items():
            if images.shape == target.images.shape and float(
                    np.mean(np.abs(images.astype(np.float32) - target.images.astype(np.float32)))) < 2.0:
                out.add(f"target:{name}")
        return frozenset(out)
