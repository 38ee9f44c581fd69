"""The CUDA engine for MLPs: `train_mlp_gpu(X, y, config) -> TrainResult` with the CPU engine's `MLPModel`.

The problem preparation (targets, hold-out split, initial weights, training state, per-epoch learning rate and
row order, records, early stopping) is `hogwild.mlp`'s own code, so a network trained on either device saves,
loads, predicts and continues training alike. On the device (`hogwild.kernels.gpu_mlp`): the inputs (dense
matrix or CSR triple) and targets are uploaded once; the parameters and optimizer state stay resident across
epochs. Per epoch the host uploads the row order (`hogwild.mlp.epoch_order`, 8 bytes a row) and, after the
epoch, reads back the per-row losses and the parameters (for the records, the divergence check and the
metrics, which are computed on the host by the CPU model). Inside an epoch the host checks in every
``kernels.config.ROWS_PER_LAUNCH`` rows (progress, checkpoints, Ctrl-C), reading back only that segment's losses.

Modes (``config.mode``, or ``gpu_mode``):

* ``async``: one block per row, each applying its row's step to the shared weights with plain writes
  (Hogwild! on thousands of threads; lost updates accepted). Not deterministic.
* ``atomic``: the same with ``cuda.atomic.add`` on every weight and optimizer-state element.
* ``sync`` and ``serial``: mini-batches of ``batch_size`` rows in the epoch's order; the rows' gradients are
  summed with atomics and one apply kernel takes the optimizer step. This is the CPU ``serial`` rule (and
  CPU ``sync`` with one thread, or ``aggregate="weighted"``), equal up to the order of float additions.
"""

from __future__ import annotations

import numpy as np

from .config import TrainConfig
from .errors import ConfigError, DivergenceError, NoCudaError
from .mlp import MLPTrainer, mlp_config

GPU_MLP_MODES = ("async", "atomic", "sync", "serial")


def _gpu_config(config, gpu_mode, overrides):
    """The validated MLP config of a GPU run: `hogwild.mlp.mlp_config`'s checks, with device "cuda"."""
    if config is None:
        config = TrainConfig(model="mlp")
    elif isinstance(config, dict):
        config = TrainConfig.from_dict({"model": "mlp", **config})
    mode = gpu_mode if gpu_mode is not None else overrides.pop("mode", config.mode)
    if mode not in GPU_MLP_MODES:
        raise ConfigError("mode", f"--mode {mode} is CPU-only; with --device cuda use one of {', '.join(GPU_MLP_MODES)}")
    # mlp_config holds every MLP rule; run it as for the CPU (its checks of mode/device are the CPU's), then
    # record what actually runs
    cpu_like = config.replace(device="cpu", mode="async" if mode == "atomic" else mode)
    return mlp_config(cpu_like, **overrides).replace(device="cuda", mode=mode)


def train_mlp_gpu(
    X, y, config=None, *, X_val=None, y_val=None, X_test=None, y_test=None, callback=None, init_model=None,
    state=None, init_state=None, classes=None, gpu_mode=None, **overrides,
):
    """Train an MLP on the CUDA GPU as ``config`` says; returns a `TrainResult` like `hogwild.mlp.train_mlp`.

    The arguments are `train_mlp`'s (``state``/``init_state`` continue a run, ``classes`` fixes the labels);
    ``gpu_mode`` overrides ``config.mode`` with one of ``GPU_MLP_MODES``; other keywords override fields of
    ``config``. Raises `NoCudaError` when no GPU (or simulator) is usable, `DivergenceError` when the loss or
    weights become non-finite.
    """
    from .device import cuda_usable

    if not cuda_usable():
        raise NoCudaError()
    config = _gpu_config(config, gpu_mode, dict(overrides))
    trainer = GpuMLPTrainer(X, y, config, X_val=X_val, y_val=y_val, X_test=X_test, y_test=y_test,
                            callback=callback, init_model=init_model, state=state, init_state=init_state,
                            classes=classes)
    # Checkpoints, --resume, Ctrl-C and divergence as on the CPU: the trainer has the same surface.
    from .resilience import run_resilient

    return run_resilient(trainer)


class GpuMLPTrainer(MLPTrainer):
    """The CPU `MLPTrainer` whose epochs run on the GPU; ``state`` mirrors the device when read through
    `snapshot` or `model`, and at every epoch end."""

    def _config(self, config):
        return config  # validated by _gpu_config: mode may be a GPU-only one

    def _workers(self, config, n_rows):
        return 1  # one device; the row-level parallelism is inside the kernels

    def _make_engine(self):
        return GpuMLPEngine(self.data, self.y_index, self.y_value, self.state, self.config)

    def snapshot(self):
        self.engine.download()
        return super().snapshot()

    def model(self, copy=True):
        self.engine.download()
        return super().model(copy=copy)

    def restore_snapshot(self, snapshot):
        super().restore_snapshot(snapshot)
        self.engine.upload()


