"""CUDA twins of the MLP kernels (numba.cuda): one thread block per training row, Hogwild! on the GPU.

The math is `hogwild.kernels.mlp`'s (its module docstring; ``tests/naive_mlp.py`` is the NumPy twin): the same
flat parameter layout (`hogwild.kernels.mlp.layout`), the same activations, outputs, optimizers and lazy
first-layer rule. What changes is who computes what:

* One block per row. Its threads stride over the units of each layer: the forward pass of unit ``j`` reads
  ``W_l[k, j]`` for every input ``k``, so neighbouring threads read neighbouring weights (coalesced). The row's
  activations and deltas live in shared memory (``2 * sum(dims[1:])`` float64 values), so a layer waits for
  the one below with one ``syncthreads`` and never goes back to global memory.
* Update modes (one kernel, a named code of `hogwild.kernels.codes` selects):

  - ``ASYNC`` (Hogwild!): the block applies its row's share of a mini-batch step (the gradient of its loss
    divided by ``batch_size``) to the global weights and optimizer state with plain read-modify-writes,
    while every other resident block does the same. Lost updates are accepted; only the first-layer rows of
    the row's non-zero inputs are written (lazily, as `hogwild.kernels.mlp` does for CSR input), so on sparse
    data two blocks rarely collide there. The layers above are written by every block: that is where the
    races are, and why a GPU is the extreme case of Hogwild!.
  - ``ATOMIC``: the same step with ``cuda.atomic.add`` on every weight and state element: no lost increment,
    but each block still computes from the weights it read (stale by the time it writes).
  - ``ACCUMULATE``: the first half of ``sync``: every row of a mini-batch adds its gradient (already divided
    by the batch size) into ``grad`` with atomics and records the first-layer rows it touched; `_apply_batch`
    then takes one optimizer step, exactly as `hogwild.kernels.mlp.apply_update` does on the CPU.

  In ``ASYNC``/``ATOMIC`` each row is one step of the optimizer with its own gradient: with SGD, ``batch_size``
  such steps add up to one mini-batch step of the CPU engine; Adam's and RMSprop's steps are scale-free, so
  they take ``batch_size`` times as many steps per epoch as the CPU engine (Adam's bias correction still
  counts mini-batches: row ``pos`` of the epoch is step ``step_start + pos // batch_size + 1``).
* Clipping: ``clip_norm`` bounds the norm of one update's gradient (L2 term included), as on the CPU: the
  batch's in ``sync`` (`_batch_squares`, a block reduction and one atomic per block), the row's in the
  lock-free modes (a block reduction before the update).

The scalar formulas (activations and slopes, the output losses and their deltas, each optimizer's element
update, Adam's bias-corrected rate) are the CPU kernels' own functions (`hogwild.kernels.arithmetic`), compiled
for the device from the same source (`hogwild.kernels.gpu_arithmetic`); this module owns the thread layout,
the reductions and the atomics. Arithmetic inside the kernels is float64 (shared scratch, loss, gradient,
optimizer step) whatever the weights' dtype; results are rounded once when stored. So float32 runs agree with
the CPU's float32 kernels to float32 rounding, float64 runs to the order of the atomic additions. Launch shapes
come from `hogwild.kernels.config` (``MLP_THREADS_PER_BLOCK``, ``ROWS_PER_LAUNCH``), read at each launch, so
tests can shrink them; everything here runs unmodified under the CUDA simulator.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64

from . import arithmetic, config
from .codes import (
    ACTIVATION_CODES,
    OPTIMIZER_ADAM,
    OPTIMIZER_CODES,
    OPTIMIZER_MOMENTUM,
    OPTIMIZER_SGD,
    OUTPUT_CODES,
    UPDATE_ACCUMULATE,
    UPDATE_ASYNC,
    UPDATE_ATOMIC,
    UPDATE_CODES,
)
from .gpu_arithmetic import activate, adam_rate, adam_step, momentum_step, output_loss_delta, rmsprop_step, slope

# The tables and short names hogwild.gpu_mlp and the tests use (the codes are the CPU kernels').
ACTIVATIONS, OPTIMIZERS, OUTPUTS = ACTIVATION_CODES, OPTIMIZER_CODES, OUTPUT_CODES
ASYNC, ATOMIC, ACCUMULATE = UPDATE_ASYNC, UPDATE_ATOMIC, UPDATE_ACCUMULATE
MODES = UPDATE_CODES
# Dynamic shared memory a block may use without opting in to more (every CUDA GPU since Kepler).
SHARED_BYTES_LIMIT = 48 * 1024


# --------------------------------------------------------------------------------------------------
# device helpers (the formulas are `hogwild.kernels.gpu_arithmetic`; tests/naive_mlp.py specifies them)
# --------------------------------------------------------------------------------------------------
@cuda.jit(device=True)
def _block_sum(scratch, start, value, tid, tpb):
    """Sum of ``value`` over the block's threads (``tpb`` a power of two), reduced in ``scratch[start:start+tpb]``.

    Every thread of the block must call it (it synchronizes the block).
    """
    scratch[start + tid] = value
    cuda.syncthreads()
    offset = tpb // 2
    while offset > 0:
        if tid < offset:
            scratch[start + tid] += scratch[start + tid + offset]
        cuda.syncthreads()
        offset //= 2
    total = scratch[start]
    cuda.syncthreads()  # the scratch may be reused right after
    return total


@cuda.jit(device=True)
def _bias_decay(q, dims, b_off, l2):
    """The L2 strength of parameter ``q``: ``l2`` for weights, 0 for biases."""
    for layer in range(dims.shape[0] - 1):
        if q >= b_off[layer] and q < b_off[layer] + dims[layer + 1]:
            return 0.0
    return l2


@cuda.jit(device=True)
def _row_element(e, first_count, dense, X, row, indptr, indices, data, shared, n_act, dims, w_off, b_off, act_off):
    """Element ``e`` of one row's update: ``(parameter index, gradient, is_weight, live)``.

    Elements ``[0, first_count)`` are the first-layer weights of the row's inputs (dense: every feature, of
    which only non-zero inputs are live; CSR: the row's non-zeros), the rest are ``params[n_first:]`` in order.
    Gradients come from the activations (``shared[:n_act]``) and deltas (``shared[n_act:2 n_act]``).
    """
    width = dims[1]
    if e < first_count:
        s = e // width
        j = e - s * width
        if dense:
            feature = s
            x = X[row, s]
        else:
            p = indptr[row] + s
            feature = indices[p]
            x = data[p]
        gradient = x * shared[n_act + act_off[1] + j]
        return feature * width + j, gradient, 1.0, x != 0
    q = e - first_count + dims[0] * width
    n_layers = dims.shape[0] - 1
    layer = 0
    while layer + 1 < n_layers and q >= w_off[layer + 1]:
        layer += 1
    fan_out = dims[layer + 1]
    if q >= b_off[layer]:
        j = q - b_off[layer]
        return q, shared[n_act + act_off[layer + 1] + j], 0.0, True
    local = q - w_off[layer]
    k = local // fan_out
    j = local - k * fan_out
    return q, shared[act_off[layer] + k] * shared[n_act + act_off[layer + 1] + j], 1.0, True


@cuda.jit(device=True)
def _step(params, state1, state2, p, g, optimizer, lr, momentum, beta1, beta2, epsilon, adam_lr, atomic):
    """One optimizer step of element ``p`` with gradient ``g`` (L2 and clipping already in it)."""
    if optimizer == OPTIMIZER_SGD:
        delta = -(lr * g)
    elif optimizer == OPTIMIZER_MOMENTUM:
        old = state1[p]
        velocity = momentum_step(old, g, momentum, lr)
        if atomic:
            cuda.atomic.add(state1, p, velocity - old)
        else:
            state1[p] = velocity
        delta = velocity
    elif optimizer == OPTIMIZER_ADAM:
        old_m = state1[p]
        old_v = state2[p]
        m, v, decrement = adam_step(old_m, old_v, g, beta1, beta2, 1.0 - beta1, 1.0 - beta2, adam_lr, epsilon)
        if atomic:
            cuda.atomic.add(state1, p, m - old_m)
            cuda.atomic.add(state2, p, v - old_v)
        else:
            state1[p] = m
            state2[p] = v
        delta = -decrement
    else:  # OPTIMIZER_RMSPROP
        old_v = state2[p]
        v, decrement = rmsprop_step(old_v, g, beta2, 1.0 - beta2, lr, epsilon)
        if atomic:
            cuda.atomic.add(state2, p, v - old_v)
        else:
            state2[p] = v
        delta = -decrement
    if atomic:
        cuda.atomic.add(params, p, delta)
    else:
        params[p] += delta


# --------------------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------------------
@cuda.jit
def _train_rows(
    dense, X, indptr, indices, data, y_index, y_value, order, pos_start, pos_stop,
    params, state1, state2, grad, mark, touched, counters, parity,
    dims, w_off, b_off, act_off, n_act, output, activation, mode, optimizer, inv_batch,
    lr, l2, momentum, beta1, beta2, epsilon, clip_norm, step_start, batch_size, row_loss,
):
    """Forward, backward and update (``mode``) of row ``order[pos]`` for pos in [pos_start, pos_stop), a block each.

    ``row_loss[pos]`` gets the row's loss before any update of its own. ACCUMULATE adds the row's gradient
    into ``grad`` (the params' layout) and appends the CSR features it touches for the first time in this
    mini-batch to ``touched`` (``mark[feature]`` 0 -> 1, ``counters[parity]`` counts them).
    """
    shared = cuda.shared.array(0, dtype=float64)
    tid = cuda.threadIdx.x
    tpb = cuda.blockDim.x
    pos = pos_start + cuda.blockIdx.x
    if pos >= pos_stop:
        return  # the whole block leaves together, so no syncthreads below is left waiting
    row = order[pos]
    n_layers = dims.shape[0] - 1
    n_features = dims[0]
    width = dims[1]
    deltas = n_act  # deltas sit right after the activations; the reduction scratch after both
    scratch_start = 2 * n_act

    # forward: the first layer from the row's inputs, then layer by layer from shared memory
    for j in range(tid, width, tpb):
        z = float64(params[b_off[0] + j])
        if dense:
            for k in range(n_features):
                x = X[row, k]
                if x != 0:  # image-like rows are mostly zeros
                    z += x * params[k * width + j]
        else:
            for p in range(indptr[row], indptr[row + 1]):
                z += data[p] * params[indices[p] * width + j]
        shared[act_off[1] + j] = activate(z, activation)
    cuda.syncthreads()
    for layer in range(1, n_layers):
        fan_in = dims[layer]
        fan_out = dims[layer + 1]
        for j in range(tid, fan_out, tpb):
            z = float64(params[b_off[layer] + j])
            for k in range(fan_in):
                z += shared[act_off[layer] + k] * params[w_off[layer] + k * fan_out + j]
            if layer < n_layers - 1:
                z = activate(z, activation)
            shared[act_off[layer + 1] + j] = z
        cuda.syncthreads()

    # output: loss and delta_L = (p - y) / batch_size (a handful of units: one thread does it)
    if tid == 0:
        top = act_off[n_layers]
        row_loss[pos] = output_loss_delta(
            output, shared, top, dims[n_layers], y_index, y_value, row, inv_batch, shared, deltas + top, 0.0
        )
    cuda.syncthreads()

    # backward: delta_l = (delta_{l+1} W_l^T) * f'(a_l), read from the weights the forward pass used
    for layer in range(n_layers - 1, 0, -1):
        fan_in = dims[layer]
        fan_out = dims[layer + 1]
        for k in range(tid, fan_in, tpb):
            back = 0.0
            w = w_off[layer] + k * fan_out
            for j in range(fan_out):
                back += shared[deltas + act_off[layer + 1] + j] * params[w + j]
            shared[deltas + act_off[layer] + k] = back * slope(shared[act_off[layer] + k], activation)
        cuda.syncthreads()

    first_count = n_features * width if dense else (indptr[row + 1] - indptr[row]) * width
    n_elements = first_count + params.shape[0] - n_features * width

    if mode == ACCUMULATE:
        for e in range(tid, n_elements, tpb):
            p, g, is_weight, live = _row_element(
                e, first_count, dense, X, row, indptr, indices, data, shared, n_act, dims, w_off, b_off, act_off
            )
            if live:
                cuda.atomic.add(grad, p, g)
        if not dense:
            for s in range(tid, indptr[row + 1] - indptr[row], tpb):
                feature = indices[indptr[row] + s]
                if cuda.atomic.add(mark, feature, 1) == 0:
                    touched[cuda.atomic.add(counters, parity, 1)] = feature
        return

    # lock-free modes: this row's step on the global weights (its gradient is 1/batch_size of a batch's)
    scale = 1.0
    if clip_norm > 0.0:
        squares = 0.0
        for e in range(tid, n_elements, tpb):
            p, g, is_weight, live = _row_element(
                e, first_count, dense, X, row, indptr, indices, data, shared, n_act, dims, w_off, b_off, act_off
            )
            if live:
                g += is_weight * l2 * params[p]
                squares += g * g
        norm = math.sqrt(_block_sum(shared, scratch_start, squares, tid, tpb))
        if norm > clip_norm:
            scale = clip_norm / norm
    t = step_start + pos // batch_size + 1
    adam_lr = adam_rate(lr, beta1, beta2, t)
    atomic = mode == ATOMIC
    for e in range(tid, n_elements, tpb):
        p, g, is_weight, live = _row_element(
            e, first_count, dense, X, row, indptr, indices, data, shared, n_act, dims, w_off, b_off, act_off
        )
        if live:
            g = (g + is_weight * l2 * params[p]) * scale
            _step(params, state1, state2, p, g, optimizer, lr, momentum, beta1, beta2, epsilon, adam_lr, atomic)


@cuda.jit(device=True)
def _batch_element(i, dense, touched, counters, parity, max_first, width, n_first, n_params):
    """Parameter index of element ``i`` of a mini-batch update, and the touched feature (-1: none; -2: out of range).

    Elements ``[0, max_first)`` are slots of touched first-layer rows (dense input: every feature), the rest
    ``params[n_first:]``.
    """
    if i < max_first:
        s = i // width
        if dense:
            feature = s
        elif s < counters[parity]:
            feature = touched[s]
        else:
            return 0, -2
        return feature * width + (i - s * width), feature
    p = n_first + (i - max_first)
    if p >= n_params:
        return 0, -2
    return p, -1


@cuda.jit
def _batch_squares(dense, params, grad, touched, counters, squares, parity, max_first, width, dims, b_off, l2):
    """Add the squared norm of the mini-batch's ``grad + l2 w`` to ``squares[parity]`` (for ``clip_norm``)."""
    scratch = cuda.shared.array(0, dtype=float64)
    i = cuda.grid(1)
    n_first = dims[0] * width
    p, feature = _batch_element(i, dense, touched, counters, parity, max_first, width, n_first, params.shape[0])
    value = 0.0
    if feature != -2:
        decay = l2 if feature >= 0 else _bias_decay(p, dims, b_off, l2)
        g = grad[p] + decay * params[p]
        value = g * g
    total = _block_sum(scratch, 0, value, cuda.threadIdx.x, cuda.blockDim.x)
    if cuda.threadIdx.x == 0:
        cuda.atomic.add(squares, parity, total)


@cuda.jit
def _apply_batch(
    dense, params, state1, state2, grad, mark, touched, counters, squares, parity, max_first, width, dims, b_off,
    optimizer, lr, l2, momentum, beta1, beta2, epsilon, clip_norm, adam_lr,
):
    """Second half of ``sync``: one optimizer step on every touched element from the mini-batch gradient.

    The rule of `hogwild.kernels.mlp.apply_update` (lazy first layer for CSR input), one thread per element.
    It also clears what the mini-batch left behind (``grad``, ``mark``) and the other parity's counter and
    norm, which the next mini-batch uses: the counter of this one is still being read by other blocks.
    """
    i = cuda.grid(1)
    if i == 0:
        counters[1 - parity] = 0
        squares[1 - parity] = 0.0
    n_first = dims[0] * width
    p, feature = _batch_element(i, dense, touched, counters, parity, max_first, width, n_first, params.shape[0])
    if feature == -2:
        return
    scale = 1.0
    if clip_norm > 0.0:
        norm = math.sqrt(squares[parity])
        if norm > clip_norm:
            scale = clip_norm / norm
    if feature >= 0:
        decay = l2
        if not dense and p == feature * width:
            mark[feature] = 0
    else:
        decay = _bias_decay(p, dims, b_off, l2)
    g = (grad[p] + decay * params[p]) * scale
    grad[p] = 0.0
    _step(params, state1, state2, p, g, optimizer, lr, momentum, beta1, beta2, epsilon, adam_lr, False)


@cuda.jit
def _scores(dense, X, indptr, indices, data, params, dims, w_off, b_off, act_off, n_act, activation, out):
    """Output scores of every row into ``out`` (n_rows, n_out): one block per row, as `_train_rows`' forward."""
    shared = cuda.shared.array(0, dtype=float64)
    tid = cuda.threadIdx.x
    tpb = cuda.blockDim.x
    row = cuda.blockIdx.x
    if row >= out.shape[0]:
        return
    n_layers = dims.shape[0] - 1
    n_features = dims[0]
    width = dims[1]
    for j in range(tid, width, tpb):
        z = float64(params[b_off[0] + j])
        if dense:
            for k in range(n_features):
                x = X[row, k]
                if x != 0:
                    z += x * params[k * width + j]
        else:
            for p in range(indptr[row], indptr[row + 1]):
                z += data[p] * params[indices[p] * width + j]
        shared[act_off[1] + j] = activate(z, activation)
    cuda.syncthreads()
    for layer in range(1, n_layers):
        fan_in = dims[layer]
        fan_out = dims[layer + 1]
        for j in range(tid, fan_out, tpb):
            z = float64(params[b_off[layer] + j])
            for k in range(fan_in):
                z += shared[act_off[layer] + k] * params[w_off[layer] + k * fan_out + j]
            if layer < n_layers - 1:
                z = activate(z, activation)
            shared[act_off[layer + 1] + j] = z
        cuda.syncthreads()
    top = act_off[n_layers]
    for k in range(tid, dims[n_layers], tpb):
        out[row, k] = shared[top + k]


# --------------------------------------------------------------------------------------------------
# launchers: validate the launch shape, read the tunables now (not at import)
# --------------------------------------------------------------------------------------------------
def _threads_per_block():
    tpb = int(config.MLP_THREADS_PER_BLOCK)
    if tpb < 1 or tpb & (tpb - 1):
        raise ValueError(f"hogwild.kernels.config.MLP_THREADS_PER_BLOCK must be a power of two; got {tpb}")
    return tpb


def _shared_bytes(n_act, tpb):
    shared = (2 * n_act + tpb) * 8
    if shared > SHARED_BYTES_LIMIT:
        raise ValueError(f"an MLP with {n_act} hidden and output units does not fit in one CUDA block's shared memory")
    return shared


class DeviceNetwork:
    """The device-resident arrays of one MLP: parameters, optimizer state, layout and ``sync`` buffers.

    ``max_touched`` bounds the first-layer rows one mini-batch can touch (``n_features`` for dense input).
    ``counters`` and ``squares`` hold two slots, used by alternate mini-batches (see `_apply_batch`).
    """

    def __init__(self, params, state1, state2, dims, *, dense, max_touched, sync):
        from .mlp import activation_offsets, layout

        dtype = params.dtype
        self.dims_host = np.asarray(dims, dtype=np.int64)
        w_off, b_off, n_params = layout(self.dims_host)
        act_off, n_act = activation_offsets(self.dims_host, 1)
        self.n_act = int(n_act)
        self.n_params = int(n_params)
        self.width = int(self.dims_host[1])
        self.n_first = int(self.dims_host[0]) * self.width
        self.dense = bool(dense)
        self.max_first = (int(self.dims_host[0]) if dense else int(max_touched)) * self.width
        self.params = cuda.to_device(np.ascontiguousarray(params))
        self.state1 = cuda.to_device(np.ascontiguousarray(state1, dtype=dtype))
        self.state2 = cuda.to_device(np.ascontiguousarray(state2, dtype=dtype))
        self.dims = cuda.to_device(self.dims_host)
        self.w_off = cuda.to_device(w_off)
        self.b_off = cuda.to_device(b_off)
        self.act_off = cuda.to_device(act_off)
        self.grad = cuda.to_device(np.zeros(n_params if sync else 1, dtype=dtype))
        self.mark = cuda.to_device(np.zeros(int(self.dims_host[0]) if sync and not dense else 1, dtype=np.int32))
        self.touched = cuda.to_device(np.zeros(max(1, int(max_touched)) if sync and not dense else 1, dtype=np.int64))
        self.counters = cuda.to_device(np.zeros(2, dtype=np.int32))
        self.squares = cuda.to_device(np.zeros(2, dtype=np.float64))

    def download(self):
        """Host copies ``(params, state1, state2)`` (waits for the queued kernels)."""
        return self.params.copy_to_host(), self.state1.copy_to_host(), self.state2.copy_to_host()


class Hyper:
    """The scalars of an update: learning rate, L2, optimizer id and constants, clipping, batch size."""

    def __init__(self, lr, l2, optimizer, momentum, beta1, beta2, epsilon, clip_norm, batch_size):
        self.lr, self.l2, self.optimizer = float(lr), float(l2), int(OPTIMIZERS[optimizer])
        self.momentum, self.beta1, self.beta2 = float(momentum), float(beta1), float(beta2)
        self.epsilon, self.clip_norm = float(epsilon), float(clip_norm or 0.0)
        self.batch_size = int(batch_size)

    def adam_lr(self, t):
        """Adam's bias-corrected step at optimizer step ``t`` (1-based), as `hogwild.kernels.mlp.apply_update`."""
        return arithmetic.adam_rate.py_func(self.lr, self.beta1, self.beta2, t)


def train_rows(inputs, targets, order, pos_start, pos_stop, net, hyper, output, activation, mode, step_start,
               row_loss, inv_batch, parity=0):
    """Launch `_train_rows` over ``order[pos_start:pos_stop]``, ``config.ROWS_PER_LAUNCH`` rows a launch.

    ``inputs`` = (dense, X, indptr, indices, data) with device arrays; ``targets`` = (y_index, y_value) device
    arrays. Launches are asynchronous: nothing here waits for the GPU.
    """
    dense, X, indptr, indices, data = inputs
    y_index, y_value = targets
    tpb = _threads_per_block()
    shared = _shared_bytes(net.n_act, tpb)
    chunk = max(1, int(config.ROWS_PER_LAUNCH))
    for first in range(pos_start, pos_stop, chunk):
        last = min(pos_stop, first + chunk)
        _train_rows[last - first, tpb, 0, shared](
            dense, X, indptr, indices, data, y_index, y_value, order, first, last,
            net.params, net.state1, net.state2, net.grad, net.mark, net.touched, net.counters, parity,
            net.dims, net.w_off, net.b_off, net.act_off, net.n_act, OUTPUTS[output], ACTIVATIONS[activation], mode,
            hyper.optimizer, inv_batch, hyper.lr, hyper.l2, hyper.momentum, hyper.beta1, hyper.beta2, hyper.epsilon,
            hyper.clip_norm, step_start, hyper.batch_size, row_loss,
        )


def apply_batch(net, hyper, t, parity):
    """Launch the optimizer step of one ``sync`` mini-batch at optimizer step ``t`` (1-based)."""
    tpb = _threads_per_block()
    n = net.max_first + net.n_params - net.n_first
    blocks = (n + tpb - 1) // tpb
    if hyper.clip_norm > 0:
        _batch_squares[blocks, tpb, 0, tpb * 8](
            net.dense, net.params, net.grad, net.touched, net.counters, net.squares, parity, net.max_first,
            net.width, net.dims, net.b_off, hyper.l2,
        )
    _apply_batch[blocks, tpb](
        net.dense, net.params, net.state1, net.state2, net.grad, net.mark, net.touched, net.counters, net.squares,
        parity, net.max_first, net.width, net.dims, net.b_off, hyper.optimizer, hyper.lr, hyper.l2, hyper.momentum,
        hyper.beta1, hyper.beta2, hyper.epsilon, hyper.clip_norm, hyper.adam_lr(t),
    )


def scores(inputs, net, activation, n_rows):
    """Device array (n_rows, n_outputs) of output scores (float64)."""
    dense, X, indptr, indices, data = inputs
    out = cuda.device_array((n_rows, int(net.dims_host[-1])), dtype=np.float64)
    tpb = _threads_per_block()
    if n_rows:
        _scores[n_rows, tpb, 0, _shared_bytes(net.n_act, tpb)](
            dense, X, indptr, indices, data, net.params, net.dims, net.w_off, net.b_off, net.act_off, net.n_act,
            ACTIVATIONS[activation], out,
        )
    return out
