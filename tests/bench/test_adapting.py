"""The matrix ``adapters`` axis: every trained cell scored through each test-time adapter chain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robustbench_cells.bench.matrix import cell_label, expand_cells, load_matrix, select_cells
from robustbench_cells.bench.runner import RunOptions, run_matrix
from robustbench_cells.bench.store import ResultStore
from robustbench_cells.errors import CellbenchError
from tests.bench.test_runner import tiny_env  # noqa: F401 - the tiny plugins and a fresh cache

MATRIX = """
name = "tiny-adapt"
data = "tinyblobs:160"
image_size = 32
seeds = [0]
models = ["tiny_cnn"]
augmentations = ["none"]
adapters = {adapters}
[train]
epochs = 1
batch_size = 32
[shifts]
include = ["tiny_*"]
severities = [1]
max_images = 24
"""


def write(tmp_path: Path, adapters: str) -> Path:
    path = tmp_path / "m.toml"
    path.write_text(MATRIX.format(adapters=adapters))
    return path


def test_each_adapter_chain_is_a_cell_scored_on_every_set_and_resume_redoes_nothing(tmp_path):
    matrix = load_matrix(write(tmp_path, '["none", "tta", ["stain_norm", "bn_adapt"]]'))
    assert matrix.adapters == ["none", "tta", "stain_norm+bn_adapt"]
    result = run_matrix(matrix, RunOptions(out=tmp_path / "out"))
    assert (result.total, result.done, result.failed) == (3, 3, [])
    with ResultStore(tmp_path / "out") as store:
        cells = {cell_label(c): c for c in store.cells()}
        assert set(cells) == {"tiny_cnn/none/0", "tiny_cnn+tta/none/0", "tiny_cnn+stain_norm+bn_adapt/none/0"}
        plain, tta = cells["tiny_cnn/none/0"], cells["tiny_cnn+tta/none/0"]
        rows = {(r.split, r.shift, r.severity) for r in store.scores(tta.key)}
        assert rows == {(r.split, r.shift, r.severity) for r in store.scores(plain.key)}
        assert len(rows) == 2 + len(matrix.shifts)
    probs_plain = np.load(tmp_path / "out" / "cells" / plain.key / "probs.npz")
    probs_tta = np.load(tmp_path / "out" / "cells" / tta.key / "probs.npz")
    assert set(probs_plain.files) == set(probs_tta.files)
    assert not np.allclose(probs_plain["test|clean|0"], probs_tta["test|clean|0"])  # TTA really averaged views
    again = run_matrix(load_matrix(write(tmp_path, '["none", "tta", ["stain_norm", "bn_adapt"]]')),
                       RunOptions(out=tmp_path / "out", resume=True))
    assert again.done == 3 and again.seconds < result.seconds


def test_selecting_an_adapted_cell_brings_its_trained_cell(tmp_path):
    matrix = load_matrix(write(tmp_path, '["none", "tta"]'))
    chosen = select_cells(expand_cells(matrix, "fp"), ["*+tta/*"])
    assert [c.config["kind"] for c in chosen] == ["train", "adapt"]


@pytest.mark.parametrize("value, message", [
    ('["bn_adaptt"]', "bn_adapt"),
    ('"tta"', "non-empty array"),
    ('["tta", "tta"]', "listed twice"),
    ('[3]', "adapter name or a list"),
])
def test_bad_adapters_are_named_at_validation(tmp_path, value, message):
    with pytest.raises(CellbenchError, match="adapters") as err:
        load_matrix(write(tmp_path, value))
    assert message in str(err.value)