class GpuMLPEngine:
    """Runs epochs of one GPU mode over device-resident data, mirroring the parameters into ``state`` after each."""

    def __init__(self, data, y_index, y_value, state, config):
        from numba import cuda

        from hogwild.kernels import gpu_mlp

        self.kernels = gpu_mlp
        self.data, self.state, self.config = data, state, config
        self.sync = config.mode in ("sync", "serial")
        self.mode = gpu_mlp.ACCUMULATE if self.sync else gpu_mlp.MODES[config.mode]
        self.inputs = (
            bool(data.dense),
            cuda.to_device(data.X),
            cuda.to_device(data.indptr),
            cuda.to_device(data.indices),
            cuda.to_device(data.data),
        )
        self.targets = (cuda.to_device(y_index), cuda.to_device(y_value))
        batch = int(config.batch_size)
        max_touched = data.n_features if data.dense else min(data.n_features, batch * max(1, data.max_row_nnz()))
        self.net = gpu_mlp.DeviceNetwork(state.params, state.state1, state.state2, state.dims, dense=data.dense,
                                         max_touched=max_touched, sync=self.sync)
        try:  # one row's activations and deltas must fit in a block's shared memory
            gpu_mlp._shared_bytes(self.net.n_act, gpu_mlp._threads_per_block())
        except ValueError:
            raise ConfigError(
                "hidden", f"--hidden {list(config.hidden)} is too wide for the CUDA MLP kernels (one row's activations "
                "must fit in 48 KiB of shared memory); use smaller layers or --device cpu"
            ) from None
        self.row_loss = cuda.device_array(data.n_rows, dtype=np.float64)
        self.epsilon = float(getattr(config, "adam_epsilon", 1e-8))

    def _hyper(self, lr):
        c = self.config
        return self.kernels.Hyper(lr, c.l2, c.optimizer, c.momentum, c.beta1, c.beta2, self.epsilon, c.clip_norm,
                                  c.batch_size)

    def upload(self):
        """Copy the host state's parameters and optimizer state to the device (after a restore)."""
        state = self.state
        self.net.params.copy_to_device(state.params)
        self.net.state1.copy_to_device(state.state1)
        self.net.state2.copy_to_device(state.state2)

    def download(self):
        """Copy the device's parameters and optimizer state into the host state (waits for queued kernels)."""
        params, state1, state2 = self.net.download()
        self.state.params[...] = params
        self.state.state1[...] = state1
        self.state.state2[...] = state2

    def _segments(self, start, n, unit):
        """Row ranges between two host checks (progress, checkpoints, Ctrl-C): ``ROWS_PER_LAUNCH`` rows each."""
        from hogwild.kernels import config as kernel_config

        step = max(unit, (max(1, int(kernel_config.ROWS_PER_LAUNCH)) // unit) * unit)
        return [(lo, min(n, lo + step)) for lo in range(start, n, step)]

    def run_epoch(self, pool, order, lr, on_chunk):
        """The rest of one pass over ``order`` on the device, from ``state.progress``; returns the summed loss.

        ``pool`` is unused (the CPU engine's signature). ``state.step`` holds the step count at the start
        of the epoch until it ends (the kernels derive each row's step from it), so a mid-epoch checkpoint
        resumes with the same steps.
        """
        from numba import cuda

        gpu, state, config = self.kernels, self.state, self.config
        n = self.data.n_rows
        batch = int(config.batch_size)
        if state.progress is None or state.progress.shape != (1,):
            state.progress = np.zeros(1, dtype=np.int64)
        device_order = cuda.to_device(order)
        hyper = self._hyper(lr)
        step_start = int(state.step[0])
        loss_sum = state.loss_sum
        for lo, hi in self._segments(int(state.progress[0]), n, batch):
            if self.sync:
                for first in range(lo, hi, batch):
                    last = min(n, first + batch)
                    index = first // batch
                    parity = index % 2
                    gpu.train_rows(self.inputs, self.targets, device_order, first, last, self.net, hyper,
                                   state.output, state.activation, self.mode, step_start, self.row_loss,
                                   1.0 / (last - first), parity)
                    gpu.apply_batch(self.net, hyper, step_start + index + 1, parity)
            else:
                gpu.train_rows(self.inputs, self.targets, device_order, lo, hi, self.net, hyper, state.output,
                               state.activation, self.mode, step_start, self.row_loss, 1.0 / batch)
            loss_sum += float(self.row_loss[lo:hi].copy_to_host().sum())
            state.progress[0], state.loss_sum = hi, loss_sum
            if not np.isfinite(loss_sum):
                self._diverged(state.epoch)
            on_chunk(hi, loss_sum)
        state.step[0] = step_start + -(-n // batch)
        self.download()
        if not np.all(np.isfinite(state.params)):
            self._diverged(state.epoch)
        return loss_sum

    def _diverged(self, epoch):
        raise DivergenceError(
            f"training diverged in epoch {epoch + 1} (non-finite loss or weights) with --lr {self.config.lr}; "
            "try a smaller --lr or set --clip-norm"
        )


__all__ = ["train_mlp_gpu", "GpuMLPEngine", "GPU_MLP_MODES"]
