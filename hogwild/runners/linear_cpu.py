"""The CPU runner for sparse linear models: worker threads calling the compiled row kernels on one shared state.

Workers are Python threads (`hogwild._workers.WorkerPool`) that each run one ``nogil`` kernel call
(`hogwild.kernels.linear`) over a chunk of rows of their shard (`TrainConfig.chunk_rows_for`); between chunk rounds
the runner hands control back to the loop (progress, checkpoints, Ctrl-C). All modes minimize the same objective
(``tests/naive.py`` states it); the kernels' module docstring gives the per-mode rules:

* ``serial``: one worker; the deterministic reference. ``async`` (Hogwild!): every worker updates the same weights
  with plain, racy loads and stores. ``locked``: per-row spin locks over the stripes of coordinates a row touches
  (the paper's baseline). ``average``: per-worker replicas (local SGD) at T times the step, merged every
  ``average_every`` rows and at the epoch's end (`replica_gain`). ``sync``: mini-batches whose workers meet at
  in-kernel barriers.
"""

from __future__ import annotations

import numpy as np

from .._workers import WorkerPool, worker_count
from ..memory import WindowReleaser, csr_is_mapped, window_rows_for, worker_rows
from ..order import SHUFFLE_BLOCK_ROWS, SHUFFLE_BLOCK_SHIFT
from ..results import EpochOutcome
from ._auto import AutoChooser, handoff_seconds
from ._linear import LinearData, LinearState, check_linear_config, linear_model, penalty

_REPLICATED = ("W", "b", "acc_W", "acc_b", "q_l1", "z_W", "z_b", "avg_W", "avg_b")  # what a worker's replica holds
# Merged as start + every replica's increments (the weights are averaged): the sums of squared gradients of
# AdaGrad, the normalized schedule and FTRL, and FTRL's gradient sums z: statistics of the rows seen, which one
# pass would have summed (averaged, the adaptive steps came out sqrt(T) larger; FTRL: see `replica_gain`).
_SUMMED = ("acc_W", "acc_b", "z_W", "z_b")
_POOL_MIN_ELEMENTS = 1 << 18  # replicas' elements from which merging and refreshing them is split among the workers


def replica_gain(params, n_replicas):
    """How many times one step's size average mode's replicas take: ``n_replicas``, or 1 under FTRL.

    A replica sees 1/T of the rows, and the mean of T replicas moves a weight that all of them push the same way
    1/T as far as one pass over those rows would; scaling the steps by T (the linear scaling rule of large-batch
    SGD, Goyal et al. 2017) restores one pass's progress per pass. Without it, average x2 lagged serial by 0.4-0.6
    points of accuracy over the first 3 epochs on the rcv1-shaped set (86.66% vs 86.91% after 3), and reached
    scikit-learn's accuracy only later; with it, it tracks serial within +-0.1 (docs/benchmarks.md). FTRL keeps
    its step: its state is sums of gradients (z, n), which a merge adds up (`_SUMMED`), and its weights follow
    from them (mean z with T times the rate over-applies L1 and L2 T times: 81.9% vs serial's 83.4%)."""
    return 1 if params["schedule"] == "ftrl" else n_replicas


def replica_params(params, n_replicas):
    """Average mode's kernel parameters for ``n_replicas`` replicas: the rate scaled by `replica_gain`."""
    gain = replica_gain(params, n_replicas)
    return params if gain == 1 else {**params, "lr": params["lr"] * gain}


def _pool_l1_totals(state, before, params, n_replicas, stride):
    """After a round, every worker's copy of the cumulative L1 total ``u`` (Tsuruoka et al.) becomes the run's:
    ``before`` plus the workers' increments, each of which is ``l1 * eta * stride`` a row of its own times average
    mode's gain (``n_replicas``: 1 for the shared weights): divided by both, each row counts once at its serial
    step."""
    share = 1.0 / (stride * replica_gain(params, n_replicas))
    state.u[:] = before + float((state.u[:, 0] - before).sum()) * share


