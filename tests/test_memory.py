"""What training holds beyond the data, measured with tracemalloc (NumPy reports its allocations to it).

The issue's bound: the model plus O(threads x features). The one per-row term left is the labels in the
kernels' encoding (4 bytes a row with float32 weights), which we count as data; everything else the engine
allocates (block row order, weights, AdaGrad sums, inv_freq, per-worker buffers) must not grow with the rows.
"""

import gc
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

import hogwild


def _data(n_rows, n_features=2000, nnz_per_row=50, seed=0):
    rng = np.random.default_rng(seed)
    # one index per stride of the feature range: distinct and sorted (canonical CSR) without a sort
    stride = n_features // nnz_per_row
    indices = np.arange(nnz_per_row) * stride + rng.integers(0, stride, (n_rows, nnz_per_row))
    X = sp.csr_matrix(
        (rng.random(n_rows * nnz_per_row, dtype=np.float32), indices.ravel().astype(np.int32),
         np.arange(0, n_rows * nnz_per_row + 1, nnz_per_row, dtype=np.int32)),
        shape=(n_rows, n_features),
    )
    y = np.where(np.asarray(X[:, : n_features // 2].sum(axis=1)).ravel() > nnz_per_row / 4, 1.0, -1.0)
    return X, y


def _peak_extra(X, y, **config):
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        hogwild.train(X, y, epochs=2, **config)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("mode", ["serial", "async", "sync", "average", "locked"])
def test_training_memory_does_not_grow_with_rows(mode):
    # Both sets are larger than the engine's fixed-size counting chunk (2**18 indices), so only per-row terms differ.
    small, large = _data(20_000), _data(80_000)
    assert small[0].indptr.dtype == np.int32  # scipy's own index type: the engine must not widen it
    config = dict(mode=mode, threads=2, dtype="float32")
    hogwild.train(*small, epochs=1, **config)  # compile outside the measurement
    per_row = (_peak_extra(*large, **config) - _peak_extra(*small, **config)) / (80_000 - 20_000)
    # 4 bytes of targets + 0.25 of block order; an int64 row order or indptr copy would add 8 each.
    assert per_row < 5.0, f"{mode}: training allocates {per_row:.1f} bytes per row beyond the data"
    # ...and the rest is the model-sized state: a few arrays of n_features, per worker at most.
    assert _peak_extra(*small, **config) < 4 * 2**20, "more than 4 MB beyond the data for a 2,000-feature model"
