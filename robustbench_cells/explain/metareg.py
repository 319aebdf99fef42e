"""Meta-regression: learn, on the run's own labelled sets, how label-free signals map to accuracy.

Every held-out set of the leave-one-family-out calibration (:meth:`.core.Explainer.calibrate`) is a
labelled example of "an unlabeled target": for every cell we know the other estimators' values on it
(computed with its own family hidden, exactly as on a real target), its temperature-scaled
confidence and entropy, how much the cells agree with each other there, and how far the set is from
clean validation and from the nearest other benchmarked set, how far its predicted-class mix moved
from validation's, and we know the true accuracy. A ridge
regression on those features predicts the accuracy of a new (cell, target) pair.

Design choices that keep it honest on a few dozen sets:

- it predicts the *correction* to ``atc_ts`` (temperature-scaled ATC, always available), so a heavily
  regularised fit falls back to bias-corrected ATC rather than to the mean accuracy of the run;
- rows are weighted so every held-out group (shift family or labelled target) weighs the same: the
  calibration error it is judged by is family-balanced too;
- the ridge penalty is picked by an inner leave-one-group-out over the training groups.

It is validated like every other estimator: :func:`held_out_errors` fits without each group in turn
and records the error on it; the result then competes for the run's default estimator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: Estimator values used as features (a missing one is replaced by the row's ``atc_ts``).
ESTIMATE_FEATURES: tuple[str, ...] = ("atc_ts", "doc_ts", "atc_ne", "doc", "shift_matched", "atc_matched", "aol")
#: Label-free signals of the (cell, set) pair, see :func:`signals`.
SIGNAL_FEATURES: tuple[str, ...] = ("confidence_ts", "neg_entropy_ts", "val_confidence_ts", "agreement",
                                    "val_agreement", "val_accuracy", "class_shift", "distance_clean",
                                    "distance_nearest")
FEATURES: tuple[str, ...] = ESTIMATE_FEATURES + SIGNAL_FEATURES
#: The estimate the regression corrects (its column in :data:`FEATURES`).
BASE = "atc_ts"
#: Ridge penalties tried by the inner leave-one-group-out (feature columns are standardised).
ALPHAS: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
#: Penalty used when there are too few training groups to choose one.
DEFAULT_ALPHA = 10.0


def _mean_agreement(preds: Sequence[np.ndarray], i: int) -> float:
    others = [np.mean(preds[i] == p) for j, p in enumerate(preds) if j != i]
    return float(np.mean(others)) if others else 1.0


def _class_shift(val_pred: np.ndarray, set_pred: np.ndarray, n_classes: int) -> float:
    """Total variation distance between the predicted-class frequencies on validation and on the set."""
    a = np.bincount(val_pred, minlength=n_classes) / max(len(val_pred), 1)
    b = np.bincount(set_pred, minlength=n_classes) / max(len(set_pred), 1)
    return float(0.5 * np.abs(a - b).sum())


def signals(val_probas: Sequence[np.ndarray], val_labels: np.ndarray, temperatures: Sequence[float],
            set_probas: Sequence[np.ndarray], distance_clean: float, distance_nearest: float) -> list[dict[str, float]]:
    """The label-free signals of :data:`SIGNAL_FEATURES` for every cell on one set.

    ``val_probas`` / ``set_probas``: per cell, its validation and set probabilities (same cell
    order); ``temperatures``: per cell, fitted on validation; the distances are set-level
    fingerprint distances (to clean validation, and to the nearest benchmarked set that is not hidden).
    """
    from robustbench_cells.explain.calibration import apply_temperature
    from robustbench_cells.explain.estimate import negative_entropy

    val_preds = [np.asarray(p).argmax(1) for p in val_probas]
    set_preds = [np.asarray(p).argmax(1) for p in set_probas]
    out = []
    for i, (val_p, set_p, temp) in enumerate(zip(val_probas, set_probas, temperatures)):
        set_t, val_t = apply_temperature(set_p, temp), apply_temperature(val_p, temp)
        out.append({
            "confidence_ts": float(set_t.max(1).mean()),
            "neg_entropy_ts": float(negative_entropy(set_t).mean()),
            "val_confidence_ts": float(val_t.max(1).mean()),
            "agreement": _mean_agreement(set_preds, i),
            "val_agreement": _mean_agreement(val_preds, i),
            "val_accuracy": float(np.mean(val_preds[i] == np.asarray(val_labels))),
            # how far the predicted-class mix moved from validation's (a model collapsing onto one class)
            "class_shift": _class_shift(val_preds[i], set_preds[i], val_p.shape[1]),
            "distance_clean": float(distance_clean),
            "distance_nearest": float(distance_nearest),
        })
    return out


def feature_row(estimates: Mapping[str, float | None], signal: Mapping[str, float]) -> np.ndarray:
    """One feature vector in :data:`FEATURES` order (missing estimates -> the row's ``atc_ts``)."""
    base = estimates.get(BASE)
    base = 0.0 if base is None else float(base)
    vals = [base if estimates.get(name) is None else float(estimates[name]) for name in ESTIMATE_FEATURES]
    return np.array(vals + [float(signal[name]) for name in SIGNAL_FEATURES])


def _group_weights(groups: np.ndarray) -> np.ndarray:
    names, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse]


