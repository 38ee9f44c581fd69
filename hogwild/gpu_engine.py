"""The CUDA engine for sparse linear models: `train_linear_gpu(X, y, config) -> TrainResult`.

It is the CPU `hogwild.engine.Trainer` with the epoch replaced: the problem preparation (labels, class
weights, hold-out, evaluation sets, ``inv_freq``), the records, early stopping, checkpoint hooks and the
returned `LinearModel` are the CPU engine's, so models trained on either device save, load and predict alike.

On the device (`hogwild.kernels.gpu_linear`): the CSR triple, targets and sample weights are uploaded once;
the weights, AdaGrad sums, L1 debts and sync buffers stay resident across epochs. Per epoch the host uploads
the row order (`hogwild.engine.epoch_row_order`, the CPU engine's own function, 8 bytes a row, so GPU sync
visits rows exactly as CPU sync does) and, after the epoch, reads back the weights and the per-row losses
for the records. No host round trip happens inside an epoch unless a ``callback`` or checkpoint ``hooks``
ask for progress, and then only every ``kernels.config.ROWS_PER_LAUNCH`` rows.

Modes on the GPU (``config.mode``, or the ``gpu_mode`` argument, which also accepts ``"atomic"``):

* ``async``: Hogwild! on thousands of threads, plain racy read-modify-writes (lost updates accepted).
* ``atomic``: the same rule with ``cuda.atomic.add`` on every weight: no lost update, rows still read stale
  weights. Not yet in `hogwild.config.MODES`, so select it with ``gpu_mode="atomic"``.
* ``sync``: mini-batches of ``batch_size`` rows: gradients summed with atomics, then one apply kernel. The
  result equals the CPU ``sync`` mode with one thread (or ``aggregate="weighted"`` with any thread count) up to
  the order of float additions: the GPU has no workers to average over.
* ``serial``: the one-row rule, one launch per row: deterministic and equal to the CPU ``serial`` mode up to
  rounding, but slow (a launch per row); for checking, not for speed.
* ``average`` and ``locked`` are CPU-only (per-worker replicas and per-row locks have no sensible GPU
  analogue here) and raise `ConfigError`.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .engine import Trainer, _resolve_config, epoch_row_order
from .errors import ConfigError, NoCudaError, TrainingInterrupted

GPU_MODES = ("async", "atomic", "sync", "serial")


def train_linear_gpu(X, y=None, config=None, *, X_val=None, y_val=None, X_test=None, y_test=None, callback=None,
                     init_model=None, sample_weight=None, classes=None, init_state=None, hooks=(), gpu_mode=None,
                     **overrides):
    """Train a sparse linear model on the CUDA GPU as ``config`` says; returns a `TrainResult` like `hogwild.train`.

    ``gpu_mode`` overrides ``config.mode`` with one of ``GPU_MODES`` (the only way to ask for ``"atomic"``
    while `TrainConfig` does not list it). Raises `NoCudaError` when no GPU (or simulator) is usable.
    """
    config = _resolve_config(config, overrides)
    trainer = GpuTrainer(X, y, config, X_val=X_val, y_val=y_val, X_test=X_test, y_test=y_test,
                         sample_weight=sample_weight, classes=classes, init_model=init_model, init_state=init_state,
                         callback=callback, hooks=hooks, gpu_mode=gpu_mode)
    # Checkpoints, --resume, Ctrl-C and worker faults as on the CPU: the trainer has the same surface.
    from .resilience import run_resilient

    return run_resilient(trainer)


def _gpu_mode(config, gpu_mode):
    mode = gpu_mode if gpu_mode is not None else config.mode
    if mode not in GPU_MODES:
        raise ConfigError("mode", f"--mode {mode} is CPU-only; on --device cuda use one of {', '.join(GPU_MODES)}")
    return mode


class GpuTrainer(Trainer):
    """The CPU `Trainer` whose epochs run on the GPU; ``self.state`` mirrors the device at epoch ends."""

    def __init__(self, X, y, config, *, gpu_mode=None, **kwargs):
        from .device import cuda_usable

        if not cuda_usable():
            raise NoCudaError()
        self.gpu_mode = _gpu_mode(config, gpu_mode)
        # One device, no workers: the state has one worker slot (position, u) whatever config.threads says.
        super().__init__(X, y, config.replace(threads=1, mode="serial"), **kwargs)
        self.config = config
        # The GPU kernels read one weight per row (the CPU ones also take a single weight for all rows).
        self.sample_weight = np.ascontiguousarray(np.broadcast_to(self.sample_weight, (self.csr.n_rows,)))
        self._upload()

    def _upload(self):
        from numba import cuda

        from hogwild.kernels import gpu_linear

        state, csr = self.state, self.csr
        self.kernels = gpu_linear
        self.device_csr = (
            cuda.to_device(csr.indptr),
            cuda.to_device(csr.indices),
            cuda.to_device(csr.data),
        )
        self.device_targets = cuda.to_device(self.targets)
        self.device_weights = cuda.to_device(self.sample_weight)
        self.device = gpu_linear.DeviceState(
            state.W, state.b, self.inv_freq,
            adagrad=self.config.effective_schedule == "adagrad", l1=self.config.l1_strength > 0, sync=self.gpu_mode == "sync",
            acc_W=state.acc_W, acc_b=state.acc_b, q_l1=state.q_l1,
        )
        self.row_loss = cuda.device_array(csr.n_rows, dtype=np.float64)
        self.lanes = gpu_linear.choose_lanes(csr.nnz, csr.n_rows)
        self._order_epoch = None

    # --- host mirror ------------------------------------------------------------------------------------
    def _download(self):
        """Copy the device's weights and optimizer state into ``self.state`` (waits for the queued kernels)."""
        state, device = self.state, self.device
        state.W[...] = device.W.copy_to_host()
        state.b[...] = device.b.copy_to_host()
        for name in ("acc_W", "acc_b", "q_l1"):
            host = getattr(state, name)
            if host.size:
                host[...] = getattr(device, name).copy_to_host()

    def model(self, copy=True):
        self._download()
        return super().model(copy=True)

    def snapshot(self):
        self._download()  # the host mirror is refreshed only when someone asks for it
        return super().snapshot()

    def restore_snapshot(self, snapshot):
        super().restore_snapshot(snapshot)
        self._upload()  # the device copies now describe the restored state

    def _eta_at(self, params, t):
        return self.kernels.KernelParams(params).eta(max(t, 0.0))

    # --- epochs ------------------------------------------------------------------------------------------
    def _run_epoch(self):
        from numba import cuda

        state, config = self.state, self.config
        params = self.params(state.epoch)
        if self._order_epoch != state.epoch:
            order = epoch_row_order(self.csr.n_rows, config.seed, state.epoch, config.shuffle)
            self.device_order = cuda.to_device(order)
            self.order = order
            self._order_epoch = state.epoch
        if self.gpu_mode == "sync":
            t_end = self._epoch_sync(params)
        else:
            t_end = self._epoch_rows(params)
        self._download()
        if not (np.all(np.isfinite(state.W)) and np.all(np.isfinite(state.b))):
            self._diverged()
        self.last_eta = self._eta_at(params, t_end - 1)
        self.epoch_loss = state.loss_sum / self.csr.n_rows + self._penalty()
        state.t = t_end
        state.epoch += 1
        state.position[:] = 0
        state.loss_sum = state.weight_sum = 0.0

    def _segments(self, position, n, unit):
        """Row ranges between two host checks: the whole rest of the epoch unless someone watches progress."""
        if self.callback is None and not self.hooks:
            return [(position, n)]
        step = max(unit, (max(1, int(self._launch_rows())) // unit) * unit)
        return [(lo, min(n, lo + step)) for lo in range(position, n, step)]

    def _launch_rows(self):
        from hogwild.kernels import config as kernel_config

        return kernel_config.ROWS_PER_LAUNCH

    def _finish_segment(self, lo, hi, n):
        """Account the losses of rows [lo, hi) and run the chunk boundary (progress, hooks, Ctrl-C)."""
        state = self.state
        state.loss_sum += float(self.row_loss[lo:hi].copy_to_host().sum())
        state.weight_sum += float(self.sample_weight[self.order[lo:hi]].sum())
        state.position[:] = hi
        if not math.isfinite(state.loss_sum):
            self._diverged()
        self._chunk_boundary(hi, n)

    def _epoch_rows(self, params):
        """async, atomic, serial: one update per row; serial launches one row at a time (exact serial rule)."""
        gpu, state = self.kernels, self.state
        n = self.csr.n_rows
        p = gpu.KernelParams(params)
        mode = gpu.ATOMIC if self.gpu_mode == "atomic" else gpu.ASYNC
        t_epoch = state.t
        position = int(state.position[0])
        u = float(state.u[0, 0])
        for lo, hi in self._segments(position, n, 1):
            if self.gpu_mode == "serial":
                t = t_epoch + lo
                for row in range(lo, hi):
                    t, u = self._launch_one(p, mode, row, t, u)
            else:
                _, u = gpu.sgd_rows(self.device_csr, self.device_targets, self.device_weights, self.device_order,
                                    lo, hi, self.device, p, mode, self.lanes, t_epoch + lo, u, self.row_loss)
            state.u[:] = u
            self._finish_segment(lo, hi, n)
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

    def _epoch_sync(self, params):
        """sync: per mini-batch, gradients accumulated on the device, then one apply kernel; t counts batches."""
        gpu, state, config = self.kernels, self.state, self.config
        n = self.csr.n_rows
        batch = config.batch_size
        p = gpu.KernelParams(params)
        t_epoch = state.t
        position = int(state.position[0])
        u = float(state.u[0, 0])
        for lo, hi in self._segments(position, n, batch):
            for first in range(lo, hi, batch):
                last = min(n, first + batch)
                t = t_epoch + first // batch
                gpu.sgd_rows(self.device_csr, self.device_targets, self.device_weights, self.device_order,
                             first, last, self.device, p, gpu.ACCUMULATE, self.lanes, t, u, self.row_loss)
                u = gpu.apply_batch(self.device, p, last - first, t, u)
            state.u[:] = u
            self._finish_segment(lo, hi, n)
        return t_epoch + -(-n // batch)

    def run(self):
        try:
            return super().run()
        except TrainingInterrupted as exc:
            exc.model = self.model()
            raise


__all__ = ["train_linear_gpu", "GpuTrainer", "GPU_MODES"]
