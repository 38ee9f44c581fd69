"""The CPU runner for sparse linear models: worker threads calling the compiled row kernels on one shared state.

Workers are Python threads (`hogwild._workers.WorkerPool`) that each run one ``nogil`` kernel call
(`hogwild.kernels.linear`) over a chunk of ``config.chunk_rows`` rows of their shard; between chunk rounds the
runner hands control back to the loop (progress, checkpoints, Ctrl-C). All modes minimize the same objective
(``tests/naive.py`` states it); the kernels' module docstring gives the per-mode rules:

* ``serial``: one worker; the deterministic reference. ``async`` (Hogwild!): every worker updates the same
  weights with plain, racy loads and stores. ``locked``: per-row spin locks over the stripes of coordinates a
  row touches (the paper's baseline). ``average``: per-worker replicas, averaged every ``average_every`` rows
  and at the epoch's end (local SGD). ``sync``: mini-batches whose workers meet at in-kernel barriers.
"""

from __future__ import annotations

import numpy as np

from .._workers import WorkerPool, worker_count
from ..order import SHUFFLE_BLOCK_SHIFT
from ..results import EpochOutcome
from ._linear import LinearData, LinearState, check_linear_config, linear_model, penalty

_REPLICATED = ("W", "b", "acc_W", "acc_b", "q_l1")


