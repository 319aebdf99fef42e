"""The README's plugin example (plugins/cellbench-example-aug), loaded from its exact files."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np

from robustbench_cells import plugins
from robustbench_cells.data.dataset import Dataset
from robustbench_cells.pipeline import TrainingBatches

EXAMPLE = Path(__file__).resolve().parents[1] / "plugins" / "cellbench-example-aug"


def test_pyproject_declares_the_entry_point():
    meta = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    entry = meta["project"]["entry-points"]["cellbench"]
    assert entry == {"example_aug": "cellbench_example_aug"}
    assert (EXAMPLE / f"{entry['example_aug']}.py").is_file()


def test_example_plugin_runs_through_the_pipeline():
    host = plugins.PluginHost(entry_points=False, plugins_dirs=[EXAMPLE])
    spec = host.augmentations.get("channel_shuffle")
    assert spec.plugin == "cellbench_example_aug" and spec.kind == "image"

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 12, 12, 3), dtype=np.uint8)
    ds = Dataset(images, np.arange(40) % 4, ("a", "b", "c", "d"), source="toy")
    tb = TrainingBatches(ds, ["channel_shuffle", "mixup"], batch_size=16, seed=0, registry=host.augmentations)
    batches = list(tb.epoch(0))
    assert len(batches) == len(tb) == 3
    assert all(x.dtype == np.float32 and np.allclose(y.sum(1), 1) for x, y in batches)

    shuffle = spec.build(p=1.0)
    out = shuffle(images, np.random.default_rng(1))
    # Same pixels per image, channels permuted; p=1 leaves some images changed.
    np.testing.assert_array_equal(np.sort(out, axis=3), np.sort(images, axis=3))
    assert (out != images).any()
    np.testing.assert_array_equal(spec.build(p=0.0)(images, np.random.default_rng(1)), images)


def test_example_plugin_via_cli_plugins_dir(cli):
    code, out, err = cli("--plugins-dir", EXAMPLE, "ls", "augmentations")
    assert code == 0, err
    assert "channel_shu" in out  # the table may wrap the name at narrow terminal widths
