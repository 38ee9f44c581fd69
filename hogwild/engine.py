"""The front door: `train(X, y, config) -> TrainResult`, for every model and device.

`train` resolves and validates the `TrainConfig` once, resolves the device, looks up the runner for
``(model, device, backend)`` in `hogwild.runners.RUNNERS` (backend "ray" for a ``--cluster`` run), prepares the problem once (`hogwild.problem`), and runs the
one epoch loop (`hogwild.loop.EpochLoop`) through `hogwild.resilience.run_resilient` (checkpoints, resume,
Ctrl-C, worker faults). What the caller passes (``sample_weight``, ``class_weight``, ``hooks``,
``init_model``, ``init_state``) reaches the runner or is refused with one sentence; nothing is dropped.
"""

from __future__ import annotations

import dataclasses

from .config import TrainConfig
from .errors import ConfigError
from .loop import EpochLoop
from .order import SHUFFLE_BLOCK_ROWS, RowOrder, epoch_order
from .results import TrainResult

__all__ = ["train", "prepare", "resolve_config", "TrainResult", "RowOrder", "epoch_order", "SHUFFLE_BLOCK_ROWS"]


def resolve_config(config=None, overrides=None):
    """A validated `TrainConfig` from a config, a dict of its fields or None, with ``overrides`` applied first
    (so that ``train(X, y, {"hidden": (8,)}, model="mlp")`` is validated as the MLP it is)."""
    overrides = dict(overrides or {})
    if isinstance(config, TrainConfig):
        return config.replace(**overrides)
    values = {**(config or {}), **overrides}
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(unknown[0], f"unknown option {unknown[0]!r}")
    return TrainConfig.from_dict(values)


def train(
    X, y=None, config=None, *, X_val=None, y_val=None, X_test=None, y_test=None, callback=None, init_model=None,
    sample_weight=None, classes=None, init_state=None, hooks=(), **overrides,
):
    """Train a model on (X, y) as ``config`` (plus keyword ``overrides`` of its fields) says; returns a `TrainResult`.

    X: any sparse matrix, a dense array, a dataset object or a LIBSVM path. ``X_val``/``y_val`` and
    ``X_test``/``y_test`` are evaluated every epoch (validation also drives early stopping; without it,
    ``validation_fraction`` holds out rows of X). ``callback(event)`` receives ``{"kind": "chunk", ...}``
    (`hogwild.results.CHUNK_KEYS`) between chunks and ``{"kind": "epoch", **record}`` after each epoch.
    ``sample_weight``: one non-negative weight per row (``config.class_weight`` multiplies in).
    ``init_model`` warm-starts the weights; ``init_state`` (a ``TrainResult.state``) continues a run exactly,
    up to ``config.epochs`` epochs in all; ``classes`` fixes the label set (partial fitting); ``hooks`` are
    callables ``hook(loop)`` run at every chunk boundary (`hogwild.loop.EpochLoop`).
    """
    from .resilience import run_resilient

    loop = prepare(X, y, config, X_val=X_val, y_val=y_val, X_test=X_test, y_test=y_test, callback=callback,
                   init_model=init_model, sample_weight=sample_weight, classes=classes, init_state=init_state,
                   hooks=hooks, **overrides)
    try:
        return run_resilient(loop)
    finally:
        loop.runner.close()


def prepare(
    X, y=None, config=None, *, X_val=None, y_val=None, X_test=None, y_test=None, callback=None, init_model=None,
    sample_weight=None, classes=None, init_state=None, hooks=(), **overrides,
):
    """The `hogwild.loop.EpochLoop` that `train` runs, set up but not started (its runner holds the threads:
    call ``loop.runner.close()`` when done). For measuring setup apart from epochs, and for embedding."""
    from .device import resolve_device
    from .problem import prepare_problem
    from .runners import backend_of, check_mode, runner_class

    config = resolve_config(config, overrides)
    device = resolve_device(config.device)
    runner_type = runner_class(config.model, device, backend_of(config))
    check_mode(runner_type, config, device)
    runner_type.check_config(config)
    problem = prepare_problem(
        X, y, config, X_val=X_val, y_val=y_val, X_test=X_test, y_test=y_test, sample_weight=sample_weight,
        classes=classes, multi_output=runner_type.multi_output,
    )
    runner = runner_type(problem, config, init_model=init_model)
    loop = EpochLoop(runner, problem, config, callback=callback, hooks=hooks)
    if init_state is not None:
        try:
            loop.restore_snapshot(init_state)
        except BaseException:
            runner.close()
            raise
    return loop
