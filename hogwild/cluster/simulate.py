"""A discrete-event simulator of cluster training: the real SGD arithmetic on real shards, virtual clocks.

Every virtual node is a `ShardTrainer` (the same one-machine engine a real node runs, one thread), combined by
the same `hogwild.cluster.aggregate` functions as the real servers; only time is simulated. A node's compute
takes ``nnz / nnz_per_s`` (times its straggler factor and a per-round log-normal jitter); a message takes
``latency + bytes / bandwidth`` on the node's link, and the server's link is shared (queued) by every node's
pushes and pulls. What is simulated of each mode is what `hogwild.cluster.server` does:

- ``ps``: a node trains to its next sync point on the weights it last pulled, pushes its row deltas (and AdaGrad
  sums); the server applies pushes in arrival order, each row scaled by its staleness (``--ps-step damped``) or
  summed (``sum``); the reply (the rows
  of W the node's shard touches: a sparse pull) waits at the staleness bound (stale synchronous parallel).
  The arithmetic happens at the virtual times it would, so staleness and its effect on accuracy are real.
- ``average``: each round every node trains its share of rows; the round ends when the slowest node's replica
  has been combined: through one actor (``star``: what `Averager` does, every replica through one link), a
  ``ring`` allreduce or a ``tree``, costed as in SCALEOUT.md's communication model.

`Calibration` holds the machine's numbers; `calibrate` fits them to counters of a real local-cluster run
(`hogwild.cluster.runner.ClusterRunner.metrics`). `simulate` returns a per-epoch history with virtual seconds,
test accuracy, staleness, bytes moved and the fraction of node time spent communicating; `time_to_accuracy`
reads the first virtual time a target was reached.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp

from . import aggregate
from .shard import ShardTrainer, even_sync_points, every_sync_points, n_outputs_of

TOPOLOGIES = ("star", "ring", "tree")


@dataclass
class Calibration:
    """The virtual machine: per-node compute rate, per-message latency, link bandwidths, stragglers."""

    nnz_per_s: float = 60e6  # one node's training rate (non-zeros a second)
    latency_s: float = 2e-3  # per message, one way (a Ray actor call on one host is ~1-5 ms)
    bandwidth_Bps: float = 1.0e9  # a node's link
    server_bandwidth_Bps: float | None = None  # the server's (or averager's) link; default: a node's
    straggler_fraction: float = 0.0  # this fraction of the nodes (the last ones) run slower ...
    straggler_slowdown: float = 1.0  # ... by this factor
    jitter: float = 0.0  # sigma of a log-normal factor on every compute segment
    topology: str = "star"  # average mode: how replicas are combined

    def as_dict(self):
        return asdict(self)


@dataclass
class SimulationResult:
    """Per-epoch records and the run's totals."""

    history: list = field(default_factory=list)
    n_nodes: int = 0
    cross_node: str = "average"
    calibration: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)  # the final W, b, acc_W, acc_b

    def time_to_accuracy(self, target):
        """Virtual seconds at the first epoch end whose test accuracy reached ``target`` (None if never)."""
        for record in self.history:
            if record.get("test_accuracy") is not None and record["test_accuracy"] >= target:
                return record["time"]
        return None


def calibrate(runs, **overrides):
    """A `Calibration` fitted to counters of real cluster epochs (`ClusterRunner.metrics` dicts, ps mode).

    Compute rate: non-zeros trained over seconds not spent communicating, per node. Messages: each sync is a
    push and a pull, so a sync's communication time is fitted as ``2 * latency + bytes / bandwidth`` by least
    squares over the nodes of all ``runs`` (small messages pin the latency, large ones the bandwidth).
    """
    rates, syncs = [], []
    for run in runs:
        for node in run["nodes"]:
            if not node.get("syncs"):
                continue
            compute = max(node["seconds"] - node["comm_seconds"], 1e-9)
            rates.append(node["shard_nnz"] * node["rows"] / max(node["shard_rows"], 1) / compute)
            moved = (node["bytes_sent"] + node["bytes_received"]) / node["syncs"]
            syncs.append((moved, node["comm_seconds"] / node["syncs"]))
    if not rates:
        raise ValueError("calibrate needs cluster runs with at least one sync")
    values = {"nnz_per_s": float(np.median(rates))}
    if len(syncs) >= 2 and len({round(m) for m, _ in syncs}) >= 2:
        moved = np.array([m for m, _ in syncs])
        seconds = np.array([t for _, t in syncs])
        design = np.stack([np.full_like(moved, 2.0), moved], axis=1)
        (latency, per_byte), *_ = np.linalg.lstsq(design, seconds, rcond=None)
        values["latency_s"] = float(max(latency, 1e-5))
        values["bandwidth_Bps"] = float(1.0 / per_byte) if per_byte > 0 else 1e10
    values.update(overrides)
    return Calibration(**values)


