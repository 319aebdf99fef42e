"""The normalisation choice: ``batch``, ``group`` or ``frozen_batch``.

Why it matters: BatchNorm statistics learnt on one microscope collapse on another (wbc-benchmark:
ResNet-50 98.5% same microscope vs 34.6% another; GroupNorm 78%). GroupNorm has no running
statistics, so nothing learnt about the training lab's batch statistics leaks into inference.
``frozen_batch`` is BatchNorm that always runs in inference mode with frozen scale/offset: with
pretrained weights it keeps the ImageNet statistics; from scratch it is the identity (no
normalisation at all), which is a useful ablation but not a recommendation.
"""

from __future__ import annotations

from typing import Any

from robustbench_cells.errors import CellbenchError, did_you_mean

NORMS = ("batch", "group", "frozen_batch")
#: BatchNorm moving-average momentum for the models we build. Keras' 0.99 needs ~500 steps before
#: the inference statistics are usable; short CPU schedules on small cell sets validate long before
#: that (a 3-epoch toy run scored chance in inference mode), so we use PyTorch's 0.9.
BN_MOMENTUM = 0.9
#: Upper bound on GroupNorm groups (Wu & He 2018 use 32; our small CNNs have 16..64 channels).
MAX_GROUPS = 8


def check_norm(norm: str, model: str) -> str:
    """Return *norm* if valid, else a :class:`CellbenchError` naming the model option."""
    if norm not in NORMS:
        raise CellbenchError(
            f"model {model!r}: option norm={norm!r} is not one of {', '.join(NORMS)}{did_you_mean(str(norm), NORMS)}"
        )
    return norm


def group_count(channels: int, max_groups: int = MAX_GROUPS) -> int:
    """The largest number of groups <= *max_groups* that divides *channels*."""
    for groups in range(min(max_groups, channels), 0, -1):
        if channels % groups == 0:
            return groups
    return 1


def norm_layer(norm: str, channels: int, name: str | None = None) -> Any:
    """A fresh normalisation layer of kind *norm* for a tensor with *channels* channels."""
    import keras

    if norm == "batch":
        return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=name)
    if norm == "group":
        return keras.layers.GroupNormalization(groups=group_count(channels), name=name)
    if norm == "frozen_batch":
        # trainable=False makes Keras 3 BatchNorm use its moving statistics in training too.
        return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, trainable=False, name=name)
    raise CellbenchError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}")


def swap_batchnorm(model: Any, norm: str) -> Any:
    """Clone a functional *model* with every BatchNormalization replaced by *norm*.

    Weights of all other layers (and of BatchNorm itself for ``frozen_batch``) are copied, so a
    pretrained base keeps its convolutions. Returns *model* unchanged for ``norm="batch"``.
    """
    import keras

    if norm == "batch":
        return model
    replaced: set[str] = set()

    def clone(layer: Any) -> Any:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = int(layer.moving_mean.shape[0])
            if norm == "group":
                replaced.add(layer.name)
            return norm_layer(norm, channels, name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        # The graph recorded BatchNorm's `mask`/`training` arguments; GroupNormalization takes neither.
        if isinstance(layer, keras.layers.GroupNormalization):
            kwargs.pop("mask", None)
            kwargs.pop("training", None)
        return layer(*args, **kwargs)

    new = keras.models.clone_model(model, clone_function=clone, call_function=call)
    for layer in new.layers:
        if layer.name in replaced or not layer.weights:
            continue
        layer.set_weights(model.get_layer(layer.name).get_weights())
    return new
