"""Custom layers cellbench models use, registered so ``.keras`` files load in Keras' safe mode."""

from __future__ import annotations

from typing import Any

import keras

#: ImageNet channel means (RGB, 0..255) for Caffe-style preprocessing (ResNet-50).
_CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)

PREPROCESS_MODES = ("unit", "tf", "caffe")


@keras.saving.register_keras_serializable(package="cellbench")
class Preprocess(keras.layers.Layer):
    """Map float32 0..255 RGB to what a network expects.

    - ``"unit"``: ``x / 255`` (our own CNNs).
    - ``"tf"``: ``x / 127.5 - 1`` (MobileNetV2, Xception, NASNet).
    - ``"caffe"``: RGB -> BGR, minus the ImageNet channel means (ResNet-50).
    """

    def __init__(self, mode: str = "unit", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in PREPROCESS_MODES:
            raise ValueError(f"Preprocess: mode must be one of {PREPROCESS_MODES}, got {mode!r}")
        self.mode = mode

    def call(self, inputs):
        x = keras.ops.cast(inputs, self.compute_dtype)
        if self.mode == "unit":
            return x / 255.0
        if self.mode == "tf":
            return x / 127.5 - 1.0
        mean = keras.ops.convert_to_tensor(_CAFFE_MEAN_RGB, dtype=self.compute_dtype)
        return keras.ops.flip(x - mean, axis=-1)  # subtract in RGB order, then reorder to BGR

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode}
