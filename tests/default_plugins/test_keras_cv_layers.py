"""KerasCV layers through ``keras_layer`` (the optional ``[kerascv]`` extra; KerasCV is unmaintained)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from robustbench_cells import plugins
from robustbench_cells.default_plugins.external_augmentations import KerasCVWarning
from robustbench_cells.errors import CellbenchError


def test_a_kerascv_path_without_kerascv_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_cv", None)  # as if the extra were not installed
    with pytest.raises(CellbenchError, match=r"needs keras_cv \(pip install 'robustbench-cells\[kerascv\]'\)"):
        plugins.augmentations().get("keras_layer").build(layer="keras_cv.layers.RandAugment")


def test_kerascv_randaugment_runs_as_a_cellbench_augmentation_and_warns():
    pytest.importorskip("keras_cv", reason="the [kerascv] extra is not installed")
    images = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 3), dtype=np.uint8)
    with pytest.warns(KerasCVWarning, match="not reproducible under a seed"):
        fn = plugins.augmentations().get("keras_layer").build(layer="keras_cv.layers.RandAugment",
                                                              args={"value_range": [0, 255]})
    state = np.random.get_state()[1].copy()
    out = fn(images.copy(), np.random.default_rng(1))
    assert out.dtype == np.uint8 and out.shape == images.shape and not np.array_equal(out, images)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # NumPy's global RNG untouched
