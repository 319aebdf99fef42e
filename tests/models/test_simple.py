"""simple_cnn and inception_cnn: shapes, in-graph preprocessing, the norm option."""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_cells.errors import CellbenchError
from robustbench_cells.models.simple import build_inception_cnn, build_simple_cnn
from robustbench_cells.models.layers import preprocess_mode


@pytest.mark.parametrize("builder", [build_simple_cnn, build_inception_cnn])
def test_outputs_probabilities_from_0_255_input(builder):
    model = builder((32, 32, 3), 5)
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype(np.float32)
    probs = np.asarray(model(x, training=False))
    assert probs.shape == (3, 5)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert preprocess_mode(model.get_layer("preprocess")) == "unit"


def test_norm_option_changes_the_layers():
    import keras

    def kinds(model):
        return {type(layer).__name__ for layer in model.layers}

    assert "BatchNormalization" in kinds(build_simple_cnn((32, 32, 3), 8, norm="batch"))
    group = build_simple_cnn((32, 32, 3), 8, norm="group")
    assert "GroupNormalization" in kinds(group) and "BatchNormalization" not in kinds(group)
    frozen = build_inception_cnn((32, 32, 3), 8, norm="frozen_batch")
    bns = [layer for layer in frozen.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and not any(layer.trainable for layer in bns)


def test_bad_norm_and_imagenet_are_user_errors():
    with pytest.raises(CellbenchError, match="simple_cnn.*norm"):
        build_simple_cnn((32, 32, 3), 8, norm="layer")
    with pytest.raises(CellbenchError, match="inception_cnn.*no imagenet weights"):
        build_inception_cnn((32, 32, 3), 8, weights="imagenet")
