"""The CUDA engine for MLPs: `train_mlp_gpu(X, y, config) -> TrainResult` with the CPU engine's `MLPModel`.

The problem preparation (targets, hold-out split, initial weights, training state, per-epoch learning rate and
row order, records, early stopping) is `hogwild.mlp`'s own code, so a network trained on either device saves,
loads, predicts and continues training alike. On the device (`hogwild.kernels.gpu_mlp`): the inputs (dense
matrix or CSR triple) and targets are uploaded once; the parameters and optimizer state stay resident across
epochs. Per epoch the host uploads the row order (`hogwild.mlp.epoch_order`, 8 bytes a row) and, after the
epoch, reads back the per-row losses and the parameters (for the records, the divergence check and the
metrics, which are computed on the host by the CPU model). No host round trip happens inside an epoch unless a
``callback`` asks for progress, and then only every ``kernels.config.ROWS_PER_LAUNCH`` rows.

Modes (``config.mode``, or ``gpu_mode``):

* ``async``: one block per row, each applying its row's step to the shared weights with plain writes
  (Hogwild! on thousands of threads; lost updates accepted). Not deterministic.
* ``atomic``: the same with ``cuda.atomic.add`` on every weight and optimizer-state element.
* ``sync`` and ``serial``: mini-batches of ``batch_size`` rows in the epoch's order; the rows' gradients are
  summed with atomics and one apply kernel takes the optimizer step. This is the CPU ``serial`` rule (and
  CPU ``sync`` with one thread, or ``aggregate="weighted"``), equal up to the order of float additions.
"""

from __future__ import annotations

import time

import numpy as np

