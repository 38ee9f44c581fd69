"""One node's side of a cluster run: train my shard, syncing every K rows.

`ShardTrainer` holds a node's shard and its training state and trains it with the ordinary one-machine engine
(Hogwild! threads over the shard, `hogwild.engine.train`), an epoch or a part of one per call. The engine calls
a chunk hook at every chunk boundary; that is where a node meets the rest of the cluster (Downpour's fetch/push
point): when the rows done reach the next of ``sync_points``, ``sync(shard, index)`` runs with the live arrays
in reach (`parameters`, writable in place) and may push them, pull new ones, or replace them by an average.
``pause_at`` stops the call at a row position instead, so that a caller that keeps many virtual nodes in one
process (`hogwild.cluster.simulate`) can interleave them.

This is the only module that knows how the engine is driven (``init_state``, ``hooks``, the linear runner's
state `hogwild.runners._linear.LinearState`); the node and simulator code above it sees a flat state dict: the
runner's state export plus the epoch counter.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from hogwild._workers import worker_count
from hogwild.config import TrainConfig

from .aggregate import PARAMETERS

# Seed offset per node: each node shuffles its shard in its own order.
NODE_SEED_STRIDE = 7919


def _flat(snapshot):
    """The engine's training state (`hogwild.loop.EpochLoop.snapshot`) as one flat dict with its ``epoch``."""
    flat = dict(snapshot["engine"])
    flat["epoch"] = int(snapshot["loop"]["epoch"])
    return flat


def _nested(flat):
    """The inverse of `_flat`: what ``hogwild.engine.train(init_state=...)`` continues from."""
    engine = {name: value for name, value in flat.items() if name != "epoch"}
    return {"engine": engine, "loop": {"epoch": int(flat["epoch"]), "best": math.inf, "since_best": 0}, "history": []}


class _Pause(Exception):
    """Raised by the chunk hook at ``pause_at``; carries the engine state to continue from."""

    def __init__(self, state):
        super().__init__("pause")
        self.state = state


def node_config(config, node, threads):
    """The one-machine `TrainConfig` a node trains its shard with: the user's model, loss and schedule, the
    threads Ray gave the node, a per-node seed, and nothing that belongs to the driver (epochs, evaluation,
    early stopping, checkpoints and class weights, which the driver folds into the sample weights)."""
    values = config.to_dict()
    for name in [f for f in values if f in CLUSTER_FIELDS]:
        values.pop(name)
    values.update(
        threads=int(threads), seed=int(config.seed) + NODE_SEED_STRIDE * (int(node) + 1), epochs=1, tol=None,
        validation_fraction=0.0, checkpoint_dir=None, resume=False, checkpoint_seconds=None, class_weight=None,
        on_worker_error="abort", device="cpu",
    )
    # --aggregate of a cluster run combines nodes; inside a node it means something only to sync mode.
    if config.mode != "sync" or values.get("aggregate") not in ("mean", "weighted"):
        values["aggregate"] = "mean"
    return TrainConfig.from_dict(values)


# TrainConfig fields of the cluster section: a node's own config is a one-machine config without them.
CLUSTER_FIELDS = ("cluster", "nodes", "cross_node", "sync_every", "ps_shards", "max_staleness", "on_node_loss",
                  "cluster_timeout", "shard_weights")


def n_outputs_of(config, classes):
    """Columns of W: 1 for regression and binary problems, else the number of classes."""
    if classes is None or len(classes) <= 2:
        return 1
    return int(len(classes))


