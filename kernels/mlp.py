"""Compiled MLP kernels: one micro-batch's forward/backward, the optimizer step, and a batched forward.

The math, kept plain so that ``kernels/gpu_mlp.py`` can mirror it (``tests/naive_mlp.py`` is the
NumPy twin of every kernel here):

* Layout. All parameters live in ONE flat array ``params``. Layer ``l`` (``l = 0 .. L-1``) maps ``dims[l]``
  inputs to ``dims[l+1]`` outputs; its weights ``W_l`` are a row-major ``(dims[l], dims[l+1])`` block starting
  at ``w_off[l]`` and its bias a ``dims[l+1]`` block at ``b_off[l]``. ``W_0`` comes first, so
  ``params[:n_features * dims[1]]`` is the ``(n_features, h1)`` C-contiguous first-layer matrix; everything
  after it is "the rest". The optimizer state (``state1``: momentum velocity / Adam first moment;
  ``state2``: Adam / RMSprop second moment) has the same layout, so an element's state sits at the same index.
* Forward. ``a_0 = x``; ``z_{l+1} = a_l W_l + b_l``; hidden layers ``a = f(z)`` (relu, tanh, sigmoid);
  the output ``z_L`` is a score: softmax cross-entropy (K > 2 classes), logistic loss on one unit (two
  classes) or squared error ``0.5 * sum_k (z_k - t_k)^2`` (regression). With CSR input the first layer is
  ``z_1 = b_0 + sum_j x_j W_0[j, :]`` over the row's nonzeros only.
* Backward (a micro-batch of B rows, gradients are means over the batch). ``delta_L = (p - y) / B``
  (``p`` softmax or sigmoid; identity for squared error); ``grad W_l = a_l^T delta_{l+1}``,
  ``grad b_l = sum_rows delta_{l+1}``; ``delta_l = (delta_{l+1} W_l^T) * f'(a_l)`` with ``f'`` written in
  terms of the activation: relu ``a > 0``, tanh ``1 - a^2``, sigmoid ``a (1 - a)``.
* First-layer gradient. It is kept as rows: ``touched[s]`` is a feature and ``grad_rows[s*h1:(s+1)*h1]`` its
  gradient row. For CSR input only the features present in the micro-batch are touched (a sparse update, which
  is where Hogwild! shines: two workers rarely write the same rows). For dense input every feature is touched,
  so the update is the ordinary dense one.
* Update. ``g = (grad + l2 * w) * scale`` (L2 on weights, never on biases; ``scale = clip_norm / ||g||`` when
  the global norm of the whole micro-batch gradient exceeds ``clip_norm``, else 1), then per element
  sgd ``w -= lr g``; momentum ``v = mu v - lr g; w += v``; adam (scikit-learn's form)
  ``m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; w -= lr sqrt(1-b2^t)/(1-b1^t) m / (sqrt(v) + eps)``;
  rmsprop ``v = b2 v + (1-b2) g^2; w -= lr g / (sqrt(v) + eps)``. ``t`` is the shared step counter.
  With CSR input the first layer is updated lazily: rows of features absent from the micro-batch get
  neither the L2 shrink nor a momentum/Adam step that time (like PyTorch's SparseAdam).
* Speed. Products are plain loops whose innermost index runs over a contiguous row of ``dims[l+1]`` outputs
  (vectorizable: loops index views from 0, see `_axpy`), skipping zero inputs (relu zeros, MNIST's blank
  pixels, CSR's absent features). The dense first layer, almost all of the work, is tiled (`MLP_TILE`) so
  that weights and deltas are reused from L1 across the micro-batch, in the same summation order. These loops
  call no BLAS. Dense input trains on the GEMM kernels of `hogwild.kernels.mlp_dense` instead (a micro-batch's
  forward/backward 2.3-2.6x faster at 32-64 rows x 784 x 128 on an AVX-512 Xeon), which write the same
  gradient buffers for the same `apply_update`; the loops here remain what sparse input runs, what dense input
  runs where the BLAS cannot be held to one thread per worker (no threadpoolctl), and what prediction runs.
  Scratch is allocated once per worker, never per row.
* Races. In ``async`` mode several threads run `train_chunk` on the same ``params``/``state`` arrays without
  locks: a read may see a half-applied update of another worker and the step counter may lose increments.
  That is Hogwild!: the error this adds is small when updates are sparse or small, and nothing else is
  shared. Each worker owns its scratch (activations, deltas, gradient buffers), so nothing else races.
* Where the scalar formulas live. The activations and their slopes, the output losses and their deltas, and
  each optimizer's element update are written once in `hogwild.kernels.arithmetic`, inlined here by Numba and
  compiled from the same source for ``kernels/gpu_mlp.py``; the kernels here own the loops, the layout and the
  memory traffic. Variants are the named codes of `hogwild.kernels.codes`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .arithmetic import activate, adam_rate, adam_step, momentum_step, output_loss_delta, rmsprop_step, slope
from .codes import ACTIVATION_CODES, OPTIMIZER_ADAM, OPTIMIZER_CODES, OPTIMIZER_MOMENTUM, OPTIMIZER_SGD, OUTPUT_CODES
from .config import FASTMATH, MLP_TILE

# The name -> code tables hogwild.mlp builds the kernels' arguments from (`hogwild.kernels.codes`).
ACTIVATIONS = ACTIVATION_CODES
OUTPUTS = OUTPUT_CODES
OPTIMIZERS = OPTIMIZER_CODES


def layout(dims):
    """Offsets of the flat parameter array: ``(w_off, b_off, n_params)`` for layer sizes ``dims``."""
    dims = [int(d) for d in dims]
    w_off, b_off, position = [], [], 0
    for fan_in, fan_out in zip(dims[:-1], dims[1:]):
        w_off.append(position)
        position += fan_in * fan_out
        b_off.append(position)
        position += fan_out
    return np.asarray(w_off, dtype=np.int64), np.asarray(b_off, dtype=np.int64), position


def activation_offsets(dims, batch_size):
    """Offsets of each layer's block in the per-worker activation/delta scratch, and its total size.

    Layer ``l >= 1`` (a hidden layer or the output) owns ``batch_size * dims[l]`` entries, row-major by row.
    """
    offsets = np.zeros(len(dims), dtype=np.int64)
    position = 0
    for layer in range(1, len(dims)):
        offsets[layer] = position
        position += batch_size * int(dims[layer])
    return offsets, position


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def _axpy(x, source, target):
    """``target += x * source`` over two equal-length views.

    Loops index views from 0 rather than a flat array at an offset: Numba cannot prove ``offset + j``
    non-negative, and its wraparound check on a possibly negative index keeps LLVM from vectorizing the loop
    (measured: the offset form compiled to scalar code, about 4x slower per product on this AVX-512 CPU).
    """
    for j in range(target.shape[0]):
        target[j] += x * source[j]


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def _dense_first_forward(X, rows, params, n_features, width, base, acts):
    """Add ``x W_0`` to the first layer's pre-activations ``acts[base:]`` of the rows, for dense ``X``.

    Blocked for the cache and the vector units: `MLP_TILE` feature rows of ``W_0`` at a time (8 KB for 16 x
    128 float32) are applied to every row of the micro-batch while they sit in L1, so ``W_0`` (784 x 128
    float32 = 400 KB) is read from L2 once per micro-batch instead of once per row; and each pass over a row's
    ``width`` units adds `MLP_TILE` products (a constant trip count that LLVM unrolls), so an activation is
    loaded and stored once per tile rather than once per feature. The products are added one after another in
    feature order, so every sum is bitwise the row-by-row loop's (zero inputs add an exact zero); a tile of
    zero inputs (MNIST's blank border) is skipped.
    """
    n_rows = rows.shape[0]
    W = params[:n_features * width].reshape((n_features, width))
    A = acts[base:base + n_rows * width].reshape((n_rows, width))
    n_tiled = n_features // MLP_TILE * MLP_TILE
    for k0 in range(0, n_tiled, MLP_TILE):
        W_tile = W[k0:k0 + MLP_TILE]
        for b in range(n_rows):
            x = X[rows[b], k0:k0 + MLP_TILE]
            blank = True
            for t in range(MLP_TILE):
                if x[t] != 0:
                    blank = False
            if not blank:
                a = A[b]
                for j in range(width):
                    total = a[j]
                    for t in range(MLP_TILE):
                        total += x[t] * W_tile[t, j]
                    a[j] = total
    for k in range(n_tiled, n_features):
        for b in range(n_rows):
            x_k = X[rows[b], k]
            if x_k != 0:
                _axpy(x_k, W[k], A[b])


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def _dense_first_gradient(X, rows, deltas, n_features, width, base, grad_rows):
    """``grad_rows[k, :] = sum_b x[b, k] delta_1[b, :]`` (the first layer's weight gradient) for dense ``X``.

    The mirror of `_dense_first_forward`: `MLP_TILE` rows' deltas at a time stay in L1 while every gradient row
    gets their `MLP_TILE` products in one pass (loaded and stored once per tile, not once per row). Rows are
    added one after another in batch order, so each sum is bitwise the row-by-row loop's.
    """
    n_rows = rows.shape[0]
    G = grad_rows[:n_features * width].reshape((n_features, width))
    D = deltas[base:base + n_rows * width].reshape((n_rows, width))
    for q in range(n_features * width):
        grad_rows[q] = 0.0
    x = np.empty(MLP_TILE, dtype=grad_rows.dtype)
    n_tiled = n_rows // MLP_TILE * MLP_TILE
    for r0 in range(0, n_tiled, MLP_TILE):
        D_tile = D[r0:r0 + MLP_TILE]
        for k in range(n_features):
            blank = True
            for t in range(MLP_TILE):
                x[t] = X[rows[r0 + t], k]
                if x[t] != 0:
                    blank = False
            if not blank:
                g = G[k]
                for j in range(width):
                    total = g[j]
                    for t in range(MLP_TILE):
                        total += x[t] * D_tile[t, j]
                    g[j] = total
    for b in range(n_tiled, n_rows):
        for k in range(n_features):
            x_k = X[rows[b], k]
            if x_k != 0:
                _axpy(x_k, D[b], G[k])


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def _forward_rows(dense, X, indptr, indices, data, rows, params, dims, w_off, b_off, act_off, activation, acts):
    """Fill ``acts`` with every layer's output for the given rows; the last layer holds the raw scores."""
    n_rows = rows.shape[0]
    n_layers = dims.shape[0] - 1
    n_features = dims[0]
    width = dims[1]
    bias = b_off[0]
    for b in range(n_rows):
        base = act_off[1] + b * width
        for j in range(width):
            acts[base + j] = params[bias + j]
    if dense:
        _dense_first_forward(X, rows, params, n_features, width, act_off[1], acts)
    else:
        for b in range(n_rows):
            i = rows[b]
            base = act_off[1] + b * width
            for p in range(indptr[i], indptr[i + 1]):
                w = indices[p] * width
                _axpy(data[p], params[w:w + width], acts[base:base + width])
    for b in range(n_rows):
        base = act_off[1] + b * width
        for j in range(width):
            acts[base + j] = activate(acts[base + j], activation)
    for layer in range(1, n_layers):
        fan_in = dims[layer]
        fan_out = dims[layer + 1]
        hidden = layer < n_layers - 1
        for b in range(n_rows):
            source = act_off[layer] + b * fan_in
            target = act_off[layer + 1] + b * fan_out
            for j in range(fan_out):
                acts[target + j] = params[b_off[layer] + j]
            for k in range(fan_in):
                a = acts[source + k]
                if a != 0:  # relu zeros
                    w = w_off[layer] + k * fan_out
                    for j in range(fan_out):
                        acts[target + j] += a * params[w + j]
            if hidden:
                for j in range(fan_out):
                    acts[target + j] = activate(acts[target + j], activation)


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def batch_gradient(
    dense, X, indptr, indices, data, y_index, y_value, sample_weight, output, activation, rows,
    params, dims, w_off, b_off, act_off, acts, deltas, grad_rows, touched, slot, grad_rest,
):
    """Mean loss gradient of one micro-batch into the worker's buffers; returns ``(loss_sum, n_touched)``.

    Each row's loss and gradient are scaled by its weight: ``sample_weight`` holds one per row, or a single
    one for all rows (1 when the user gave none, which leaves every product exact).

    ``grad_rest`` receives the gradient of ``params[n_first:]`` (``n_first = n_features * h1``);
    the first layer's gradient goes to ``grad_rows``/``touched`` (see the module docstring). For CSR input
    ``slot[feature]`` must be -1 on entry for every feature; `release_slots` restores that after the update.
    """
    n_rows = rows.shape[0]
    n_layers = dims.shape[0] - 1
    n_features = dims[0]
    width = dims[1]
    n_first = n_features * width
    n_out = dims[n_layers]
    inv_rows = 1.0 / n_rows
    _forward_rows(dense, X, indptr, indices, data, rows, params, dims, w_off, b_off, act_off, activation, acts)

    # output layer: loss and delta_L = (p - y) / B
    loss_sum = 0.0
    top = act_off[n_layers]
    for b in range(n_rows):
        i = rows[b]
        base = top + b * n_out
        weight = sample_weight[0] if sample_weight.shape[0] == 1 else sample_weight[i]
        loss_sum += weight * output_loss_delta(output, acts, base, n_out, y_index, y_value, i, inv_rows * weight,
                                               deltas, base, 0.0)

    for q in range(grad_rest.shape[0]):
        grad_rest[q] = 0.0

    # layers L-1 .. 1: weight and bias gradients, and delta of the layer below
    for layer in range(n_layers - 1, 0, -1):
        fan_in = dims[layer]
        fan_out = dims[layer + 1]
        w_rest = w_off[layer] - n_first
        b_rest = b_off[layer] - n_first
        for b in range(n_rows):
            source = act_off[layer] + b * fan_in
            delta = act_off[layer + 1] + b * fan_out
            for j in range(fan_out):
                grad_rest[b_rest + j] += deltas[delta + j]
            for k in range(fan_in):
                a = acts[source + k]
                w = w_off[layer] + k * fan_out
                g = w_rest + k * fan_out
                back = 0.0
                for j in range(fan_out):
                    d = deltas[delta + j]
                    grad_rest[g + j] += a * d
                    back += d * params[w + j]
                deltas[source + k] = back * slope(a, activation)

    # first layer: bias into grad_rest, weights into the touched rows
    b_rest = b_off[0] - n_first
    n_touched = 0
    for b in range(n_rows):
        delta = act_off[1] + b * width
        for j in range(width):
            grad_rest[b_rest + j] += deltas[delta + j]
    if dense:
        n_touched = n_features
        _dense_first_gradient(X, rows, deltas, n_features, width, act_off[1], grad_rows)
    else:
        for b in range(n_rows):
            i = rows[b]
            delta = act_off[1] + b * width
            for p in range(indptr[i], indptr[i + 1]):
                feature = indices[p]
                s = slot[feature]
                if s < 0:
                    s = n_touched
                    slot[feature] = s
                    touched[s] = feature
                    n_touched += 1
                    for j in range(width):
                        grad_rows[s * width + j] = 0.0
                _axpy(data[p], deltas[delta:delta + width], grad_rows[s * width:(s + 1) * width])
    return loss_sum, n_touched


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def release_slots(touched, n_touched, slot):
    """Mark the features of the last micro-batch untouched again (``slot[feature] = -1``)."""
    for s in range(n_touched):
        slot[touched[s]] = -1


@njit(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy")
def _update_block(
    params, state1, state2, start, grad, grad_start, count, decay, scale,
    lr, optimizer, momentum, beta1, beta2, keep1, keep2, epsilon, adam_lr,
):
    """One optimizer step on ``params[start:start+count]`` from ``grad[grad_start:...]``.

    ``decay`` is l2 for weights and 0 for biases. The optimizer branch sits outside the loops so that each
    loop is a plain streaming pass the compiler can vectorize; for that the loops index views from 0 (see
    `_axpy`) and the kernel is compiled with ``error_model="numpy"`` (Adam's and RMSprop's divisor is at least
    epsilon > 0, and Numba's check for a zero divisor kept the division scalar). Vectorized, the float32 Adam
    step over 784 x 128 weights ran ~5x faster on an AVX-512 Xeon; IEEE division and square root are exact
    either way, so the weights are bitwise the same.
    """
    weights = params[start:start + count]
    first = state1[start:start + count]
    second = state2[start:start + count]
    gradient = grad[grad_start:grad_start + count]
    if optimizer == OPTIMIZER_SGD:
        for q in range(count):
            g = (gradient[q] + decay * weights[q]) * scale
            weights[q] -= lr * g
    elif optimizer == OPTIMIZER_MOMENTUM:
        for q in range(count):
            g = (gradient[q] + decay * weights[q]) * scale
            velocity = momentum_step(first[q], g, momentum, lr)
            first[q] = velocity
            weights[q] += velocity
    elif optimizer == OPTIMIZER_ADAM:
        for q in range(count):
            g = (gradient[q] + decay * weights[q]) * scale
            m, v, decrement = adam_step(first[q], second[q], g, beta1, beta2, keep1, keep2, adam_lr, epsilon)
            first[q] = m
            second[q] = v
            weights[q] -= decrement
    else:  # OPTIMIZER_RMSPROP
        for q in range(count):
            g = (gradient[q] + decay * weights[q]) * scale
            v, decrement = rmsprop_step(second[q], g, beta2, keep2, lr, epsilon)
            second[q] = v
            weights[q] -= decrement


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def _block_squares(params, start, grad, grad_start, count, decay):
    total = 0.0
    for q in range(count):
        g = grad[grad_start + q] + decay * params[start + q]
        total += g * g
    return total


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def apply_update(
    params, state1, state2, step, grad_rows, touched, n_touched, grad_rest, dims, w_off, b_off,
    lr, l2, optimizer, momentum, beta1, beta2, epsilon, clip_norm,
):
    """Apply one optimizer step from the micro-batch gradient (module docstring).

    Returns the gradient's global norm when clipping is on (``clip_norm > 0``), else -1 (not computed: it
    would cost a second pass over the touched weights). ``step`` is a one-element int64 array: the shared
    step counter of Adam's bias correction. The scalars should have the weights' dtype (float32 scalars keep
    float32 loops free of conversions).
    """
    n_layers = dims.shape[0] - 1
    width = dims[1]
    n_first = dims[0] * width
    norm = -1.0
    scale = 1.0
    if clip_norm > 0:
        # global norm of g = grad + l2 * w, over the touched first-layer rows and the rest
        squares = 0.0
        for s in range(n_touched):
            squares += _block_squares(params, touched[s] * width, grad_rows, s * width, width, l2)
        for layer in range(n_layers):
            if layer > 0:
                start = w_off[layer]
                squares += _block_squares(params, start, grad_rest, start - n_first, dims[layer] * dims[layer + 1], l2)
            start = b_off[layer]
            squares += _block_squares(params, start, grad_rest, start - n_first, dims[layer + 1], 0.0)
        norm = np.sqrt(squares)
        if norm > clip_norm:
            scale = clip_norm / norm
    t = step[0] + 1
    step[0] = t  # racy under async: a lost increment only nudges Adam's bias correction
    # the per-step scalars in the weights' dtype, so that float32 loops stay float32 (and vectorize)
    typed = np.empty(7, dtype=params.dtype)
    typed[0] = scale
    typed[1] = adam_rate(lr, beta1, beta2, t)
    typed[2] = 0.0
    typed[3] = lr
    typed[4] = l2
    typed[5] = momentum
    typed[6] = epsilon
    scale, adam_lr, zero, lr_t, l2_t, momentum_t, epsilon_t = typed[0], typed[1], typed[2], typed[3], typed[4], typed[5], typed[6]
    betas = np.empty(4, dtype=params.dtype)
    betas[0] = beta1
    betas[1] = beta2
    betas[2] = 1.0 - beta1
    betas[3] = 1.0 - beta2
    beta1_t, beta2_t, keep1, keep2 = betas[0], betas[1], betas[2], betas[3]
    # runs of consecutive features in one pass (dense input: the whole first layer), not one call per row
    s = 0
    while s < n_touched:
        run = 1
        while s + run < n_touched and touched[s + run] == touched[s] + run:
            run += 1
        _update_block(params, state1, state2, touched[s] * width, grad_rows, s * width, run * width, l2_t, scale,
                      lr_t, optimizer, momentum_t, beta1_t, beta2_t, keep1, keep2, epsilon_t, adam_lr)
        s += run
    for layer in range(n_layers):
        if layer > 0:
            start = w_off[layer]
            _update_block(params, state1, state2, start, grad_rest, start - n_first, dims[layer] * dims[layer + 1],
                          l2_t, scale, lr_t, optimizer, momentum_t, beta1_t, beta2_t, keep1, keep2, epsilon_t, adam_lr)
        start = b_off[layer]
        _update_block(params, state1, state2, start, grad_rest, start - n_first, dims[layer + 1],
                      zero, scale, lr_t, optimizer, momentum_t, beta1_t, beta2_t, keep1, keep2, epsilon_t, adam_lr)
    return norm


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def train_chunk(
    dense, X, indptr, indices, data, y_index, y_value, sample_weight, output, activation, order, start, stop,
    batch_size,
    params, state1, state2, step, dims, w_off, b_off, act_off,
    lr, l2, optimizer, momentum, beta1, beta2, epsilon, clip_norm,
    acts, deltas, grad_rows, touched, slot, grad_rest,
):
    """Train on rows ``order[start:stop]`` in micro-batches of ``batch_size``, updating ``params`` in place.

    Returns the summed loss of the rows (each measured before its own micro-batch's update). This is the
    worker body of ``serial`` (one call over the whole epoch) and ``async`` (one call per chunk per thread).
    """
    loss_sum = 0.0
    position = start
    while position < stop:
        end = min(position + batch_size, stop)
        rows = order[position:end]
        loss, n_touched = batch_gradient(
            dense, X, indptr, indices, data, y_index, y_value, sample_weight, output, activation, rows,
            params, dims, w_off, b_off, act_off, acts, deltas, grad_rows, touched, slot, grad_rest,
        )
        loss_sum += loss
        apply_update(
            params, state1, state2, step, grad_rows, touched, n_touched, grad_rest, dims, w_off, b_off,
            lr, l2, optimizer, momentum, beta1, beta2, epsilon, clip_norm,
        )
        if not dense:
            release_slots(touched, n_touched, slot)
        position = end
    return loss_sum


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def merge_gradients(
    weights, n_touched_each, touched_each, grad_rows_each, grad_rest_each, width,
    touched, slot, grad_rows, grad_rest,
):
    """Combine the workers' micro-batch gradients ``sum_w weights[w] * grad_w``; returns ``n_touched``.

    This is the barrier step of ``sync`` mode: each worker wrote its slice's gradient into its own buffers
    (``*_each[w]``) without sharing anything; the union of their touched first-layer rows is gathered through
    ``slot`` (which must be all -1 on entry for CSR input; release it after the update).
    """
    n_touched = 0
    for q in range(grad_rest.shape[0]):
        grad_rest[q] = 0.0
    for w in range(weights.shape[0]):
        weight = weights[w]
        if weight == 0:
            continue
        for q in range(grad_rest.shape[0]):
            grad_rest[q] += weight * grad_rest_each[w, q]
        for s_w in range(n_touched_each[w]):
            feature = touched_each[w, s_w]
            s = slot[feature]
            if s < 0:
                s = n_touched
                slot[feature] = s
                touched[s] = feature
                n_touched += 1
                for j in range(width):
                    grad_rows[s * width + j] = 0.0
            for j in range(width):
                grad_rows[s * width + j] += weight * grad_rows_each[w, s_w * width + j]
    return n_touched


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def predict_scores(dense, X, indptr, indices, data, params, dims, w_off, b_off, act_off, activation, block, acts, scores):
    """Output-layer scores of every row into ``scores`` (n_rows, n_out), ``block`` rows at a time."""
    n_rows = scores.shape[0]
    n_layers = dims.shape[0] - 1
    n_out = dims[n_layers]
    top = act_off[n_layers]
    rows = np.empty(block, dtype=np.int64)
    for start in range(0, n_rows, block):
        end = min(start + block, n_rows)
        for b in range(end - start):
            rows[b] = start + b
        view = rows[: end - start]
        _forward_rows(dense, X, indptr, indices, data, view, params, dims, w_off, b_off, act_off, activation, acts)
        for b in range(end - start):
            for k in range(n_out):
                scores[start + b, k] = acts[top + b * n_out + k]
