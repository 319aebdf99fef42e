"""The runner in-process on tiny plugins: complete rows, failures recorded, resume, ensembles, run folder."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from robustbench_cells import plugins
from robustbench_cells.bench.matrix import cell_label, load_matrix
from robustbench_cells.bench.runner import RunOptions, run_matrix, stratified_subset
from robustbench_cells.bench.samples import load_samples
from robustbench_cells.bench.store import ResultStore
from robustbench_cells.errors import CellbenchError

TINY = Path(__file__).parent / "tiny_plugins"

MATRIX = """
name = "tiny"
data = "tinyblobs:160"
image_size = 32
seeds = [0]
models = ["tiny_cnn"]
augmentations = ["none", "tiny_flip"]
[train]
epochs = 1
batch_size = 32
[shifts]
include = ["tiny_*"]
severities = [1, 2]
max_images = 24
[[ensembles]]
name = "pair"
members = ["tiny_cnn/none", "tiny_cnn/tiny_flip"]
"""
ROWS_PER_CELL = 2 + 2 * 2  # clean val + clean test + 2 shifts x 2 severities


@pytest.fixture(autouse=True)
def tiny_env(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("CELLBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    plugins.configure(plugins_dirs=[TINY])


def matrix_file(tmp_path, text=MATRIX):
    path = tmp_path / "tiny.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One uninterrupted run shared by the read-only tests below."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CELLBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    plugins.configure(plugins_dirs=[TINY])
    tmp = tmp_path_factory.mktemp("run")
    result = run_matrix(load_matrix(matrix_file(tmp)), RunOptions(out=tmp / "out"))
    mp.undo()
    return result


def test_run_writes_every_row_and_the_run_folder(finished_run):
    result = finished_run
    assert (result.total, result.done, result.failed) == (3, 3, [])
    run_dir = result.run_dir
    log = (run_dir / "run.log").read_text()
    assert (run_dir / "matrix.toml").is_file() and "done tiny_cnn/none/0" in log
    images, labels = load_samples(run_dir)  # report samples: one shift-subset image per class
    assert images.dtype == np.uint8 and images.shape[0] == 8 and sorted(labels.tolist()) == list(range(8))
    assert "epoch tiny_cnn/none/0 1/1 loss=" in log
    with ResultStore(run_dir) as store:
        run = store.run()
        facts = run.config["data_facts"]
        assert facts["shift_images"] == 24 and run.config["shifts"]["names"] == ["tiny_dim", "tiny_noise"]
        assert run.data_spec == "tinyblobs:160" and len(run.class_names) == 8
        assert "tensorflow" in run.versions
        for cell in store.cells():
            rows = store.scores(cell.key)
            assert len(rows) == ROWS_PER_CELL, cell_label(cell)
            assert {(r.split, r.shift, r.severity) for r in rows} >= {("val", "clean", 0), ("test", "tiny_noise", 2)}
            shifted = [r for r in rows if r.shift != "clean"]
            assert all(r.n == 24 for r in shifted)
            assert all(0 <= r.accuracy <= 1 and 0 <= r.ece <= 1 and len(r.per_class) == 8 for r in rows)
            if cell.model != "pair":
                assert cell.params and cell.epochs == 1 and Path(cell.model_path).exists()


def test_ensemble_averages_member_probabilities(finished_run):
    run_dir = finished_run.run_dir
    with ResultStore(run_dir) as store:
        cells = {c.model + "/" + c.augmentation: c for c in store.cells()}
        ens = cells["pair/mixed"]
        members = [cells["tiny_cnn/none"], cells["tiny_cnn/tiny_flip"]]
        assert ens.config["members"] == [m.key for m in members]
        probs = [np.load(run_dir / "cells" / m.key / "probs.npz")["test|clean|0"] for m in members]
        labels_acc = store.scores(ens.key, "test")
    avg = np.mean(probs, axis=0)
    with ResultStore(run_dir) as store:
        clean = next(s for s in store.scores(ens.key, "test") if s.shift == "clean")
    # the ensemble's accuracy is that of the averaged probabilities
    ens_probs = np.load(run_dir / "cells" / ens.key / "probs.npz")["test|clean|0"]
    np.testing.assert_allclose(ens_probs, avg, rtol=1e-6)
    assert clean.n == len(avg) and labels_acc


def test_resume_of_a_finished_run_trains_nothing(finished_run):
    run_dir = finished_run.run_dir
    before = sqlite3.connect(run_dir / "results.sqlite").execute("SELECT key, finished FROM cells").fetchall()
    samples = load_samples(run_dir)
    (run_dir / "samples.npz").unlink()  # as in a run made before the file existed
    result = run_matrix(load_matrix(run_dir / "matrix.toml"), RunOptions(out=run_dir, resume=True))
    assert (result.done, result.failed) == (3, [])
    again = load_samples(run_dir)  # written again: the same images
    assert np.array_equal(again[0], samples[0]) and np.array_equal(again[1], samples[1])
    after = sqlite3.connect(run_dir / "results.sqlite").execute("SELECT key, finished FROM cells").fetchall()
    assert before == after


def test_resume_with_a_changed_matrix_and_reusing_a_folder_are_refused(finished_run, tmp_path):
    run_dir = finished_run.run_dir
    changed = matrix_file(tmp_path, MATRIX.replace("severities = [1, 2]", "severities = [1, 3]"))
    with pytest.raises(CellbenchError, match="the matrix or data differ from the stored run .changed: shifts"):
        run_matrix(load_matrix(changed), RunOptions(out=run_dir, resume=True))
    with pytest.raises(CellbenchError, match="already holds a run; add --resume"):
        run_matrix(load_matrix(changed), RunOptions(out=run_dir))
    with pytest.raises(CellbenchError, match="holds no run"):
        run_matrix(load_matrix(changed), RunOptions(out=tmp_path / "empty", resume=True))


def test_failing_cell_is_recorded_and_the_matrix_goes_on(tmp_path):
    text = MATRIX.replace('models = ["tiny_cnn"]', 'models = ["tiny_cnn", { name = "tiny_cnn", options = { fail = true } }]')
    text = text.replace('augmentations = ["none", "tiny_flip"]', 'augmentations = ["none"]')
    text = text.replace('members = ["tiny_cnn/none", "tiny_cnn/tiny_flip"]', 'members = ["tiny_cnn/none", "tiny_cnn(fail=True)/none"]')
    text = text.replace("severities = [1, 2]", "severities = [1]")
    result = run_matrix(load_matrix(matrix_file(tmp_path, text)), RunOptions(out=tmp_path / "out"))
    assert result.total == 3 and result.done == 1
    failed = dict(result.failed)
    assert "tiny model asked to fail" in failed["tiny_cnn(fail=True)/none/0"]
    assert "ensemble member(s) not done: tiny_cnn(fail=True)/none/0" in failed["pair/none/0"]
    with ResultStore(result.run_dir) as store:
        assert {c.status for c in store.cells()} == {"done", "failed"}
        assert all(store.scores(c.key) == [] for c in store.cells(status="failed"))


def test_cells_selection_runs_only_matching_cells(tmp_path):
    text = MATRIX.replace("severities = [1, 2]", "severities = [1]").replace("[[ensembles]]", "[[xx]]")
    text = text.split("[[xx]]")[0]
    result = run_matrix(load_matrix(matrix_file(tmp_path, text)),
                        RunOptions(out=tmp_path / "out", cells=["*/tiny_flip/*"]))
    assert result.total == 1 and result.done == 1
    with ResultStore(result.run_dir) as store:
        assert [c.augmentation for c in store.cells()] == ["tiny_flip"]


def test_stratified_subset_is_fixed_and_proportional():
    labels = np.repeat(np.arange(4), [50, 30, 15, 5])
    idx = stratified_subset(labels, 20, seed=3)
    assert len(idx) == 20 and np.array_equal(idx, stratified_subset(labels, 20, seed=3))
    assert np.bincount(labels[idx]).tolist() == [10, 6, 3, 1]
    assert not np.array_equal(idx, stratified_subset(labels, 20, seed=4))
    assert len(stratified_subset(labels, 500, seed=0)) == 100


def test_default_run_folder_and_resume_without_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = MATRIX.replace("severities = [1, 2]", "severities = [1]").split("[[ensembles]]")[0]
    matrix = load_matrix(matrix_file(tmp_path, text))
    first = run_matrix(matrix, RunOptions(cells=["*/none/*"]))
    assert first.run_dir.parent == Path("runs") and first.run_dir.name.startswith("tiny-")
    # --resume without --out continues the newest runs/tiny-* and adds the newly selected cells
    second = run_matrix(matrix, RunOptions(resume=True))
    assert second.run_dir == first.run_dir and (second.total, second.done) == (2, 2)
    with pytest.raises(CellbenchError, match="no earlier run of 'other'"):
        run_matrix(load_matrix(matrix_file(tmp_path, text.replace('name = "tiny"', 'name = "other"'))),
                   RunOptions(resume=True))


def test_targets_are_scored_for_every_cell_and_unknown_classes_refused(tmp_path):
    from robustbench_cells.report.tables import summarize_run

    text = MATRIX.replace('[train]', '[[targets]]\nname = "lab2"\ndata = "tinyblobs:40"\n[train]', 1)
    result = run_matrix(load_matrix(matrix_file(tmp_path, text)), RunOptions(out=tmp_path / "out"))
    assert (result.done, result.failed) == (3, [])
    with ResultStore(tmp_path / "out") as store:
        rows = [s for s in store.scores() if s.split == "target"]
        assert sorted({s.shift for s in rows}) == ["lab2"] and len(rows) == 3  # two trained cells + ensemble
        assert all(s.n == 40 and 0 <= s.balanced_accuracy <= 1 for s in rows)
        facts = store.run().config["data_facts"]["targets"]["lab2"]
        assert facts["images"] == 40 and sum(facts["class_counts"].values()) == 40
        summary = summarize_run(store)  # the report reads a run with target rows: a column per target
        from robustbench_cells.report.tables import summary_row, to_markdown

        row = summary_row(summary.done[0])
        assert row["target lab2"].endswith("(n=40)")
        assert "target lab2" in to_markdown(summary).splitlines()[2]
        from robustbench_cells.report.html import build_report

        page = build_report(summary, samples=False)
        assert "<th>target lab2</th>" in page.replace(' class="num"', "") and "(n=40)" in page
    bad = text.replace('data = "tinyblobs:40"', 'data = "tinyblobs:40"\nclasses = { basophil = "zebra" }')
    (tmp_path / "b").mkdir()
    with pytest.raises(CellbenchError, match=r"targets\[0\]: class\(es\) 'basophil' \(-> 'zebra'\) are not among"):
        run_matrix(load_matrix(matrix_file(tmp_path / "b", bad)), RunOptions(out=tmp_path / "out2"))


OUTSIDE = """
name = "outside"
data = "tinyblobs:160"
image_size = 32
models = ["tiny_cnn", { path = "mine.keras", preprocess = "unit" }]
augmentations = ["none"]
adapters = ["none", "bn_adapt"]
[train]
epochs = 1
batch_size = 32
[shifts]
include = ["tiny_*"]
severities = [1]
max_images = 24
[[ensembles]]
name = "both"
members = ["tiny_cnn/none", "mine.keras/external"]
"""


def unit_bn_model(path: Path, classes: int = 8) -> None:
    """A model trained elsewhere: takes [0, 1] pixels, has batch norm (for bn_adapt), gives probabilities."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3, strides=2)(inputs))
    outputs = keras.layers.Dense(classes, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    keras.Model(inputs, outputs).save(path)


def test_a_model_trained_elsewhere_is_scored_adapted_and_ensembled_beside_trained_cells(cli, tmp_path):
    unit_bn_model(tmp_path / "mine.keras")
    path = matrix_file(tmp_path, OUTSIDE)
    result = run_matrix(load_matrix(path), RunOptions(out=tmp_path / "out"))
    assert (result.total, result.done, result.failed) == (5, 5, [])
    with ResultStore(tmp_path / "out") as store:
        cells = {cell_label(c): c for c in store.cells()}
        assert sorted(cells) == ["both/mixed/0", "mine.keras+bn_adapt/external/0", "mine.keras/external/0",
                                 "tiny_cnn+bn_adapt/none/0", "tiny_cnn/none/0"]
        score, adapted = cells["mine.keras/external/0"], cells["mine.keras+bn_adapt/external/0"]
        assert score.config["kind"] == "score" and adapted.config["base"] == score.key
        assert score.epochs is None and score.params and Path(score.model_path).is_file()
        for cell in (score, adapted):
            rows = {(r.split, r.shift, r.severity) for r in store.scores(cell.key)}
            assert rows == {("val", "clean", 0), ("test", "clean", 0), ("test", "tiny_dim", 1),
                            ("test", "tiny_noise", 1)}, cell_label(cell)
        assert cells["both/mixed/0"].config["members"] == [cells["tiny_cnn/none/0"].key, score.key]
    code, out, err = cli("--plugins-dir", TINY, "report", tmp_path / "out")
    assert code == 0, err
    assert "mine.keras" in out and "bn_adapt" in out and "external" in out
    # --resume redoes nothing: the score cell is done like any other
    result = run_matrix(load_matrix(path), RunOptions(out=tmp_path / "out", resume=True))
    assert (result.done, result.failed) == (5, [])
    assert (tmp_path / "out" / "run.log").read_text().count("done mine.keras/external/0") == 1


@pytest.mark.parametrize("entry, message", [
    ('{ path = "gone.keras" }', "models[1].path: {tmp}/gone.keras: no such file or folder"),
    ('{ path = "mine.keras", preprocess = "caffe" }', "models[1].preprocess: 'caffe' is not one of"),
])
def test_a_bad_model_entry_is_one_line_before_any_data_loads(cli, tmp_path, entry, message):
    (tmp_path / "mine.keras").write_bytes(b"checked, never loaded")
    path = matrix_file(tmp_path, OUTSIDE.replace('{ path = "mine.keras", preprocess = "unit" }', entry))
    code, _, err = cli("--plugins-dir", TINY, "run", path, "--out", tmp_path / "out", "-q")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert message.format(tmp=tmp_path) in err and str(path) in err
    assert not (tmp_path / "out").exists()  # nothing loaded, no run folder
