"""The weights option: 'none' spellings, local files (whole model or application base), bad files."""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_cells.errors import CellbenchError
from robustbench_cells.models.simple import build_simple_cnn
from robustbench_cells.models.weights import normalize_weights


def test_normalize_weights_spellings():
    assert normalize_weights(None) is None
    assert normalize_weights("None") is None
    assert normalize_weights("") is None
    assert normalize_weights("ImageNet") == "imagenet"
    assert normalize_weights("w.weights.h5") == "w.weights.h5"


@pytest.mark.parametrize("fmt", ["weights.h5", "keras"])
def test_local_weights_file_fills_the_model(tmp_path, fmt):
    import keras

    keras.utils.set_random_seed(1)
    trained = build_simple_cnn((24, 24, 3), 4)
    path = tmp_path / f"w.{fmt}"
    trained.save_weights(path) if fmt == "weights.h5" else trained.save(path)
    keras.utils.set_random_seed(2)  # a different initialisation, then overwritten by the file
    loaded = build_simple_cnn((24, 24, 3), 4, weights=str(path))
    for a, b in zip(trained.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_missing_or_mismatching_weights_file_is_a_user_error(tmp_path):
    with pytest.raises(CellbenchError, match="nope.weights.h5 does not exist"):
        build_simple_cnn((24, 24, 3), 4, weights=str(tmp_path / "nope.weights.h5"))
    other = build_simple_cnn((24, 24, 3), 3)  # 3 classes: head does not fit a 4-class model
    other.save_weights(tmp_path / "other.weights.h5")
    with pytest.raises(CellbenchError, match="does not fit"):
        build_simple_cnn((24, 24, 3), 4, weights=str(tmp_path / "other.weights.h5"))


def test_application_base_weights_file(tmp_path):
    """A Keras-applications file of the base alone (e.g. ImageNet weights fetched by hand) fills the base."""
    from robustbench_cells.models.applications import build_application, find_base

    donor = find_base(build_application("mobilenetv3small", (32, 32, 3), 8))
    donor.save_weights(tmp_path / "base.weights.h5")
    model = build_application("mobilenetv3small", (32, 32, 3), 8, weights=str(tmp_path / "base.weights.h5"))
    for a, b in zip(donor.get_weights(), find_base(model).get_weights()):
        np.testing.assert_array_equal(a, b)
