"""Compiled per-worker kernels for sparse linear models: one shared weight array, updated row by row.

The exact update rules (and the objective they share) are written out, slowly and obviously, in
``tests/naive.py``; every kernel here is tested against that twin. In short:

* ``sgd_rows``: the one-row SGD rule over a range of a row order. ``serial`` runs it on one thread; ``async``
  (Hogwild!) runs it on every worker over the SAME weight array with plain, racy loads and stores; ``average`` runs
  it on per-worker replicas (at T times the rate: `hogwild.runners.linear_cpu.replica_gain`); ``locked`` runs it
  with ``use_locks`` so that each row holds spin locks over the stripes of coordinates it touches (the Hogwild!
  paper's locking baseline).
* ``sync_batches`` (and ``sync_batches_single``, its one-output twin; in `hogwild.kernels.linear_sync`, which
  builds on this module's row helpers): mini-batch SGD where the workers of one
  batch meet at in-kernel spin barriers (see `hogwild.kernels.atomics`): each worker sums its slice's gradient
  into its own sparse buffer, then after the barrier each worker applies the coordinates it owns
  (``j % n_workers == worker``), summing the workers' sums in worker order, so the result is bitwise
  reproducible for a seed and a thread count; no step of a batch costs more than the coordinates it touched.

L2 under Hogwild!: a row shrinks only its own non-zero coordinates, by ``eta * l2 * inv_freq[j]`` where
``inv_freq[j] = n_rows / rows containing j`` (the paper's rule; the factor is clamped at 0). Its expectation
over rows is the ordinary L2 gradient, no update touches a coordinate its row does not own, and every mode
(serial, sync, CUDA) uses the same rule so that all of them minimize one objective.

Schedules: a global step (`eta_at`), or per coordinate: AdaGrad; normalized (AdaGrad's step divided by the
feature's largest |value|, Ross, Mineiro & Langford 2013: the per-feature ``scale`` is read once before
training, so rows write nothing shared beyond the per-coordinate sums); FTRL-Proximal (McMahan et al. 2013: z and
n per coordinate, the weight in closed form with exact zeros under L1). ASGD (scikit-learn's ``average``)
adds, for every change d a weight takes at step s >= ``average_start``, ``(s - average_start) * d`` to float64
sums from which `hogwild.runners._linear.averaged_weights` forms the mean of the iterates: O(non-zeros) a row,
racy like the weights under ``async``.

Locks (``locked`` mode): the coordinates are split into stripes of ``2**stripe_shift`` consecutive features;
a row acquires its stripes in ascending order (CSR indices are sorted, so this needs no sort and cannot
deadlock), plus one extra lock for the intercept, with a compare-and-swap spin lock from
`hogwild.kernels.atomics` (LLVM ``cmpxchg``). Locks are held for the row's read-compute-write, as in the paper.

Kernels take typed arrays and plain scalars; names become small integer codes here only (`kernel_params`
builds the readable dict the naive twin takes; `kernel_scalars` turns it into the kernel's argument tuple),
and the kernels compare them with the named codes of `hogwild.kernels.codes`. The per-row arithmetic (loss and
derivative, step size, the per-coordinate steps, the L1 step) is not written here: it lives once in
`hogwild.kernels.arithmetic`, whose functions are inlined into these kernels (by Numba or LLVM) and which the
CUDA twin (`hogwild.kernels.gpu_linear`) compiles from the same source, so the devices cannot disagree on a formula.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from hogwild.kernels.arithmetic import (
    ADAGRAD_EPS,
    FTRL_BETA,
    adagrad_step,
    apply_l1,
    clip_dloss,
    eta_at,
    ftrl_step,
    loss_dloss,
    normalized_step,
    row_dloss,
)
from hogwild.kernels.atomics import spin_lock, spin_unlock
from hogwild.kernels.codes import (  # noqa: F401  (the *_CODES tables are what hogwild.engine imports from here)
    AGGREGATE_CODES,
    LOSS_CODES,
    MULTICLASS_CODES,
    SCHEDULE_ADAGRAD,
    SCHEDULE_CODES,
    SCHEDULE_FTRL,
    SCHEDULE_NORMALIZED,
)
from hogwild.kernels.config import FASTMATH
# Features per lock stripe in `locked` mode (2**shift); small enough that rows rarely share a stripe by accident.
STRIPE_SHIFT = 4


def optimal_t0(l2):
    """Bottou's offset t0 of the 'optimal' schedule, as scikit-learn computes it: 1 / (typw * l2)."""
    typw = math.sqrt(1.0 / math.sqrt(l2))
    return 1.0 / (typw * l2)


