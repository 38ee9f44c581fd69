"""One node's side of a cluster run: train my shard, syncing every K rows.

`ShardTrainer` holds a node's shard and its training state and trains it with the ordinary one-machine engine
(Hogwild! threads over the shard, `hogwild.engine.train`), an epoch or a part of one per call. The engine calls
a chunk hook at every chunk boundary; that is where a node meets the rest of the cluster (Downpour's fetch/push
point): when the rows done reach the next of ``sync_points``, ``sync(shard, index)`` runs with the live arrays
in reach (`parameters`, writable in place) and may push them, pull new ones, or replace them by an average.
``pause_at`` stops the call at a row position instead, so that a caller that keeps many virtual nodes in one
process (`hogwild.cluster.simulate`) can interleave them.

This is the only module that knows how the engine is driven: `hogwild.engine.prepare` builds the shard's
`hogwild.loop.EpochLoop` once, and each call sets its ``config`` (epochs, chunk size) and ``hooks`` and runs it,
reading the runner's live ``state``; the node and simulator code above it sees only `ShardTrainer`.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from hogwild.config import TrainConfig

from .aggregate import PARAMETERS

# Seed offset per node: each node shuffles its shard in its own order.
NODE_SEED_STRIDE = 7919


class _Pause(Exception):
    """Raised by the chunk hook at ``pause_at``: the trainer's state stays where the chunk left it."""


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
        # "auto" resolves by the run (adagrad on a cluster, whose nodes combine AdaGrad sums): pin the driver's
        schedule=config.effective_schedule,
    )
    # Inside a node the threads share one set of weights that the cluster reads and writes between chunks, so
    # --mode auto (which may pick per-thread replicas) runs Hogwild! (async), or serial on one thread.
    if config.mode == "auto":
        values["mode"] = "async" if int(threads) > 1 else "serial"
        if values["mode"] == "serial":
            values["threads"] = None
    # --aggregate of a cluster run combines nodes; inside a node it means something only to sync mode.
    if config.mode != "sync" or values.get("aggregate") not in ("mean", "weighted"):
        values["aggregate"] = "mean"
    return TrainConfig.from_dict(values)


# TrainConfig fields of the cluster section: a node's own config is a one-machine config without them.
CLUSTER_FIELDS = ("cluster", "nodes", "cross_node", "sync_every", "ps_shards", "ps_step", "max_staleness",
                  "on_node_loss", "cluster_timeout", "shard_weights")


def n_outputs_of(config, classes):
    """Columns of W: 1 for regression and binary problems, else the number of classes."""
    if classes is None or len(classes) <= 2:
        return 1
    return int(len(classes))


