"""The training input pipeline: shuffled (optionally class-balanced) batches with augmentation.

Order of work per batch: gather uint8 images -> per-image augmentations (uint8, in the order
given) -> one float32 conversion -> batch augmentations (MixUp/CutMix, on images *and* one-hot
labels). Randomness comes only from the cell's seed: batch ``b`` of epoch ``e`` uses
``default_rng([seed, e, 1, b])`` and the epoch's order ``default_rng([seed, e, 0])``, so the same
(seed, epoch) gives identical batches whatever the order, thread or process they are made in.

Typical use (what ``train.py`` does)::

    tb = TrainingBatches(train_set, ["simple", "mixup"], batch_size=64, seed=cell_seed)
    model.fit(tb.to_tf_dataset(), epochs=10, steps_per_epoch=len(tb))
    # or a custom loop, with the next batches prepared in a background thread:
    for x, y in tb.iterate(epoch, prefetch=2): ...
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

# augmentation_label and AugmentationArg are re-exported: callers import them from here
from robustbench_cells.augchain import AugmentationArg, AugmentationChain, ChainStep, augmentation_label
from robustbench_cells.data.dataset import Dataset
from robustbench_cells.errors import CellbenchError
from robustbench_cells.registry import AugmentationSpec, Registry

__all__ = ["AugmentationArg", "AugmentationStep", "TrainingBatches", "apply_batch_steps", "apply_image_steps",
           "augmentation_label", "resolve_augmentation"]
_ORDER, _BATCH = 0, 1  # seed-sequence tags: epoch order vs. per-batch augmentation


@dataclass(frozen=True)
class AugmentationStep:
    """One resolved augmentation: its spec, the options it was built with, and the built function."""

    spec: AugmentationSpec
    options: dict[str, Any] = field(default_factory=dict)
    fn: Callable[..., Any] | None = None

    @property
    def label(self) -> str:
        return ChainStep(self.spec.name, self.options).label


def resolve_augmentation(augmentation: AugmentationArg,
                         registry: Registry[AugmentationSpec] | None = None) -> list[AugmentationStep]:
    """Build every augmentation of *augmentation* (any form :class:`AugmentationChain` parses).

    Returned in run order (:meth:`AugmentationChain.run_order`): per-image steps first, then batch
    steps, each kind in the user's order (so ``["mixup", "simple"]`` still runs simple first: batch
    ops need whole, already-augmented batches). Unknown names and bad options raise
    :class:`CellbenchError`.
    """
    steps = []
    for step, spec in AugmentationChain.parse(augmentation).run_order(registry):
        fn = spec.build(**step.options)
        if not callable(fn):
            raise CellbenchError(f"augmentation {step.name!r} (plugin {spec.plugin!r}): factory returned "
                                 f"{type(fn).__name__}, not a function")
        steps.append(AugmentationStep(spec, dict(step.options), fn))
    return steps


def apply_image_steps(steps: Sequence[AugmentationStep], images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Run the per-image steps on a uint8 batch, checking each keeps uint8 ``(N, H, W, 3)``."""
    for step in steps:
        if step.spec.kind != "image":
            continue
        out = step.fn(images, rng)
        if not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.shape != images.shape:
            raise CellbenchError(
                f"augmentation {step.spec.name!r} (plugin {step.spec.plugin!r}) returned "
                f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}, "
                f"expected uint8 {images.shape}"
            )
        images = out
    return images


