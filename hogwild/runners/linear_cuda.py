"""The CUDA runner for sparse linear models: the same data, state and model as the CPU runner, epochs on a GPU.

On the device (`hogwild.kernels.gpu_linear`): the CSR triple, targets and row weights are uploaded once; the
weights, AdaGrad sums, L1 debts and sync buffers stay resident across epochs. Per epoch the host uploads the
row order (8 bytes a row, the loop's own order, so GPU sync visits rows exactly as CPU sync does) and reads
back the weights and the per-row losses for the records. Inside an epoch the host checks in every
``kernels.config.ROWS_PER_LAUNCH`` rows (progress, checkpoints, Ctrl-C), reading back only that segment's losses.

Modes on the GPU:

* ``async``: Hogwild! on thousands of threads, plain racy read-modify-writes (lost updates accepted).
* ``atomic``: the same rule with ``cuda.atomic.add`` on every weight: no lost update, rows still read stale
  weights.
* ``sync``: mini-batches of ``batch_size`` rows: gradients summed with atomics, then one apply kernel. The
  result equals the CPU ``sync`` mode with one thread (or ``aggregate="weighted"`` with any thread count) up to
  the order of float additions: the GPU has no workers to average over.
* ``serial``: the one-row rule, one launch per row: deterministic and equal to the CPU ``serial`` mode up to
  rounding, but slow (a launch per row); for checking, not for speed.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..errors import NoCudaError
from ..order import SHUFFLE_BLOCK_SHIFT
from ..results import EpochOutcome
from ._linear import LinearData, LinearState, check_linear_config, linear_model, penalty


class LinearCUDARunner:
    """A linear model trained on one CUDA device; the host `LinearState` mirrors the device when read."""

    modes = ("auto", "async", "atomic", "sync", "serial")  # auto: async, a GPU's fastest
    order_block_shift = SHUFFLE_BLOCK_SHIFT
    multi_output = False

    @classmethod
    def check_config(cls, config):
        check_linear_config(config)

    def __init__(self, problem, config, init_model=None):
        from ..device import cuda_usable

        if not cuda_usable():
            raise NoCudaError()
        if config.mode == "auto":  # on a GPU, lock-free rows are the fastest mode: nothing to measure
            config = dataclasses.replace(config, mode="async")
        self.config = config
        self.data = LinearData(problem, config)
        self.n_rows, self.nnz = self.data.csr.n_rows, self.data.csr.nnz
        self.n_workers = 1  # one device; the row-level parallelism is inside the kernels
        self.state = LinearState.fresh(self.data, config, 1, init_model)
        # The GPU kernels read one weight per row (the CPU ones also take a single weight for all rows).
        self.row_weights = np.ascontiguousarray(np.broadcast_to(self.data.sample_weight, (self.n_rows,)))
        self._upload()

    def _upload(self):
        from numba import cuda

        from hogwild.kernels import gpu_linear

        state, data = self.state, self.data
        csr = data.csr
        self.kernels = gpu_linear
        self.device_csr = (cuda.to_device(csr.indptr), cuda.to_device(csr.indices), cuda.to_device(csr.data))
        self.device_targets = cuda.to_device(data.targets)
        self.device_weights = cuda.to_device(self.row_weights)
        self.device = gpu_linear.DeviceState(
            state.W, state.b, data.inv_freq,
            adagrad=state.acc_W.size > 0, l1=state.q_l1.size > 0, sync=self.config.mode == "sync",
            acc_W=state.acc_W, acc_b=state.acc_b, q_l1=state.q_l1, ftrl=state.z_W.size > 0, z_W=state.z_W,
            z_b=state.z_b, average=state.avg_W.size > 0, avg_W=state.avg_W, avg_b=state.avg_b,
            scale=state.scale if state.scale.size else None,
        )
        self.row_loss = cuda.device_array(csr.n_rows, dtype=np.float64)
        self.lanes = gpu_linear.choose_lanes(csr.nnz, csr.n_rows)
        self._order_epoch = None

    def _download(self):
        """Copy the device's weights and optimizer state into the host state (waits for the queued kernels)."""
        state, device = self.state, self.device
        state.W[...] = device.W.copy_to_host()
        state.b[...] = device.b.copy_to_host()
        for name in ("acc_W", "acc_b", "q_l1", "z_W", "z_b", "avg_W", "avg_b"):
            host = getattr(state, name)
            if host.size:
                host[...] = getattr(device, name).copy_to_host()

    # --- the protocol's state surface ------------------------------------------------------------------
    def snapshot(self):
        self._download()  # the host mirror is refreshed only when someone asks for it
        return self.state.export()

    def restore(self, state):
        self.state.restore(state)
        self.state.merge_scale(self.data)
        self._upload()  # the device copies now describe the restored state

    def position(self):
        return int(self.state.position.sum())

    def parameters(self):
        """The host mirror of the weights (a copy of the device's: writing it does not reach the GPU)."""
        self._download()
        return self.state.parameters()

    def model(self, copy=True):
        self._download()
        return linear_model(self.state, self.data, self.config, copy=True)

    def close(self):
        pass

    # --- epochs ------------------------------------------------------------------------------------------
    def run_epoch(self, order, epoch, lr, on_chunk):
        from numba import cuda

        state = self.state
        params = self.data.params(self.config, epoch, lr)
        if self._order_epoch != epoch:
            self.order = order.expand()
            self.device_order = cuda.to_device(self.order)
            self._order_epoch = epoch
        p = self.kernels.KernelParams(params)
        if self.config.mode == "sync":
            t_end = self._epoch_sync(p, on_chunk)
        else:
            t_end = self._epoch_rows(p, on_chunk)
        self._download()
        loss = state.loss_sum / self.n_rows + penalty(state.W, self.config)
        if not np.all(np.isfinite(state.b)):
            loss = float("nan")
        last_step = p.eta(max(t_end - 1, 0.0))
        state.end_epoch(t_end)
        return EpochOutcome(loss, last_step)

    def _segments(self, position, n, unit):
        """Row ranges between two host checks (progress, checkpoints, Ctrl-C)."""
        from hogwild.kernels import config as kernel_config

        step = max(unit, (max(1, int(kernel_config.ROWS_PER_LAUNCH)) // unit) * unit)
        return [(lo, min(n, lo + step)) for lo in range(position, n, step)]

    def _finish_segment(self, lo, hi, on_chunk):
        """Account the losses of rows [lo, hi) and hand control to the loop."""
        state = self.state
        state.loss_sum += float(self.row_loss[lo:hi].copy_to_host().sum())
        state.weight_sum += float(self.row_weights[self.order[lo:hi]].sum())
        state.position[:] = hi
        loss = state.loss_sum / max(state.weight_sum, 1e-300)
        on_chunk(hi, loss if math.isfinite(state.loss_sum) else float("nan"))

    def _epoch_rows(self, p, on_chunk):
        """async, atomic, serial: one update per row; serial launches one row at a time (exact serial rule)."""
        gpu, state = self.kernels, self.state
        n = self.n_rows
        mode = gpu.ATOMIC if self.config.mode == "atomic" else gpu.ASYNC
        t_epoch = state.t
        u = float(state.u[0, 0])
        for lo, hi in self._segments(int(state.position[0]), n, 1):
            if self.config.mode == "serial":
                t = t_epoch + lo
                for row in range(lo, hi):
                    t, u = self._launch_one(p, mode, row, t, u)
            else:
                _, u = gpu.sgd_rows(self.device_csr, self.device_targets, self.device_weights, self.device_order,
                                    lo, hi, self.device, p, mode, self.lanes, t_epoch + lo, u, self.row_loss)
            state.u[:] = u
            self._finish_segment(lo, hi, on_chunk)
        return t_epoch + n

    def _launch_one(self, p, mode, row, t, u):
        from hogwild.kernels import config as kernel_config

        saved = kernel_config.ROWS_PER_LAUNCH
        try:
            kernel_config.ROWS_PER_LAUNCH = 1
            return self.kernels.sgd_rows(self.device_csr, self.device_targets, self.device_weights,
                                         self.device_order, row, row + 1, self.device, p, mode, self.lanes, t, u,
                                         self.row_loss)
        finally:
            kernel_config.ROWS_PER_LAUNCH = saved

    def _epoch_sync(self, p, on_chunk):
        """sync: per mini-batch, gradients accumulated on the device, then one apply kernel; t counts batches."""
        gpu, state = self.kernels, self.state
        n = self.n_rows
        batch = self.config.batch_size
        t_epoch = state.t
        u = float(state.u[0, 0])
        for lo, hi in self._segments(int(state.position[0]), n, batch):
            for first in range(lo, hi, batch):
                last = min(n, first + batch)
                t = t_epoch + first // batch
                gpu.sgd_rows(self.device_csr, self.device_targets, self.device_weights, self.device_order,
                             first, last, self.device, p, gpu.ACCUMULATE, self.lanes, t, u, self.row_loss)
                u = gpu.apply_batch(self.device, p, last - first, t, u)
            state.u[:] = u
            self._finish_segment(lo, hi, on_chunk)
        return t_epoch + -(-n // batch)


__all__ = ["LinearCUDARunner"]
