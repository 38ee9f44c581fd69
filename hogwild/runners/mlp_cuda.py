"""The CUDA runner for MLPs: the CPU runner's data, state and `MLPModel`, epochs on a GPU.

On the device (`hogwild.kernels.gpu_mlp`): the inputs (dense matrix or CSR triple) and targets are uploaded
once; the parameters and optimizer state stay resident across epochs. Per epoch the host uploads the row order
(8 bytes a row) and reads back the per-row losses and the parameters (for the records, the divergence check
and the metrics, computed on the host by the CPU model). Inside an epoch the host checks in every
``kernels.config.ROWS_PER_LAUNCH`` rows (progress, checkpoints, Ctrl-C), reading back only that segment's losses.

Modes:

* ``async``: one block per row, each applying its row's step to the shared weights with plain writes
  (Hogwild! on thousands of threads; lost updates accepted). Not deterministic.
* ``atomic``: the same with ``cuda.atomic.add`` on every weight and optimizer-state element.
* ``sync`` and ``serial``: mini-batches of ``batch_size`` rows in the epoch's order; the rows' gradients are
  summed with atomics and one apply kernel takes the optimizer step. This is the CPU ``serial`` rule (and
  CPU ``sync`` with one thread, or ``aggregate="weighted"``), equal up to the order of float additions.

The device kernels have no per-row weights: ``sample_weight`` and ``class_weight`` are refused here.
"""

from __future__ import annotations

import dataclasses
import numpy as np

from ..errors import ConfigError, NoCudaError
from ..results import EpochOutcome
from ._mlp import MLPData, MLPState, check_mlp_config, refuse_weights


class MLPCUDARunner:
    """An MLP trained on one CUDA device; the host `MLPState` mirrors the device when read."""

    modes = ("auto", "async", "atomic", "sync", "serial")  # auto: async, a GPU's fastest
    order_block_shift = 0
    multi_output = True

    @classmethod
    def check_config(cls, config):
        check_mlp_config(config)

    def __init__(self, problem, config, init_model=None):
        from numba import cuda

        from hogwild.kernels import gpu_mlp

        from ..device import cuda_usable

        if not cuda_usable():
            raise NoCudaError()
        refuse_weights(problem, "cuda")
        if config.mode == "auto":  # on a GPU, lock-free rows are the fastest mode: nothing to measure
            config = dataclasses.replace(config, mode="async")
        self.kernels, self.config = gpu_mlp, config
        self.data = data = MLPData(problem, config)
        features = data.features
        self.n_rows, self.nnz = features.n_rows, features.nnz
        self.n_workers = 1  # one device; the row-level parallelism is inside the kernels
        self.state = state = MLPState(data, config, 1, init_model)
        self.batched = config.mode in ("sync", "serial")
        self.mode = gpu_mlp.ACCUMULATE if self.batched else gpu_mlp.MODES[config.mode]
        self.inputs = (
            bool(features.dense),
            cuda.to_device(features.X),
            cuda.to_device(features.indptr),
            cuda.to_device(features.indices),
            cuda.to_device(features.data),
        )
        self.targets = (cuda.to_device(data.y_index), cuda.to_device(data.y_value))
        batch = int(config.batch_size)
        max_touched = (features.n_features if features.dense
                       else min(features.n_features, batch * max(1, features.max_row_nnz())))
        self.net = gpu_mlp.DeviceNetwork(state.params, state.state1, state.state2, state.dims,
                                         dense=features.dense, max_touched=max_touched, sync=self.batched)
        try:  # one row's activations and deltas must fit in a block's shared memory
            gpu_mlp._shared_bytes(self.net.n_act, gpu_mlp._threads_per_block())
        except ValueError:
            raise ConfigError(
                "hidden", f"--hidden {list(config.hidden)} is too wide for the CUDA MLP kernels (one row's "
                "activations must fit in 48 KiB of shared memory); use smaller layers or --device cpu"
            ) from None
        self.row_loss = cuda.device_array(self.n_rows, dtype=np.float64)

    def _upload(self):
        state = self.state
        self.net.params.copy_to_device(state.params)
        self.net.state1.copy_to_device(state.state1)
        self.net.state2.copy_to_device(state.state2)

    def _download(self):
        """Copy the device's parameters and optimizer state into the host state (waits for queued kernels)."""
        params, state1, state2 = self.net.download()
        self.state.params[...] = params
        self.state.state1[...] = state1
        self.state.state2[...] = state2

    # --- the protocol's state surface -------------------------------------------------------------------
    def snapshot(self):
        self._download()
        return self.state.export()

    def restore(self, state):
        self.state.restore(state)
        self._upload()

    def position(self):
        return int(self.state.progress.sum())

    def parameters(self):
        """The host mirror of the parameters (a copy of the device's: writing it does not reach the GPU)."""
        self._download()
        return self.state.parameters()

    def model(self, copy=True):
        self._download()
        return self.state.model(copy=copy)

    def close(self):
        pass

    # --- epochs -------------------------------------------------------------------------------------------
    def _hyper(self, lr):
        c = self.config
        return self.kernels.Hyper(lr, c.l2, c.optimizer, c.momentum, c.beta1, c.beta2, c.adam_epsilon, c.clip_norm,
                                  c.batch_size)

    def _segments(self, start, n, unit):
        """Row ranges between two host checks (progress, checkpoints, Ctrl-C): ``ROWS_PER_LAUNCH`` rows each."""
        from hogwild.kernels import config as kernel_config

        step = max(unit, (max(1, int(kernel_config.ROWS_PER_LAUNCH)) // unit) * unit)
        return [(lo, min(n, lo + step)) for lo in range(start, n, step)]

    def run_epoch(self, order, epoch, lr, on_chunk):
        """The rest of one pass over ``order`` on the device, from ``state.progress``.

        ``state.step`` holds the step count at the start of the epoch until it ends (the kernels derive each
        row's step from it), so a mid-epoch checkpoint resumes with the same steps.
        """
        from numba import cuda

        gpu, state, data = self.kernels, self.state, self.data
        n = self.n_rows
        batch = int(self.config.batch_size)
        device_order = cuda.to_device(order.expand())
        hyper = self._hyper(lr)
        step_start = int(state.step[0])
        loss_sum = state.loss_sum
        for lo, hi in self._segments(int(state.progress[0]), n, batch):
            if self.batched:
                for first in range(lo, hi, batch):
                    last = min(n, first + batch)
                    index = first // batch
                    parity = index % 2
                    gpu.train_rows(self.inputs, self.targets, device_order, first, last, self.net, hyper,
                                   data.output, self.config.activation, self.mode, step_start, self.row_loss,
                                   1.0 / (last - first), parity)
                    gpu.apply_batch(self.net, hyper, step_start + index + 1, parity)
            else:
                gpu.train_rows(self.inputs, self.targets, device_order, lo, hi, self.net, hyper, data.output,
                               self.config.activation, self.mode, step_start, self.row_loss, 1.0 / batch)
            loss_sum += float(self.row_loss[lo:hi].copy_to_host().sum())
            state.progress[0], state.loss_sum = hi, loss_sum
            on_chunk(hi, loss_sum / hi)
        state.step[0] = step_start + -(-n // batch)
        self._download()
        state.progress[:] = 0
        state.loss_sum = 0.0
        loss = loss_sum / n if np.all(np.isfinite(state.params)) else float("nan")
        return EpochOutcome(loss, lr)


__all__ = ["MLPCUDARunner"]
