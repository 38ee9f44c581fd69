"""Compiled MLP kernels for dense input on BLAS: one micro-batch's forward/backward as matrix products.

The math, the flat parameter layout, the gradient buffers and the update are those of `hogwild.kernels.mlp`
(``tests/naive_mlp.py`` is the NumPy twin of both modules); only the products differ. There, the first layer
is a tiled loop that skips zero inputs; here, every layer of a micro-batch of B rows is one GEMM (Numba's
``np.dot`` on contiguous arrays calls the BLAS that SciPy ships, ``scipy.linalg.cython_blas``):

* forward: the rows are gathered into a contiguous ``(B, n_features)`` block, then ``Z_{l+1} = A_l W_l``
  (``(B, dims[l]) x (dims[l], dims[l+1])``), the bias added and the activation applied in place;
* backward: ``grad W_l = A_l^T delta_{l+1}`` is written straight into the gradient buffers that
  `hogwild.kernels.mlp.apply_update` reads (the first layer's into ``grad_rows``, every feature touched, in
  order; the rest into ``grad_rest``), and ``delta_l = (delta_{l+1} W_l^T) * f'(a_l)``.

So the update stays the shared, lock-free one, and ``serial``, ``async``, ``sync`` and ``auto`` take these
kernels in place of `hogwild.kernels.mlp.batch_gradient`/`train_chunk` without another change. A GEMM adds
its products in its own order (blocked, vectorized), so results equal the loop kernels' to rounding (float64:
~1e-12 relative per micro-batch), not bitwise; a run on the same BLAS, machine and thread count is still
bitwise reproducible.

Why BLAS here: a dense micro-batch of 32-64 rows against a 784 x 128 layer is 3-6 MFLOP per product, enough
for a GEMM to run at a large fraction of the core's peak, which loops that Numba compiles without
reassociation (``FASTMATH`` is off) do not reach. The catch is BLAS's own threads: each worker thread calls
its GEMMs concurrently, so the caller must hold the BLAS to one thread per call while the workers run
(``hogwild.runners.mlp_cpu`` does, with threadpoolctl) or the cores are oversubscribed. Sparse (CSR) first
layers keep the loop kernels of `hogwild.kernels.mlp`: there a GEMM would multiply zeros.

Scratch per worker: the gathered rows ``batch_X`` (``batch_size * n_features``) beside the activations,
deltas and gradient buffers of `hogwild.kernels.mlp`; nothing is allocated per micro-batch.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .arithmetic import activate, output_loss_delta, slope
from .config import FASTMATH
from .mlp import apply_update

# error_model="numpy": no division here can be by zero (1/B with B >= 1), and Numba's default check for a
# zero divisor would keep the elementwise loops from being vectorized.
_JIT = {"nogil": True, "cache": True, "fastmath": FASTMATH, "error_model": "numpy"}


@njit(**_JIT)
def _block(values, start, n_rows, n_cols):
    """``values[start:start + n_rows * n_cols]`` as a C-contiguous ``(n_rows, n_cols)`` matrix (a view)."""
    return values[start:start + n_rows * n_cols].reshape((n_rows, n_cols))


@njit(**_JIT)
def _forward_gemm(batch, params, dims, w_off, b_off, act_off, activation, acts):
    """Every layer's output for the gathered rows ``batch`` (``(B, n_features)``); the last holds raw scores."""
    n_rows = batch.shape[0]
    n_layers = dims.shape[0] - 1
    below = batch
    for layer in range(n_layers):
        fan_in, fan_out = dims[layer], dims[layer + 1]
        W = _block(params, w_off[layer], fan_in, fan_out)
        Z = _block(acts, act_off[layer + 1], n_rows, fan_out)
        np.dot(below, W, Z)
        bias = params[b_off[layer]:b_off[layer] + fan_out]
        hidden = layer < n_layers - 1
        for b in range(n_rows):
            z = Z[b]
            for j in range(fan_out):
                z[j] += bias[j]
            if hidden:
                for j in range(fan_out):
                    z[j] = activate(z[j], activation)
        below = Z


@njit(**_JIT)
def gather_rows(X, rows, batch_X, n_features):
    """Rows ``X[rows]`` copied into the front of ``batch_X``; returns them as a ``(len(rows), n_features)`` view."""
    n_rows = rows.shape[0]
    batch = _block(batch_X, 0, n_rows, n_features)
    for b in range(n_rows):
        batch[b, :] = X[rows[b]]
    return batch