def _single_output_scalars(data, params, scalars):
    """The scalar arguments of the one-output kernels (`sgd_rows_single`, `sync_batches_single`), from
    `kernel_scalars`' ``scalars``; None when the run needs the general kernels: several outputs, the cumulative L1
    penalty (FTRL's closed-form L1 is in the one-output kernels) or ASGD. Most binary and regression runs qualify."""
    if data.n_outputs != 1 or (params["l1"] != 0.0 and params["schedule"] != "ftrl") or params["average_start"] != 0:
        return None
    (loss_code, multiclass_code, epsilon, clip, intercept_step, l2, l1, schedule, rate, epoch_factor, t0, power_t,
     _average_start, ftrl_beta) = scalars
    return (loss_code, multiclass_code, epsilon, clip, intercept_step, schedule, rate, epoch_factor, l2, l1, t0,
            power_t, ftrl_beta)


def _replicate(array, n_workers):
    """``n_workers`` copies of ``array`` (average mode), stacked, each padded to whole cache lines and one more,
    so that no two replicas share a line: workers that write one line on every row stall each other (false
    sharing: average x2 went from 1.81x to 1.90x with the intercepts 128 bytes apart, on the rcv1-shaped set; on
    a9a, whose 123 weights fill 8 lines, the pool thread's half of an epoch took 2.0 ms against the caller's 1.5
    while the weights of the two replicas shared one). `_replica_views` leaves the padding out."""
    row_bytes = array.itemsize * int(np.prod(array.shape[1:]))
    extent = -(-array.nbytes // 64) * 64 + 64
    rows = max(array.shape[0], -(-extent // max(row_bytes, 1)))
    stacked = np.zeros((n_workers, rows, *array.shape[1:]), dtype=array.dtype)
    stacked[:, : array.shape[0]] = array
    return stacked


def _replica_views(state, name, replicas=None):
    """The stacked replicas of ``state.<name>`` (in ``replicas``, by default ``state.replicas``) without their
    padding: shape (n_workers, *state.<name>.shape)."""
    stacked = (state.replicas if replicas is None else replicas)[name]
    return stacked[(slice(None), *(slice(0, size) for size in getattr(state, name).shape))]


class LinearCPURunner:
    """A linear model trained by CPU worker threads on one shared `LinearState`."""

    modes = ("auto", "async", "sync", "average", "serial", "locked")
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
        self.pool = WorkerPool(self.n_workers)
        self.chooser = None
        self.latency_ns = None
        if config.mode == "auto" and self.n_workers > 1:
            from .._latency import core_to_core_round_trip_ns

            # recorded beside the choice (it explains it): 3 x 1,000 round trips on the pool's own threads (this
            # first round starts them), under a millisecond on an idle machine; None when the other thread was not
            # running (another process holds the core), which a spin limit detects in a few milliseconds instead
            # of timing the scheduler for seconds
            latency = core_to_core_round_trip_ns(rounds=1000, max_spins=2_000_000, pool=self.pool)
            self.latency_ns = None if latency is None else round(latency, 1)
        if config.mode == "auto":
            self.chooser = AutoChooser(self.n_workers, handoff=handoff_seconds(self.pool, self.n_workers))
        self.state = LinearState.fresh(self.data, config, self.n_workers, init_model)
        # a memory-mapped cache streams: windows of a chunk of rows, their pages dropped once done (hogwild.order)
        self.streaming = csr_is_mapped(csr)
        self.order_window_rows = window_rows_for(csr, config.chunk_rows_for(self.streaming), SHUFFLE_BLOCK_ROWS)
        self.releaser = WindowReleaser(csr) if self.order_window_rows else None
        self._sync = None  # sync mode's per-worker buffers (`_sync_buffers`), kept across epochs
        self._spare_replicas = None  # average mode's replicas between epochs (`_fresh_replicas`)

    # --- the protocol's state surface -------------------------------------------------------------------
    def snapshot(self):
        state = self.state.export()
        if self.chooser is not None:
            state["auto"] = self.chooser.state()
        return state

    def restore(self, state):
        self.state.restore(state)
        self.state.merge_scale(self.data)
        if self.chooser is not None:
            self.chooser.restore(state.get("auto"))

    def position(self):
        return int(self.state.position.sum())

    def worker_rows(self):
        """Rows each worker has done in the current epoch (monitoring: `hogwild.monitor`); None under --mode auto,
        whose rounds move one cursor. In sync mode every worker takes a slice of every mini-batch."""
        if self.chooser is not None:
            return None
        if self.config.mode == "sync":
            return [int(self.state.position[0]) / self.n_workers] * self.n_workers
        return [int(p) for p in self.state.position]

    def parameters(self):
        return self.state.parameters()

    def model(self, copy=True):
        model = linear_model(self.state, self.data, self.config, copy)
        if self.chooser is not None:
            model.config["auto"] = self.chooser.report()  # the model file records what --mode auto chose
        return model

    def close(self):
        self.pool.close()

    # --- epochs -----------------------------------------------------------------------------------------------
    def run_epoch(self, order, epoch, lr, on_chunk):
        from hogwild.kernels.linear import step_size

        state = self.state
        params = self.data.params(self.config, epoch, lr)
        if self.releaser is not None:
            self.releaser.start(order)
        if self.config.mode == "sync":
            t_end = self._epoch_sync(order, params, on_chunk)
        elif self.config.mode == "auto":
            t_end = self._epoch_auto(order, params, on_chunk, epoch)
        else:
            t_end = self._epoch_rows(order, params, on_chunk)
        loss = state.loss_sum / self.n_rows + penalty(state.W, self.config)
        if not np.all(np.isfinite(state.b)):
            loss = float("nan")
        last_step = step_size(params, max(t_end - 1, 0.0))
        state.end_epoch(t_end)
        extras = {"auto": self.auto_report()} if self.chooser is not None else {}
        return EpochOutcome(loss, last_step, extras)

    def auto_report(self):
        """--mode auto: the choice, the measured rates and the machine's core-to-core round trip."""
        return {**self.chooser.report(), "core_to_core_ns": self.latency_ns}

    def _report(self, on_chunk, rows_done, done_ranges=None):
        """Tell the loop how far the epoch is; ``done_ranges``: the order's position ranges finished (streaming)."""
        state = self.state
        if self.releaser is not None:
            for lo, hi in done_ranges or [(0, rows_done)]:
                self.releaser.finished(lo, hi)
        on_chunk(rows_done, state.loss_sum / max(state.weight_sum, 1e-300))

    def _row_kernel(self, order, params, use_locks=False):
        """``call(w, arrays, lo, hi, t_start, stride) -> (loss_sum, weight_sum)``: worker ``w`` runs the one-row
        kernel over positions ``[lo, hi)`` of ``order`` on ``arrays`` (`_REPLICATED`: the shared ones or a
        replica); row ``k`` of the range takes global step ``t_start + k * stride``."""
        from hogwild.kernels.linear import STRIPE_SHIFT, kernel_scalars, sgd_rows, sgd_rows_single

        state, data = self.state, self.data
        csr = data.csr
        scalars = kernel_scalars(params)
        locks = np.zeros(((csr.n_features >> STRIPE_SHIFT) + 2) if use_locks else 1, dtype=np.int64)
        scratch = np.zeros((self.n_workers, 2, data.n_outputs), dtype=np.float64)
        single_scalars = None if use_locks else _single_output_scalars(data, params, scalars)
        if single_scalars is not None:
            l2_reg = data.l2_factors(params["l2"])

            def call(w, arrays, lo, hi, t_start, stride):
                W, b, acc_W, acc_b, _, z_W, z_b, _, _ = arrays
                return sgd_rows_single(
                    csr.indptr, csr.indices, csr.data, data.targets, data.sample_weight, *order.kernel_args(), lo,
                    hi, W.reshape(-1), b, acc_W.reshape(-1), acc_b, z_W.reshape(-1), z_b, state.scale, l2_reg,
                    *single_scalars, float(t_start), float(stride),
                )
        else:
            def call(w, arrays, lo, hi, t_start, stride):
                return sgd_rows(
                    csr.indptr, csr.indices, csr.data, data.targets, data.sample_weight, *order.kernel_args(), lo,
                    hi, *arrays, state.scale, data.inv_freq, scratch[w], *scalars, float(t_start), float(stride),
                    state.u[w], locks, use_locks, STRIPE_SHIFT,
                )
        return call

    def _shared_arrays(self):
        state = self.state
        return [getattr(state, name) for name in _REPLICATED]

    def _epoch_rows(self, order, params, on_chunk):
        """serial, async, locked and average: the one-row kernel over each worker's shard, chunk by chunk."""
        state, config = self.state, self.config
        T = self.n_workers
        n = order.n_rows
        bounds = order.shard_bounds(T)
        t_epoch = state.t
        average = config.mode == "average" and T > 1
        call = self._row_kernel(order, replica_params(params, T) if average else params,
                                use_locks=config.mode == "locked")
        if average and state.replicas is None:
            state.replicas = self._fresh_replicas(T)
        quota = config.chunk_rows_for(self.streaming)
        if average:
            quota = max(1, min(quota, config.average_every // T))

        def row_range(w):
            lo = bounds[w] + int(state.position[w])
            return lo, min(bounds[w + 1], lo + quota)

        def task(w):
            lo, hi = row_range(w)
            if lo >= hi:
                return 0.0, 0.0, 0
            arrays = [_replica_views(state, name)[w] for name in _REPLICATED] if average else self._shared_arrays()
            # a shard's k-th row stands for global step t_epoch + k T + w: the workers' rows interleave
            return (*call(w, arrays, lo, hi, t_epoch + (lo - bounds[w]) * T + w, T), hi - lo)

        while int(state.position.sum()) < n:
            u_before = float(state.u[0, 0])
            results = self.pool.run(task, row_range=row_range)
            for w, (loss_sum, weight_sum, rows) in enumerate(results):
                state.loss_sum += loss_sum
                state.weight_sum += weight_sum
                state.position[w] += rows
                state.rows_since_average += rows
            _pool_l1_totals(state, u_before, params, T if average else 1, T)  # a worker's rows stride T
            done = int(state.position.sum())
            if average and (state.rows_since_average >= config.average_every or done >= n):
                self._average_replicas(final=done >= n)
            self._report(on_chunk, done, [(bounds[w], bounds[w] + int(state.position[w])) for w in range(T)]
                         + ([(0, n)] if done >= n else []))
        return t_epoch + n

    def _epoch_auto(self, order, params, on_chunk, epoch):
        """--mode auto: rounds at a cursor, each run by the candidate the chooser names, as many rows per worker
        as it says, and timed for it (`hogwild.runners._auto`). ``position[0]`` is the cursor."""
        import time

        state, chooser = self.state, self.chooser
        n = order.n_rows
        t_epoch = state.t
        calls = {}  # kernel calls by replica count (1: the shared arrays; T: average x T's), built at first use
        chunk_rows = self.config.chunk_rows_for(self.streaming)
        cursor = int(state.position.sum())
        while cursor < n:
            mode, T = candidate = chooser.next()
            lo, hi = cursor, min(n, cursor + chooser.round_rows(candidate, chunk_rows, n) * T)
            cuts = [lo + ((hi - lo) * w) // T for w in range(T + 1)]
            average = mode == "average"
            if state.replicas is not None and not (average and state.replicas["W"].shape[0] == T):
                self._average_replicas(final=True)  # leaving average mode (or its thread count): merge first
            if average and state.replicas is None:
                state.replicas = self._fresh_replicas(T)

            replicas = T if average else 1
            if replicas not in calls:
                calls[replicas] = self._row_kernel(order, replica_params(params, replicas))
            run = calls[replicas]

            def task(w, cuts=cuts, average=average, run=run):
                arrays = [_replica_views(state, name)[w] for name in _REPLICATED] if average else self._shared_arrays()
                # row p of the epoch stands for global step t_epoch + p, whichever worker takes it
                return run(w, arrays, cuts[w], cuts[w + 1], t_epoch + cuts[w], 1)

            u_before = float(state.u[0, 0])
            state.u[:] = u_before  # a round of serial moved worker 0's copy only
            started = time.perf_counter()
            results = self.pool.run(task, workers=range(T), row_range=lambda w, cuts=cuts: (cuts[w], cuts[w + 1]))
            if average:
                # replicas are merged every --average-every rows (and at the epoch's end), as in mode average
                state.rows_since_average += hi - lo
                if state.rows_since_average >= self.config.average_every or hi >= n:
                    self._average_replicas(final=hi >= n)
            chooser.record(candidate, hi - lo, time.perf_counter() - started, epoch)
            for loss_sum, weight_sum in results:
                state.loss_sum += loss_sum
                state.weight_sum += weight_sum
            _pool_l1_totals(state, u_before, params, replicas, 1)  # rows stride 1 here
            cursor = hi
            state.position[:] = 0
            state.position[0] = cursor
            self._report(on_chunk, cursor)
        return t_epoch + n

    def _fresh_replicas(self, n_workers):
        """Replicas of the shared state for ``n_workers`` workers: the previous epoch's arrays when it had as many,
        each worker copying the state into its own (`hogwild.kernels.linear.copy_into`; fresh arrays every pass
        cost news20 3-5 ms of a 60-ms epoch in page faults, now and then 50), else new ones (`_replicate`)."""
        from hogwild.kernels.linear import copy_into

        spare, self._spare_replicas = self._spare_replicas, None
        state = self.state
        if spare is None or spare["W"].shape[0] != n_workers:
            return {name: _replicate(getattr(state, name), n_workers) for name in _REPLICATED}
        pairs = [(_replica_views(state, name, spare), getattr(state, name).reshape(-1))
                 for name in _REPLICATED if getattr(state, name).size]

        def refresh(w):
            for stacked, shared in pairs:
                copy_into(stacked[w].reshape(-1), shared)

        self._on_workers(refresh, n_workers, sum(stacked.size for stacked, _ in pairs))
        return spare

    def _on_workers(self, task, n_workers, size):
        """``task(w)`` for every worker: on the pool when the arrays are large (``size`` elements), on this thread
        otherwise, where a hand-off (~50-100 us) would cost more than it saves (a9a: 6% of a 1.7-ms epoch)."""
        if size >= _POOL_MIN_ELEMENTS:
            self.pool.run(task, workers=range(n_workers))
        else:
            for w in range(n_workers):
                task(w)

    def _average_replicas(self, final):
        """Merge the replicas into the shared state (which still holds their common start): the mean of the
        weights, and of the per-coordinate sums (`_SUMMED`) the start plus every replica's increments
        (`hogwild.kernels.linear.merge_replicas`), each worker a slice of every array. Mid-epoch the replicas go on
        from the merged state; after the epoch's last merge they are kept as they are for the next pass."""
        from hogwild.kernels.linear import merge_replicas

        state = self.state
        n_workers = state.replicas["W"].shape[0]
        arrays = []
        for name in state.replicas:
            stacked = _replica_views(state, name)
            if stacked.size:
                shared = getattr(state, name).reshape(-1)
                arrays.append((stacked.reshape(n_workers, -1), shared, name in _SUMMED))

        def merge(w):
            for stacked, shared, add_up in arrays:
                size = shared.shape[0]
                merge_replicas(stacked, shared, add_up, size * w // n_workers, size * (w + 1) // n_workers,
                               not final)

        self._on_workers(merge, n_workers, sum(stacked.size for stacked, _, _ in arrays))
        state.rows_since_average = 0
        if final:
            self._spare_replicas, state.replicas = state.replicas, None

    def _sync_buffers(self):
        """The sync kernels' per-worker buffers (see `sync_batches`), allocated once per runner and kept by every
        epoch: the kernels leave ``sums`` zero after each batch (they reset only the coordinates a batch listed),
        so nothing is re-allocated or cleared per epoch, and a page of it is only ever touched by the features
        that occur in it. ``sums[w]`` holds K gradient sums and a row count per feature; the lists have one
        spare entry (see `sync_batches`); ``ends``, ``index``, ``packed`` and ``owned`` (the exchange between
        workers) only hold anything with several."""
        T, K, d = self.n_workers, self.data.n_outputs, self.data.csr.n_features
        if self._sync is None:
            feature_type = np.int32 if d < 2**31 else np.int64
            exchange = T > 1
            capacity = -(-d // T)  # the most features one worker applies (see `_pack_sums`)
            self._sync = {
                # a row writes each worker's sums and touched list: rows apart by a cache line (`worker_rows`)
                "sums": worker_rows(T, d * (K + 1), self.data.dtype),
                "touched": worker_rows(T, d + 1, feature_type, fill=None),
                "ends": np.zeros((T, T), dtype=np.int64),
                "index": np.empty((T, capacity * T if exchange else 0), dtype=feature_type),
                "packed": np.empty((T, capacity * T * (K + 1) if exchange else 0), dtype=self.data.dtype),
                "owned": np.empty((T, d + 1 if exchange else 0), dtype=feature_type),
                "intercept_buffers": np.zeros((T, K), dtype=np.float64),
                "slice_rows": np.zeros(T, dtype=np.int64),
                "barrier": np.zeros(3, dtype=np.int64),  # count, generation, abort (kernels.atomics.barrier_wait)
            }
        return self._sync

    def _epoch_sync(self, order, params, on_chunk):
        """sync: mini-batches; the workers meet at in-kernel barriers (see `sync_batches`)."""
        from hogwild.kernels.linear import AGGREGATE_CODES, kernel_scalars
        from hogwild.kernels.linear_sync import sync_batches, sync_batches_single

        state, config, data = self.state, self.config, self.data
        csr = data.csr
        T, K = self.n_workers, data.n_outputs
        n = order.n_rows
        batch = config.batch_size
        per_call = batch * max(1, config.chunk_rows_for(self.streaming) // batch)
        scalars = kernel_scalars(params)
        buffers = self._sync_buffers()
        buffer_args = [buffers[name] for name in ("sums", "touched", "ends", "index", "packed", "owned",
                                                  "intercept_buffers", "slice_rows", "barrier")]
        barrier = buffers["barrier"]
        reg = data.l2_factors(params["l2"])
        aggregate = AGGREGATE_CODES[config.aggregate]
        t_epoch = state.t
        position = int(state.position[0])
        single_scalars = _single_output_scalars(data, params, scalars)
        if single_scalars is not None:
            def call(w, lo, hi, t_start):
                return sync_batches_single(
                    csr.indptr, csr.indices, csr.data, data.targets, data.sample_weight, *order.kernel_args(), lo,
                    hi, batch, w, T, aggregate, state.W.reshape(-1), state.b, state.acc_W.reshape(-1), state.acc_b,
                    state.z_W.reshape(-1), state.z_b, state.scale, reg, *buffer_args, *single_scalars,
                    float(t_start),
                )
        else:
            scratch = np.zeros((T, 2, K), dtype=np.float64)

            def call(w, lo, hi, t_start):
                return sync_batches(
                    csr.indptr, csr.indices, csr.data, data.targets, data.sample_weight, *order.kernel_args(), lo,
                    hi, batch, w, T, aggregate, *self._shared_arrays(), state.scale, reg, scratch[w],
                    *buffer_args, *scalars, float(t_start), state.u[w],
                )

        try:
            while position < n:
                lo, hi = position, min(n, position + per_call)
                t_start = t_epoch + lo // batch
                results = self.pool.run(lambda w, lo=lo, hi=hi, t_start=t_start: call(w, lo, hi, t_start),
                                        row_range=lambda w, lo=lo, hi=hi: (lo, hi),
                                        on_failure=lambda: barrier.__setitem__(2, 1))
                for loss_sum, weight_sum in results:
                    state.loss_sum += loss_sum
                    state.weight_sum += weight_sum
                position = hi
                state.position[:] = position
                self._report(on_chunk, position)
        except BaseException:
            # A batch abandoned half-way leaves its sums behind (and the barrier maybe aborted): start afresh.
            self._sync = None
            raise
        return t_epoch + -(-n // batch)


__all__ = ["LinearCPURunner"]
