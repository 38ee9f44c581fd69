"""Cluster runs through today's one-machine epoch loop: `train` (the cluster's front door until the engine's
runner registry lands) and `ClusterTrainer`.

`ClusterTrainer` is `hogwild.engine.Trainer` with its epoch body replaced by `ClusterRunner.run_epoch`: the
problem's preparation (classes, class weights, a validation hold-out), the per-epoch history records and
evaluation, early stopping, the callback events and `hogwild.resilience` (checkpoints, ``--resume``, Ctrl-C)
stay exactly those of a one-machine run. When the engine's one loop takes runners from a registry keyed by
(model, device, backend), this module shrinks to one registry line for `ClusterRunner`.
"""

from __future__ import annotations

import numpy as np

from hogwild.engine import Trainer, _resolve_config, epoch_order
from hogwild.errors import ConfigError

from .runner import ClusterProblem, ClusterRunner


def train(X, y=None, config=None, *, X_val=None, y_val=None, X_test=None, y_test=None, callback=None,
          init_model=None, sample_weight=None, classes=None, hooks=(), **overrides):
    """`hogwild.train` on a Ray cluster (``config.cluster``); the same arguments and the same `TrainResult`.

    ``result.cluster`` holds the last epoch's per-node and overall counters; each history record has them too.
    """
    config = _resolve_config(config, overrides)
    if config.cluster is None:
        raise ConfigError("cluster", "hogwild.cluster.train needs --cluster (cluster=...): local:N, auto or HOST:PORT")
    from hogwild.resilience import run_resilient

    trainer = ClusterTrainer(X, y, config, X_val=X_val, y_val=y_val, X_test=X_test, y_test=y_test,
                             sample_weight=sample_weight, classes=classes, init_model=init_model,
                             callback=callback, hooks=hooks)
    try:
        result = run_resilient(trainer)
    finally:
        trainer.close()
    result.cluster = trainer.runner.metrics()
    return result


class ClusterTrainer(Trainer):
    """The one-machine `Trainer`'s loop around a `ClusterRunner` (see the module docstring)."""

    def __init__(self, X, y, config, **kwargs):
        super().__init__(X, y, config, **kwargs)
        weights = self.sample_weight
        problem = ClusterProblem(
            X=self.csr.to_scipy(), y=self.labels,
            sample_weight=None if weights.size == 1 and weights[0] == 1.0 else np.broadcast_to(weights, (self.csr.n_rows,)),
            classes=self.classes, n_features=self.csr.n_features, n_outputs=self.n_outputs, dtype=self.dtype,
            multiclass=self.multiclass, loss=config.loss,
        )
        self.runner = ClusterRunner(problem, config)
        self._to_runner()

    def _to_runner(self):
        """The driver's weights (a warm start, a restored checkpoint) become the cluster's."""
        live = self.runner.parameters()
        for name in ("W", "b", "acc_W", "acc_b"):
            if live[name].size:
                live[name][...] = getattr(self.state, name)

    def _from_runner(self):
        live = self.runner.parameters()
        for name in ("W", "b", "acc_W", "acc_b"):
            if live[name].size:
                getattr(self.state, name)[...] = live[name]

    def _run_epoch(self):
        state, config = self.state, self.config
        params = self.params(state.epoch)
        lr = self._eta_at(params, state.t)
        order = epoch_order(self.csr.n_rows, config.seed, state.epoch, config.shuffle)

        def on_chunk(rows_done, loss):
            state.loss_sum, state.weight_sum = float(loss), 1.0
            self._chunk_boundary(rows_done, self.csr.n_rows)

        outcome = self.runner.run_epoch(order, state.epoch, lr, on_chunk)
        self._from_runner()
        if not (np.all(np.isfinite(state.W)) and np.all(np.isfinite(state.b))):
            self._diverged()
        self.last_eta = outcome.lr
        self.epoch_loss = outcome.train_loss + self._penalty()
        state.t += self.csr.n_rows
        state.epoch += 1
        state.position[:] = 0
        state.loss_sum = state.weight_sum = 0.0

    def _record(self, seconds):
        record = super()._record(seconds)
        metrics = self.runner.metrics()
        record["nodes"] = metrics.get("nodes_live")
        record["staleness"] = metrics.get("staleness")
        record["mb_moved"] = metrics.get("bytes_moved", 0) / 1e6
        record["comm_fraction"] = metrics.get("comm_fraction")
        record["cluster"] = metrics
        return record

    # --- what hogwild.resilience drives ---------------------------------------------------------------------------
    def snapshot(self):
        snapshot = super().snapshot()
        snapshot["cluster"] = self.runner.snapshot()
        return snapshot

    def restore_snapshot(self, snapshot):
        super().restore_snapshot(snapshot)
        if "cluster" in snapshot:
            self.runner.restore(snapshot["cluster"])
            self._from_runner()
        else:
            self._to_runner()

    def position(self):
        return self.runner.position()

    def close(self):
        self.runner.close()