def collective_seconds(topology, n_nodes, message_bytes, calibration):
    """Seconds for ``n_nodes`` replicas of ``message_bytes`` each to be combined and returned to every node."""
    alpha, B = calibration.latency_s, calibration.bandwidth_Bps
    server_B = calibration.server_bandwidth_Bps or B
    n = max(1, n_nodes)
    if topology == "star":  # every replica up to one actor and the result back down, through its one link
        return 2 * alpha + 2 * n * message_bytes / server_B
    if topology == "ring":
        return 2 * (n - 1) * alpha + 2 * (n - 1) / n * message_bytes / B
    if topology == "tree":
        return 2 * math.ceil(math.log2(n)) * alpha + 3 * message_bytes / B if n > 1 else 0.0
    raise ValueError(f"unknown topology {topology!r}; expected one of {', '.join(TOPOLOGIES)}")


class _VirtualNode:
    def __init__(self, index, X, y, config, classes, sample_weight, factor, rng):
        self.index = index
        self.shard = ShardTrainer(X, y, config, classes=classes, sample_weight=sample_weight, node=index, threads=1)
        self.nnz_per_row = X.nnz / max(1, X.shape[0])
        self.features = np.unique(X.indices).astype(np.int64)  # the rows of W this node's pulls carry
        self.factor = factor
        self.rng = rng
        self.busy = 0.0  # compute seconds
        self.comm = 0.0  # seconds waiting for messages
        self.staleness = []
        self.bytes = 0

    def compute_seconds(self, rows, calibration):
        jitter = math.exp(self.rng.normal(0.0, calibration.jitter)) if calibration.jitter > 0 else 1.0
        return rows * self.nnz_per_row / calibration.nnz_per_s * self.factor * jitter


def _split(X, y, sample_weight, n_nodes, shard_weights):
    from .runner import shard_bounds

    bounds = shard_bounds(X.shape[0], n_nodes, shard_weights)
    for i in range(n_nodes):
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        weights = None if sample_weight is None else sample_weight[lo:hi]
        yield X[lo:hi], y[lo:hi], weights