class ShardTrainer:
    """A node's shard (CSR rows, labels, sample weights) and its one-machine training run
    (`hogwild.engine.prepare`: an `hogwild.loop.EpochLoop` around the linear CPU runner), built once: later
    calls continue its state, so a call costs what its rows cost."""

    def __init__(self, X, y, config, *, classes=None, sample_weight=None, node=0, threads=1):
        from hogwild.engine import prepare

        self.config = node_config(config, node, threads)
        self.node = int(node)
        self.X = X if sp.isspmatrix_csr(X) or isinstance(X, sp.csr_array) else sp.csr_matrix(X)
        self.n_rows = int(self.X.shape[0])
        self.n_features = int(self.X.shape[1])
        self.loop = prepare(self.X, np.asarray(y), self.config, sample_weight=sample_weight,
                            classes=None if classes is None else np.asarray(classes))
        self.n_workers = self.loop.runner.n_workers
        self.next_sync = 0  # index of the next sync point of this epoch

    # --- what the cluster reads and writes -----------------------------------------------------------------
    @property
    def state(self):
        """The runner's live training state (`hogwild.runners._linear.LinearState`)."""
        return self.loop.runner.state

    def parameters(self):
        """The live arrays by name (W, b, acc_W, acc_b), writable in place between chunks."""
        return self.loop.parameters()

    def set_parameters(self, values):
        """Copy ``values`` (a dict of some of W, b, acc_W, acc_b) into the live arrays."""
        live = self.parameters()
        for name, value in values.items():
            if name in live and live[name].size:
                live[name][...] = np.asarray(value).reshape(live[name].shape)

    @property
    def epoch(self):
        return int(self.loop.epoch)

    def position(self):
        """Rows of the shard done in the current epoch."""
        return int(self.loop.position())

    def progress(self):
        """The per-node counters a checkpoint needs besides the weights (JSON-able)."""
        state = self.state
        return {
            "position": [int(v) for v in np.asarray(state.position).reshape(-1)],
            "u": [float(v) for v in np.asarray(state.u).reshape(-1)],
            "t": float(state.t), "epoch": self.epoch,
            "loss_sum": float(state.loss_sum), "weight_sum": float(state.weight_sum),
        }

    def restore(self, progress, parameters=None, sync_points=()):
        """Continue from ``progress`` (a `progress` dict) with ``parameters`` as the weights."""
        state = self.state
        state.position[...] = np.asarray(progress["position"], dtype=np.int64).reshape(state.position.shape)
        state.u[...] = np.asarray(progress["u"], dtype=np.float64).reshape(state.u.shape)
        state.t = float(progress["t"])
        state.loss_sum, state.weight_sum = float(progress["loss_sum"]), float(progress["weight_sum"])
        state.replicas = None
        self.loop.epoch = int(progress["epoch"])
        if parameters is not None:
            self.set_parameters(parameters)
        self.next_sync = int(np.searchsorted(np.asarray(sync_points), self.position(), side="right"))

    def start_epoch(self, epoch):
        """Make ``epoch`` the current one: a fresh start unless the state is already part-way through it."""
        state = self.state
        if self.epoch != int(epoch) or self.position() >= self.n_rows:
            self.loop.epoch = int(epoch)
            state.position[...] = 0
            state.loss_sum = state.weight_sum = 0.0
        if self.position() == 0:
            self.next_sync = 0

    def close(self):
        """Stop the runner's worker threads."""
        self.loop.runner.close()

    # --- training --------------------------------------------------------------------------------------------
    def train(self, sync_points=(), sync=None, pause_at=None, chunk_rows=None):
        """Train the current epoch from the current position to its end (or to ``pause_at``); returns whether the
        epoch finished. ``sync(self, index)`` runs when the rows done first reach ``sync_points[index]``."""
        points = np.asarray(sync_points, dtype=np.int64)
        if self.position() >= self.n_rows:
            return True
        chunk = self.config.chunk_rows_for(self._streaming()) if chunk_rows is None else max(1, int(chunk_rows))
        loop = self.loop

        def hook(loop):
            position = int(loop.position())
            while sync is not None and self.next_sync < len(points) and position >= points[self.next_sync]:
                index = self.next_sync
                self.next_sync += 1
                sync(self, index)
            if pause_at is not None and pause_at <= position < self.n_rows:
                raise _Pause()

        # the loop runs up to `epochs` in all: one more than done; the runner reads its chunk size per epoch call
        loop.config = loop.runner.config = self.config.replace(epochs=self.epoch + 1, chunk_rows=chunk)
        loop.hooks = [hook]
        try:
            loop.run()
        except _Pause:
            return False
        finally:
            loop.hooks = []
        loop.history.clear()
        self.next_sync = 0
        return True

    def chunk_rows_for(self, sync_points):
        """Rows per worker per chunk so that chunk boundaries fall near every sync point."""
        points = np.concatenate([[0], np.asarray(sync_points, dtype=np.int64)])
        gaps = np.diff(points)
        gap = int(gaps[gaps > 0].min()) if np.any(gaps > 0) else self.n_rows
        return max(1, min(self.config.chunk_rows_for(self._streaming()), math.ceil(gap / self.n_workers)))

    def _streaming(self):
        return bool(getattr(self.loop.runner, "streaming", False))


def even_sync_points(n_rows, rounds):
    """``rounds`` row positions splitting ``n_rows`` evenly, the last one ``n_rows`` (average mode: every node
    meets the others the same number of times an epoch, whatever its shard's size)."""
    rounds = max(1, int(rounds))
    return np.array([math.ceil(j * n_rows / rounds) for j in range(1, rounds + 1)], dtype=np.int64)


def every_sync_points(n_rows, every):
    """Every ``every`` rows and at the end of the shard (parameter-server mode)."""
    points = list(range(int(every), int(n_rows), int(every))) + [int(n_rows)]
    return np.array(points, dtype=np.int64)
