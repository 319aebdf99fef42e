"""ONNX image classifiers scored through onnxruntime (the optional ``[onnx]`` extra).

``cellbench evaluate model.onnx`` and ``robustbench_cells.evaluate("model.onnx", ...)`` load the
file into an :class:`OnnxClassifier`: a predict function ``uint8 images (N, H, W, 3) ->
(N, C)`` run by onnxruntime on the CPU. It takes what cellbench's convention says a model takes,
float32 RGB NHWC on the 0..255 scale, with the ``--preprocess`` scaling applied in NumPy first
(the same numbers as the Keras layer :func:`robustbench_cells.evaluation.conform_model` adds) and a
softmax after when the model gives logits. A Keras model becomes one with Keras' own
``model.export("model.onnx", format="onnx")`` (tf2onnx, also in the extra).

Limits: NHWC float inputs only (one input, one ``(N, C)`` output); tf2onnx 1.17 turns the
constants of a Keras ``Normalization`` layer (EfficientNetV2's built-in preprocessing) into extra
graph inputs, and such a file is refused with their names. Test-time adapters and
``explain`` need a Keras model, so an ONNX run has scores and probabilities but no stored model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from robustbench_cells.errors import CellbenchError

EXTRA = "pip install 'robustbench-cells[onnx]'"


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"


class OnnxClassifier:
    """An ONNX classifier as a cellbench predict function (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, batch_size: int = 256) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise CellbenchError(f"model {path}: ONNX models need onnxruntime ({EXTRA})") from None
        self.path = Path(path)
        self.batch_size = batch_size
        self.preprocess = "none"
        self.softmax = False
        try:
            options = ort.SessionOptions()
            options.log_severity_level = 3  # errors only: no per-session warnings on stderr
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise CellbenchError(f"model {path}: not a loadable ONNX model ({_short(exc)})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise CellbenchError(f"model {path}: {len(inputs)} inputs ({', '.join(i.name for i in inputs)}) and "
                                 f"{len(outputs)} outputs; an image classifier has one of each")
        shape, out = list(inputs[0].shape), list(outputs[0].shape)
        if len(shape) != 4 or shape[-1] != 3:
            raise CellbenchError(f"model {path}: input shape {shape} is not (N, H, W, 3) RGB images "
                                 "(channels-first models are not supported)")
        if inputs[0].type != "tensor(float)":
            raise CellbenchError(f"model {path}: input type {inputs[0].type}, not float32")
        if len(out) != 2 or not isinstance(out[-1], int) or out[-1] < 2:
            raise CellbenchError(f"model {path}: output shape {out} is not (N, classes): not a classifier")
        self.input_name = inputs[0].name
        h, w = shape[1], shape[2]
        self.height = h if isinstance(h, int) else None
        self.width = w if isinstance(w, int) else None
        self.num_outputs = int(out[-1])

    @property
    def name(self) -> str:
        return self.path.name

    def __call__(self, images: np.ndarray) -> np.ndarray:
        from robustbench_cells.data.resize import resize_images
        from robustbench_cells.evaluation import preprocess_scale_offset

        images = np.asarray(images)
        if self.height and self.width and images.shape[1:3] != (self.height, self.width):
            images = resize_images(images.astype(np.uint8, copy=False), (self.height, self.width))
        scale, offset = preprocess_scale_offset(self.preprocess)
        out = np.empty((len(images), self.num_outputs), np.float32)
        for start in range(0, len(images), self.batch_size):
            x = images[start:start + self.batch_size].astype(np.float32)
            if self.preprocess != "none":
                x = x * np.float32(scale) + np.float32(offset)  # broadcast over the channel axis
            out[start:start + len(x)] = self.session.run(None, {self.input_name: x})[0]
        if self.softmax:
            out = np.exp(out - out.max(1, keepdims=True))
            out /= out.sum(1, keepdims=True)
        return out


def is_onnx(path: Any) -> bool:
    """True for a path ending in ``.onnx``."""
    return isinstance(path, (str, os.PathLike)) and str(path).lower().endswith(".onnx")
