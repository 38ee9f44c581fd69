"""The CPU runner for small MLPs (one to three hidden layers): worker threads on one shared parameter vector.

The compiled kernels and their math are in `hogwild.kernels.mlp`; ``tests/naive_mlp.py`` is their NumPy twin.
Dense input runs every layer of a micro-batch as a GEMM on the BLAS (`hogwild.kernels.mlp_dense`), with the
BLAS held to one thread per worker during each epoch (`hogwild._blas`); sparse input, and dense input where
threadpoolctl is missing, runs the loop kernels of `hogwild.kernels.mlp`. Both write the same gradient buffers
and share one update, so every mode below runs either way.

* ``serial``: one worker, micro-batches of ``batch_size`` rows in the epoch's shuffled order. Deterministic and
  bitwise reproducible for a seed.
* ``async`` (Hogwild!): the epoch's shuffled rows are split into one contiguous shard per thread; every thread
  runs micro-batches on its shard and updates the shared weights and optimizer state without locks.
  Not deterministic with more than one thread.
* ``sync``: each mini-batch of ``batch_size`` rows is split over the threads; each computes the mean gradient
  of its slice into its own buffers, the buffers are combined (``aggregate="mean"`` or ``"weighted"`` by rows)
  and one update is applied. Bitwise reproducible for a seed and thread count; with one thread it equals
  ``serial``.

An MLP step writes every weight above the first layer, so per-example locks (``locked``) would serialize the
workers completely; replica averaging of non-convex networks is not implemented: neither mode is offered.
``train_loss`` in the history is the mean loss of each row measured before its own micro-batch's update (like
scikit-learn's ``loss_curve_``, without the L2 term).
"""

from __future__ import annotations

import contextlib

import numpy as np

from .._blas import can_limit_blas, one_blas_thread
from .._inputs import Features
from .._workers import WorkerPool, worker_count
from ..memory import WindowReleaser, window_rows_for
from ..errors import DataError
from ..results import EpochOutcome
from ._auto import AutoChooser, handoff_seconds
from ._mlp import MLPData, MLPState, check_mlp_config, encode_targets


def _kernels():
    from hogwild.kernels import mlp

    return mlp


def _dense_kernels():
    from hogwild.kernels import mlp_dense

    return mlp_dense


def uses_gemm(features):
    """Whether the GEMM kernels train on ``features``: dense input, and a BLAS whose threads can be limited."""
    return features.dense and can_limit_blas()


class _Worker:
    """One worker's private scratch: activations, deltas and gradient buffers (nothing here is shared).

    ``batch_X`` (GEMM kernels only) receives the micro-batch's gathered rows.
    """

    def __init__(self, dims, batch_size, max_touched, n_rest, dtype, gemm=False):
        kernels = _kernels()
        self.act_off, size = kernels.activation_offsets(dims, batch_size)
        width = int(dims[1])
        self.acts = np.zeros(size, dtype=dtype)
        self.deltas = np.zeros(size, dtype=dtype)
        self.grad_rows = np.zeros(max_touched * width, dtype=dtype)
        self.touched = np.arange(max_touched, dtype=np.int64)  # dense input: every feature, in order
        self.slot = np.full(int(dims[0]), -1, dtype=np.int64)
        self.grad_rest = np.zeros(n_rest, dtype=dtype)
        self.batch_X = np.zeros(batch_size * int(dims[0]) if gemm else 0, dtype=dtype)


