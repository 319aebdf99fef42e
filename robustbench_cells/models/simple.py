"""Our own small CNNs: ``simple_cnn`` (~48k parameters) and ``inception_cnn`` (~200k, Inception blocks).

Both take float32 0..255 input, rescale to [0, 1] inside the graph, and have a ``norm`` option
(``batch`` | ``group`` | ``frozen_batch``, see :mod:`robustbench_cells.models.norm`).
"""

from __future__ import annotations

from typing import Any

from robustbench_cells.models.norm import check_norm, norm_layer
from robustbench_cells.models.weights import check_own_weights, load_weights_file

SIMPLE_WIDTHS = (16, 32, 48, 64)


def _conv_block(x: Any, filters: int, kernel: int, norm: str, name: str) -> Any:
    import keras

    x = keras.layers.Conv2D(filters, kernel, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = norm_layer(norm, filters, name=f"{name}_norm")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def _head(x: Any, num_classes: int, dropout: float) -> Any:
    import keras

    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    # float32 softmax so probabilities stay well-formed under a mixed-precision policy.
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)


def build_simple_cnn(input_shape: tuple[int, int, int], num_classes: int, weights: str | None = None, *,
                     norm: str = "batch", dropout: float = 0.3) -> Any:
    """Four conv stages (16-32-48-64 channels, 3x3, norm, ReLU, 2x2 max-pool), global pooling, softmax."""
    import keras

    from robustbench_cells.models.layers import apply_preprocess

    check_norm(norm, "simple_cnn")
    check_own_weights(weights, "simple_cnn")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = apply_preprocess(inputs, "unit")
    for i, width in enumerate(SIMPLE_WIDTHS):
        x = _conv_block(x, width, 3, norm, f"stage{i + 1}")
        if i < len(SIMPLE_WIDTHS) - 1:
            x = keras.layers.MaxPooling2D(2, name=f"stage{i + 1}_pool")(x)
    model = keras.Model(inputs, _head(x, num_classes, dropout), name="simple_cnn")
    return load_weights_file(model, weights, "simple_cnn")


def _inception_block(x: Any, f1: int, f3r: int, f3: int, f5r: int, f5: int, fp: int, norm: str, name: str) -> Any:
    """GoogLeNet-style block; the 5x5 branch is two 3x3 convolutions (Inception-v2 factorisation)."""
    import keras

    b1 = _conv_block(x, f1, 1, norm, f"{name}_b1")
    b3 = _conv_block(_conv_block(x, f3r, 1, norm, f"{name}_b3r"), f3, 3, norm, f"{name}_b3")
    b5 = _conv_block(x, f5r, 1, norm, f"{name}_b5r")
    b5 = _conv_block(_conv_block(b5, f5, 3, norm, f"{name}_b5a"), f5, 3, norm, f"{name}_b5b")
    bp = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_bp_pool")(x)
    bp = _conv_block(bp, fp, 1, norm, f"{name}_bp")
    return keras.layers.Concatenate(name=f"{name}_concat")([b1, b3, b5, bp])


def build_inception_cnn(input_shape: tuple[int, int, int], num_classes: int, weights: str | None = None, *,
                        norm: str = "batch", dropout: float = 0.3) -> Any:
    """Stem (two 3x3 convs) then three Inception blocks separated by max-pooling; ~200k parameters."""
    import keras

    from robustbench_cells.models.layers import apply_preprocess

    check_norm(norm, "inception_cnn")
    check_own_weights(weights, "inception_cnn")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = apply_preprocess(inputs, "unit")
    x = _conv_block(x, 24, 3, norm, "stem1")
    x = keras.layers.MaxPooling2D(2, name="stem1_pool")(x)
    x = _conv_block(x, 48, 3, norm, "stem2")
    x = keras.layers.MaxPooling2D(2, name="stem2_pool")(x)
    x = _inception_block(x, 24, 32, 48, 8, 16, 16, norm, "inc1")       # 104 channels
    x = keras.layers.MaxPooling2D(2, name="inc1_pool")(x)
    x = _inception_block(x, 48, 48, 64, 12, 24, 24, norm, "inc2")      # 160 channels
    x = keras.layers.MaxPooling2D(2, name="inc2_pool")(x)
    x = _inception_block(x, 64, 72, 112, 16, 32, 32, norm, "inc3")     # 240 channels
    model = keras.Model(inputs, _head(x, num_classes, dropout), name="inception_cnn")
    return load_weights_file(model, weights, "inception_cnn")
