"""CUDA twins of the sparse linear SGD kernels (numba.cuda): Hogwild! with thousands of GPU threads.

One *group* of ``lanes`` threads handles one training row. ``lanes == 1`` is thread-per-row (short rows: each
thread walks its own row); ``lanes == 32`` is warp-per-row (long rows: the lanes read the row's nonzeros
side by side, so the loads of ``indices``/``data`` coalesce, and the margin is reduced in shared memory).
The caller picks ``lanes`` from the mean nonzeros per row against `hogwild.kernels.config.WARP_PER_ROW_NNZ`.

Update modes (one kernel, a named code of `hogwild.kernels.codes` selects):

* ``ASYNC``: plain read-modify-write of the shared weights, no atomics: true Hogwild!. Two rows that share a
  feature may lose one of the two updates; on sparse data that is rare, and Niu et al. (2011) show SGD
  converges anyway.
* ``ATOMIC``: ``cuda.atomic.add`` on every weight, so no update is lost (rows still read stale weights).
* ``ACCUMULATE``: the first half of ``sync`` mode: every row of a mini-batch adds its raw gradient into a
  buffer with atomics; `_apply_batch` then takes one step with the mean, as the CPU ``sync`` mode does.

Kernels take typed arrays and plain scalars; variants are the named codes of `hogwild.kernels.codes`, the
ones the CPU kernels read. The loss and its derivative, the step size, AdaGrad's step and the L1 step are not
written here: they are the CPU kernels' own functions (`hogwild.kernels.arithmetic`), compiled for the device
from the same source (`hogwild.kernels.gpu_arithmetic`), so the two devices cannot disagree on a formula.
The margin and the loss derivative are computed in float64 scratch (shared memory), whatever the weights'
dtype, so float32 and float64 models share one compiled kernel per argument-type signature. Launch shapes
come from `hogwild.kernels.config`, read at each launch (tests shrink ``THREADS_PER_BLOCK``). Everything here
runs unmodified under the CUDA simulator.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64

from . import arithmetic, config
from .codes import (
    LOSS_CODES,
    MULTICLASS_CODES,
    SCHEDULE_ADAGRAD,
    SCHEDULE_CODES,
    SCHEDULE_FTRL,
    SCHEDULE_INVSCALING,
    SCHEDULE_NORMALIZED,
    SCHEDULE_OPTIMAL,
    UPDATE_ACCUMULATE,
    UPDATE_ASYNC,
    UPDATE_ATOMIC,
)
from .gpu_arithmetic import (
    ADAGRAD_EPS,
    FTRL_BETA,
    adagrad_step,
    apply_l1,
    eta_at,
    ftrl_step,
    normalized_step,
    row_dloss,
)

# The update modes by their short names (what hogwild.gpu_engine and the tests use).
ASYNC, ATOMIC, ACCUMULATE = UPDATE_ASYNC, UPDATE_ATOMIC, UPDATE_ACCUMULATE
WARP_SIZE = 32
# Dynamic shared memory a block may use without opting in to more (every CUDA GPU since Kepler).
SHARED_BYTES_LIMIT = 48 * 1024


class KernelParams:
    """The scalars of a launch, from the ``params`` dict of `tests.naive` (loss, multiclass, schedule, ...)."""

    def __init__(self, params):
        self.loss_id = LOSS_CODES[params["loss"]]
        self.multiclass = MULTICLASS_CODES[params["multiclass"]]
        self.schedule_id = SCHEDULE_CODES[params["schedule"]]
        # the normalized schedule's rate factor is folded into lr, as kernels.linear.kernel_scalars does
        self.lr = float(params["lr"]) * float(params.get("normalizer", 1.0))
        self.epoch_factor = float(params.get("epoch_factor", 1.0))
        self.l2 = float(params["l2"])
        self.l1 = float(params["l1"])
        # FTRL applies its L1 in closed form: no cumulative penalty to carry between launches
        self.cumulative_l1 = self.l1 > 0 and self.schedule_id != SCHEDULE_FTRL
        self.average_start = float(params.get("average_start", 0.0))
        self.ftrl_beta = float(params.get("ftrl_beta", FTRL_BETA))
        self.power_t = float(params["power_t"])
        self.t0 = float(params["t0"])
        self.epsilon = float(params["epsilon"])
        self.clip = float(params["clip"] or 0.0)
        # The intercept's step multiplier; 0 when there is no intercept (see kernels.linear.kernel_scalars).
        self.intercept_step = float(params.get("intercept_decay", 1.0)) if params["fit_intercept"] else 0.0

    def eta(self, t):
        """The step size at step ``t`` on the host (sync mode's per-batch step, the L1 totals): the kernels'
        own formula, `hogwild.kernels.arithmetic.eta_at`, run as plain Python. ``t`` may be an array of steps.
        (Per-coordinate schedules: their base rate, the normalized schedule's factor included.)"""
        return arithmetic.eta_at.py_func(
            self.schedule_id, self.lr, self.epoch_factor, self.l2, self.t0, self.power_t, t
        )

    def eta_total(self, t_first, count):
        """Exact sum of `eta` over ``count`` steps from ``t_first``, in float64 (the L1 penalty's growth)."""
        if count <= 0:
            return 0.0
        if self.schedule_id in (SCHEDULE_INVSCALING, SCHEDULE_OPTIMAL):
            # the formula is elementwise in t, so one call over the array of steps sums it exactly
            return float(np.sum(self.eta(np.arange(t_first, t_first + count, dtype=np.float64))))
        return count * self.eta(t_first)


# --------------------------------------------------------------------------------------------------
# device helpers (the formulas are `hogwild.kernels.gpu_arithmetic`; tests/naive.py specifies them)
# --------------------------------------------------------------------------------------------------
@cuda.jit(device=True)
def _eta_sum(schedule_id, lr, epoch_factor, t_first, t_last, l2, power_t, t0):
    """Approximately sum of `_eta` over steps t_first..t_last: the L1 penalty owed by a row of an async launch.

    Exact for constant steps; the midpoint integral otherwise. Rows of one launch run in no fixed order, so
    the exact per-step sum of the serial rule has no meaning there; the host keeps the launch totals exact.
    """
    count = t_last - t_first + 1.0
    if count == 1.0:
        return eta_at(schedule_id, lr, epoch_factor, l2, t0, power_t, t_first)
    if schedule_id == SCHEDULE_INVSCALING:
        a = t_first + 0.5
        c = t_last + 1.5
        if power_t == 1.0:
            return lr * (math.log(c) - math.log(a))
        return lr * (math.pow(c, 1.0 - power_t) - math.pow(a, 1.0 - power_t)) / (1.0 - power_t)
    if schedule_id == SCHEDULE_OPTIMAL:
        return lr * (math.log(t0 + t_last + 0.5) - math.log(t0 + t_first - 0.5)) / l2
    return count * eta_at(schedule_id, lr, epoch_factor, l2, t0, power_t, t_first)


@cuda.jit(device=True)
def _group_sum(scratch, value, tid, lane, lanes):
    """Sum of ``value`` over the ``lanes`` threads of a group; valid in lane 0 only.

    Every thread of the block must call this (it synchronizes the block), so callers keep their trip
    counts uniform. A shared-memory tree rather than warp shuffles: as fast at these sizes, and the CUDA
    simulator runs it too.
    """
    if lanes == 1:
        return value
    scratch[tid] = value
    cuda.syncthreads()
    offset = lanes // 2
    while offset > 0:
        if lane < offset:
            scratch[tid] += scratch[tid + offset]
        cuda.syncthreads()
        offset //= 2
    return scratch[tid]


# --------------------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------------------
@cuda.jit
def _sgd_rows(
    indptr, indices, data, targets, sample_weight, order, pos_start, pos_stop,
    W, b, acc_W, acc_b, q_l1, z_W, z_b, avg_W, avg_b, scale, G, gb, C, inv_freq, row_loss,
    lanes, mode, loss_id, multiclass, schedule_id,
    lr, epoch_factor, t_start, l2, l1, u_start, power_t, t0, epsilon, clip, intercept_step, average_start, ftrl_beta,
):
    """One SGD step per row ``order[pos]``, pos in [pos_start, pos_stop): one group of ``lanes`` threads a row.

    ASYNC/ATOMIC: the one-row rule of `tests.naive.naive_epoch_serial` on the row's non-zeros only
    (Hogwild!'s sparse L2: ``W *= max(0, 1 - eta l2 inv_freq[j])``), intercept unregularized, the per-coordinate
    state (``acc_W``/``acc_b``, ftrl's ``z_W``/``z_b``), the L1 debt in ``q_l1`` and ASGD's sums
    (``avg_W``/``avg_b``: ``(s - average_start)`` times each change at step s, as `kernels.linear.sgd_rows`)
    all updated lock-free as well; ATOMIC adds every increment atomically (ftrl: its z and n, the weight then
    stored from them). Row ``pos`` is global step ``t_start + pos - pos_start``.
    ACCUMULATE: adds ``g x`` into ``G``, ``g`` into ``gb`` and 1 into ``C[j]`` with atomics; ``W`` is only read.
    ``row_loss[pos]`` gets the row's weighted loss before its update (the progressive training loss).
    """
    scratch = cuda.shared.array(0, dtype=float64)
    tid = cuda.threadIdx.x
    tpb = cuda.blockDim.x
    n_classes = W.shape[1]
    groups = tpb // lanes
    group = tid // lanes
    lane = tid - group * lanes
    pos = pos_start + cuda.blockIdx.x * groups + group
    active = pos < pos_stop
    row = order[pos] if active else 0
    start = indptr[row]
    stop = indptr[row + 1] if active else start
    base = tpb + group * n_classes

    # phase 1: the scores of every class (lanes stride over the row, so their loads coalesce)
    for k in range(n_classes):
        partial = 0.0
        for p in range(start + lane, stop, lanes):
            partial += W[indices[p], k] * data[p]
        margin = _group_sum(scratch, partial, tid, lane, lanes)
        if lane == 0:
            scratch[base + k] = b[k] + margin
    # phase 2: lane 0 turns the scores into weighted loss derivatives; the other lanes wait for them
    if active and lane == 0:
        weight = sample_weight[row]
        value = row_dloss(scratch, base, n_classes, multiclass, loss_id, targets[row], epsilon, clip)
        for k in range(n_classes):
            scratch[base + k] *= weight
        row_loss[pos] = weight * value
    if lanes > 1:
        cuda.syncthreads()
    if not active:
        return

    # phase 3: the update
    if mode == UPDATE_ACCUMULATE:
        for p in range(start + lane, stop, lanes):
            j = indices[p]
            cuda.atomic.add(C, j, 1.0)
            for k in range(n_classes):
                cuda.atomic.add(G, (j, k), scratch[base + k] * data[p])
        if lane == 0 and intercept_step != 0.0:
            for k in range(n_classes):
                cuda.atomic.add(gb, k, scratch[base + k])
        return
    t = t_start + (pos - pos_start)
    step = t + 1.0
    averaging = average_start > 0.0 and step >= average_start
    eta = eta_at(schedule_id, lr, epoch_factor, l2, t0, power_t, t)
    cumulative_l1 = l1 > 0.0 and schedule_id != SCHEDULE_FTRL
    u = 0.0
    if cumulative_l1:
        u = u_start + l1 * _eta_sum(schedule_id, lr, epoch_factor, t_start, t, l2, power_t, t0)
    for p in range(start + lane, stop, lanes):
        j = indices[p]
        reg = l2 * inv_freq[j]
        for k in range(n_classes):
            gradient = scratch[base + k] * data[p]
            delta = _coordinate_step(W, acc_W, z_W, scale, j, k, gradient, reg, eta, lr, schedule_id, mode, step,
                                     l1, l2, ftrl_beta)
            if cumulative_l1:
                held = W[j, k]
                apply_l1(W, q_l1, j, k, u)
                delta += W[j, k] - held
            if averaging:
                if mode == UPDATE_ATOMIC:
                    cuda.atomic.add(avg_W, (j, k), (step - average_start) * delta)
                else:
                    avg_W[j, k] += (step - average_start) * delta
    if lane == 0 and intercept_step != 0.0:
        for k in range(n_classes):
            g = scratch[base + k]
            delta = _intercept_step(b, acc_b, z_b, k, g, eta, intercept_step * lr, intercept_step * eta, schedule_id,
                                    mode, ftrl_beta)
            if averaging:
                if mode == UPDATE_ATOMIC:
                    cuda.atomic.add(avg_b, k, (step - average_start) * delta)
                else:
                    avg_b[k] += (step - average_start) * delta


@cuda.jit(device=True)
def _coordinate_step(W, acc_W, z_W, scale, j, k, gradient, reg, eta, lr, schedule_id, mode, step, l1, l2, ftrl_beta):
    """Step coordinate (j, k) by one row's (or batch's) ``gradient``; return the change made to ``W[j, k]``.

    ``mode`` UPDATE_ATOMIC adds the increments atomically; any other mode reads, computes and stores.
    """
    if schedule_id == SCHEDULE_ADAGRAD or schedule_id == SCHEDULE_NORMALIZED:
        grad = gradient + reg * W[j, k]
        acc = acc_W[j, k] + grad * grad
        acc_W[j, k] = acc
        if schedule_id == SCHEDULE_ADAGRAD:
            delta = -adagrad_step(lr, grad, acc, ADAGRAD_EPS)
        else:
            delta = -normalized_step(lr, grad, acc, scale[j], ADAGRAD_EPS)
        if mode == UPDATE_ATOMIC:
            cuda.atomic.add(W, (j, k), delta)
        else:
            W[j, k] += delta
        return delta
    if schedule_id == SCHEDULE_FTRL:
        before = W[j, k]
        if mode == UPDATE_ATOMIC:
            # z and n take their increments atomically (none is lost); the weight is stored from them
            n_before = cuda.atomic.add(acc_W, (j, k), gradient * gradient)
            z_before = z_W[j, k]
            z, _, weight = ftrl_step(z_before, n_before, before, gradient, lr, ftrl_beta, l1 * step, l2 * step)
            cuda.atomic.add(z_W, (j, k), z - z_before)
        else:
            z, acc, weight = ftrl_step(z_W[j, k], acc_W[j, k], before, gradient, lr, ftrl_beta, l1 * step, l2 * step)
            z_W[j, k] = z
            acc_W[j, k] = acc
        W[j, k] = weight
        return weight - before
    if mode == UPDATE_ATOMIC:
        # W * max(0, 1 - eta reg) - eta gradient, as an increment that an atomic add can apply
        delta = -W[j, k] * min(1.0, eta * reg) - eta * gradient
        cuda.atomic.add(W, (j, k), delta)
        return delta
    before = W[j, k]
    W[j, k] = W[j, k] * max(0.0, 1.0 - eta * reg) - eta * gradient
    return W[j, k] - before


@cuda.jit(device=True)
def _intercept_step(b, acc_b, z_b, k, g, eta, rate, step_size, schedule_id, mode, ftrl_beta):
    """Step intercept ``k`` by ``g`` (``rate``: the per-coordinate schedules' base rate times the intercept's
    multiplier; ``step_size``: a global schedule's); return the change made to ``b[k]``."""
    if schedule_id == SCHEDULE_FTRL:
        before = b[k]
        if mode == UPDATE_ATOMIC:
            n_before = cuda.atomic.add(acc_b, k, g * g)
            z_before = z_b[k]
            z, _, weight = ftrl_step(z_before, n_before, before, g, rate, ftrl_beta, 0.0, 0.0)
            cuda.atomic.add(z_b, k, z - z_before)
        else:
            z, acc, weight = ftrl_step(z_b[k], acc_b[k], before, g, rate, ftrl_beta, 0.0, 0.0)
            z_b[k] = z
            acc_b[k] = acc
        b[k] = weight
        return weight - before
    if schedule_id == SCHEDULE_ADAGRAD or schedule_id == SCHEDULE_NORMALIZED:
        acc = acc_b[k] + g * g
        acc_b[k] = acc
        delta = -adagrad_step(rate, g, acc, ADAGRAD_EPS)
    else:
        delta = -step_size * g
    if mode == UPDATE_ATOMIC:
        cuda.atomic.add(b, k, delta)
    else:
        b[k] += delta
    return delta


@cuda.jit
def _apply_batch(W, b, acc_W, acc_b, q_l1, z_W, z_b, avg_W, avg_b, scale, G, gb, C, inv_freq, inv_size, eta, lr, l2,
                 l1, u, schedule_id, intercept_step, step, average_start, ftrl_beta):
    """Second half of ``sync`` (`tests.naive.naive_epoch_sync`, one worker): step every coordinate the batch
    touched with the mean gradient ``inv_size * G``, then zero ``G``, ``gb`` and ``C`` for the next batch.
    ``step`` is the batch's step (1-based: FTRL's penalties, ASGD's weights).

    One thread per coordinate of the C-ordered (n_features, K) arrays, so the accesses coalesce.
    """
    i = cuda.grid(1)
    n_features, n_classes = W.shape
    averaging = average_start > 0.0 and step >= average_start
    if i < n_features * n_classes:
        j = i // n_classes
        k = i - j * n_classes
        count = C[j]
        if count > 0.0:
            gradient = inv_size * G[j, k]
            reg = l2 * inv_freq[j] * count * inv_size
            before = W[j, k]
            _coordinate_step(W, acc_W, z_W, scale, j, k, gradient, reg, eta, lr, schedule_id, UPDATE_ASYNC, step,
                             l1, l2, ftrl_beta)
            if l1 > 0.0 and schedule_id != SCHEDULE_FTRL:
                apply_l1(W, q_l1, j, k, u)
            if averaging:
                avg_W[j, k] += (step - average_start) * (W[j, k] - before)
            G[j, k] = 0.0
    if i < n_classes:
        if intercept_step != 0.0:
            delta = _intercept_step(b, acc_b, z_b, i, inv_size * gb[i], eta, intercept_step * lr, intercept_step * eta,
                                    schedule_id, UPDATE_ASYNC, ftrl_beta)
            if averaging:
                avg_b[i] += (step - average_start) * delta
        gb[i] = 0.0


@cuda.jit
def _zero_counts(C):
    """Zero the per-feature row counts of a finished mini-batch (after `_apply_batch` read them)."""
    j = cuda.grid(1)
    if j < C.shape[0]:
        C[j] = 0.0


@cuda.jit
def _scores(indptr, indices, data, W, b, out):
    """``out[i, k] = x_i W[:, k] + b[k]`` for every row, one thread per (row, class): for metrics."""
    i = cuda.grid(1)
    n_rows, n_classes = out.shape
    if i < n_rows * n_classes:
        row = i // n_classes
        k = i - row * n_classes
        total = 0.0
        for p in range(indptr[row], indptr[row + 1]):
            total += W[indices[p], k] * data[p]
        out[row, k] = b[k] + total


# --------------------------------------------------------------------------------------------------
# launchers: validate the launch shape, read the tunables now (not at import)
# --------------------------------------------------------------------------------------------------
def choose_lanes(n_nonzeros, n_rows):
    """Threads per row: a warp when the mean row is longer than ``config.WARP_PER_ROW_NNZ``, else one."""
    mean_nnz = n_nonzeros / max(1, n_rows)
    if mean_nnz <= config.WARP_PER_ROW_NNZ:
        return 1
    return min(WARP_SIZE, _threads_per_block())


def _threads_per_block():
    tpb = int(config.THREADS_PER_BLOCK)
    if tpb < 1 or tpb & (tpb - 1):
        raise ValueError(f"hogwild.kernels.config.THREADS_PER_BLOCK must be a power of two; got {tpb}")
    return tpb


def _launch_shape(n_rows, lanes, n_classes):
    """(blocks, threads per block, dynamic shared bytes) for `_sgd_rows`, shrinking the block if the scores
    of every group would not fit in shared memory (softmax with many classes)."""
    tpb = max(_threads_per_block(), lanes)
    while True:
        groups = tpb // lanes
        shared = (tpb + groups * n_classes) * 8
        if shared <= SHARED_BYTES_LIMIT or tpb == lanes:
            break
        tpb //= 2
    if shared > SHARED_BYTES_LIMIT:
        raise ValueError(f"{n_classes} classes do not fit in one CUDA block's shared memory")
    blocks = (n_rows + groups - 1) // groups
    return blocks, tpb, shared


def sgd_rows(csr, targets, sample_weight, order, pos_start, pos_stop, state, params, mode, lanes, t_start, u_start, row_loss):
    """Launch one SGD step per row of ``order[pos_start:pos_stop]``, ``config.ROWS_PER_LAUNCH`` rows a launch.

    ``csr`` = (indptr, indices, data) device arrays; ``state`` a `DeviceState`; ``t_start``/``u_start`` the
    step counter and cumulative L1 penalty before ``pos_start``. Launches are asynchronous: nothing here
    waits for the GPU. Returns ``(t, u)`` after the rows (ACCUMULATE leaves them to `apply_batch`).
    """
    indptr, indices, data = csr
    n_classes = state.W.shape[1]
    chunk = max(1, int(config.ROWS_PER_LAUNCH))
    t, u = float(t_start), float(u_start)
    for first in range(pos_start, pos_stop, chunk):
        last = min(pos_stop, first + chunk)
        blocks, tpb, shared = _launch_shape(last - first, lanes, n_classes)
        _sgd_rows[blocks, tpb, 0, shared](
            indptr, indices, data, targets, sample_weight, order, first, last,
            state.W, state.b, state.acc_W, state.acc_b, state.q_l1, state.z_W, state.z_b, state.avg_W, state.avg_b,
            state.scale, state.G, state.gb, state.C, state.inv_freq, row_loss,
            lanes, mode, params.loss_id, params.multiclass, params.schedule_id,
            params.lr, params.epoch_factor, t, params.l2, params.l1, u, params.power_t, params.t0,
            params.epsilon, params.clip, params.intercept_step, params.average_start, params.ftrl_beta,
        )
        if mode != ACCUMULATE:
            if params.cumulative_l1:
                u += params.l1 * params.eta_total(t, last - first)
            t += last - first
    return t, u


def apply_batch(state, params, batch_rows, t, u):
    """Launch the coordinate step of ``sync`` for a batch of ``batch_rows`` rows at batch step ``t``.

    Returns the cumulative L1 penalty after the batch (``u + l1 * eta``, as `tests.naive.naive_epoch_sync`).
    """
    eta = params.eta(t)
    if params.cumulative_l1:
        u += params.l1 * eta
    tpb = _threads_per_block()
    n_features, n_classes = state.W.shape
    n = max(n_features * n_classes, n_classes)
    _apply_batch[(n + tpb - 1) // tpb, tpb](
        state.W, state.b, state.acc_W, state.acc_b, state.q_l1, state.z_W, state.z_b, state.avg_W, state.avg_b,
        state.scale, state.G, state.gb, state.C, state.inv_freq, 1.0 / batch_rows, eta, params.lr, params.l2,
        params.l1, u, params.schedule_id, params.intercept_step, float(t) + 1.0, params.average_start,
        params.ftrl_beta,
    )
    _zero_counts[(n_features + tpb - 1) // tpb, tpb](state.C)
    return u


class DeviceState:
    """The device-resident arrays of a linear model: weights, optimizer state and sync-mode buffers.

    Arrays a run does not need (squared-gradient sums, L1 debts, ftrl's z, ASGD's sums, the normalized
    schedule's scales, sync buffers) are 1-element placeholders so that one compiled kernel signature serves
    every configuration of a dtype. ASGD's sums are float64 whatever the weights' type.
    """

    def __init__(self, W, b, inv_freq, *, adagrad, l1, sync, acc_W=None, acc_b=None, q_l1=None, ftrl=False,
                 z_W=None, z_b=None, average=False, avg_W=None, avg_b=None, scale=None):
        dtype = W.dtype
        n_features, n_classes = W.shape
        full = (n_features, n_classes)

        def upload(initial, shape, needed, kind=dtype):
            if not needed:
                return cuda.to_device(np.zeros((1,) * len(shape), kind))
            if initial is not None and np.shape(initial) == shape:
                return cuda.to_device(np.ascontiguousarray(initial, dtype=kind))
            return cuda.to_device(np.zeros(shape, kind))

        self.W = cuda.to_device(np.ascontiguousarray(W))
        self.b = cuda.to_device(np.ascontiguousarray(b, dtype=dtype))
        self.inv_freq = cuda.to_device(np.ascontiguousarray(inv_freq, dtype=np.float64))
        self.acc_W = upload(acc_W, full, adagrad)
        self.acc_b = upload(acc_b, (n_classes,), adagrad)
        self.q_l1 = upload(q_l1, full, l1)
        self.z_W = upload(z_W, full, ftrl)
        self.z_b = upload(z_b, (n_classes,), ftrl)
        self.avg_W = upload(avg_W, full, average, np.float64)
        self.avg_b = upload(avg_b, (n_classes,), average, np.float64)
        self.scale = upload(scale, (n_features,), scale is not None)
        self.G = upload(None, full, sync)
        self.gb = upload(None, (n_classes,), sync)
        self.C = upload(None, (n_features,), sync)

    def weights(self):
        """Host copies ``(W, b)`` (waits for the queued kernels)."""
        return self.W.copy_to_host(), self.b.copy_to_host()


def scores(csr, W, b, n_rows):
    """Device array (n_rows, n_classes) of decision scores."""
    indptr, indices, data = csr
    out = cuda.device_array((n_rows, W.shape[1]), dtype=np.float64)
    tpb = _threads_per_block()
    n = n_rows * W.shape[1]
    if n:
        _scores[(n + tpb - 1) // tpb, tpb](indptr, indices, data, W, b, out)
    return out
