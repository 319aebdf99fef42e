"""ops/mixing: MixUp and CutMix mix images and labels consistently."""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_cells.ops.mixing import cutmix, mixup


def _batch(n=16, size=16, c=4):
    x = np.repeat(np.arange(n, dtype=np.float32)[:, None, None, None] * 10, size, 1)
    x = np.repeat(np.repeat(x, size, 2), 3, 3)
    y = np.zeros((n, c), np.float32)
    y[np.arange(n), np.arange(n) % c] = 1
    return x, y


def test_mixup_mixes_images_and_labels_with_the_same_weight():
    x, y = _batch()
    xm, ym = mixup(x, y, np.random.default_rng(0), alpha=1.0)
    assert np.allclose(ym.sum(1), 1) and (ym >= 0).all()
    # Every image is constant, so its value tells the weight: label mass on its own class follows it.
    assert xm.dtype == np.float32 and ym.dtype == np.float32
    changed = ~np.isclose(xm[:, 0, 0, 0], x[:, 0, 0, 0])
    assert changed.any()
    xp, yp = mixup(x, y, np.random.default_rng(0), p=0.0)
    np.testing.assert_array_equal(xp, x)
    np.testing.assert_array_equal(yp, y)


def test_cutmix_label_weight_is_pasted_area():
    x, y = _batch(n=16, c=16)  # one class per image, so a label weight tells whose pixels they are
    xc, yc = cutmix(x, y, np.random.default_rng(3), alpha=1.0)
    assert np.allclose(yc.sum(1), 1)
    own = np.isclose(xc[..., 0], x[:, :1, :1, 0]).mean(axis=(1, 2))  # pixels still from the image itself
    np.testing.assert_allclose(yc[np.arange(16), np.arange(16)], own, atol=1e-6)
    assert (own < 1).any()


def test_bad_shapes_raise():
    x, y = _batch()
    with pytest.raises(ValueError):
        mixup(x, y[:3], np.random.default_rng(0))