def simulate(X, y, config, n_nodes, calibration=None, *, X_test=None, y_test=None, sample_weight=None,
             classes=None, shard_weights=None, seed=0, stop_at_accuracy=None):
    """Simulate ``config.epochs`` epochs of ``config.cross_node`` training on ``n_nodes`` virtual nodes.

    ``config``: a `TrainConfig` (its cluster fields: ``cross_node``, ``sync_every``, ``aggregate``,
    ``max_staleness``, ``ps_shards``); ``X`` CSR, ``y`` labels. Returns a `SimulationResult`.
    """
    from hogwild.metrics import evaluate_model
    from hogwild.models import LinearModel

    calibration = calibration or Calibration()
    X = sp.csr_matrix(X)
    y = np.asarray(y)
    if classes is None and not config.is_regression:
        classes = np.unique(y)
    rng = np.random.default_rng(seed)
    n_slow = int(round(calibration.straggler_fraction * n_nodes))
    nodes = []
    for i, (Xi, yi, wi) in enumerate(_split(X, y, sample_weight, n_nodes, shard_weights)):
        factor = calibration.straggler_slowdown if i >= n_nodes - n_slow else 1.0
        nodes.append(_VirtualNode(i, Xi, yi, config, classes, wi, factor, np.random.default_rng([seed, i])))
    k = n_outputs_of(config, classes)
    dtype = np.dtype(config.dtype)
    adagrad = config.effective_schedule == "adagrad"
    model = {"W": np.zeros((X.shape[1], k), dtype), "b": np.zeros(k, dtype),
             "acc_W": np.zeros((X.shape[1], k) if adagrad else (0, k), dtype),
             "acc_b": np.zeros(k if adagrad else 0, dtype)}
    multiclass = "binary" if k == 1 else config.multiclass
    result = SimulationResult(n_nodes=n_nodes, cross_node=config.cross_node, calibration=calibration.as_dict())
    clock = 0.0
    largest = max(node.shard.n_rows for node in nodes)
    rounds = max(1, math.ceil(largest / config.sync_every))
    for epoch in range(config.epochs):
        for node in nodes:
            node.busy = node.comm = 0.0
            node.staleness, node.bytes = [], 0
        if config.cross_node == "ps":
            clock = _epoch_ps(nodes, model, epoch, clock, config, calibration)
        else:
            clock = _epoch_average(nodes, model, epoch, clock, config, calibration, rounds)
        record = {"epoch": epoch + 1, "time": clock}
        if X_test is not None:
            linear = LinearModel(model["W"].copy(), model["b"].copy(), classes, config.loss, multiclass, config.to_dict())
            record["test_accuracy"] = float(evaluate_model(linear, X_test, y_test)["accuracy"])
        staleness = [s for node in nodes for s in node.staleness]
        busy = sum(node.busy for node in nodes)
        comm = sum(node.comm for node in nodes)
        record.update(staleness=float(np.mean(staleness)) if staleness else 0.0,
                      bytes_moved=int(sum(node.bytes for node in nodes)),
                      comm_fraction=comm / max(busy + comm, 1e-300))
        result.history.append(record)
        if stop_at_accuracy is not None and record.get("test_accuracy", 0.0) >= stop_at_accuracy:
            break
    result.model = {name: value.copy() for name, value in model.items()}
    for node in nodes:
        node.shard.close()
    return result


def _epoch_average(nodes, model, epoch, clock, config, calibration, rounds):
    """Synchronous rounds: the slowest node's compute plus the collective, per round."""
    message = aggregate.nbytes(*model.values())
    for node in nodes:
        node.shard.start_epoch(epoch)
        node.shard.set_parameters(model)
        node.points = even_sync_points(node.shard.n_rows, rounds)
        node.done = 0
    for j in range(rounds):
        finish = []
        replicas, rows = [], []
        for node in nodes:
            target = int(node.points[j])
            node.shard.train(pause_at=target, chunk_rows=max(1, target - node.done))
            seconds = node.compute_seconds(target - node.done, calibration)
            rows.append(target - node.done)
            node.done = target
            node.busy += seconds
            finish.append(seconds)
            replicas.append({name: value.copy() for name, value in node.shard.parameters().items()})
        combined = aggregate.combine(replicas, rows, config.aggregate)
        model.update({name: value.copy() for name, value in combined.items()})
        round_seconds = max(finish) + collective_seconds(calibration.topology, len(nodes), message, calibration)
        for node, seconds in zip(nodes, finish):
            node.comm += round_seconds - seconds
            node.bytes += 2 * message
            node.shard.set_parameters(combined)
        clock += round_seconds
    return clock