class ShardTrainer:
    """A node's shard (CSR arrays, labels, sample weights) and its training state (a flat dict: see `_flat`)."""

    def __init__(self, X, y, config, *, classes=None, sample_weight=None, node=0, threads=1):
        from hogwild.runners._linear import LinearState

        self.config = node_config(config, node, threads)
        self.node = int(node)
        self.X = X if sp.isspmatrix_csr(X) or isinstance(X, sp.csr_array) else sp.csr_matrix(X)
        self.y = np.asarray(y)
        self.classes = None if classes is None else np.asarray(classes)
        self.sample_weight = None if sample_weight is None else np.asarray(sample_weight)
        self.n_rows = int(self.X.shape[0])
        self.n_features = int(self.X.shape[1])
        self.n_workers = worker_count(self.config, self.n_rows)
        adagrad = self.config.effective_schedule == "adagrad"
        state = LinearState(self.n_features, n_outputs_of(self.config, self.classes), np.dtype(self.config.dtype),
                            self.n_workers, adagrad, self.config.l1_strength > 0)
        self.state = {**state.export(), "epoch": 0}
        self._live = None  # the engine's trainer while a call is running
        self.next_sync = 0  # index of the next sync point of this epoch

    # --- what the cluster reads and writes -----------------------------------------------------------------
    def parameters(self):
        """The live arrays by name (W, b, acc_W, acc_b): the running engine's inside a sync, else the saved ones."""
        if self._live is not None:
            return self._live.parameters()
        return {name: self.state[name] for name in PARAMETERS}

    def set_parameters(self, values):
        """Copy ``values`` (a dict of some of W, b, acc_W, acc_b) into the live or saved arrays."""
        live = self.parameters()
        for name, value in values.items():
            if name in live and live[name].size:
                live[name][...] = np.asarray(value).reshape(live[name].shape)

    @property
    def epoch(self):
        return int(self.state["epoch"])

    def position(self):
        """Rows of the shard done in the current epoch."""
        if self._live is not None:
            return int(self._live.position())
        return int(np.sum(self.state["position"]))

    def progress(self):
        """The per-node counters a checkpoint needs besides the weights (JSON-able)."""
        if self._live is not None:
            state = self._live.runner.state
            values = {"position": state.position, "u": state.u, "t": state.t, "epoch": self._live.epoch,
                      "loss_sum": state.loss_sum, "weight_sum": state.weight_sum}
        else:
            values = {name: self.state[name] for name in ("position", "u", "t", "epoch", "loss_sum", "weight_sum")}
        return {
            "position": [int(v) for v in np.asarray(values["position"]).reshape(-1)],
            "u": [float(v) for v in np.asarray(values["u"]).reshape(-1)],
            "t": float(values["t"]),
            "epoch": int(values["epoch"]),
            "loss_sum": float(values["loss_sum"]),
            "weight_sum": float(values["weight_sum"]),
        }

    def restore(self, progress, parameters=None, sync_points=()):
        """Continue from ``progress`` (a `progress` dict) with ``parameters`` as the weights."""
        state = self.state
        state["position"] = np.asarray(progress["position"], dtype=np.int64).reshape(state["position"].shape).copy()
        state["u"] = np.asarray(progress["u"], dtype=np.float64).reshape(state["u"].shape).copy()
        for name in ("t", "loss_sum", "weight_sum"):
            state[name] = float(progress[name])
        state["epoch"] = int(progress["epoch"])
        state["replicas"] = None
        if parameters is not None:
            self.set_parameters(parameters)
        self.next_sync = int(np.searchsorted(np.asarray(sync_points), self.position(), side="right"))

    def start_epoch(self, epoch):
        """Make ``epoch`` the current one: a fresh start unless the state is already part-way through it."""
        if int(self.state["epoch"]) != int(epoch) or self.position() >= self.n_rows:
            self.state["epoch"] = int(epoch)
            self.state["position"][...] = 0
            self.state["loss_sum"] = self.state["weight_sum"] = 0.0
        if self.position() == 0:
            self.next_sync = 0

    # --- training --------------------------------------------------------------------------------------------
    def train(self, sync_points=(), sync=None, pause_at=None, chunk_rows=None):
        """Train the current epoch from the current position to its end (or to ``pause_at``); returns whether the
        epoch finished. ``sync(self, index)`` runs when the rows done first reach ``sync_points[index]``."""
        from hogwild.engine import train

        points = np.asarray(sync_points, dtype=np.int64)
        if self.position() >= self.n_rows:
            return True
        chunk = self.config.chunk_rows if chunk_rows is None else max(1, int(chunk_rows))
        config = self.config.replace(epochs=int(self.state["epoch"]) + 1, chunk_rows=chunk)

        def hook(trainer):
            self._live = trainer
            position = int(trainer.position())
            while sync is not None and self.next_sync < len(points) and position >= points[self.next_sync]:
                index = self.next_sync
                self.next_sync += 1
                sync(self, index)
            if pause_at is not None and pause_at <= position < self.n_rows:
                raise _Pause(_flat(trainer.snapshot()))

        try:
            result = train(self.X, self.y, config, sample_weight=self.sample_weight, classes=self.classes,
                           init_state=_nested(self.state), hooks=[hook])
        except _Pause as pause:
            self.state = pause.state
            return False
        finally:
            self._live = None
        self.state = _flat(result.state)
        self.next_sync = 0
        return True

    def chunk_rows_for(self, sync_points):
        """Rows per worker per chunk so that chunk boundaries fall near every sync point."""
        points = np.concatenate([[0], np.asarray(sync_points, dtype=np.int64)])
        gaps = np.diff(points)
        gap = int(gaps[gaps > 0].min()) if np.any(gaps > 0) else self.n_rows
        return max(1, min(self.config.chunk_rows, math.ceil(gap / self.n_workers)))


def even_sync_points(n_rows, rounds):
    """``rounds`` row positions splitting ``n_rows`` evenly, the last one ``n_rows`` (average mode: every node
    meets the others the same number of times an epoch, whatever its shard's size)."""
    rounds = max(1, int(rounds))
    return np.array([math.ceil(j * n_rows / rounds) for j in range(1, rounds + 1)], dtype=np.int64)


def every_sync_points(n_rows, every):
    """Every ``every`` rows and at the end of the shard (parameter-server mode)."""
    points = list(range(int(every), int(n_rows), int(every))) + [int(n_rows)]
    return np.array(points, dtype=np.int64)
