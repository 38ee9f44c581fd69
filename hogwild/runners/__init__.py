"""Runners: what trains one model family on one kind of hardware, behind one declared interface.

The front door (`hogwild.engine.train`) looks a runner class up in `RUNNERS` by ``(model, device, backend)``, builds it
from the prepared `hogwild.problem.Problem` and the validated config, and hands it to the one epoch loop
(`hogwild.loop.EpochLoop`). The loop and `hogwild.resilience` use nothing but the `Runner` protocol below.

A new backend or model is one module here (or a package beside this one) and one line in `RUNNERS`; no runner
subclasses another. What two runners of one model family share (the linear model's state and targets, the
MLP's) lives in a plain helper module (`_linear`, `_mlp`) that both import.
"""

from __future__ import annotations

import importlib
from typing import Callable, ClassVar, Protocol, runtime_checkable

from ..errors import ConfigError


@runtime_checkable
class Runner(Protocol):
    """One training run's workers, data in kernel form and shared state.

    Class attributes: ``modes`` (the update modes it implements, `TrainConfig.mode` values),
    ``order_block_shift`` (rows per shuffled block = ``2**shift``: 5 for the row kernels, 0 for a full
    permutation), ``multi_output`` (whether regression targets may have several columns).
    Instance attributes: ``n_rows``, ``nnz`` (training rows and stored non-zeros), ``n_workers``.
    The constructor is ``Runner(problem, config, init_model=None)``; ``check_config(config)`` (a classmethod)
    refuses options this runner cannot honour with a `ConfigError`, before any data is touched.
    """

    modes: ClassVar[tuple]
    order_block_shift: ClassVar[int]
    multi_output: ClassVar[bool]
    n_rows: int
    nnz: int
    n_workers: int

    @classmethod
    def check_config(cls, config) -> None: ...

    def run_epoch(self, order, epoch: int, lr: float, on_chunk: Callable[[int, float], None]):
        """The rest of one pass over ``order`` (a `hogwild.loop.RowOrder`), from where `position` says.

        ``on_chunk(rows_done, loss_so_far)`` is called between chunks, when no worker is writing: progress,
        checkpoints, Ctrl-C and cluster synchronisation happen there, and it may raise to end the run.
        Returns a `hogwild.loop.EpochOutcome`; ``position`` is 0 again afterwards.
        """

    def snapshot(self) -> dict:
        """Copies of everything needed to continue exactly: arrays and JSON-able scalars."""

    def restore(self, state: dict) -> None:
        """Continue from a `snapshot`; a state of another shape raises `hogwild.errors.CheckpointError`."""

    def position(self) -> int:
        """Rows done in the current epoch, over all workers."""

    def parameters(self) -> dict:
        """The live shared arrays by name (weights and optimizer state), writable in place between chunks."""

    def model(self, copy: bool = True):
        """The fitted model (`hogwild.models.LinearModel` or `MLPModel`) as the weights stand now."""

    def close(self) -> None:
        """Release threads and device memory."""


# (model, device, backend) -> "module:Class", imported only when asked for, so that CUDA code loads only for a GPU
# run and Ray only for a cluster run. The backend is "local" (this machine's threads or GPU) or "ray" (--cluster).
RUNNERS = {
    ("linear", "cpu", "local"): "hogwild.runners.linear_cpu:LinearCPURunner",
    ("linear", "cuda", "local"): "hogwild.runners.linear_cuda:LinearCUDARunner",
    ("mlp", "cpu", "local"): "hogwild.runners.mlp_cpu:MLPCPURunner",
    ("mlp", "cuda", "local"): "hogwild.runners.mlp_cuda:MLPCUDARunner",
    ("linear", "cpu", "ray"): "hogwild.cluster.runner:ClusterRunner",
}


def backend_of(config):
    """Where a run's workers live: "ray" for a --cluster run, else "local"."""
    return "ray" if getattr(config, "cluster", None) else "local"


def runner_class(model, device, backend="local"):
    """The runner class registered for ``(model, device, backend)``."""
    where = RUNNERS.get((model, device, backend))
    if where is None:
        cluster = " with --cluster" if backend == "ray" else ""
        raise ConfigError("model", f"no runner trains --model {model} on --device {device}{cluster}")
    module, name = where.split(":")
    return getattr(importlib.import_module(module), name)


def check_mode(runner, config, device):
    """Refuse a mode the runner does not implement, naming the ones it does."""
    if config.mode not in runner.modes:
        raise ConfigError(
            "mode",
            f"--mode {config.mode} is not available for --model {config.model} on --device {device}; "
            f"use one of {', '.join(runner.modes)}",
        )


__all__ = ["Runner", "RUNNERS", "backend_of", "runner_class", "check_mode"]