class MLPCPURunner:
    """An MLP trained by CPU worker threads on one shared `MLPState`."""

    modes = ("auto", "async", "sync", "serial")
    order_block_shift = 0  # a full permutation: see hogwild.loop's note on row order
    multi_output = True

    @classmethod
    def check_config(cls, config):
        check_mlp_config(config)

    def __init__(self, problem, config, init_model=None):
        kernels = _kernels()
        self.kernels, self.config = kernels, config
        self.dense_kernels = None
        self.data = data = MLPData(problem, config)
        features = data.features
        self.n_rows, self.nnz = features.n_rows, features.nnz
        self.n_workers = worker_count(config, self.n_rows)
        self.state = MLPState(data, config, self.n_workers, init_model)
        dims = data.dims
        self.w_off, self.b_off, n_params = kernels.layout(dims)
        self.n_rest = n_params - int(dims[0]) * int(dims[1])
        batch = config.batch_size
        if features.dense:
            max_touched = features.n_features
        else:
            max_touched = min(features.n_features, batch * max(1, features.max_row_nnz()))
        self.gemm = uses_gemm(features)
        if self.gemm:
            self.dense_kernels = _dense_kernels()
        self.workers = [_Worker(dims, batch, max_touched, self.n_rest, data.dtype, self.gemm)
                        for _ in range(self.n_workers)]
        self.sync = config.mode == "sync" and self.n_workers > 1
        if self.sync:
            merged_touched = features.n_features if features.dense else min(features.n_features,
                                                                            self.n_workers * max_touched)
            self.merged = _Worker(dims, 1, merged_touched, self.n_rest, data.dtype)
        self.output = kernels.OUTPUTS[data.output]
        self.activation = kernels.ACTIVATIONS[config.activation]
        self.optimizer = kernels.OPTIMIZERS[config.optimizer]
        # a memory-mapped cache streams: windows of a chunk of rows, their pages dropped once done (hogwild.order)
        self.order_window_rows = (None if features.dense
                                  else window_rows_for(features, config.chunk_rows_for(streaming=True)))
        self.releaser = WindowReleaser(features) if self.order_window_rows else None
        self.pool = WorkerPool(self.n_workers)
        self.chooser = (AutoChooser(self.n_workers, parallel_modes=("async",),
                                    handoff=handoff_seconds(self.pool, self.n_workers))
                        if config.mode == "auto" else None)

    # --- the protocol's state surface -------------------------------------------------------------------
    def snapshot(self):
        state = self.state.export()
        if self.chooser is not None:
            state["auto"] = self.chooser.state()
        return state

    def restore(self, state):
        self.state.restore(state)
        if self.chooser is not None:
            self.chooser.restore(state.get("auto"))

    def position(self):
        return int(self.state.progress.sum())

    def worker_rows(self):
        """Rows each worker has done in the current epoch (monitoring: `hogwild.monitor`); None under --mode auto,
        whose rounds move one cursor. In sync mode every worker takes a slice of every mini-batch."""
        if self.chooser is not None:
            return None
        if self.sync:
            return [int(self.state.progress[0]) / self.n_workers] * self.n_workers
        return [int(p) for p in self.state.progress]

    def parameters(self):
        return self.state.parameters()

    def model(self, copy=True):
        return self.state.model(copy=copy)

    def close(self):
        self.pool.close()

    # --- epochs -------------------------------------------------------------------------------------------
    def _hyper(self, lr):
        """The update's scalars in the weights' dtype (one compiled variant per dtype, float32 loops stay float32)."""
        c, cast = self.config, self.state.params.dtype.type
        clip_norm = float(c.clip_norm) if c.clip_norm else 0.0
        return (cast(lr), cast(c.l2), self.optimizer, cast(c.momentum), cast(c.beta1), cast(c.beta2),
                cast(c.adam_epsilon), cast(clip_norm))

    def run_epoch(self, order, epoch, lr, on_chunk):
        """The rest of one pass over ``order``, from ``state.progress``.

        ``state.progress`` and ``state.loss_sum`` are brought up to date before each ``on_chunk`` call, so a
        checkpoint taken there resumes at exactly that point.
        """
        rows = order.expand()
        if self.releaser is not None:
            self.releaser.start(order)
            on_chunk = self._releasing(on_chunk)
        # GEMMs from every worker at once: one BLAS thread each (hogwild._blas), taken per epoch so that the
        # user's code between epochs (evaluation, callbacks) keeps the BLAS threads it had
        with one_blas_thread() if self.gemm else contextlib.nullcontext():
            if self.chooser is not None:
                loss_sum = self._epoch_auto(rows, lr, on_chunk, epoch)
            elif self.sync:
                loss_sum = self._epoch_sync(rows, lr, on_chunk)
            else:
                bounds = order.shard_bounds(self.n_workers)
                loss_sum = self._epoch_shards(rows, lr, on_chunk, np.asarray(bounds, dtype=np.int64))
        if self.releaser is not None:
            self.releaser.finished(0, self.n_rows)
        state = self.state
        state.progress[:] = 0
        state.loss_sum = 0.0
        loss = loss_sum / self.n_rows
        if not np.all(np.isfinite(state.params)):
            loss = float("nan")
        extras = {"auto": self.chooser.report()} if self.chooser is not None else {}
        return EpochOutcome(loss, lr, extras)

    def _train(self, w, order, start, stop, hyper):
        """Worker ``w`` trains micro-batches of ``order[start:stop]`` on the shared parameters."""
        s, data, scratch = self.state, self.data, self.workers[w]
        if self.gemm:
            return self.dense_kernels.dense_train_chunk(
                data.features.X, data.y_index, data.y_value, data.sample_weight, self.output, self.activation,
                order, start, stop, self.config.batch_size, s.params, s.state1, s.state2, s.step, s.dims,
                self.w_off, self.b_off, scratch.act_off, *hyper, scratch.acts, scratch.deltas, scratch.batch_X,
                scratch.grad_rows, scratch.touched, scratch.grad_rest,
            )
        return self.kernels.train_chunk(
            *data.features.args(), data.y_index, data.y_value, data.sample_weight, self.output, self.activation,
            order, start, stop, self.config.batch_size, s.params, s.state1, s.state2, s.step, s.dims,
            self.w_off, self.b_off, scratch.act_off, *hyper, scratch.acts, scratch.deltas, scratch.grad_rows,
            scratch.touched, scratch.slot, scratch.grad_rest,
        )

    def _epoch_auto(self, order, lr, on_chunk, epoch):
        """--mode auto: timed rounds at a cursor, serial or async at each thread count and as many rows per worker
        as the chooser says (`hogwild.runners._auto`); ``progress[0]`` is the cursor."""
        import time

        s, chooser = self.state, self.chooser
        n = order.shape[0]
        hyper = self._hyper(lr)
        cursor, loss_sum = int(s.progress.sum()), s.loss_sum
        while cursor < n:
            candidate = chooser.next()
            T = candidate[1]
            lo, hi = cursor, min(n, cursor + chooser.round_rows(candidate, self.config.chunk_rows_for(), n) * T)
            cuts = [lo + ((hi - lo) * w) // T for w in range(T + 1)]
            started = time.perf_counter()
            losses = self.pool.run(lambda w, cuts=cuts: self._train(w, order, cuts[w], cuts[w + 1], hyper),
                                   workers=range(T), row_range=lambda w, cuts=cuts: (cuts[w], cuts[w + 1]))
            chooser.record(candidate, hi - lo, time.perf_counter() - started, epoch)
            loss_sum += float(sum(losses))
            cursor = hi
            s.progress[:] = 0
            s.progress[0], s.loss_sum = cursor, loss_sum
            on_chunk(cursor, loss_sum / cursor)
        return loss_sum

    def _releasing(self, on_chunk):
        """``on_chunk`` that first drops the pages of the windows every worker has finished (streaming)."""
        def report(rows_done, loss):
            s = self.state
            if self.sync or self.chooser is not None:
                self.releaser.finished(0, rows_done)
            else:
                for w in range(self.n_workers):
                    self.releaser.finished(self._bounds[w], self._bounds[w] + int(s.progress[w]))
            on_chunk(rows_done, loss)
        return report

    def _epoch_shards(self, order, lr, on_chunk, bounds):
        """serial and async: each worker trains micro-batches of its contiguous shard, chunk by chunk."""
        s = self.state
        chunk = self.config.chunk_rows_for()
        self._bounds = bounds
        position = bounds[:-1] + s.progress
        loss_sum, rows_done = s.loss_sum, int(s.progress.sum())
        hyper = self._hyper(lr)

        def task(w):
            return self._train(w, order, *spans[w], hyper)

        while True:
            active = [w for w in range(self.n_workers) if position[w] < bounds[w + 1]]
            if not active:
                break
            spans = {w: (int(position[w]), int(min(position[w] + chunk, bounds[w + 1]))) for w in active}
            losses = self.pool.run(task, workers=active, row_range=lambda w: spans[w])
            for w in active:
                position[w] = spans[w][1]
                rows_done += spans[w][1] - spans[w][0]
            loss_sum += float(sum(losses))
            s.progress[:] = position - bounds[:-1]
            s.loss_sum = loss_sum
            on_chunk(rows_done, loss_sum / max(rows_done, 1))
        return loss_sum

    def _epoch_sync(self, order, lr, on_chunk):
        """Barrier per mini-batch: per-worker gradients of the slices, combined, applied once."""
        kernels, s, m, data = self.kernels, self.state, self.merged, self.data
        features = data.features
        n, batch, n_workers = order.shape[0], self.config.batch_size, self.n_workers
        width = int(s.dims[1])
        grad_rows_each = np.stack([w.grad_rows for w in self.workers])
        grad_rest_each = np.stack([w.grad_rest for w in self.workers])
        touched_each = np.stack([w.touched for w in self.workers])
        # the kernels write into these stacked rows directly, so nothing is copied per mini-batch
        for index, w in enumerate(self.workers):
            w.grad_rows, w.grad_rest, w.touched = grad_rows_each[index], grad_rest_each[index], touched_each[index]
        n_touched_each = np.zeros(n_workers, dtype=np.int64)
        losses = np.zeros(n_workers)
        weights = np.zeros(n_workers)
        hyper = self._hyper(lr)
        first = int(s.progress[0])  # a multiple of the batch size: checkpoints fall between mini-batches
        loss_sum, rows_done, next_report = s.loss_sum, first, first + self.config.chunk_rows_for()

        for start in range(first, n, batch):
            stop = min(start + batch, n)
            cuts = np.linspace(start, stop, n_workers + 1).astype(np.int64)

            def task(index):
                w = self.workers[index]
                rows = order[cuts[index] : cuts[index + 1]]
                if self.gemm:
                    loss, touched = self.dense_kernels.dense_batch_gradient(
                        features.X, data.y_index, data.y_value, data.sample_weight, self.output, self.activation,
                        rows, s.params, s.dims, self.w_off, self.b_off, w.act_off, w.acts, w.deltas, w.batch_X,
                        w.grad_rows, w.grad_rest,
                    )
                else:
                    loss, touched = kernels.batch_gradient(
                        *features.args(), data.y_index, data.y_value, data.sample_weight, self.output,
                        self.activation, rows, s.params, s.dims, self.w_off, self.b_off, w.act_off, w.acts,
                        w.deltas, w.grad_rows, w.touched, w.slot, w.grad_rest,
                    )
                losses[index], n_touched_each[index] = loss, touched

            active = [w for w in range(n_workers) if cuts[w + 1] > cuts[w]]
            self.pool.run(task, workers=active, row_range=lambda w: (int(cuts[w]), int(cuts[w + 1])))
            sizes = np.diff(cuts).astype(np.float64)
            if self.config.aggregate == "weighted":
                weights[:] = sizes / sizes.sum()
            else:
                weights[:] = np.where(sizes > 0, 1.0 / len(active), 0.0)
            n_touched = kernels.merge_gradients(
                weights, n_touched_each, touched_each, grad_rows_each, grad_rest_each, width,
                m.touched, m.slot, m.grad_rows, m.grad_rest,
            )
            kernels.apply_update(
                s.params, s.state1, s.state2, s.step, m.grad_rows, m.touched, n_touched, m.grad_rest,
                s.dims, self.w_off, self.b_off, *hyper,
            )
            kernels.release_slots(m.touched, n_touched, m.slot)  # the merge uses slots for dense input too
            if not features.dense:
                for index in active:
                    w = self.workers[index]
                    kernels.release_slots(w.touched, n_touched_each[index], w.slot)
            loss_sum += float(losses[active].sum())
            rows_done = stop
            if rows_done >= next_report or stop == n:
                next_report += self.config.chunk_rows_for()
                s.progress[0], s.loss_sum = rows_done, loss_sum
                on_chunk(rows_done, loss_sum / max(rows_done, 1))
        return loss_sum


def gradient(model, X, y, gemm=None):
    """``(mean_loss, grad)``: the loss and the flat gradient of ``model.params`` over all rows of X as one batch.

    The compiled micro-batch kernel the runner trains with (the GEMM kernel for dense input where `uses_gemm`,
    else the loop kernel; ``gemm=False`` forces the loop kernel), without L2 and without an update: the
    building block that tests compare with finite differences and with the NumPy twin (and that GPU kernels
    can be checked against).
    """
    kernels = _kernels()
    features = Features(X, model.dtype, model.n_features)
    y = np.asarray(y)
    if y.shape[0] != features.n_rows:
        raise DataError(f"X has {features.n_rows} rows but y has {y.shape[0]} labels")
    y_index, y_value, output = encode_targets(y, model.classes, model.dtype)
    if output != model.output:
        raise DataError(f"y gives a {output} output but the model has {model.output}")
    w_off, b_off, n_params = kernels.layout(model.dims)
    width = int(model.dims[1])
    n_first = model.n_features * width
    gemm = uses_gemm(features) if gemm is None else bool(gemm) and features.dense
    worker = _Worker(model.dims, features.n_rows, model.n_features, n_params - n_first, model.dtype, gemm)
    rows = np.arange(features.n_rows, dtype=np.int64)
    if gemm:
        loss, n_touched = _dense_kernels().dense_batch_gradient(
            features.X, y_index, y_value, np.ones(1, dtype=model.dtype), kernels.OUTPUTS[output],
            kernels.ACTIVATIONS[model.activation], rows, model.params, model.dims, w_off, b_off, worker.act_off,
            worker.acts, worker.deltas, worker.batch_X, worker.grad_rows, worker.grad_rest,
        )
    else:
        loss, n_touched = kernels.batch_gradient(
            *features.args(), y_index, y_value, np.ones(1, dtype=model.dtype), kernels.OUTPUTS[output],
            kernels.ACTIVATIONS[model.activation], rows, model.params, model.dims, w_off, b_off, worker.act_off,
            worker.acts, worker.deltas, worker.grad_rows, worker.touched, worker.slot, worker.grad_rest,
        )
    grad = np.zeros(n_params, dtype=model.dtype)
    first = grad[:n_first].reshape(model.n_features, width)
    first[worker.touched[:n_touched]] = worker.grad_rows[: n_touched * width].reshape(n_touched, width)
    grad[n_first:] = worker.grad_rest
    return loss / features.n_rows, grad


__all__ = ["MLPCPURunner", "gradient"]
