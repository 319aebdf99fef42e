"""Keras applications as cellbench models: each with its own preprocessing inside the graph.

The model is ``image (float32 0..255) -> [Resizing up to the application's minimum] ->
preprocessing -> base (the application without its top, average-pooled; a nested model named
"base") -> Dropout -> Dense softmax``. Freezing/fine-tuning in :mod:`robustbench_cells.train`
works on the nested ``base``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from robustbench_cells.errors import CellbenchError
from robustbench_cells.models.norm import BN_MOMENTUM, check_norm, swap_batchnorm
from robustbench_cells.models.weights import imagenet_download_guard, load_weights_file, normalize_weights

#: The name of the nested pretrained network inside every application model.
BASE_NAME = "base"


@dataclass(frozen=True)
class AppInfo:
    """How to build and feed one Keras application."""

    constructor: str              # attribute of keras.applications
    family: str
    preprocess: str               # "tf" | "caffe" | "builtin" (the application has its own layers)
    preprocessing: str            # what `cellbench ls models` shows
    min_input_size: int = 32
    params: int | None = None     # at 96x96x3, 8 classes, with our head (measured; see tests/benchmarks)
    kwargs: dict[str, Any] = field(default_factory=dict)


APPLICATIONS: dict[str, AppInfo] = {
    "mobilenetv2": AppInfo("MobileNetV2", "mobilenet", "tf", "x/127.5 - 1", 32, 2_268_232),
    "mobilenetv3small": AppInfo("MobileNetV3Small", "mobilenet", "builtin", "built-in: x/127.5 - 1", 32, 943_736,
                                {"include_preprocessing": True}),
    "mobilenetv3large": AppInfo("MobileNetV3Large", "mobilenet", "builtin", "built-in: x/127.5 - 1", 32, 3_004_040,
                                {"include_preprocessing": True}),
    "efficientnetb2": AppInfo("EfficientNetB2", "efficientnet", "builtin",
                              "built-in: x/255, ImageNet mean/std", 32, 7_779_841),
    "efficientnetv2b0": AppInfo("EfficientNetV2B0", "efficientnet", "builtin", "built-in: x/127.5 - 1", 32,
                                5_929_560, {"include_preprocessing": True}),
    "efficientnetv2s": AppInfo("EfficientNetV2S", "efficientnet", "builtin", "built-in: x/127.5 - 1", 32,
                               20_341_608, {"include_preprocessing": True}),
    "xception": AppInfo("Xception", "xception", "tf", "x/127.5 - 1 (resized to >= 71)", 71, 20_877_872),
    "nasnetmobile": AppInfo("NASNetMobile", "nasnet", "tf", "x/127.5 - 1", 32, 4_278_172),
    "convnext_tiny": AppInfo("ConvNeXtTiny", "convnext", "builtin", "built-in: x/255, ImageNet mean/std", 32,
                             27_826_280, {"include_preprocessing": True}),
    "convnext_base": AppInfo("ConvNeXtBase", "convnext", "builtin", "built-in: x/255, ImageNet mean/std", 32,
                             87_574_664, {"include_preprocessing": True}),
    "resnet50": AppInfo("ResNet50", "resnet", "caffe", "caffe: RGB->BGR minus ImageNet means", 32,
                        23_604_116),  # incl. the 12 frozen weights of the built-in BGR layer
}


def build_application(key: str, input_shape: tuple[int, int, int], num_classes: int, weights: str | None = None, *,
                      norm: str = "batch", dropout: float = 0.2) -> Any:
    """Build application *key* for *input_shape* (resized up inside the graph when below its minimum)."""
    import keras

    from robustbench_cells.models.layers import apply_preprocess

    if key not in APPLICATIONS:
        raise CellbenchError(f"unknown Keras application {key!r}")
    info = APPLICATIONS[key]
    check_norm(norm, key)
    weights = normalize_weights(weights)
    h, w = int(input_shape[0]), int(input_shape[1])
    size = (max(h, info.min_input_size), max(w, info.min_input_size))
    inputs = keras.Input(shape=(h, w, 3), name="image")
    x = inputs
    if size != (h, w):
        x = keras.layers.Resizing(*size, interpolation="bilinear", name="resize_to_min")(x)
    if info.preprocess != "builtin":
        x = apply_preprocess(x, info.preprocess)
    constructor = getattr(keras.applications, info.constructor)
    kwargs = dict(include_top=False, input_shape=(*size, 3), pooling="avg", **info.kwargs)
    if weights == "imagenet":
        with imagenet_download_guard(key):
            base = constructor(weights="imagenet", **kwargs)
    else:
        base = constructor(weights=None, **kwargs)
    # Renamed afterwards: EfficientNetV2 looks its block table up by the `name` argument.
    base.name = BASE_NAME
    base = swap_batchnorm(base, norm)
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            # Keras' 0.99 leaves the inference statistics unusable for the first ~500 steps: a
            # MobileNetV2 trained 2 epochs on 2,000 PBC images scored 14% in inference mode.
            layer.momentum = BN_MOMENTUM
    x = base(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)
    model = keras.Model(inputs, outputs, name=key)
    return load_weights_file(model, weights, key, base=base)


def find_base(model: Any) -> Any | None:
    """The nested pretrained network of an application model, or ``None`` for our own CNNs."""
    try:
        return model.get_layer(BASE_NAME)
    except ValueError:
        return None