def apply_batch_steps(steps: Sequence[AugmentationStep], x: np.ndarray, y: np.ndarray,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Run the batch steps on float32 images and labels, checking shapes are kept."""
    for step in steps:
        if step.spec.kind != "batch":
            continue
        out = step.fn(x, y, rng)
        if (not isinstance(out, tuple) or len(out) != 2 or np.shape(out[0]) != x.shape
                or np.shape(out[1]) != y.shape):
            raise CellbenchError(f"augmentation {step.spec.name!r} (plugin {step.spec.plugin!r}) must return "
                                 f"(images {x.shape}, labels {y.shape})")
        x, y = np.asarray(out[0], np.float32), np.asarray(out[1], np.float32)
    return x, y


class TrainingBatches:
    """Reproducible augmented training batches over a :class:`Dataset`.

    - ``augmentation``: ``None``/``"none"``, a name, a list of names, ``{"name": ..., **options}``
      tables, or an :class:`~robustbench_cells.augchain.AugmentationChain` (see :func:`resolve_augmentation`).
    - ``len(tb)``: steps per epoch (the last batch may be smaller).
    - ``tb.epoch(i)`` yields ``(x float32 (B,H,W,3) on 0..255, y float32 (B,C))``; reshuffled every
      epoch; identical for the same ``(seed, i)``.
    - ``balance=True``: every class is oversampled (with replacement beyond its own size) to the
      size of the largest class, so an epoch has ``num_present_classes * max_count`` samples.
    - ``jsd_views=True``: yields ``((x_clean, x_aug1, x_aug2), y)`` with two independent draws of
      the per-image augmentations (AugMix's Jensen-Shannon consistency loss); batch ops are refused.
    - ``registry``: the augmentation registry to resolve names in (default: the loaded plugins).
    """

    def __init__(self, dataset: Dataset, augmentation: AugmentationArg = None, *, batch_size: int = 64,
                 seed: int = 0, balance: bool = False, jsd_views: bool = False,
                 registry: Registry[AugmentationSpec] | None = None) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise CellbenchError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise CellbenchError(f"seed must be a non-negative integer, got {seed!r}")
        if len(dataset) == 0:
            raise CellbenchError(f"{dataset.source or 'training set'}: no images to train on")
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = int(seed)
        self.balance = balance
        self.jsd_views = jsd_views
        chain = AugmentationChain.parse(augmentation)
        self.steps = resolve_augmentation(chain, registry)
        self.label = chain.label
        if jsd_views and any(s.spec.kind == "batch" for s in self.steps):
            raise CellbenchError(f"augmentation {self.label!r}: jsd_views cannot be combined with batch "
                                 "augmentations (mixup/cutmix change the labels)")
        self.num_classes = dataset.num_classes
        counts = dataset.class_counts()
        self._epoch_size = int((counts > 0).sum() * counts.max()) if balance else len(dataset)

    # -- sizes and order --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return -(-self._epoch_size // self.batch_size)

    @property
    def samples_per_epoch(self) -> int:
        return self._epoch_size

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """The dataset indices of epoch *epoch*, in order (oversampled when ``balance``)."""
        rng = np.random.default_rng([self.seed, epoch, _ORDER])
        if not self.balance:
            return rng.permutation(len(self.dataset))
        labels = self.dataset.labels
        target = int(self.dataset.class_counts().max())
        parts = []
        for c in range(self.num_classes):
            idx = np.flatnonzero(labels == c)
            if len(idx) == 0:
                continue
            reps, rest = divmod(target, len(idx))
            parts.append(np.concatenate([np.tile(idx, reps), rng.choice(idx, rest, replace=False)]))
        return rng.permutation(np.concatenate(parts))

    # -- batches -----------------------------------------------------------------------------------------
    def make_batch(self, epoch: int, index: int, order: np.ndarray | None = None):
        """Batch *index* of epoch *epoch* (random access; ``order`` = :meth:`epoch_indices` if known)."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range 0..{len(self) - 1}")
        order = self.epoch_indices(epoch) if order is None else order
        idx = order[index * self.batch_size:(index + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, epoch, _BATCH, index])
        images = self.dataset.images[idx]
        y = np.zeros((len(idx), self.num_classes), np.float32)
        y[np.arange(len(idx)), self.dataset.labels[idx]] = 1.0
        if self.jsd_views:
            clean = images.astype(np.float32)
            aug1 = apply_image_steps(self.steps, images, rng).astype(np.float32)
            aug2 = apply_image_steps(self.steps, images, rng).astype(np.float32)
            return (clean, aug1, aug2), y
        images = apply_image_steps(self.steps, images, rng)
        x = images.astype(np.float32)  # the one float conversion of this batch
        return apply_batch_steps(self.steps, x, y, rng)

    def epoch(self, epoch: int) -> Iterator[tuple[Any, np.ndarray]]:
        """Yield every batch of epoch *epoch* in order."""
        order = self.epoch_indices(epoch)
        for b in range(len(self)):
            yield self.make_batch(epoch, b, order)

    def iterate(self, epoch: int, prefetch: int = 2) -> Iterator[tuple[Any, np.ndarray]]:
        """Like :meth:`epoch`, but the next *prefetch* batches are prepared in a background thread
        (NumPy/OpenCV release the GIL, so augmentation overlaps the training step)."""
        if prefetch <= 0:
            yield from self.epoch(epoch)
            return
        yield from _prefetched(self.epoch(epoch), prefetch)

    def to_tf_dataset(self, epochs: int | None = None, start_epoch: int = 0, prefetch: int = 2):
        """A ``tf.data.Dataset`` of the batches of epochs ``start_epoch, start_epoch + 1, ...``.

        Epochs are concatenated, so use ``model.fit(ds, epochs=E, steps_per_epoch=len(tb))``:
        Keras then keeps one iterator and batch ``k`` is always batch ``k % len(tb)`` of epoch
        ``start_epoch + k // len(tb)`` (reproducible). ``epochs=None`` repeats without end.
        Batches are produced ahead of the training step (``prefetch``).
        """
        import tensorflow as tf

        h, w = self.dataset.image_size
        image_sig = tf.TensorSpec((None, h, w, 3), tf.float32)
        x_sig = (image_sig, image_sig, image_sig) if self.jsd_views else image_sig
        signature = (x_sig, tf.TensorSpec((None, self.num_classes), tf.float32))

        stop = np.iinfo(np.int64).max if epochs is None else start_epoch + epochs
        epochs_ds = tf.data.Dataset.range(start_epoch, stop)
        # One generator per epoch, parameterised by the epoch number (not a hidden counter), so an
        # iterator Keras creates and discards cannot shift the epochs.
        ds = epochs_ds.flat_map(lambda e: tf.data.Dataset.from_generator(
            lambda ep: self.epoch(int(ep)), output_signature=signature, args=(e,)))
        return ds.prefetch(prefetch)


def _prefetched(source: Iterator[Any], depth: int) -> Iterator[Any]:
    """Run *source* in a daemon thread, *depth* items ahead; errors re-raise in the consumer."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def worker() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", done))
        except BaseException as exc:  # hand the error to the consumer
            q.put(("error", exc))

    thread = threading.Thread(target=worker, daemon=True, name="cellbench-prefetch")
    thread.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "item":
                yield item
            elif kind == "error":
                raise item
            else:
                return
    finally:
        stop.set()