def _replicate(array, n_workers):
    """``n_workers`` copies of ``array`` (average mode), stacked; a 1-D one (the intercept, its AdaGrad sum) is
    padded to 128 bytes a copy, because workers that write one cache line on every row stall each other (false
    sharing: average x2 went from 1.81x to 1.90x with the intercepts 128 bytes apart, on the rcv1-shaped set)."""
    if array.ndim == 1:
        padded = np.zeros((n_workers, max(array.shape[0], 128 // array.itemsize)), dtype=array.dtype)
        padded[:, : array.shape[0]] = array
        return padded
    return np.repeat(array[None], n_workers, axis=0)


def _replica_views(state, name):
    """The stacked replicas of ``state.<name>`` without their padding: shape (n_workers, *state.<name>.shape)."""
    return state.replicas[name][(slice(None), *(slice(0, size) for size in getattr(state, name).shape))]


class LinearCPURunner:
    """A linear model trained by CPU worker threads on one shared `LinearState`."""

    modes = ("async", "sync", "average", "serial", "locked")
    order_block_shift = SHUFFLE_BLOCK_SHIFT
    multi_output = False

    @classmethod
    def check_config(cls, config):
        check_linear_config(config)

    def __init__(self, problem, config, init_model=None):
        self.config = config
        self.data = LinearData(problem, config)
        csr = self.data.csr
        self.n_rows, self.nnz = csr.n_rows, csr.nnz
        self.n_workers = worker_count(config, self.n_rows)
        self.state = LinearState.fresh(self.data, config, self.n_workers, init_model)
        self.pool = WorkerPool(self.n_workers)

    # --- the protocol's state surface -------------------------------------------------------------------
    def snapshot(self):
        return self.state.export()

    def restore(self, state):
        self.state.restore(state)

    def position(self):
        return int(self.state.position.sum())

    def parameters(self):
        return self.state.parameters()

    def model(self, copy=True):
        return linear_model(self.state, self.data, self.config, copy)

    def close(self):
        self.pool.close()

    # --- epochs -----------------------------------------------------------------------------------------------
    def run_epoch(self, order, epoch, lr, on_chunk):
        from hogwild.kernels.linear import step_size

        state = self.state
        params = self.data.params(self.config, epoch)
        if self.config.mode == "sync":
            t_end = self._epoch_sync(order, params, on_chunk)
        else:
            t_end = self._epoch_rows(order, params, on_chunk)
        loss = state.loss_sum / self.n_rows + penalty(state.W, self.config)
        if not np.all(np.isfinite(state.b)):
            loss = float("nan")
        last_step = step_size(params, max(t_end - 1, 0.0))
        state.end_epoch(t_end)
        return EpochOutcome(loss, last_step)

    def _report(self, on_chunk, rows_done):
        state = self.state
        on_chunk(rows_done, state.loss_sum / max(state.weight_sum, 1e-300))

    def _epoch_rows(self, order, params, on_chunk):
        """serial, async, locked and average: the one-row kernel over each worker's shard, chunk by chunk."""
        from hogwild.kernels.linear import STRIPE_SHIFT, kernel_scalars, sgd_rows, sgd_rows_single

        state, config, data = self.state, self.config, self.data
        csr = data.csr
        T = self.n_workers
        n = order.n_rows
        bounds = [(n * w) // T for w in range(T + 1)]
        scalars = kernel_scalars(params)
        t_epoch = state.t
        use_locks = config.mode == "locked"
        locks = np.zeros(((csr.n_features >> STRIPE_SHIFT) + 2) if use_locks else 1, dtype=np.int64)
        average = config.mode == "average" and T > 1
        if average and state.replicas is None:
            state.replicas = {name: _replicate(getattr(state, name), T) for name in _REPLICATED}
        scratch = np.zeros((T, 2, data.n_outputs), dtype=np.float64)
        # One output without L1 or locks (most binary and regression runs) takes the specialized kernel.
        single = data.n_outputs == 1 and not use_locks and params["l1"] == 0.0
        if single:
            (loss_code, multiclass_code, epsilon, clip, intercept_step, l2, _l1, schedule, rate, epoch_factor, t0,
             power_t) = scalars
            single_scalars = (loss_code, multiclass_code, epsilon, clip, intercept_step, schedule, rate,
                              epoch_factor, l2, t0, power_t)
            l2_reg = (l2 * data.inv_freq).astype(data.dtype)
        quota = config.chunk_rows
        if average:
            quota = max(1, min(quota, config.average_every // T))

        def row_range(w):
            lo = bounds[w] + int(state.position[w])
            return lo, min(bounds[w + 1], lo + quota)

        def task(w):
            lo, hi = row_range(w)
            if lo >= hi:
                return 0.0, 0.0, 0
            if average:
                arrays = [_replica_views(state, name)[w] for name in _REPLICATED]
            else:
                arrays = [state.W, state.b, state.acc_W, state.acc_b, state.q_l1]
            t_start = t_epoch + (lo - bounds[w]) * T + w
            if single:
                W, b, acc_W, acc_b, _ = arrays
                return (*sgd_rows_single(
                    csr.indptr, csr.indices, csr.data, data.targets, data.sample_weight, *order.kernel_args(), lo,
                    hi, W.reshape(-1), b, acc_W.reshape(-1), acc_b, l2_reg, scratch[w], *single_scalars,
                    float(t_start), float(T),
                ), hi - lo)
            loss_sum, weight_sum = sgd_rows(
                csr.indptr, csr.indices, csr.data, data.targets, data.sample_weight, *order.kernel_args(), lo, hi,
                *arrays, data.inv_freq, scratch[w], *scalars, float(t_start), float(T), state.u[w], locks,
                use_locks, STRIPE_SHIFT,
            )
            return loss_sum, weight_sum, hi - lo

        while int(state.position.sum()) < n:
            results = self.pool.run(task, row_range=row_range)
            for w, (loss_sum, weight_sum, rows) in enumerate(results):
                state.loss_sum += loss_sum
                state.weight_sum += weight_sum
                state.position[w] += rows
                state.rows_since_average += rows
            if T > 1:
                # Every worker's copy of the L1 total stands for the whole run's; keep them together.
                state.u[:] = state.u.max()
            done = int(state.position.sum())
            if average and (state.rows_since_average >= config.average_every or done >= n):
                self._average_replicas(final=done >= n)
            self._report(on_chunk, done)
        return t_epoch + n

    def _average_replicas(self, final):
        state = self.state
        for name in state.replicas:
            stacked = _replica_views(state, name)
            if stacked.size == 0:
                continue
            mean = stacked.mean(axis=0, dtype=np.float64).astype(stacked.dtype)
            getattr(state, name)[...] = mean
            stacked[...] = mean[None]
        state.rows_since_average = 0
        if final:
            state.replicas = None

    def _epoch_sync(self, order, params, on_chunk):
        """sync: mini-batches; the workers meet at in-kernel barriers (see `sync_batches`)."""
        from hogwild.kernels.linear import AGGREGATE_CODES, kernel_scalars, sync_batches

        state, config, data = self.state, self.config, self.data
        csr = data.csr
        T, K, d = self.n_workers, data.n_outputs, csr.n_features
        n = order.n_rows
        batch = config.batch_size
        per_call = batch * max(1, config.chunk_rows // batch)
        scalars = kernel_scalars(params)
        grad_buffers = np.zeros((T, d, K), dtype=data.dtype)
        count_buffers = np.zeros((T, d), dtype=np.float64)
        marks = np.zeros((T, d), dtype=np.uint8)
        touched = np.zeros((T, d), dtype=np.int32)
        n_touched = np.zeros(T, dtype=np.int64)
        intercept_buffers = np.zeros((T, K), dtype=np.float64)
        slice_rows = np.zeros(T, dtype=np.int64)
        done = np.zeros(d, dtype=np.uint8)
        barrier = np.zeros(3, dtype=np.int64)  # count, generation, abort (see kernels.atomics.barrier_wait)
        scratch = np.zeros((T, 2, K), dtype=np.float64)
        aggregate = AGGREGATE_CODES[config.aggregate]
        t_epoch = state.t
        position = int(state.position[0])

        while position < n:
            lo, hi = position, min(n, position + per_call)
            t_start = t_epoch + lo // batch

            def task(w, lo=lo, hi=hi, t_start=t_start):
                return sync_batches(
                    csr.indptr, csr.indices, csr.data, data.targets, data.sample_weight, *order.kernel_args(), lo,
                    hi, batch, w, T, aggregate, state.W, state.b, state.acc_W, state.acc_b, state.q_l1,
                    data.inv_freq, scratch[w], grad_buffers, count_buffers, marks, touched, n_touched,
                    intercept_buffers, slice_rows, done, barrier, *scalars, float(t_start), state.u[w],
                )

            results = self.pool.run(task, row_range=lambda w, lo=lo, hi=hi: (lo, hi),
                                    on_failure=lambda: barrier.__setitem__(2, 1))
            for loss_sum, weight_sum in results:
                state.loss_sum += loss_sum
                state.weight_sum += weight_sum
            position = hi
            state.position[:] = position
            self._report(on_chunk, position)
        return t_epoch + -(-n // batch)


__all__ = ["LinearCPURunner"]
