"""Built-in test-time adapters, registered through the same hook a third-party plugin uses.

Signatures (see :class:`~robustbench_cells.registry.AdapterSpec`): ``fn(context, images_uint8, rng,
**options)``; image adapters return images, model adapters an adapted COPY of the model, prediction
adapters probabilities. None of them receives labels.

- ``none``: plain prediction.
- ``stain_norm`` (image): Reinhard (2001) CIELAB moments or Macenko (2009) OD stain vectors of the
  target mapped onto the training set's (:mod:`robustbench_cells.ops.stain_norm`).
- ``scale_norm`` (image): median white-cell size (``ops.mask``) on the target vs the training set;
  the target is zoomed about the centre to match (:mod:`robustbench_cells.ops.scale`).
- ``bn_adapt`` (model): AdaBN, Li et al. 2016 ("Revisiting batch normalization for practical domain
  adaptation"): BatchNorm moving statistics re-estimated on the target.
- ``tent`` (model): Wang et al. 2021 ("Tent: fully test-time adaptation by entropy minimization"):
  a few Adam steps minimising the prediction entropy over the normalisation layers' scale/shift,
  BatchNorm in batch-statistics mode; the BatchNorm statistics are then re-estimated on the target.
- ``tta`` (predict): mean of the softmax over flips and 90-degree rotations (the dihedral group).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from robustbench_cells.adapters import AdaptContext
from robustbench_cells.errors import CellbenchError
from robustbench_cells.hookspecs import hookimpl
from robustbench_cells.registry import AdapterSpec


#: Values of the string options, checked at matrix validation (the spec's ``choices``) and again when run.
STAIN_METHODS = ("reinhard", "macenko")
TTA_TRANSFORMS = ("d4", "flips")


def _bad(adapter: str, option: str, what: str, value: Any) -> CellbenchError:
    return CellbenchError(f"adapter {adapter!r}: option {option!r} must be {what}, got {value!r}")


def _int(adapter: str, option: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise _bad(adapter, option, f"an integer in [{lo}, {hi}]", value)
    return int(value)


def _num(adapter: str, option: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not lo <= value <= hi:
        raise _bad(adapter, option, f"a number in [{lo}, {hi}]", value)
    return float(value)


def _choice(adapter: str, option: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _bad(adapter, option, "one of " + ", ".join(choices), value)
    return value


def _bool(adapter: str, option: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad(adapter, option, "true or false", value)
    return value


# -- model helpers ---------------------------------------------------------------------------------
def walk_layers(layer: Any) -> Iterator[Any]:
    """Every layer inside *layer* (nested models included), depth first."""
    for sub in getattr(layer, "layers", []):
        yield sub
        yield from walk_layers(sub)


def model_inputs(model: Any, images: np.ndarray) -> np.ndarray:
    """uint8 images resized to the model's input, as float32 0..255 (what the model takes)."""
    from robustbench_cells.data.resize import resize_images
    from robustbench_cells.train import model_input_size

    size = model_input_size(model)
    if images.shape[1:3] != size:
        images = resize_images(images, size)
    return images.astype(np.float32)


def _adaptable_bn(model: Any) -> list[Any]:
    import keras

    # BatchNorm layers with trainable=False (frozen_batch, frozen backbones) never used their
    # statistics of the training data, so AdaBN's premise does not hold for them: leave them.
    return [l for l in walk_layers(model) if isinstance(l, keras.layers.BatchNormalization) and l.trainable]


class _TrainModeSansDropout:
    """Context manager: dropout off while the model is called with ``training=True``."""

    def __init__(self, model: Any) -> None:
        import keras

        self.drops = [l for l in walk_layers(model) if isinstance(l, (keras.layers.Dropout, keras.layers.SpatialDropout2D))]
        self.rates = [l.rate for l in self.drops]

    def __enter__(self) -> None:
        for layer in self.drops:
            layer.rate = 0.0

    def __exit__(self, *exc: Any) -> None:
        for layer, rate in zip(self.drops, self.rates):
            layer.rate = rate


