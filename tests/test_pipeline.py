"""TrainingBatches: reproducible, shuffled, balanced, composed augmentation; Keras/tf.data feeding."""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_cells import hookimpl, plugins
from robustbench_cells.augchain import AugmentationChain
from robustbench_cells.data.dataset import Dataset
from robustbench_cells.errors import CellbenchError
from robustbench_cells.pipeline import TrainingBatches, augmentation_label, resolve_augmentation
from robustbench_cells.registry import AugmentationSpec


def _dataset(counts=(20, 6, 10), size=16, texture=False) -> Dataset:
    labels = np.concatenate([np.full(c, k) for k, c in enumerate(counts)])
    images = np.zeros((len(labels), size, size, 3), np.uint8)
    if texture:  # something for AugMix's ops to change (they leave flat images flat)
        images[..., 2] = np.random.default_rng(0).integers(0, 256, images.shape[:3])
    images[..., 0] = np.arange(len(labels))[:, None, None]  # each image carries its own index
    images[..., 1] = labels[:, None, None] * 50
    return Dataset(images, labels, tuple(f"c{k}" for k in range(len(counts))), source="toy")


def test_plain_epochs_cover_every_image_once_and_reshuffle():
    ds = _dataset()
    tb = TrainingBatches(ds, None, batch_size=8, seed=0)
    assert len(tb) == 5  # 36 images
    batches = list(tb.epoch(0))
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    assert x.dtype == np.float32 and y.dtype == np.float32 and y.shape == (36, 3)
    ids = x[:, 0, 0, 0].astype(int)
    assert sorted(ids) == list(range(36))
    np.testing.assert_array_equal(y.argmax(1), ds.labels[ids])  # labels follow their images
    ids1 = np.concatenate([b[0][:, 0, 0, 0] for b in tb.epoch(1)]).astype(int)
    assert (ids1 != ids).any()


def test_same_seed_same_batches_other_seed_differs():
    ds = _dataset()
    a = [b[0] for b in TrainingBatches(ds, "simple", batch_size=8, seed=3).epoch(2)]
    b = [b[0] for b in TrainingBatches(ds, "simple", batch_size=8, seed=3).epoch(2)]
    c = [b[0] for b in TrainingBatches(ds, "simple", batch_size=8, seed=4).epoch(2)]
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert any((u.shape != v.shape) or (u != v).any() for u, v in zip(a, c))


def test_random_access_and_prefetch_match_epoch():
    tb = TrainingBatches(_dataset(), ["simple", "mixup"], batch_size=8, seed=1)
    ref = list(tb.epoch(4))
    pre = list(tb.iterate(4, prefetch=2))
    for (x1, y1), (x2, y2) in zip(ref, pre):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    x3, y3 = tb.make_batch(4, 3)
    np.testing.assert_array_equal(x3, ref[3][0])


def test_balance_oversamples_to_the_largest_class():
    ds = _dataset()
    tb = TrainingBatches(ds, None, batch_size=10, seed=0, balance=True)
    assert tb.samples_per_epoch == 60 and len(tb) == 6
    y = np.concatenate([b[1] for b in tb.epoch(0)])
    np.testing.assert_array_equal(y.sum(0), [20, 20, 20])
    ids = np.concatenate([b[0][:, 0, 0, 0] for b in tb.epoch(0)]).astype(int)
    assert set(ids[ds.labels[ids] == 1]) == set(np.flatnonzero(ds.labels == 1))  # every minority image used


def test_composition_runs_image_ops_then_batch_ops():
    steps = resolve_augmentation(["mixup", {"name": "simple", "rotation": 0}])
    assert [s.spec.name for s in steps] == ["simple", "mixup"]
    assert augmentation_label(["simple", "mixup"]) == "simple+mixup"
    assert augmentation_label(None) == augmentation_label("none") == "none"
    # the one label format, the one stored cells carry (no quotes around text values)
    tb = TrainingBatches(_dataset(), [{"name": "simple", "flip": "both"}, "mixup"], batch_size=8)
    assert tb.label == "simple(flip=both)+mixup" and tb.steps[0].label == "simple(flip=both)"
    chain = AugmentationChain.from_label(tb.label)
    assert [s.spec.name for s in TrainingBatches(_dataset(), chain, batch_size=8).steps] == ["simple", "mixup"]
    tb = TrainingBatches(_dataset(), ["simple", "mixup"], batch_size=8, seed=0)
    x, y = next(tb.epoch(0))
    assert np.allclose(y.sum(1), 1) and (y.max(1) < 1).any()  # soft labels from mixup


def test_jsd_views():
    tb = TrainingBatches(_dataset(texture=True), "augmix", batch_size=8, seed=0, jsd_views=True)
    (clean, a1, a2), y = next(tb.epoch(0))
    assert clean.shape == a1.shape == a2.shape and (a1 != a2).any() and (clean != a1).any()
    ids = clean[:, 0, 0, 0].astype(int)
    np.testing.assert_array_equal(y.argmax(1), _dataset().labels[ids])
    with pytest.raises(CellbenchError, match="jsd_views.*batch"):
        TrainingBatches(_dataset(), ["augmix", "mixup"], jsd_views=True)


def test_user_mistakes_are_cellbench_errors():
    ds = _dataset()
    with pytest.raises(CellbenchError, match="unknown augmentation 'simpel'.*simple"):
        TrainingBatches(ds, "simpel")
    with pytest.raises(CellbenchError, match="augmentation 'simple'.*'rotaton'"):
        TrainingBatches(ds, {"name": "simple", "rotaton": 3})
    with pytest.raises(CellbenchError, match="no 'name'"):
        TrainingBatches(ds, {"rotation": 3})
    with pytest.raises(CellbenchError, match="batch_size"):
        TrainingBatches(ds, None, batch_size=0)


def test_a_plugin_returning_the_wrong_dtype_is_named():
    class Bad:
        @hookimpl
        def register_augmentations(self, register):
            register(AugmentationSpec("to_float", "test", "image", lambda: (lambda im, rng: im.astype(np.float32))))

    host = plugins.PluginHost(entry_points=False, extra_plugins=[("badplug", Bad())])
    tb = TrainingBatches(_dataset(), "to_float", batch_size=8, registry=host.augmentations)
    with pytest.raises(CellbenchError, match="'to_float'.*'badplug'.*float32"):
        next(tb.epoch(0))


def test_prefetch_propagates_errors():
    class Boom:
        @hookimpl
        def register_augmentations(self, register):
            def factory():
                def fn(images, rng):
                    raise RuntimeError("boom")
                return fn
            register(AugmentationSpec("boom", "test", "image", factory))

    host = plugins.PluginHost(entry_points=False, extra_plugins=[("boomplug", Boom())])
    tb = TrainingBatches(_dataset(), "boom", batch_size=8, registry=host.augmentations)
    with pytest.raises(RuntimeError, match="boom"):
        list(tb.iterate(0, prefetch=2))


@pytest.mark.slow
def test_tf_dataset_matches_epochs_and_feeds_keras():
    import keras

    tb = TrainingBatches(_dataset(), "simple", batch_size=8, seed=2)
    ds = tb.to_tf_dataset(epochs=2)
    got = [(x.numpy(), y.numpy()) for x, y in ds]
    ref = list(tb.epoch(0)) + list(tb.epoch(1))
    assert len(got) == 2 * len(tb)
    for (x1, y1), (x2, y2) in zip(got, ref):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy")
    hist = model.fit(tb.to_tf_dataset(), epochs=2, steps_per_epoch=len(tb), verbose=0, shuffle=False)
    assert len(hist.history["loss"]) == 2