def _epoch_ps(nodes, model, epoch, clock, config, calibration):
    """Downpour with bounded staleness: events in virtual time order (see the module docstring)."""
    alpha, B = calibration.latency_s, calibration.bandwidth_Bps
    server_B = (calibration.server_bandwidth_Bps or B) * max(1, config.ps_shards)
    version = 0
    pulled = {}
    clocks = {node.index: 0 for node in nodes}
    active = {node.index for node in nodes}
    server_free = clock
    touched = model.setdefault("touched", np.zeros(model["W"].shape[0], dtype=np.uint32))
    events = []  # (time, sequence, kind, node index, payload)
    sequence = 0
    parked = []  # nodes whose reply waits at the staleness bound: (node index, push arrival)
    by_index = {node.index: node for node in nodes}

    def reply(node, at):
        """The server sends ``node`` its rows of the weights at ``at``; schedule their arrival."""
        nonlocal server_free, sequence
        rows = node.features
        payload = {"W": model["W"][rows].copy(), "acc_W": model["acc_W"][rows].copy() if model["acc_W"].size else None,
                   "b": model["b"].copy(), "acc_b": model["acc_b"].copy(), "touched": touched[rows].copy()}
        size = aggregate.nbytes(*(v for v in payload.values() if v is not None)) + rows.nbytes
        send = max(at, server_free) + size / server_B
        server_free = send
        pulled[node.index] = version
        node.bytes += size
        sequence += 1
        heapq.heappush(events, (send + alpha + size / B, sequence, "pull", node.index, payload))

    def within_bound(i):
        others = [clocks[o] for o in active if o != i]
        return not others or clocks[i] <= min(others) + config.max_staleness

    for node in nodes:
        node.shard.start_epoch(epoch)
        if getattr(node, "seen", None) is None:
            node.seen = np.zeros(model["W"].shape[0], dtype=np.uint32)
        node.points = every_sync_points(node.shard.n_rows, config.sync_every)
        node.next = 0
        node.asked = clock
        reply(node, clock)
    end = clock
    while events:
        now, _, kind, i, payload = heapq.heappop(events)
        node = by_index[i]
        if kind == "pull":
            live = node.shard.parameters()
            rows = node.features
            live["W"][rows] = payload["W"]
            node.seen[rows] = payload["touched"]
            if payload["acc_W"] is not None:
                live["acc_W"][rows] = payload["acc_W"]
            live["b"][...] = payload["b"]
            if live["acc_b"].size:
                live["acc_b"][...] = payload["acc_b"]
            node.comm += now - node.asked
            if node.next >= len(node.points):
                end = max(end, now)
                continue
            base = {name: value.copy() for name, value in live.items()}
            start = node.shard.position()
            target = int(node.points[node.next])
            node.shard.train(pause_at=target, chunk_rows=max(1, target - start))
            seconds = node.compute_seconds(target - start, calibration)
            node.busy += seconds
            live = node.shard.parameters()
            changed, dW = aggregate.row_delta(live["W"], base["W"])
            push = {"rows": changed, "W": dW, "b": live["b"].astype(np.float64) - base["b"]}
            if live["acc_W"].size:
                changed = aggregate.union_rows(changed, aggregate.row_delta(live["acc_W"], base["acc_W"])[0])
                push.update(rows=changed, W=live["W"][changed].astype(np.float64) - base["W"][changed],
                            acc_W=live["acc_W"][changed].astype(np.float64) - base["acc_W"][changed],
                            acc_b=live["acc_b"].astype(np.float64) - base["acc_b"])
            push["seen"] = node.seen[push["rows"]]
            size = aggregate.nbytes(*push.values())
            node.bytes += size
            node.next += 1
            node.asked = now + seconds
            sequence += 1
            heapq.heappush(events, (now + seconds + alpha + size / B, sequence, "push", i, push))
        else:  # a push reaches the server
            staleness = version - pulled.get(i, 0)
            if config.ps_step == "sum":
                scale, row_scale = 1.0, 1.0
            else:
                scale = aggregate.staleness_scale(staleness)
                row_scale = aggregate.row_staleness_scale(touched[payload["rows"]], payload["seen"])
            aggregate.apply_rows(model["W"], payload["rows"], payload["W"], row_scale)
            touched[payload["rows"]] += np.uint32(1)
            aggregate.apply_dense(model["b"], payload["b"], scale)
            if "acc_W" in payload:
                aggregate.apply_rows(model["acc_W"], payload["rows"], payload["acc_W"], 1.0)
                aggregate.apply_dense(model["acc_b"], payload["acc_b"], 1.0)
            version += 1
            clocks[i] += 1
            node.staleness.append(staleness)
            if node.next >= len(node.points):
                active.discard(i)
            parked.append(i)
            for j in list(parked):
                if j not in active or within_bound(j):
                    parked.remove(j)
                    reply(by_index[j], now)
    return end
