"""Preprocessing inside cellbench models, in built-in Keras layers so a saved ``.keras`` file loads
with plain ``keras.models.load_model`` where cellbench is not installed (:func:`apply_preprocess`).

:class:`Preprocess` is the custom layer older cellbench versions saved; it stays registered so
those files still load in Keras' safe mode, and ``cellbench export`` rewrites it into built-ins
(:func:`portable_clone`).
"""

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


#: ImageNet channel means in BGR order (what the Caffe branch subtracts after reordering).
_CAFFE_MEAN_BGR = tuple(reversed(_CAFFE_MEAN_RGB))


def preprocess_layer(mode: str, name: str = "preprocess") -> Any:
    """A fresh built-in Keras layer doing what ``Preprocess(mode)`` does.

    ``unit`` and ``tf`` are ``Rescaling`` layers. ``caffe`` is a frozen ``Dense`` on the channel axis
    whose kernel swaps R and B and whose bias subtracts the BGR means (the kernel holds only 0 and 1,
    so the result is exact); it is built and filled by :func:`apply_preprocess`.
    """
    if mode not in PREPROCESS_MODES:
        raise ValueError(f"preprocess: mode must be one of {PREPROCESS_MODES}, got {mode!r}")
    if mode == "unit":
        return keras.layers.Rescaling(1.0 / 255.0, name=name)
    if mode == "tf":
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name=name)
    return keras.layers.Dense(3, use_bias=True, trainable=False, name=name)


def _fill_caffe(layer: Any) -> None:
    import numpy as np

    kernel = np.eye(3, dtype="float32")[::-1].copy()  # x @ kernel reverses the channel order
    layer.set_weights([kernel, -np.asarray(_CAFFE_MEAN_BGR, dtype="float32")])


def apply_preprocess(x: Any, mode: str, name: str = "preprocess") -> Any:
    """Apply the built-in preprocessing for *mode* to the (functional) tensor *x*."""
    layer = preprocess_layer(mode, name)
    y = layer(x)
    if mode == "caffe":
        _fill_caffe(layer)
    return y


def preprocess_mode(layer: Any) -> str | None:
    """The mode (``unit``/``tf``/``caffe``) a model's preprocessing layer implements, or ``None``.

    Reads both the built-in form :func:`preprocess_layer` builds and the legacy :class:`Preprocess`.
    """
    import numpy as np

    if isinstance(layer, Preprocess):
        return layer.mode
    if isinstance(layer, keras.layers.Rescaling):
        scale, offset = float(np.mean(layer.scale)), float(np.mean(layer.offset))
        for mode, (s, o) in {"unit": (1 / 255.0, 0.0), "tf": (1 / 127.5, -1.0)}.items():
            if np.isclose(scale, s) and np.isclose(offset, o):
                return mode
    if isinstance(layer, keras.layers.Dense) and layer.built and layer.units == 3:
        kernel, bias = (np.asarray(w) for w in layer.get_weights())
        if np.array_equal(kernel, np.eye(3)[::-1]) and np.allclose(bias, -np.asarray(_CAFFE_MEAN_BGR)):
            return "caffe"
    return None


def portable_clone(model: Any) -> Any:
    """A copy of *model* with every :class:`Preprocess` layer replaced by built-in layers (weights kept).

    Returns *model* itself when it holds no custom layer, so exporting a current artefact is a copy.
    """
    if not any(isinstance(layer, Preprocess) for layer in model.layers):
        return model
    caffe: list[Any] = []

    def clone(layer: Any) -> Any:
        if isinstance(layer, Preprocess):
            new = preprocess_layer(layer.mode, name=layer.name)
            if layer.mode == "caffe":
                caffe.append(new)
            return new
        return layer.__class__.from_config(layer.get_config())

    new_model = keras.models.clone_model(model, clone_function=clone)
    for layer in new_model.layers:
        if layer in caffe:
            _fill_caffe(layer)
        elif layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return new_model