def kernel_params(config, epoch, multiclass, intercept_decay=1.0, lr=None, normalizer=1.0, n_outputs=1):
    """The readable dict of one epoch's update parameters (what tests/naive.py and the CUDA kernels take).

    ``intercept_decay`` is the resolved multiplier of the intercept's step (`resolve_intercept_decay`); ``lr``
    the epoch's base rate when the epoch loop changes it (``schedule="adaptive"``), else the config's
    (`TrainConfig.rate` of a model of ``n_outputs`` scores);
    ``normalizer`` the normalized schedule's rate factor, ``1 / sqrt(mean_i sum_j (x_ij / scale_j)^2)``
    (`hogwild.runners._setup.FeatureStats`). ``average_start`` is the first step (1-based) whose iterate
    enters the averaged model (ASGD; 0: no averaging), in the kernel's steps: rows, or mini-batches in sync mode.
    """
    l2 = float(config.l2_strength)
    return {
        "loss": "log_loss" if multiclass == "softmax" else config.loss,
        "multiclass": multiclass,
        "epsilon": float(config.epsilon),
        "clip": float(config.clip) if config.clip is not None else 0.0,
        "fit_intercept": bool(config.fit_intercept),
        "intercept_decay": float(intercept_decay),
        "l2": l2,
        "l1": float(config.l1_strength),
        "schedule": config.effective_schedule,
        # optimal's step 1/(l2 (t0 + t)) has no rate: its lr is the multiplier 1 (see `eta_at`)
        "lr": 1.0 if config.effective_schedule == "optimal" else float(config.rate(multiclass, n_outputs)
                                                                         if lr is None else lr),
        "epoch_factor": float(config.decay) ** epoch,
        "t0": optimal_t0(l2) if l2 > 0 else 1.0,
        "power_t": float(config.power_t),
        "normalizer": float(normalizer),
        "average_start": float(asgd_start(config)),
        "ftrl_beta": FTRL_BETA,
    }


