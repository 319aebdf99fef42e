"""Executors: local Ray (2 CPUs) and --jobs 2 worker processes give the same scores as the local executor."""

from __future__ import annotations

from pathlib import Path

import pytest

from robustbench_cells import plugins
from robustbench_cells.bench.matrix import load_matrix
from robustbench_cells.bench.runner import RunOptions, run_matrix
from robustbench_cells.bench.store import ResultStore

TINY = Path(__file__).parent / "tiny_plugins"
MATRIX = """
name = "exec"
data = "tinyblobs:160"
image_size = 32
seeds = [0, 1]
models = ["tiny_cnn"]
augmentations = ["tiny_flip"]
[train]
epochs = 1
batch_size = 32
[shifts]
include = ["tiny_noise"]
severities = [2]
max_images = 24
"""


def _scores(run_dir: Path) -> dict[tuple, tuple]:
    with ResultStore(run_dir) as store:
        cells = {c.key: (c.model, c.augmentation, c.seed) for c in store.cells()}
        assert {c.status for c in store.cells()} == {"done"}
        return {(*cells[s.cell_key], s.split, s.shift, s.severity):
                (s.accuracy, s.balanced_accuracy, s.per_class, s.mean_confidence, s.ece, s.n)
                for s in store.scores()}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The local executor's scores (computed once for both comparisons)."""
    tmp = tmp_path_factory.mktemp("exec")
    mp = pytest.MonkeyPatch()
    mp.setenv("CELLBENCH_CACHE", str(tmp / "cache"))
    plugins.configure(plugins_dirs=[TINY])
    path = tmp / "exec.toml"
    path.write_text(MATRIX)
    local = run_matrix(load_matrix(path), RunOptions(out=tmp / "local"))
    assert local.done == 2
    yield path, _scores(local.run_dir)
    mp.undo()


@pytest.fixture(autouse=True)
def tiny_plugins(setup):
    plugins.configure(plugins_dirs=[TINY])


@pytest.mark.slow
def test_ray_executor_matches_local(setup, tmp_path):
    pytest.importorskip("ray")
    path, expected = setup
    result = run_matrix(load_matrix(path), RunOptions(out=tmp_path / "ray", executor="ray", jobs=2))
    assert result.done == 2 and result.failed == []
    assert _scores(result.run_dir) == expected


@pytest.mark.slow
def test_process_executor_matches_local(setup, tmp_path):
    path, expected = setup
    result = run_matrix(load_matrix(path), RunOptions(out=tmp_path / "procs", jobs=2))
    assert result.done == 2 and result.failed == []
    assert _scores(result.run_dir) == expected
    assert not (result.run_dir / "prepared").exists()  # the workers' arrays are cleaned up
