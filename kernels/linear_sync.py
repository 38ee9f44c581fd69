"""The ``sync`` mode's kernels: mini-batches whose gradient the workers sum apart and apply together.

Every worker calls `sync_batches` (any number of outputs, the cumulative L1 penalty, ASGD) or
`sync_batches_single` (one output without those: the common case) with the same row range at the same time; they
meet at two in-kernel barriers per mini-batch (`hogwild.kernels.atomics.barrier_wait`). A worker's sums are kept
per feature and visited only at the coordinates its part of the batch touched, so a batch costs its non-zeros,
not the number of features. The per-row rule is `hogwild.kernels.linear`'s (``row_at``, ``row_weight``, the
arithmetic of `hogwild.kernels.arithmetic`), stepped once per mini-batch; `tests/naive.py` (``naive_epoch_sync``)
is the twin.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hogwild.kernels.arithmetic import (
    ADAGRAD_EPS,
    adagrad_step,
    apply_l1,
    eta_at,
    ftrl_step,
    normalized_step,
    row_dloss,
)
from hogwild.kernels.atomics import barrier_wait
from hogwild.kernels.codes import (
    AGGREGATE_WEIGHTED,
    SCHEDULE_ADAGRAD,
    SCHEDULE_FTRL,
    SCHEDULE_NORMALIZED,
)
from hogwild.kernels.config import FASTMATH
from hogwild.kernels.linear import _single_gradient, row_at, row_weight

@njit(nogil=True, cache=True, inline="always")
def _slice_weights(slice_rows, n_workers, size, aggregate, weights):
    """Fill ``weights[v]`` with the factor of worker v's gradient sums in a batch of ``size`` rows (the naive
    twin's ``scale_w``): ``1 / size`` (weighted) or ``1 / (non-empty slices * slice rows)`` (mean); 0 for an
    empty slice, whose sums are all zero."""
    nonempty = 0
    for v in range(n_workers):
        if slice_rows[v] > 0:
            nonempty += 1
    for v in range(n_workers):
        if slice_rows[v] == 0:
            weights[v] = 0.0
        elif aggregate == AGGREGATE_WEIGHTED:
            weights[v] = 1.0 / size
        else:
            weights[v] = 1.0 / (nonempty * slice_rows[v])


@njit(nogil=True, cache=True, inline="always")
def _owner(j, n_workers, power_of_two):
    """The worker that applies coordinate ``j`` (unsigned) in a batch of several workers: ``j % n_workers``, a
    mask when ``n_workers`` is a power of two. (Blocks of 16 features, one 64-byte line of float32 weights per
    writer, measured no different on the rcv1-shaped set.)"""
    if power_of_two:
        return j & np.uint64(n_workers - 1)
    return j % np.uint64(n_workers)


@njit(nogil=True, cache=True, inline="always")
def _pack_sums(my_sums, my_touched, count, width, n_workers, cursor, my_ends, my_index, my_packed):
    """Move a worker's sums of the coordinates it listed from its dense buffer (zeroing it there) into its
    packed one, grouped by the worker that applies them (`_owner`): group o holds, in list order, the features
    ``my_index[o * capacity:my_ends[o]]`` and their ``width`` values each from ``my_packed[o * capacity *
    width]``, where ``capacity = ceil(n_features / n_workers)`` bounds the features any one worker applies.

    The other workers then read only their own group, as a sequential stream of several coordinates a cache
    line: reading the dense buffer would cost them a line from this core's cache per coordinate (that made sync
    x2 four times slower than sync x1 on the rcv1-shaped set), and filtering one shared stream a branch
    mispredicted on about every other coordinate. ``cursor`` is the worker's private write position per group: ``my_ends`` shares a
    cache line with the other workers' rows, so it is written once, at the end."""
    width = np.uint64(width)
    capacity = np.uint64(my_index.shape[0] // n_workers)
    power_of_two = n_workers & (n_workers - 1) == 0
    for o in range(n_workers):
        cursor[o] = o * capacity
    for m in range(np.uint64(count)):
        j = np.uint64(my_touched[m])
        o = _owner(j, n_workers, power_of_two)
        at = np.uint64(cursor[o])
        cursor[o] = at + np.uint64(1)
        my_index[at] = j
        for c in range(width):
            my_packed[at * width + c] = my_sums[j * width + c]
            my_sums[j * width + c] = 0.0
    for o in range(n_workers):
        my_ends[o] = cursor[o]


@njit(nogil=True, cache=True, inline="always")
def _gather_owned(ends, index, packed, weights, worker, n_workers, width, my_sums, my_owned):
    """Sum every worker's packed sums of the coordinates ``worker`` applies (its group, `_pack_sums`) into its
    dense buffer, zero on entry, scaled by the workers' ``weights`` and added in worker order from zero (the
    naive twin's order, so a run is bitwise reproducible for a seed and a thread count), listing each such
    coordinate once in ``my_owned`` (branch-free, as `sync_batches`'s list); return how many it listed."""
    real = my_sums.dtype.type
    width = np.uint64(width)
    last = width - np.uint64(1)  # the count's place; the K gradient sums come before it
    first = np.uint64(worker * (index.shape[1] // n_workers))  # where each worker's group for this one starts
    owned = 0
    for v in range(n_workers):
        factor = real(weights[v])
        features = index[v]
        theirs = packed[v]
        for m in range(first, np.uint64(ends[v, worker])):
            j = np.uint64(features[m])
            base = j * width
            at = m * width
            seen = my_sums[base + last]
            my_owned[owned] = j
            owned += seen == 0.0
            for k in range(last):
                my_sums[base + k] += theirs[at + k] * factor
            my_sums[base + last] = seen + theirs[at + last]
    return owned


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def sync_batches(
    indptr, indices, data, targets, sample_weight, blocks, block_shift, gap_at, gap, start, stop, batch_size, worker,
    n_workers, aggregate,
    W, b, acc_W, acc_b, q_l1, z_W, z_b, avg_W, avg_b, scale, reg, scratch,
    sums, touched, ends, index, packed, owned, intercept_buffers, slice_rows, barrier,
    loss, multiclass, epsilon, clip, intercept_step, l2, l1, schedule, lr, epoch_factor, t0, power_t,
    average_start, ftrl_beta, t_start, u_state,
):
    """Run mini-batches over positions ``start:stop`` of the row order (`row_at`) as worker ``worker`` of
    ``n_workers``; return its loss sums.

    Every worker calls this with the same range at the same time; they meet at two barriers per batch (none
    with one worker). The buffers are per worker and flat: feature ``j`` takes the ``K + 1`` places from
    ``j * (K + 1)`` of ``sums[w]``, its K gradient sums and then the count of the slice's rows holding it (in
    the weights' type: exact up to 2^24, and a batch is at most 2^20 rows; beside the sums, it costs no second
    random access per non-zero as an array of its own did).

    Phase 1 (private): worker w computes its slice's rows against the weights as they stand and sums their
    gradients into ``sums[w]``, listing each feature the first time it meets it in ``touched[w]``, and the
    slice's intercept gradient into ``intercept_buffers[w]``. The list is kept without a branch per non-zero (a
    feature is new when its count is 0: it is written at the list's end every time, and the end advances only
    then; some 40% of a batch's non-zeros are new on the rcv1-shaped set, too many for a branch to predict), so
    lists hold ``n_features + 1`` entries.

    One worker: phase 2 applies the listed coordinates straight from ``sums[0]`` (scaled by ``1 / |batch|``),
    zeroing each as it goes. Several: each worker moves its listed sums, grouped by the worker that applies
    them (``j % n_workers``), into ``index[w]``/``packed[w]`` and publishes the groups' ends in ``ends[w]``
    (`_pack_sums`, zeroing ``sums[w]``). Barrier. Phase 2: each worker gathers its group from every worker,
    scaled and in worker order, into its own ``sums[w]`` (`_gather_owned`, listing the coordinates in
    ``owned[w]``), applies them, zeroing each as it goes, and worker 0 steps the intercept. Barrier (the next
    batch's rows read the new weights, and a worker's packed groups are read until every worker is done). So
    ``sums`` is zero between batches, the result is bitwise reproducible for a seed and a thread count, and
    nothing in a batch costs O(n_features): every pass visits only the coordinates the batch touched.

    ``reg`` is ``l2 * inv_freq`` in the weights' type (the batch's L2 factor of j is ``reg[j] * C[j] / |batch|``,
    C[j] the batch's rows holding j). ``t_start`` counts mini-batch steps; ``u_state[0]`` is this worker's copy of
    the L1 total. ``scratch[0]`` is the worker's K-long float64 buffer of a row's scores, then its derivatives
    (as `sgd_rows`). The schedules' per-coordinate state and ASGD's sums are `sgd_rows`'s, stepped once per
    mini-batch, with `sgd_rows`'s arithmetic in the weights' type. Feature indices and positions are handled as
    unsigned integers, for which Numba emits no negative-index wraparound (a shift, an and and an add per access,
    and the registers they tie up; with the flat buffers, ~15% of `sync_batches_single`'s epoch on the
    rcv1-shaped set). A one-output run without the cumulative L1 penalty or ASGD takes `sync_batches_single`.
    """
    K = W.shape[1]
    width = np.uint64(K + 1)
    last = np.uint64(K)  # the count's place in a feature's run of K + 1
    g = scratch[0]
    per_coordinate = schedule == SCHEDULE_ADAGRAD or schedule == SCHEDULE_NORMALIZED
    ftrl = schedule == SCHEDULE_FTRL
    cumulative_l1 = l1 > 0.0 and not ftrl
    u = u_state[0]
    loss_sum = 0.0
    weight_sum = 0.0
    real = W.dtype.type
    zero = real(0.0)
    one = real(1.0)
    lr_w = real(lr)
    eps_w = real(ADAGRAD_EPS)
    beta_w = real(ftrl_beta)
    g_real = np.empty(K, dtype=W.dtype)  # a row's gradient in the weights' type
    total = np.empty(K, dtype=W.dtype)  # a coordinate's batch gradient
    before = np.empty(K, dtype=W.dtype)  # ASGD: a coordinate's weights before the batch's update
    intercept_sum = np.empty(K)
    weights = np.empty(n_workers)
    cursor = np.empty(n_workers, dtype=np.int64)  # `_pack_sums`'s write position in each group
    alone = n_workers == 1
    my_sums = sums[worker]
    my_touched = touched[worker]
    my_applied = touched[worker] if alone else owned[worker]  # what it listed alone, else what it gathered
    step = 0
    for batch_start in range(start, stop, batch_size):
        batch_stop = min(stop, batch_start + batch_size)
        size = batch_stop - batch_start
        t = t_start + step
        step += 1
        eta = eta_at(schedule, lr, epoch_factor, l2, t0, power_t, t)
        batch_step = t + 1.0
        averaging = average_start > 0.0 and batch_step >= average_start
        average_weight = batch_step - average_start
        lambda1 = real(l1 * batch_step)
        lambda2 = real(l2 * batch_step)
        lo = batch_start + (worker * size) // n_workers
        hi = batch_start + ((worker + 1) * size) // n_workers
        count = 0
        for k in range(K):
            intercept_sum[k] = 0.0
        for r in range(lo, hi):
            i = row_at(blocks, block_shift, gap_at, gap, r)
            row_start = np.uint64(indptr[i])  # 64-bit loop bounds whatever the indptr's type, unsigned (see above)
            row_stop = np.uint64(indptr[i + 1])
            for k in range(K):
                g[k] = 0.0
            for p in range(row_start, row_stop):
                x = data[p]
                j = np.uint64(indices[p])
                for k in range(K):
                    g[k] += x * W[j, k]
            for k in range(K):
                g[k] += b[k]
            value = row_dloss(g, 0, K, multiclass, loss, targets[i], epsilon, clip)
            s = row_weight(sample_weight, i)
            loss_sum += s * value
            weight_sum += s
            for k in range(K):
                g[k] *= s
                intercept_sum[k] += g[k]
                g_real[k] = real(g[k])
            for p in range(row_start, row_stop):
                j = np.uint64(indices[p])
                x = data[p]
                base = j * width
                seen = my_sums[base + last]
                my_touched[count] = j
                count += seen == zero
                my_sums[base + last] = seen + one
                for k in range(last):
                    my_sums[base + k] += g_real[k] * x
        slice_rows[worker] = hi - lo
        for k in range(K):
            intercept_buffers[worker, k] = intercept_sum[k]  # once a batch: no shared cache line written per row
        if not alone:
            _pack_sums(my_sums, my_touched, count, width, n_workers, cursor, ends[worker], index[worker],
                       packed[worker])
        if not barrier_wait(barrier, n_workers):
            break  # another worker failed: the engine raises WorkerError; this batch is abandoned
        _slice_weights(slice_rows, n_workers, size, aggregate, weights)
        factor = real(weights[0])  # one worker: its sums are the batch's, still to be scaled
        if not alone:
            count = _gather_owned(ends, index, packed, weights, worker, n_workers, width, my_sums, owned[worker])
            factor = one  # gathered sums are scaled already
        size_w = real(size)
        eta_w = real(eta)
        if cumulative_l1:
            u += l1 * eta
        for m in range(np.uint64(count)):
            j = np.uint64(my_applied[m])
            base = j * width
            for k in range(last):
                total[k] = my_sums[base + k] * factor
            occurrences = my_sums[base + last]
            for k in range(width):
                my_sums[base + k] = zero  # read for the last time: reset here, no pass of its own
            step_reg = reg[j] * occurrences / size_w
            if averaging:
                for k in range(K):
                    before[k] = W[j, k]
            if schedule == SCHEDULE_ADAGRAD:
                for k in range(K):
                    grad = total[k] + step_reg * W[j, k]
                    acc_W[j, k] += grad * grad
                    W[j, k] -= adagrad_step(lr_w, grad, acc_W[j, k], eps_w)
            elif schedule == SCHEDULE_NORMALIZED:
                feature_scale = scale[j]
                for k in range(K):
                    grad = total[k] + step_reg * W[j, k]
                    acc_W[j, k] += grad * grad
                    W[j, k] -= normalized_step(lr_w, grad, acc_W[j, k], feature_scale, eps_w)
            elif ftrl:
                for k in range(K):
                    z_W[j, k], acc_W[j, k], W[j, k] = ftrl_step(z_W[j, k], acc_W[j, k], W[j, k], total[k], lr_w,
                                                                beta_w, lambda1, lambda2)
            else:
                shrink = max(zero, one - eta_w * step_reg)
                for k in range(K):
                    W[j, k] = W[j, k] * shrink - eta_w * total[k]
            if cumulative_l1:
                for k in range(K):
                    apply_l1(W, q_l1, j, k, u)
            if averaging:
                for k in range(K):
                    avg_W[j, k] += average_weight * (W[j, k] - before[k])
        if worker == 0 and intercept_step != 0.0:
            rate = intercept_step * lr
            for k in range(K):
                gradient = 0.0
                for v in range(n_workers):
                    gradient += intercept_buffers[v, k] * weights[v]
                b_before = b[k]
                if per_coordinate:
                    acc_b[k] += gradient * gradient
                    b[k] -= adagrad_step(rate, gradient, acc_b[k], ADAGRAD_EPS)
                elif ftrl:
                    z_b[k], acc_b[k], b[k] = ftrl_step(z_b[k], acc_b[k], b[k], gradient, rate, ftrl_beta, 0.0, 0.0)
                else:
                    b[k] -= intercept_step * eta * gradient
                if averaging:
                    avg_b[k] += average_weight * (b[k] - b_before)
        if not barrier_wait(barrier, n_workers):
            break  # another worker failed: the engine raises WorkerError; this batch is abandoned
    u_state[0] = u
    return loss_sum, weight_sum


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def sync_batches_single(
    indptr, indices, data, targets, sample_weight, blocks, block_shift, gap_at, gap, start, stop, batch_size, worker,
    n_workers, aggregate,
    w, b, acc_w, acc_b, z_w, z_b, scale, reg,
    sums, touched, ends, index, packed, owned, intercept_buffers, slice_rows, barrier,
    loss, multiclass, epsilon, clip, intercept_step, schedule, lr, epoch_factor, l2, l1, t0, power_t, ftrl_beta,
    t_start,
):
    """`sync_batches` for one output (binary or regression) without the cumulative L1 penalty (FTRL's closed-form
    L1 is here) or ASGD: what `sgd_rows_single` is to `sgd_rows`.

    Same phases, buffers (``sums[w]`` holds (gradient sum, count) pairs) and order of floating-point operations
    as `sync_batches`, so float64 runs match the naive twin, but over 1-D ``w``/``acc_w``/``z_w`` with the row's
    gradient and the slice's intercept sum in registers, and one apply loop per schedule: without the K-loops
    and the 2-D indexing, one worker's epoch takes less time than `sgd_rows_single`'s on the rcv1-shaped set
    (a batch applies each coordinate it touched once, where the row kernel steps it at every non-zero).
    """
    loss_sum = 0.0
    weight_sum = 0.0
    real = w.dtype.type
    zero = real(0.0)
    one = real(1.0)
    lr_w = real(lr)
    eps_w = real(ADAGRAD_EPS)
    beta_w = real(ftrl_beta)
    weights = np.empty(n_workers)
    cursor = np.empty(n_workers, dtype=np.int64)  # `_pack_sums`'s write position in each group
    alone = n_workers == 1
    my_sums = sums[worker]
    my_touched = touched[worker]
    my_applied = touched[worker] if alone else owned[worker]  # as in `sync_batches`
    step = 0
    for batch_start in range(start, stop, batch_size):
        batch_stop = min(stop, batch_start + batch_size)
        size = batch_stop - batch_start
        t = t_start + step
        step += 1
        eta = eta_at(schedule, lr, epoch_factor, l2, t0, power_t, t)
        lo = batch_start + (worker * size) // n_workers
        hi = batch_start + ((worker + 1) * size) // n_workers
        count = 0
        intercept_sum = 0.0
        for r in range(lo, hi):
            i = row_at(blocks, block_shift, gap_at, gap, r)
            row_start = np.uint64(indptr[i])  # unsigned 64-bit loop bounds and indices: see `sync_batches`
            row_stop = np.uint64(indptr[i + 1])
            acc = zero
            for p in range(row_start, row_stop):
                acc += data[p] * w[np.uint64(indices[p])]
            g, value, s = _single_gradient(loss, epsilon, clip, acc + b[0], targets[i], row_weight(sample_weight, i))
            loss_sum += s * value
            weight_sum += s
            intercept_sum += g
            g_w = real(g)
            for p in range(row_start, row_stop):
                j = np.uint64(indices[p])
                seen = my_sums[2 * j + 1]
                my_touched[count] = j  # listed for good only when new: no branch to mispredict
                count += seen == zero
                my_sums[2 * j + 1] = seen + one
                my_sums[2 * j] += g_w * data[p]
        slice_rows[worker] = hi - lo
        intercept_buffers[worker, 0] = intercept_sum
        if not alone:
            _pack_sums(my_sums, my_touched, count, 2, n_workers, cursor, ends[worker], index[worker], packed[worker])
        if not barrier_wait(barrier, n_workers):
            break  # another worker failed: the engine raises WorkerError; this batch is abandoned
        _slice_weights(slice_rows, n_workers, size, aggregate, weights)
        factor = real(weights[0])  # one worker: its sums are the batch's, still to be scaled
        if not alone:
            count = _gather_owned(ends, index, packed, weights, worker, n_workers, 2, my_sums, owned[worker])
            factor = one  # gathered sums are scaled already
        size_w = real(size)
        # One loop per schedule over the coordinates this worker applies, each read and zeroed in one go.
        if schedule == SCHEDULE_NORMALIZED:
            for m in range(np.uint64(count)):
                j = np.uint64(my_applied[m])
                total = my_sums[2 * j] * factor
                occurrences = my_sums[2 * j + 1]
                my_sums[2 * j] = zero
                my_sums[2 * j + 1] = zero
                grad = total + reg[j] * occurrences / size_w * w[j]
                acc_w[j] += grad * grad
                w[j] -= normalized_step(lr_w, grad, acc_w[j], scale[j], eps_w)
        elif schedule == SCHEDULE_ADAGRAD:
            for m in range(np.uint64(count)):
                j = np.uint64(my_applied[m])
                total = my_sums[2 * j] * factor
                occurrences = my_sums[2 * j + 1]
                my_sums[2 * j] = zero
                my_sums[2 * j + 1] = zero
                grad = total + reg[j] * occurrences / size_w * w[j]
                acc_w[j] += grad * grad
                w[j] -= adagrad_step(lr_w, grad, acc_w[j], eps_w)
        elif schedule == SCHEDULE_FTRL:
            batch_step = t + 1.0  # FTRL's penalties grow with the steps taken (see `sgd_rows`)
            lambda1 = real(l1 * batch_step)
            lambda2 = real(l2 * batch_step)
            for m in range(np.uint64(count)):
                j = np.uint64(my_applied[m])
                total = my_sums[2 * j] * factor
                my_sums[2 * j] = zero
                my_sums[2 * j + 1] = zero
                z_w[j], acc_w[j], w[j] = ftrl_step(z_w[j], acc_w[j], w[j], total, lr_w, beta_w, lambda1, lambda2)
        else:
            eta_w = real(eta)
            for m in range(np.uint64(count)):
                j = np.uint64(my_applied[m])
                total = my_sums[2 * j] * factor
                occurrences = my_sums[2 * j + 1]
                my_sums[2 * j] = zero
                my_sums[2 * j + 1] = zero
                shrink = max(zero, one - eta_w * (reg[j] * occurrences / size_w))
                w[j] = w[j] * shrink - eta_w * total
        if worker == 0 and intercept_step != 0.0:
            gradient = 0.0
            for v in range(n_workers):
                gradient += intercept_buffers[v, 0] * weights[v]
            rate = intercept_step * lr
            if schedule == SCHEDULE_ADAGRAD or schedule == SCHEDULE_NORMALIZED:
                acc_b[0] += gradient * gradient
                b[0] -= adagrad_step(rate, gradient, acc_b[0], ADAGRAD_EPS)
            elif schedule == SCHEDULE_FTRL:
                z_b[0], acc_b[0], b[0] = ftrl_step(z_b[0], acc_b[0], b[0], gradient, rate, ftrl_beta, 0.0, 0.0)
            else:
                b[0] -= intercept_step * eta * gradient
        if not barrier_wait(barrier, n_workers):
            break  # another worker failed: the engine raises WorkerError; this batch is abandoned
    return loss_sum, weight_sum