@njit(**_JIT)
def dense_batch_gradient(
    X, y_index, y_value, sample_weight, output, activation, rows,
    params, dims, w_off, b_off, act_off, acts, deltas, batch_X, grad_rows, grad_rest,
):
    """Mean loss gradient of one micro-batch of dense rows into the worker's buffers; returns
    ``(loss_sum, n_features)``.

    The contract of `hogwild.kernels.mlp.batch_gradient` for dense input: each row's loss and gradient are
    scaled by its weight (``sample_weight`` holds one per row, or one for all rows); ``grad_rows`` receives the
    whole ``(n_features, h1)`` first-layer gradient (every feature touched, in order, so ``touched`` must be
    ``0 .. n_features-1``) and ``grad_rest`` the gradient of ``params[n_features * h1:]``.
    """
    n_rows = rows.shape[0]
    n_layers = dims.shape[0] - 1
    n_features, width = dims[0], dims[1]
    n_first = n_features * width
    n_out = dims[n_layers]
    inv_rows = 1.0 / n_rows
    batch = gather_rows(X, rows, batch_X, n_features)
    _forward_gemm(batch, params, dims, w_off, b_off, act_off, activation, acts)

    # output layer: loss and delta_L = (p - y) / B, row by row (the shared formulas)
    loss_sum = 0.0
    top = act_off[n_layers]
    for b in range(n_rows):
        i = rows[b]
        base = top + b * n_out
        weight = sample_weight[0] if sample_weight.shape[0] == 1 else sample_weight[i]
        loss_sum += weight * output_loss_delta(output, acts, base, n_out, y_index, y_value, i, inv_rows * weight,
                                               deltas, base, 0.0)

    # layers L-1 .. 0: grad W_l = A_l^T delta_{l+1}, grad b_l = column sums of delta_{l+1}, then delta_l
    for layer in range(n_layers - 1, -1, -1):
        fan_in, fan_out = dims[layer], dims[layer + 1]
        D = _block(deltas, act_off[layer + 1], n_rows, fan_out)
        bias_grad = grad_rest[b_off[layer] - n_first:b_off[layer] - n_first + fan_out]
        bias_grad[:] = 0.0
        for b in range(n_rows):
            d = D[b]
            for j in range(fan_out):
                bias_grad[j] += d[j]
        if layer == 0:
            np.dot(batch.T, D, _block(grad_rows, 0, n_features, width))
        else:
            A = _block(acts, act_off[layer], n_rows, fan_in)
            np.dot(A.T, D, _block(grad_rest, w_off[layer] - n_first, fan_in, fan_out))
            below = _block(deltas, act_off[layer], n_rows, fan_in)
            np.dot(D, _block(params, w_off[layer], fan_in, fan_out).T, below)
            for b in range(n_rows):
                a = A[b]
                d = below[b]
                for k in range(fan_in):
                    d[k] *= slope(a[k], activation)
    return loss_sum, n_features


@njit(**_JIT)
def dense_train_chunk(
    X, y_index, y_value, sample_weight, output, activation, order, start, stop, batch_size,
    params, state1, state2, step, dims, w_off, b_off, act_off,
    lr, l2, optimizer, momentum, beta1, beta2, epsilon, clip_norm,
    acts, deltas, batch_X, grad_rows, touched, grad_rest,
):
    """Train on dense rows ``order[start:stop]`` in micro-batches of ``batch_size``, updating ``params`` in
    place with `hogwild.kernels.mlp.apply_update`; returns the rows' summed loss (each measured before its
    own micro-batch's update). The dense twin of `hogwild.kernels.mlp.train_chunk`."""
    loss_sum = 0.0
    position = start
    while position < stop:
        end = min(position + batch_size, stop)
        loss, n_touched = dense_batch_gradient(
            X, y_index, y_value, sample_weight, output, activation, order[position:end],
            params, dims, w_off, b_off, act_off, acts, deltas, batch_X, grad_rows, grad_rest,
        )
        loss_sum += loss
        apply_update(
            params, state1, state2, step, grad_rows, touched, n_touched, grad_rest, dims, w_off, b_off,
            lr, l2, optimizer, momentum, beta1, beta2, epsilon, clip_norm,
        )
        position = end
    return loss_sum

