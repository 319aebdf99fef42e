"""Summary metrics from stored rows, checked against numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_cells import plugins
from robustbench_cells.bench import metrics
from robustbench_cells.bench.store import Cell, ResultStore, Score
from robustbench_cells.errors import CellbenchError
from robustbench_cells.hookspecs import hookimpl
from robustbench_cells.registry import ShiftSpec


class _Shifts:
    @hookimpl
    def register_shifts(self, register):
        identity = lambda images, p, rng: images  # noqa: E731 - the metrics never apply shifts
        register(ShiftSpec("tm_noise", "noise", identity, (1, 2, 3, 4, 5)))
        register(ShiftSpec("tm_blur", "blur", identity, (1, 2, 3, 4, 5)))


@pytest.fixture
def shift_plugins(monkeypatch):
    host = plugins.PluginHost(entry_points=False, extra_plugins=[("metrics_test", _Shifts())])
    monkeypatch.setattr(plugins, "_host", host)


def _rows(key, val, clean, shifted):
    """``shifted``: {(shift, sev): (acc, balanced_acc)}; ECE grows with the error so its mean is checkable."""
    out = [Score(key, "val", "clean", 0, val, val, [val] * 8, 0.9, 0.01, 100),
           Score(key, "test", "clean", 0, clean[0], clean[1], [clean[0]] * 8, 0.9, 0.02, 100)]
    for (shift, sev), (acc, bacc) in shifted.items():
        out.append(Score(key, "test", shift, sev, acc, bacc, [acc] * 8, 0.8, round(1 - acc, 3), 100))
    return out


# A: model m, no augmentation (the default rBE reference of model m); B: m + simple; C: m2 + simple (m2 has
# no 'none' cell, so its reference is the first cell, A); D failed. 'ghost' is a shift no plugin registers.
A = dict(val=0.95, clean=(0.9, 0.8), shifted={("tm_noise", 1): (0.7, 0.6), ("tm_noise", 2): (0.5, 0.4),
                                                ("tm_blur", 1): (0.8, 0.7), ("ghost", 1): (0.62, 0.5)})
B = dict(val=0.96, clean=(0.92, 0.9), shifted={("tm_noise", 1): (0.85, 0.8), ("tm_noise", 2): (0.75, 0.7),
                                                 ("tm_blur", 1): (0.9, 0.85), ("ghost", 1): (0.8, 0.7)})
C = dict(val=0.96, clean=(0.92, 0.9), shifted={**B["shifted"], ("tm_noise", 1): (0.84, 0.8)})


@pytest.fixture
def store(tmp_path, shift_plugins):
    s = ResultStore(tmp_path, create=True)
    run = s.create_run("r", {}, {}, "synthetic", "fp", [f"c{i}" for i in range(8)])
    cells = [Cell("aaaa", "m", "none", 0, position=0), Cell("bbbb", "m", "simple", 0, position=1),
             Cell("cccc", "m2", "simple", 0, position=2), Cell("dddd", "m2", "none", 0, position=3)]
    s.add_cells(run.id, cells)
    for key, spec in (("aaaa", A), ("bbbb", B), ("cccc", C)):
        s.finish_cell(key, _rows(key, **spec), params=10, model_path=None, train_seconds=1, eval_seconds=1,
                      epochs=1)
    s.mark_failed("dddd", "boom")
    yield s
    s.close()


def test_cell_metrics_match_hand_computation(store):
    summary = metrics.summarize_run(store)
    a = summary.get("aaaa")
    assert a.clean_val == 0.95 and a.clean_test == 0.9
    # every (shift, severity) row weighs the same: (0.7 + 0.5 + 0.8 + 0.62) / 4, not the mean of family means
    assert a.mean_shifted == pytest.approx(0.655)
    assert a.mean_shifted != pytest.approx(np.mean(list(a.per_family.values())))
    assert a.per_family == pytest.approx({"noise": 0.6, "blur": 0.8, "unknown": 0.62})
    assert list(a.per_family) == ["noise", "blur", "unknown"]  # SHIFT_FAMILIES order, unknown last
    assert a.worst_family == "noise" and a.worst_shift == "tm_noise"
    assert a.gap == pytest.approx(0.95 - 0.655)
    assert a.ece_clean == 0.02 and a.ece_shifted == pytest.approx((0.3 + 0.5 + 0.2 + 0.38) / 4)
    assert summary.families == {"tm_noise": "noise", "tm_blur": "blur", "ghost": "unknown"}


def test_rbe_against_default_references(store):
    summary = metrics.summarize_run(store)
    a, b, c = summary.get("aaaa"), summary.get("bbbb"), summary.get("cccc")
    assert a.rbe == pytest.approx(1.0) and a.reference_key == "aaaa"
    # B vs A per shift: noise (0.1+0.2)/(0.2+0.4)=0.5, blur 0.05/0.1=0.5, ghost 0.2/0.3 -> mean 0.5556
    assert b.rbe == pytest.approx((0.5 + 0.5 + 2 / 3) / 3) and b.reference_key == "aaaa"
    # m2 has no 'none' cell: falls back to the first cell
    assert c.reference_key == "aaaa" and c.rbe == pytest.approx(b.rbe)


def test_adapted_cells_are_compared_with_their_models_plain_none_cell(tmp_path, shift_plugins):
    """An adapted cell is stored as ``m+bn_adapt`` / ``none``: its rBE reference is ``m``'s plain none cell."""
    s = ResultStore(tmp_path, create=True)
    run = s.create_run("r", {}, {}, "synthetic", "fp", [f"c{i}" for i in range(8)])
    first = Cell("zzzz", "m0", "simple", 0, position=0)
    plain = Cell("aaaa", "m", "none", 0, position=1)
    adapted = Cell("eeee", "m+bn_adapt", "none", 0, config={"kind": "adapt", "base": "aaaa", "adapter": "bn_adapt",
                                                             "base_label": "m/none/0", "seed": 0}, position=2)
    s.add_cells(run.id, [first, plain, adapted])
    for key, spec in (("zzzz", B), ("aaaa", A), ("eeee", C)):
        s.finish_cell(key, _rows(key, **spec), params=10, model_path=None, train_seconds=1, eval_seconds=1, epochs=1)
    summary = metrics.summarize_run(s)
    assert summary.get("eeee").reference_key == "aaaa"  # not itself, not the first cell
    assert summary.get("aaaa").reference_key == "aaaa"
    s.close()


