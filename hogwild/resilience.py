"""Run the epoch loop with checkpoints, ``resume``, graceful Ctrl-C/SIGTERM and worker-fault handling.

`run_resilient(loop)` wraps ``loop.run()`` using only what `hogwild.loop.EpochLoop` offers every runner: chunk
``hooks``, the ``callback``, ``snapshot()``/``restore_snapshot()`` (the resumable state plus history, as a dict
of arrays and JSON-able values), ``fingerprint()`` (the training data's `data_fingerprint`), ``epoch`` (epochs
finished), ``position()`` (rows done in the current epoch) and ``model()``. Any object with that surface can be
driven (the reinforcement-learning trainer is one).

- Checkpoints (``config.checkpoint_dir``): written at the end of every ``checkpoint_every``-th epoch (a clean
  boundary: position 0, the epoch's history record included) and, with ``checkpoint_seconds``, at the first
  chunk boundary after that many seconds. A state with non-finite numbers is never written, so a diverged run
  keeps its last good checkpoint.
- Resume (``config.resume``): the newest valid checkpoint's state and history replace the fresh ones before
  the loop starts; one from another dataset or config is refused (`CheckpointError`). A resumed ``serial`` or
  ``sync`` run ends bitwise identical to an uninterrupted one, because the engine's row order and step
  counters are functions of (seed, epoch, position) that the checkpoint holds.
- Ctrl-C / SIGTERM: at the next chunk boundary a checkpoint is written (when configured) and
  `TrainingInterrupted` names it; a second Ctrl-C raises ``KeyboardInterrupt`` at once (`hogwild.signals`).
- A worker that raises: ``on_worker_error="abort"`` re-raises the `WorkerError` (naming the worker and its rows)
  and leaves the checkpoints as they were. ``"restart"`` rolls the run back to the last good state (the newest
  checkpoint, or an in-memory copy taken at each epoch end, or the start) and runs again from there, at most
  `MAX_RESTARTS` times: rolling back rather than retrying the chunk in place is what guarantees that the
  half-applied updates of the failed chunk leave no trace in the shared weights.
"""

from __future__ import annotations

import warnings

import numpy as np

from .checkpoint import CheckpointManager
from .errors import TrainingInterrupted, WorkerError
from .signals import graceful_interrupts

MAX_RESTARTS = 3


class ReliabilityWarning(UserWarning):
    """A notice about checkpoints or faults the user should see once (resumed from..., worker restarted...)."""


def _notice(message):
    warnings.warn(message, ReliabilityWarning, stacklevel=3)


def _all_finite(value):
    if isinstance(value, np.ndarray):
        return value.dtype.kind not in "fc" or bool(np.all(np.isfinite(value)))
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    return True


class _Guard:
    """Chunk hook + epoch callback that take checkpoints and turn a signal into `TrainingInterrupted`."""

    def __init__(self, trainer, manager, flag, callback):
        self.trainer, self.manager, self.flag, self.callback = trainer, manager, flag, callback
        self.last_good = None  # in-memory snapshot at the last epoch end (for on_worker_error="restart")
        self.keep_in_memory = trainer.config.on_worker_error == "restart"

    def _save(self, epoch, position, end_of_epoch=False, force=False):
        if self.manager is None or not self.manager.due(epoch, end_of_epoch, force):
            return None
        snapshot = self.trainer.snapshot()
        if not _all_finite(snapshot):
            return None  # never checkpoint a diverging run; the engine reports the divergence itself
        return self.manager.save(snapshot, epoch, position)

    def on_chunk(self, trainer):
        """Chunk boundary: a due time-based checkpoint, or the graceful stop after a signal."""
        position = int(trainer.position())
        if self.flag.is_set():
            path = self._save(trainer.epoch, position, force=True) if self.manager else None
            path = path or (self.manager.last_path if self.manager else None)
            raise TrainingInterrupted(self.flag.signum, checkpoint=str(path) if path else None,
                                      model=trainer.model(), history=trainer.history)
        if self.manager is not None and self.manager.seconds is not None:
            self._save(trainer.epoch, position)

    def on_event(self, event):
        """The trainer's callback: pass every event on; checkpoint at the end of an epoch."""
        if self.callback is not None:
            self.callback(event)
        if event.get("kind") == "epoch":
            trainer = self.trainer
            if self.keep_in_memory:
                self.last_good = trainer.snapshot()
            self._save(trainer.epoch, 0, end_of_epoch=True)


def run_resilient(trainer, warn=None):
    """``trainer.run()`` with checkpoints, resume, graceful signals and worker-fault handling; returns its result."""
    config = trainer.config
    warn = warn or _notice
    manager = None
    if config.checkpoint_dir:
        manager = CheckpointManager(config.checkpoint_dir, config, trainer.fingerprint(), keep=2, warn=warn)
        if config.resume:
            found = manager.latest_valid()
            if found is None:
                warn(f"no checkpoint in {config.checkpoint_dir} yet; training from the start")
            else:
                snapshot, meta = found
                trainer.restore_snapshot(snapshot)
                manager.last_path = meta["path"]
                warn(f"resuming from {meta['path']} (epoch {meta['epoch']}, row {meta['position']})")
    start = trainer.snapshot() if config.on_worker_error == "restart" else None

    with graceful_interrupts() as flag:
        guard = _Guard(trainer, manager, flag, trainer.callback)
        trainer.hooks = [*trainer.hooks, guard.on_chunk]
        trainer.callback = guard.on_event
        restarts = 0
        while True:
            try:
                result = trainer.run()
                break
            except WorkerError as exc:
                if config.on_worker_error != "restart" or restarts >= MAX_RESTARTS:
                    raise
                restarts += 1
                snapshot, where = _rollback_point(manager, guard, start)
                trainer.restore_snapshot(snapshot)
                warn(f"{exc}; restarting from {where} (restart {restarts} of {MAX_RESTARTS})")
    if manager is not None:
        result.checkpoint = str(manager.last_path) if manager.last_path else None
    return result


def _rollback_point(manager, guard, start):
    """The newest good state to restart from, and a few words saying which it is."""
    if manager is not None:
        found = manager.latest_valid()
        if found is not None:
            return found[0], found[1]["path"]
    if guard.last_good is not None:
        return guard.last_good, f"the end of epoch {guard.last_good['loop']['epoch']}"
    return start, "the start"