def reestimate_bn(model: Any, x: np.ndarray, batch_size: int, rng: np.random.Generator) -> int:
    """Replace the moving statistics of *model*'s adaptable BatchNorm layers by those of *x* (in place).

    The statistics are the cumulative average over batches (momentum ``k/(k+1)`` at batch ``k``),
    i.e. PyTorch's ``momentum=None`` AdaBN recipe; returns the number of layers updated.
    """
    bns = _adaptable_bn(model)
    if not bns or len(x) == 0:
        return len(bns)
    momenta = [l.momentum for l in bns]
    order = rng.permutation(len(x))
    try:
        with _TrainModeSansDropout(model):
            for k, start in enumerate(range(0, len(x), batch_size)):
                for layer in bns:
                    layer.momentum = k / (k + 1.0)  # read at call time (eager call below)
                model(x[order[start:start + batch_size]], training=True)
    finally:
        for layer, m in zip(bns, momenta):
            layer.momentum = m
    return len(bns)


# -- adapters --------------------------------------------------------------------------------------
def adapt_none(context: AdaptContext, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Identity: the chain then predicts with the stored model."""
    return images


def adapt_stain_norm(context: AdaptContext, images: np.ndarray, rng: np.random.Generator, *,
                     method: str = "reinhard", per_image: bool = False) -> np.ndarray:
    """Map the target's colours onto the training set's (Reinhard in CIELAB, or Macenko in OD)."""
    from robustbench_cells.ops.stain_norm import macenko, reinhard

    method = _choice("stain_norm", "method", method, STAIN_METHODS)
    per_image = _bool("stain_norm", "per_image", per_image)
    if len(images) == 0:
        return images
    if method == "reinhard":
        mean = context.require_stat("lab_mean", "stain_norm")
        std = context.require_stat("lab_std", "stain_norm")
        return reinhard(images, np.asarray(mean), np.asarray(std), per_image=per_image)
    ref = context.require_stat("macenko", "stain_norm")
    if per_image:
        return np.stack([macenko(im[None], ref["stains"], ref["max_conc"])[0] for im in images])
    return macenko(images, np.asarray(ref["stains"]), np.asarray(ref["max_conc"]))


def adapt_scale_norm(context: AdaptContext, images: np.ndarray, rng: np.random.Generator, *,
                     min_factor: float = 0.5, max_factor: float = 2.0) -> np.ndarray:
    """Zoom the target so its median white-cell size matches the training set's (one factor per set)."""
    from robustbench_cells.ops.scale import median_cell_size, zoom

    lo = _num("scale_norm", "min_factor", min_factor, 0.1, 1.0)
    hi = _num("scale_norm", "max_factor", max_factor, 1.0, 10.0)
    reference = float(context.require_stat("cell_size", "scale_norm"))
    target = median_cell_size(images) if len(images) else 0.0
    if reference <= 0 or target <= 0:
        context.notes.append("scale_norm: no white cell found in the training or target images; not rescaled")
        return images
    factor = float(np.clip(reference / target, lo, hi))
    context.notes.append(f"scale_norm: target cells {target:.3f} vs training {reference:.3f} of the side; zoom x{factor:.2f}")
    return zoom(images, factor)


def adapt_bn(context: AdaptContext, images: np.ndarray, rng: np.random.Generator, *,
             batch_size: int = 128) -> Any:
    """AdaBN on a copy: BatchNorm moving mean/variance re-estimated on the target images."""
    batch_size = _int("bn_adapt", "batch_size", batch_size, 2, 100_000)
    model = context.model_copy()
    n = reestimate_bn(model, model_inputs(model, images), batch_size, rng)
    if n == 0:
        context.notes.append("bn_adapt: the model has no (trainable) BatchNorm layer; predictions unchanged")
    return model


def adapt_tent(context: AdaptContext, images: np.ndarray, rng: np.random.Generator, *,
               steps: int = 10, lr: float = 1e-3, batch_size: int = 64) -> Any:
    """Tent on a copy: entropy minimisation over the normalisation layers' gamma/beta."""
    import keras
    import tensorflow as tf

    steps = _int("tent", "steps", steps, 0, 10_000)
    lr = _num("tent", "lr", lr, 0.0, 1.0)
    batch_size = _int("tent", "batch_size", batch_size, 2, 100_000)
    model = context.model_copy()
    x = model_inputs(model, images)
    norm_types = (keras.layers.BatchNormalization, keras.layers.GroupNormalization, keras.layers.LayerNormalization)
    norms = [l for l in walk_layers(model) if isinstance(l, norm_types) and l.trainable]
    params = [v for l in norms for v in (getattr(l, "gamma", None), getattr(l, "beta", None)) if v is not None]
    if not params or len(x) == 0 or steps == 0:
        context.notes.append("tent: no trainable normalisation scale/shift (or no steps); only BatchNorm statistics adapted")
        reestimate_bn(model, x, 128, rng)
        return model
    optimizer = keras.optimizers.Adam(learning_rate=lr)
    order = rng.permutation(len(x))
    with _TrainModeSansDropout(model):
        for step in range(steps):
            start = (step * batch_size) % len(x)
            batch = x[np.take(order, range(start, start + min(batch_size, len(x))), mode="wrap")]
            with tf.GradientTape() as tape:
                tape.watch([p.value for p in params])
                probs = model(batch, training=True)
                loss = -tf.reduce_mean(tf.reduce_sum(probs * tf.math.log(probs + 1e-7), axis=-1))
            grads = tape.gradient(loss, [p.value for p in params])
            optimizer.apply_gradients(zip(grads, params))
    # Inference uses the moving statistics: make them the target's, under the adapted gamma/beta.
    reestimate_bn(model, x, 128, rng)
    return model


_D4 = [(k, f) for f in (False, True) for k in range(4)]


def adapt_tta(context: AdaptContext, images: np.ndarray, rng: np.random.Generator, *,
              transforms: str = "d4") -> np.ndarray:
    """Mean softmax over the 8 flips/90-degree rotations (``d4``) or the 4 flips (``flips``)."""
    from robustbench_cells.train import predict_proba

    transforms = _choice("tta", "transforms", transforms, TTA_TRANSFORMS)
    group = _D4 if transforms == "d4" else [(0, False), (0, True), (2, False), (2, True)]
    total = None
    for k, flip in group:
        view = images[:, :, ::-1] if flip else images
        view = np.ascontiguousarray(np.rot90(view, k, axes=(1, 2)))
        probs = predict_proba(context.model, view)
        total = probs if total is None else total + probs
    return (total / len(group)).astype(np.float32)


ADAPTERS = [
    AdapterSpec("none", "plain prediction with the stored model", fn=adapt_none, stage="image"),
    AdapterSpec("stain_norm", "map the target's colours onto the training set's (Reinhard in CIELAB, or Macenko in OD)",
                fn=adapt_stain_norm, stage="image", reference="Reinhard et al. 2001; Macenko et al. 2009",
                choices={"method": STAIN_METHODS}),
    AdapterSpec("scale_norm", "zoom the target so its median white-cell size matches the training set's",
                fn=adapt_scale_norm, stage="image", reference="cell size from the ops.mask cell mask"),
    AdapterSpec("bn_adapt", "AdaBN: BatchNorm statistics re-estimated on the target (no-op without BatchNorm)",
                fn=adapt_bn, stage="model", reference="Li et al. 2016, AdaBN"),
    AdapterSpec("tent", "a few entropy-minimisation steps on the normalisation layers' scale/shift",
                fn=adapt_tent, stage="model", reference="Wang et al. 2021, Tent"),
    AdapterSpec("tta", "average predictions over flips and 90-degree rotations", fn=adapt_tta,
                stage="predict", reference="test-time augmentation over the dihedral group",
                choices={"transforms": TTA_TRANSFORMS}),
]


@hookimpl
def register_adapters(register) -> None:
    """Register the built-in adapters."""
    for spec in ADAPTERS:
        register(spec)
