"""ops.lut: one table for the batch or one per image, the same as indexing the table with the pixels."""

from __future__ import annotations

import numpy as np

from robustbench_cells.ops.lut import apply_lut, apply_luts

X = np.random.default_rng(0).integers(0, 256, (5, 12, 10, 3), dtype=np.uint8)
RNG = np.random.default_rng(1)


def test_one_table_for_the_batch():
    table = RNG.integers(0, 256, 256, dtype=np.uint8)
    np.testing.assert_array_equal(apply_lut(X, table), table[X])
    per_channel = RNG.integers(0, 256, (256, 3), dtype=np.uint8)
    np.testing.assert_array_equal(apply_lut(X, per_channel), np.stack([per_channel[X[..., c], c] for c in range(3)], -1))


def test_one_table_per_image():
    tables = RNG.integers(0, 256, (5, 256), dtype=np.uint8)
    np.testing.assert_array_equal(apply_luts(X, tables), np.stack([t[x] for t, x in zip(tables, X)]))
    per_channel = RNG.integers(0, 256, (5, 256, 3), dtype=np.uint8)
    expect = np.stack([np.stack([t[x[..., c], c] for c in range(3)], -1) for t, x in zip(per_channel, X)])
    np.testing.assert_array_equal(apply_luts(X, per_channel), expect)
    strided = X[:, :, ::2]  # a view: the output must still be written
    np.testing.assert_array_equal(apply_luts(strided, tables), np.stack([t[x] for t, x in zip(tables, strided)]))