def test_rbe_with_explicit_reference(store):
    summary = metrics.summarize_run(store, reference="m/simple")
    a = summary.get("aaaa")
    assert a.reference_key == "bbbb"
    assert a.rbe == pytest.approx((2 + 2 + 1.5) / 3)
    assert metrics.summarize_run(store, reference="cccc").get("bbbb").reference_key == "cccc"
    with pytest.raises(CellbenchError, match="--reference 'nope'.*m/simple"):
        metrics.summarize_run(store, reference="nope")
    with pytest.raises(CellbenchError, match="no done cell"):
        metrics.summarize_run(store, reference="dddd")  # the failed cell has no scores to compare with


def test_rbe_skips_shifts_that_do_not_hurt_the_reference(store):
    summary = metrics.summarize_run(store)
    a, b = summary.get("aaaa"), summary.get("bbbb")
    flat = [Score(s.cell_key, s.split, s.shift, s.severity, s.accuracy, 0.8 if s.shift == "tm_blur" else
                  s.balanced_accuracy, s.per_class, s.mean_confidence, s.ece, s.n) for s in a.scores]
    a.scores = flat  # tm_blur now costs the reference nothing: no scale, so it is left out
    assert metrics.relative_balanced_error(b, a) == pytest.approx((0.5 + 2 / 3) / 2)


def test_ordering_failed_cells_and_grid(store):
    summary = metrics.summarize_run(store)
    assert [c.key for c in summary.done] == ["bbbb", "cccc", "aaaa"]  # 0.825 > 0.8225 > 0.655
    failed = summary.not_done
    assert [c.key for c in failed] == ["dddd"]
    assert failed[0].mean_shifted is None and failed[0].cell.error == "boom" and failed[0].rbe is None
    models, augs, values = summary.grid()
    assert models == ["m", "m2"] and augs == ["none", "simple"]
    assert values == {("m", "none"): [pytest.approx(0.655)], ("m", "simple"): [pytest.approx(0.825)],
                      ("m2", "simple"): [pytest.approx(0.8225)]}


def test_severity_curve_and_cell_lookup(store):
    summary = metrics.summarize_run(store)
    a = summary.get("aaaa")
    assert metrics.severity_curve(a, "noise", summary.families) == [0.9, 0.7, 0.5, None, None, None]
    assert summary.get("m2/simple").key == "cccc"
    with pytest.raises(CellbenchError, match="--cell 'zz': no cell match"):
        summary.get("zz")


def test_unregistered_shift_family_is_unknown(shift_plugins):
    assert metrics.shift_family("tm_blur") == "blur"
    assert metrics.shift_family("uninstalled_plugin_shift") == "unknown"
    assert metrics.family_order(["unknown", "zeta", "blur", "noise"]) == ["noise", "blur", "zeta", "unknown"]


def test_load_summary_errors(tmp_path):
    with pytest.raises(CellbenchError, match="no such run folder"):
        metrics.load_summary(tmp_path / "missing")
    with pytest.raises(CellbenchError, match="not a cellbench run folder"):
        metrics.load_summary(tmp_path)
    ResultStore(tmp_path, create=True).close()
    with pytest.raises(CellbenchError, match="holds no run"):
        metrics.load_summary(tmp_path)


def test_balanced_accuracy_metric(store):
    summary = metrics.summarize_run(store, metric="balanced_accuracy")
    a = summary.get("aaaa")
    assert summary.metric_label == "balanced accuracy"
    assert a.clean_test == 0.8 and a.clean_val == 0.95  # val rows store acc == balanced acc here
    assert a.mean_shifted == pytest.approx((0.6 + 0.4 + 0.7 + 0.5) / 4)
    assert a.per_family == pytest.approx({"noise": 0.5, "blur": 0.7, "unknown": 0.5})
    assert a.rbe == pytest.approx(1.0)  # rBE is balanced error whatever the metric
    assert metrics.severity_curve(a, "noise", summary.families)[:3] == [0.8, 0.6, 0.4]
    with pytest.raises(CellbenchError, match="--metric 'f1'"):
        metrics.summarize_run(store, metric="f1")


def test_run_without_shifts_ranks_by_clean_test(tmp_path, shift_plugins):
    s = ResultStore(tmp_path, create=True)
    run = s.create_run("r", {}, {}, "synthetic", "fp", ["a"])
    s.add_cells(run.id, [Cell("k1", "m", "none", 0, position=0), Cell("k2", "m", "simple", 0, position=1)])
    for key, acc in (("k1", 0.7), ("k2", 0.8)):
        s.finish_cell(key, _rows(key, val=acc, clean=(acc, acc), shifted={}), params=1, model_path=None,
                      train_seconds=1, eval_seconds=1, epochs=1)
    summary = metrics.summarize_run(s)
    assert [c.key for c in summary.done] == ["k2", "k1"]
    assert summary.get("k1").mean_shifted is None and summary.get("k1").worst_family is None
    assert summary.get("k1").rbe is None and summary.get("k1").gap is None
    s.close()