from .config import REGRESSION_LOSSES, TrainConfig
from .errors import ConfigError, DataError, DivergenceError, NoCudaError
from .mlp import (
    MLPTrainingState,
    NoImprovementStop,
    _encode_targets,
    _Input,
    epoch_lr,
    epoch_record,
    epoch_order,
    mlp_config,
    new_state,
)
from .results import TrainResult

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
    from ._inputs import load_xy
    from .device import cuda_usable

    if not cuda_usable():
        raise NoCudaError()
    config = _gpu_config(config, gpu_mode, dict(overrides))
    X, y = load_xy(X, y)
    if X_val is not None:
        X_val, y_val = load_xy(X_val, y_val)
    if X_test is not None:
        X_test, y_test = load_xy(X_test, y_test)
    if y is None:
        raise DataError("y is required for training")
    dtype = np.dtype(config.dtype)
    regression = config.loss in REGRESSION_LOSSES
    if state is None and init_state is not None:
        state = MLPTrainingState.from_dict(
            {k: (np.array(v) if isinstance(v, np.ndarray) else v) for k, v in init_state.items()}
        )
    data = _Input(X, dtype, None if state is None else int(state.dims[0]))
    if data.n_rows == 0:
        raise DataError("X has no rows to train on")
    if state is not None and classes is None:
        classes = state.classes
    y_index, y_value, output, classes = _encode_targets(y, classes, regression, dtype, data.n_rows)

    if X_val is None and config.validation_fraction > 0:
        # the CPU engine's hold-out, drawn from the same stream, so both devices train on the same rows
        n_val = max(1, int(round(config.validation_fraction * data.n_rows)))
        if n_val >= data.n_rows:
            raise DataError(f"--validation-fraction {config.validation_fraction} leaves no rows to train on")
        perm = np.random.default_rng([int(config.seed), 0x56414C]).permutation(data.n_rows)
        held, kept = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        X_val, y_val = data.take(held), np.asarray(y)[held]
        data = data.take(kept)
        y_index = y_index[kept] if y_index.size > 1 else y_index
        y_value = y_value[kept] if regression else y_value

    n_outputs = y_value.shape[1] if regression else (1 if output == "logistic" else classes.size)
    dims = np.array([data.n_features, *config.hidden, n_outputs], dtype=np.int64)
    if state is None:
        state = new_state(dims, config.activation, output, classes, config.seed, dtype, init_model)
    elif list(state.dims) != list(dims) or state.output != output:
        raise ConfigError("hidden", f"the training state has layers {list(state.dims)} but the data and --hidden give {list(dims)}")
    elif state.params.dtype != dtype:
        raise ConfigError("dtype", f"the training state is {state.params.dtype} but --dtype is {config.dtype}")

    engine = GpuMLPEngine(data, y_index, y_value, state, config)
    val = None if X_val is None else (X_val if isinstance(X_val, _Input) else _Input(X_val, dtype, data.n_features, "X_val"), y_val)
    test = None if X_test is None else (_Input(X_test, dtype, data.n_features, "X_test"), y_test)

    history, stopped_early, should_stop = [], False, NoImprovementStop(config)
    live_model = state.model(copy=False)  # shares state.params, which each epoch refreshes from the device
    for _ in range(config.epochs):
        epoch = state.epoch
        lr = epoch_lr(config, epoch)
        started = time.perf_counter()
        loss_sum = engine.run_epoch(epoch, lr, callback)
        seconds = time.perf_counter() - started
        state.epoch = epoch + 1
        record = epoch_record(state.epoch, seconds, loss_sum, lr, data, live_model, val, test)
        history.append(record)
        if callback is not None:
            callback({"kind": "epoch", **record})
        if should_stop(record):
            stopped_early = True
            break
    result = TrainResult(model=state.model(copy=True), history=history, config=config, stopped_early=stopped_early)
    result.training_state = state
    result.state = state.to_dict()
    return result


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

    def _segments(self, n, unit, watched):
        """Row ranges between two host checks: the whole epoch unless someone watches progress."""
        from hogwild.kernels import config as kernel_config

        if not watched:
            return [(0, n)]
        step = max(unit, (max(1, int(kernel_config.ROWS_PER_LAUNCH)) // unit) * unit)
        return [(lo, min(n, lo + step)) for lo in range(0, n, step)]

    def run_epoch(self, epoch, lr, callback):
        """One pass over the epoch's row order on the device; returns the summed row losses."""
        from numba import cuda

        gpu, state, config = self.kernels, self.state, self.config
        n = self.data.n_rows
        batch = int(config.batch_size)
        order = cuda.to_device(epoch_order(config.seed, epoch, n, config.shuffle))
        hyper = self._hyper(lr)
        step_start = int(state.step[0])
        loss_sum = 0.0
        for lo, hi in self._segments(n, batch, callback is not None):
            if self.sync:
                for first in range(lo, hi, batch):
                    last = min(n, first + batch)
                    index = first // batch
                    parity = index % 2
                    gpu.train_rows(self.inputs, self.targets, order, first, last, self.net, hyper, state.output,
                                   state.activation, self.mode, step_start, self.row_loss, 1.0 / (last - first),
                                   parity)
                    gpu.apply_batch(self.net, hyper, step_start + index + 1, parity)
            else:
                gpu.train_rows(self.inputs, self.targets, order, lo, hi, self.net, hyper, state.output,
                               state.activation, self.mode, step_start, self.row_loss, 1.0 / batch)
            loss_sum += float(self.row_loss[lo:hi].copy_to_host().sum())
            if not np.isfinite(loss_sum):
                self._diverged(epoch)
            if callback is not None:
                callback({"kind": "chunk", "epoch": epoch + 1, "rows_done": int(hi), "n_rows": int(n),
                          "train_loss": loss_sum / max(hi, 1)})
        state.step[0] = step_start + -(-n // batch)
        params, state1, state2 = self.net.download()
        state.params[...] = params
        state.state1[...] = state1
        state.state2[...] = state2
        if not np.all(np.isfinite(state.params)):
            self._diverged(epoch)
        return loss_sum

    def _diverged(self, epoch):
        raise DivergenceError(
            f"training diverged in epoch {epoch + 1} (non-finite loss or weights) with --lr {self.config.lr}; "
            "try a smaller --lr or set --clip-norm"
        )


__all__ = ["train_mlp_gpu", "GpuMLPEngine", "GPU_MLP_MODES"]