def asgd_start(config):
    """The first step (1-based) whose iterate enters ASGD's average, in the kernels' steps: row ``average``, or in
    sync mode the mini-batch that holds it; 0 when ``average`` is off."""
    average = int(config.average)
    if average and config.mode == "sync":
        return -(-average // int(config.batch_size))
    return average


def kernel_scalars(params):
    """The kernel's scalar arguments, in order, from a `kernel_params` dict (the normalized schedule's rate
    factor is folded into ``lr``)."""
    return (
        LOSS_CODES[params["loss"]],
        MULTICLASS_CODES[params["multiclass"]],
        params["epsilon"],
        params["clip"],
        params["intercept_decay"] if params["fit_intercept"] else 0.0,
        params["l2"],
        params["l1"],
        SCHEDULE_CODES[params["schedule"]],
        params["lr"] * params.get("normalizer", 1.0),
        params["epoch_factor"],
        params["t0"],
        params["power_t"],
        params.get("average_start", 0.0),
        params.get("ftrl_beta", FTRL_BETA),
    )


def step_size(params, t):
    """The step size at global step t of a `kernel_params` dict (per-coordinate schedules: their base rate lr)."""
    # The plain-Python source of the kernels' formula: same arithmetic, and no compiled function to load (each
    # one costs start-up time, and this is called once per epoch from Python).
    return eta_at.py_func(SCHEDULE_CODES[params["schedule"]], params["lr"], params["epoch_factor"], params["l2"],
                          params["t0"], params["power_t"], float(t))


@njit(nogil=True, cache=True, inline="always")
def row_at(blocks, block_shift, gap_at, gap, r):
    """The row at position ``r`` of an epoch's block order (`hogwild.engine.RowOrder` says what the terms are)."""
    if r >= gap_at:
        r += gap
    return (blocks[r >> block_shift] << block_shift) | (r & ((1 << block_shift) - 1))


@njit(nogil=True, cache=True, inline="always")
def row_weight(sample_weight, i):
    """Row i's weight: ``sample_weight`` holds one per row, or one for all rows (no array of ones per row)."""
    if sample_weight.shape[0] == 1:
        return sample_weight[0]
    return sample_weight[i]


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def sgd_rows(
    indptr, indices, data, targets, sample_weight, blocks, block_shift, gap_at, gap, start, stop,
    W, b, acc_W, acc_b, q_l1, z_W, z_b, avg_W, avg_b, scale, inv_freq, scratch,
    loss, multiclass, epsilon, clip, intercept_step, l2, l1, schedule, lr, epoch_factor, t0, power_t,
    average_start, ftrl_beta, t_start, t_stride, u_state, locks, use_locks, stripe_shift,
):
    """Apply the one-row SGD rule to positions ``start:stop`` of the row order; return (weighted loss sum, weight sum).

    The order is ``blocks, block_shift, gap_at, gap`` (`row_at`; `hogwild.engine.RowOrder`), the weights
    ``sample_weight`` one per row or a single one for every row (`row_weight`).

    ``scratch[0]`` is a K-long float64 buffer owned by the calling worker: it holds the row's scores and then,
    in place, its loss derivatives (`hogwild.kernels.arithmetic.row_dloss`). Row number r of the range uses
    global step ``t_start + r * t_stride``; ``u_state[0]`` (the cumulative L1 penalty) is read and advanced by
    ``l1 * eta * t_stride`` per row, so a worker of an n-thread Hogwild! run accounts for the steps the other
    workers take meanwhile. Updates to W and b are plain stores: under ``async`` they race, by design.

    Per-coordinate state: ``acc_W``/``acc_b`` (adagrad and normalized: summed squared gradients; ftrl: its
    ``n``), ``z_W``/``z_b`` (ftrl's ``z``), ``scale`` (normalized: each feature's largest |value|). ASGD
    (``average_start`` > 0): from step ``average_start`` (1-based) on, every change d of a weight at step s adds
    ``(s - average_start) * d`` to ``avg_W``/``avg_b`` (float64), from which the model is the average of the
    iterates (`hogwild.runners._linear.averaged_weights`). Arrays a run does not use are zero-size.
    """
    K = W.shape[1]
    n_outputs = np.uint64(K)  # unsigned output index (see `sgd_rows_single`)
    g = scratch[0]
    per_coordinate = schedule == SCHEDULE_ADAGRAD or schedule == SCHEDULE_NORMALIZED
    ftrl = schedule == SCHEDULE_FTRL
    cumulative_l1 = l1 > 0.0 and not ftrl  # FTRL applies its L1 in closed form
    u = u_state[0]
    loss_sum = 0.0
    weight_sum = 0.0
    intercept_lock = locks.shape[0] - 1
    # As in `sgd_rows_single`, the per-non-zero update runs in the weights' type: with float32 weights the
    # K-loop is single precision (twice the SIMD lanes, single-precision square roots for AdaGrad); with
    # float64 weights every expression is the naive twin's. ``g_real`` is the row's gradient in that type.
    real = W.dtype.type
    zero = real(0.0)
    one = real(1.0)
    lr_w = real(lr)
    eps_w = real(ADAGRAD_EPS)
    beta_w = real(ftrl_beta)
    g_real = np.empty(K, dtype=W.dtype)
    before = np.empty(K, dtype=W.dtype)  # ASGD: a coordinate's weights before this row's update
    for r in range(start, stop):
        i = row_at(blocks, block_shift, gap_at, gap, r)
        row_start = np.uint64(indptr[i])  # unsigned: see `sgd_rows_single`
        row_stop = np.uint64(indptr[i + 1])
        t = t_start + (r - start) * t_stride
        eta = eta_at(schedule, lr, epoch_factor, l2, t0, power_t, t)
        step = t + 1.0  # 1-based: FTRL's penalties grow with the rows seen, ASGD counts iterates
        averaging = average_start > 0.0 and step >= average_start
        average_weight = step - average_start
        lambda1 = real(l1 * step)
        lambda2 = real(l2 * step)
        if use_locks:
            last = -1
            for p in range(row_start, row_stop):
                stripe = indices[p] >> stripe_shift
                if stripe != last:
                    spin_lock(locks, stripe)
                    last = stripe
            spin_lock(locks, intercept_lock)
        # Sum x.W from zero, then add b: the naive twin adds in the same order, so serial runs agree to ~1e-15.
        if K == 1:
            acc = 0.0
            for p in range(row_start, row_stop):
                acc += data[p] * W[np.uint64(indices[p]), 0]
            g[0] = acc + b[0]
        else:
            for k in range(n_outputs):
                g[k] = 0.0
            for p in range(row_start, row_stop):
                x = data[p]
                j = np.uint64(indices[p])
                for k in range(n_outputs):
                    g[k] += x * W[j, k]
            for k in range(n_outputs):
                g[k] += b[k]
        value = row_dloss(g, 0, K, multiclass, loss, targets[i], epsilon, clip)
        s = row_weight(sample_weight, i)
        loss_sum += s * value
        weight_sum += s
        for k in range(n_outputs):
            g[k] *= s
            g_real[k] = real(g[k])
        if cumulative_l1:
            u += l1 * eta * t_stride
        eta_w = real(eta)
        for p in range(row_start, row_stop):
            j = np.uint64(indices[p])
            x = data[p]
            if averaging:
                for k in range(n_outputs):
                    before[k] = W[j, k]
            if per_coordinate:
                reg = real(l2 * inv_freq[j])
                if schedule == SCHEDULE_ADAGRAD:
                    for k in range(n_outputs):
                        grad = g_real[k] * x + reg * W[j, k]
                        acc_W[j, k] += grad * grad
                        W[j, k] -= adagrad_step(lr_w, grad, acc_W[j, k], eps_w)
                else:
                    feature_scale = scale[j]
                    for k in range(n_outputs):
                        grad = g_real[k] * x + reg * W[j, k]
                        acc_W[j, k] += grad * grad
                        W[j, k] -= normalized_step(lr_w, grad, acc_W[j, k], feature_scale, eps_w)
            elif ftrl:
                for k in range(n_outputs):
                    z_W[j, k], acc_W[j, k], W[j, k] = ftrl_step(z_W[j, k], acc_W[j, k], W[j, k], g_real[k] * x, lr_w,
                                                                beta_w, lambda1, lambda2)
            else:
                shrink = max(zero, one - eta_w * real(l2 * inv_freq[j]))
                for k in range(n_outputs):
                    W[j, k] = W[j, k] * shrink - eta_w * (g_real[k] * x)
            if cumulative_l1:
                for k in range(n_outputs):
                    apply_l1(W, q_l1, j, k, u)
            if averaging:
                for k in range(n_outputs):
                    avg_W[j, k] += average_weight * (W[j, k] - before[k])
        if intercept_step != 0.0:
            rate = intercept_step * lr
            for k in range(n_outputs):
                b_before = b[k]
                if per_coordinate:
                    acc_b[k] += g[k] * g[k]
                    b[k] -= adagrad_step(rate, g[k], acc_b[k], ADAGRAD_EPS)
                elif ftrl:
                    z_b[k], acc_b[k], b[k] = ftrl_step(z_b[k], acc_b[k], b[k], g[k], rate, ftrl_beta, 0.0, 0.0)
                else:
                    b[k] -= intercept_step * eta * g[k]
                if averaging:
                    avg_b[k] += average_weight * (b[k] - b_before)
        if use_locks:
            last = -1
            for p in range(row_start, row_stop):
                stripe = indices[p] >> stripe_shift
                if stripe != last:
                    spin_unlock(locks, stripe)
                    last = stripe
            spin_unlock(locks, intercept_lock)
    u_state[0] = u
    return loss_sum, weight_sum


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def sgd_rows_single(
    indptr, indices, data, targets, sample_weight, blocks, block_shift, gap_at, gap, start, stop,
    w, b, acc_w, acc_b, z_w, z_b, scale, reg,
    loss, multiclass, epsilon, clip, intercept_step, schedule, lr, epoch_factor, l2, l1, t0, power_t, ftrl_beta,
    t_start, t_stride,
):
    """`sgd_rows` for one output (binary or regression) without locks, the cumulative L1 penalty (FTRL's
    closed-form L1 is here) or ASGD: the hot path of most runs.

    Same rule, same order of floating-point operations as `sgd_rows` (so serial runs still match the naive
    twin in float64), but over 1-D contiguous ``w``/``acc_w`` and the precomputed ``reg = l2 * inv_freq`` (in
    the weights' type): without the K-loops and 2-D indexing the compiler keeps the row in registers, which is
    worth ~1.5x per non-zero. Each schedule's loop over the row is its own, so that none carries another's
    branches. (ASGD's bookkeeping is left to `sgd_rows`: in this kernel it cost the other runs ~5% per epoch.)
    Every update is written straight to the shared arrays (pure Hogwild! when several workers run it).
    """
    loss_sum = 0.0
    weight_sum = 0.0
    # The per-non-zero arithmetic runs in the weights' type: with float32 weights that skips two conversions
    # per load and store and makes AdaGrad's square root and division single precision (~15% per epoch).
    # With float64 weights every expression below is the one the naive twin evaluates.
    real = w.dtype.type
    zero = real(0.0)
    one = real(1.0)
    lr_w = real(lr)
    eps_w = real(ADAGRAD_EPS)
    beta_w = real(ftrl_beta)
    for r in range(start, stop):
        i = row_at(blocks, block_shift, gap_at, gap, r)
        # Unsigned positions and feature indices: Numba checks a signed index for wraparound (negative counts
        # from the end) on every access, which here cost 28% of a serial epoch on the rcv1-shaped set; the setup
        # pass has checked every index against [0, n_features). (An int32 indptr's own type cost ~12% more.)
        row_start = np.uint64(indptr[i])
        row_stop = np.uint64(indptr[i + 1])
        t = t_start + (r - start) * t_stride
        eta = eta_at(schedule, lr, epoch_factor, l2, t0, power_t, t)
        acc = zero
        for p in range(row_start, row_stop):
            acc += data[p] * w[np.uint64(indices[p])]
        g, value, s = _single_gradient(loss, epsilon, clip, acc + b[0], targets[i], row_weight(sample_weight, i))
        loss_sum += s * value
        weight_sum += s
        g_w = real(g)
        if schedule == SCHEDULE_ADAGRAD:
            for p in range(row_start, row_stop):
                j = np.uint64(indices[p])
                grad = g_w * data[p] + reg[j] * w[j]
                acc_w[j] += grad * grad
                w[j] -= adagrad_step(lr_w, grad, acc_w[j], eps_w)
        elif schedule == SCHEDULE_NORMALIZED:
            for p in range(row_start, row_stop):
                j = np.uint64(indices[p])
                grad = g_w * data[p] + reg[j] * w[j]
                acc_w[j] += grad * grad
                w[j] -= normalized_step(lr_w, grad, acc_w[j], scale[j], eps_w)
        elif schedule == SCHEDULE_FTRL:
            step = t + 1.0  # FTRL's penalties grow with the rows seen (see `sgd_rows`)
            lambda1 = real(l1 * step)
            lambda2 = real(l2 * step)
            for p in range(row_start, row_stop):
                j = np.uint64(indices[p])
                z_w[j], acc_w[j], w[j] = ftrl_step(z_w[j], acc_w[j], w[j], g_w * data[p], lr_w, beta_w, lambda1,
                                                   lambda2)
        else:
            eta_w = real(eta)
            for p in range(row_start, row_stop):
                j = np.uint64(indices[p])
                shrink = max(zero, one - eta_w * reg[j])
                w[j] = w[j] * shrink - eta_w * (g_w * data[p])
        if intercept_step != 0.0:
            rate = intercept_step * lr
            if schedule == SCHEDULE_ADAGRAD or schedule == SCHEDULE_NORMALIZED:
                acc_b[0] += g * g
                b[0] -= adagrad_step(rate, g, acc_b[0], ADAGRAD_EPS)
            elif schedule == SCHEDULE_FTRL:
                z_b[0], acc_b[0], b[0] = ftrl_step(z_b[0], acc_b[0], b[0], g, rate, ftrl_beta, 0.0, 0.0)
            else:
                b[0] -= intercept_step * eta * g
    return loss_sum, weight_sum


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def _single_gradient(loss, epsilon, clip, score, target, weight):
    """(weighted, clipped dloss/dscore, loss, weight) of one row of a one-output model."""
    value, d = loss_dloss(loss, score, target, epsilon)
    return clip_dloss(d, clip) * weight, value, weight


@njit(nogil=True, cache=True)
def merge_replicas(replicas, shared, add_up, lo, hi, write_back):
    """Average mode's merge of positions ``[lo, hi)`` of one array: ``replicas`` (T, m), ``shared`` (m,) their
    common start.

    ``add_up``: ``shared + sum_k (replicas[k] - shared)`` (the per-coordinate sums: every replica's increments
    count), else the mean over the replicas; in float64 either way, rounded once into ``shared``, and with
    ``write_back`` copied into every replica too (a merge mid-epoch: they go on from it). The workers merge
    disjoint ranges at once (`hogwild.runners.linear_cpu`): on news20 (four 5-MB arrays) a merge took 15 ms of a
    69-ms epoch on one thread with NumPy temporaries.
    """
    n_replicas = replicas.shape[0]
    if add_up:
        for i in range(lo, hi):
            start = np.float64(shared[i])
            total = 0.0
            for k in range(n_replicas):
                total += np.float64(replicas[k, i]) - start
            shared[i] = start + total
    else:
        for i in range(lo, hi):
            total = 0.0
            for k in range(n_replicas):
                total += np.float64(replicas[k, i])
            shared[i] = total / n_replicas
    if write_back:
        for k in range(n_replicas):
            for i in range(lo, hi):
                replicas[k, i] = shared[i]


@njit(nogil=True, cache=True)
def copy_into(target, source):
    """``target[:] = source`` without the GIL: each average-mode worker refreshes its own replica at once."""
    for i in range(source.shape[0]):
        target[i] = source[i]