@dataclass
class MetaRegression:
    """A fitted ridge correction of ``atc_ts``; :meth:`fit` builds one, :meth:`predict` applies it."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    alpha: float

    @classmethod
    def _solve(cls, x: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float) -> MetaRegression:
        base = x[:, FEATURES.index(BASE)]
        mean = np.average(x, axis=0, weights=w)
        scale = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=w))
        scale[scale < 1e-9] = 1.0  # a constant column (e.g. one cell: agreement 1) contributes nothing
        z = (x - mean) / scale
        r = y - base
        r_mean = float(np.average(r, weights=w))
        # Weighted ridge on the centred columns; the intercept (bias of atc_ts) is not penalised.
        zw = z * w[:, None]
        coef = np.linalg.solve(z.T @ zw + alpha * np.eye(z.shape[1]), zw.T @ (r - r_mean))
        return cls(mean, scale, coef, r_mean, alpha)

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, groups: Sequence[str]) -> MetaRegression:
        """Fit on rows *x* (:data:`FEATURES` columns), true accuracies *y* and each row's group.

        The penalty is chosen by leave-one-group-out over the training groups (group-balanced mean
        absolute error); with fewer than 3 groups :data:`DEFAULT_ALPHA` is used.
        """
        x, y, groups = np.asarray(x, float), np.asarray(y, float), np.asarray(groups)
        w = _group_weights(groups)
        names = np.unique(groups)
        alpha = DEFAULT_ALPHA
        if len(names) >= 3:
            scores = []
            for a in ALPHAS:
                errs = []
                for g in names:
                    held = groups == g
                    model = cls._solve(x[~held], y[~held], _group_weights(groups[~held]), a)
                    errs.append(float(np.mean(np.abs(model.predict(x[held]) - y[held]))))
                scores.append(np.mean(errs))
            alpha = ALPHAS[int(np.argmin(scores))]
        return cls._solve(x, y, w, alpha)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted accuracies (0..1) for rows *x*."""
        x = np.atleast_2d(np.asarray(x, float))
        z = (x - self.mean) / self.scale
        return np.clip(x[:, FEATURES.index(BASE)] + self.intercept + z @ self.coef, 0.0, 1.0)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary: the penalty and the weight of every feature (per standard deviation)."""
        return {"alpha": self.alpha, "bias": self.intercept,
                "weights": {name: float(c) for name, c in zip(FEATURES, self.coef)}}


def held_out_errors(x: np.ndarray, y: np.ndarray, groups: Sequence[str]) -> list[tuple[str, float]]:
    """``[(group, prediction - truth), ...]``: every group predicted by a fit on the other groups.

    Empty with fewer than 2 groups (nothing to fit on)."""
    x, y, groups = np.asarray(x, float), np.asarray(y, float), np.asarray(groups)
    names = np.unique(groups)
    if len(names) < 2:
        return []
    out: list[tuple[str, float]] = []
    for g in names:
        held = groups == g
        model = MetaRegression.fit(x[~held], y[~held], groups[~held])
        out.extend((str(g), float(e)) for e in model.predict(x[held]) - y[held])
    return out
