"""The cluster's server actors, as plain classes whose methods are coroutines (`hogwild.cluster.runner` makes
them Ray actors; Ray runs an async actor's methods concurrently on one event loop, so a node waiting at a
barrier or at the staleness bound never blocks another node's push, nor the driver's calls).

`ParameterShard` (``--cross-node ps``): one range of the features' weights (all of them unless
``--ps-shards`` asks for more); the intercept and its AdaGrad sums live on shard 0. A node calls `push_pull`
every ``--sync-every`` rows: its weight change since its last pull is added, each row scaled by the
per-coordinate staleness rule of `hogwild.cluster.aggregate` (the shard counts the pushes that wrote each row),
and the current weights and counters come back. Bounded staleness (stale synchronous
parallel): the reply waits while the node is more than ``max_staleness`` syncs ahead of the slowest node still
in the epoch.

`Averager` (``--cross-node average``): a barrier per round; when every live node has contributed its replica
the round's model is `aggregate.combine`-d and returned to all of them.

Both keep what a checkpoint needs (`state`) and per-node counters (`stats`); `drop` forgets a lost node so that
nobody waits for it.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from . import aggregate


def _node_key(node):
    return str(int(node))


class _Waits:
    """A condition on one event loop, created lazily (the actor's loop exists only once a method runs)."""

    def __init__(self):
        self._condition = None

    @property
    def condition(self):
        if self._condition is None:
            self._condition = asyncio.Condition()
        return self._condition

    async def notify(self):
        async with self.condition:
            self.condition.notify_all()

    async def wait_until(self, predicate, timeout):
        async with self.condition:
            await asyncio.wait_for(self.condition.wait_for(predicate), timeout)


class ParameterShard:
    """Rows ``lo:hi`` of W (and acc_W), plus b and acc_b on shard 0; Downpour's push and fetch."""

    def setup(self, index, lo, hi, parameters, nodes, max_staleness, timeout, step="damped"):
        """Take a run's range of the weights and its nodes (an actor may serve several runs in turn)."""
        self.index, self.lo, self.hi = int(index), int(lo), int(hi)
        self.arrays = {name: np.array(value, copy=True) for name, value in parameters.items()}
        self.touched = np.zeros(self.hi - self.lo, dtype=np.uint32)  # pushes that wrote each row (wraps)
        self.step = step  # "damped" (per-row staleness) or "sum" (Downpour's plain sum)
        self.max_staleness = int(max_staleness)
        self.timeout = float(timeout)
        self.version = 0
        self.live = {int(n) for n in nodes}
        self.active = set(self.live)  # live nodes that have not finished the current epoch
        self.pulled = {int(n): 0 for n in nodes}
        self.clock = {int(n): 0 for n in nodes}
        self.progress = {}
        self.counters = {int(n): _counters() for n in nodes}
        self.waits = _Waits()
        return True

    def start_epoch(self, nodes, clocks=None):
        """Make ``nodes`` the active set of a new (or resumed) epoch; ``clocks``: syncs each has done in it."""
        self.active = {int(n) for n in nodes} & self.live
        clocks = clocks or {}
        for node in self.active:
            self.clock[node] = int(clocks.get(_node_key(node), 0))
        return True

    def pull(self, node):
        """The current arrays (a node's start of an epoch)."""
        self.pulled[int(node)] = self.version
        return self._reply()

    async def push_pull(self, node, push, progress, last=False):
        """Apply ``push`` (row deltas) from ``node`` and return the current arrays, once within the bound."""
        node = int(node)
        staleness = self.version - self.pulled.get(node, 0)
        rows = np.asarray(push["rows"], dtype=np.int64) - self.lo
        if self.step == "sum":
            scale, row_scale = 1.0, 1.0
        else:
            scale = aggregate.staleness_scale(staleness)
            row_scale = aggregate.row_staleness_scale(self.touched[rows], push["seen"])
        aggregate.apply_rows(self.arrays["W"], rows, push["W"], row_scale)
        self.touched[rows] += np.uint32(1)
        if push.get("acc_W") is not None and self.arrays["acc_W"].size:
            aggregate.apply_rows(self.arrays["acc_W"], rows, push["acc_W"], 1.0)
        if push.get("b") is not None and "b" in self.arrays:
            aggregate.apply_dense(self.arrays["b"], push["b"], scale)
            if push.get("acc_b") is not None and self.arrays["acc_b"].size:
                aggregate.apply_dense(self.arrays["acc_b"], push["acc_b"], 1.0)
        self.version += 1
        self.clock[node] = self.clock.get(node, 0) + 1
        self.progress[_node_key(node)] = progress
        counters = self.counters.setdefault(node, _counters())
        counters["pushes"] += 1
        counters["staleness_sum"] += staleness
        counters["staleness_max"] = max(counters["staleness_max"], staleness)
        counters["bytes_in"] += aggregate.nbytes(*(v for v in push.values() if isinstance(v, np.ndarray)))
        if last:
            self.active.discard(node)
        await self.waits.notify()
        if not last and self.max_staleness >= 0:
            started = time.perf_counter()
            try:
                await self.waits.wait_until(lambda: self._within_bound(node), self.timeout)
            except asyncio.TimeoutError:
                raise TimeoutError(
                    f"node {node} waited {self.timeout:g} s at the staleness bound (--max-staleness "
                    f"{self.max_staleness}) for nodes {sorted(self.active - {node})}"
                ) from None
            counters["wait_seconds"] += time.perf_counter() - started
        self.pulled[node] = self.version
        reply = self._reply()
        reply["staleness"] = staleness
        counters["bytes_out"] += aggregate.nbytes(*(v for v in reply.values() if isinstance(v, np.ndarray)))
        return reply

    def _within_bound(self, node):
        others = [self.clock[n] for n in self.active if n != node]
        return not others or self.clock[node] <= min(others) + self.max_staleness

    def _reply(self):
        reply = {name: value.copy() for name, value in self.arrays.items()}
        reply.update(touched=self.touched.copy(), version=self.version)
        return reply

    async def finish(self, node):
        """``node`` is done with the epoch: nobody waits for it any more."""
        self.active.discard(int(node))
        await self.waits.notify()
        return True

    async def drop(self, node):
        """``node`` was lost."""
        node = int(node)
        self.live.discard(node)
        self.active.discard(node)
        await self.waits.notify()
        return True

    def state(self):
        """Copies of the arrays and each node's progress at its last push (a consistent cut of this shard)."""
        return {"arrays": {name: value.copy() for name, value in self.arrays.items()},
                "progress": dict(self.progress), "version": self.version}

    def load(self, arrays, progress=None):
        for name, value in arrays.items():
            if name in self.arrays:
                self.arrays[name][...] = value
        self.progress = dict(progress or {})
        return True

    def stats(self):
        return {_node_key(n): dict(c) for n, c in self.counters.items()}

    def release(self):
        self.arrays, self.progress = {}, {}
        return True

    def positions(self):
        """Per node: (rows done this epoch, loss_sum, weight_sum) at its last push."""
        return {key: (sum(p["position"]), p["loss_sum"], p["weight_sum"], p["epoch"]) for key, p in self.progress.items()}


class Averager:
    """Synchronous rounds of model averaging: `contribute` returns the combined model once every live node gave
    its replica for that round."""

    def setup(self, rule, parameters, nodes, timeout):
        """Take a run's rule, starting weights and nodes (an actor may serve several runs in turn)."""
        self.rule = rule
        self.model = {name: np.array(value, copy=True) for name, value in parameters.items()}
        self.live = {int(n) for n in nodes}
        self.timeout = float(timeout)
        self.rounds = {}  # key -> {"replicas": {node: (replica, rows)}, "done": asyncio.Event, "result": dict}
        self.progress = {}
        self.counters = {int(n): _counters() for n in nodes}
        return True

    def pull(self, node):
        return {name: value.copy() for name, value in self.model.items()}

    async def contribute(self, node, key, replica, rows, progress):
        node, key = int(node), tuple(key)
        entry = self.rounds.setdefault(key, {"replicas": {}, "done": asyncio.Event(), "result": None, "progress": {}})
        entry["replicas"][node] = (replica, int(rows))
        entry["progress"][_node_key(node)] = progress
        counters = self.counters.setdefault(node, _counters())
        counters["pushes"] += 1
        counters["bytes_in"] += aggregate.nbytes(*replica.values())
        self._complete(key)
        started = time.perf_counter()
        try:
            await asyncio.wait_for(entry["done"].wait(), self.timeout)
        except asyncio.TimeoutError:
            missing = sorted(self.live - set(entry["replicas"]))
            raise TimeoutError(f"node {node} waited {self.timeout:g} s at round {key} for nodes {missing}") from None
        counters["wait_seconds"] += time.perf_counter() - started
        result = entry["result"]
        counters["bytes_out"] += aggregate.nbytes(*result.values())
        return result

    def _complete(self, key):
        entry = self.rounds.get(key)
        if entry is None or entry["result"] is not None or not self.live <= set(entry["replicas"]):
            return
        nodes = sorted(entry["replicas"])
        replicas = [entry["replicas"][n][0] for n in nodes]
        rows = [entry["replicas"][n][1] for n in nodes]
        entry["result"] = aggregate.combine(replicas, rows, self.rule)
        entry["replicas"] = {n: (None, r) for n, (_, r) in entry["replicas"].items()}  # free the replicas
        self.model = {name: value.copy() for name, value in entry["result"].items()}
        self.progress.update(entry["progress"])
        entry["done"].set()
        # every live node fetched the earlier rounds before contributing to this one
        for old in [k for k in self.rounds if k < key]:
            del self.rounds[old]

    async def drop(self, node):
        self.live.discard(int(node))
        for key in sorted(self.rounds):
            self._complete(key)
        return True

    def start_epoch(self, nodes, clocks=None):
        return True

    def state(self):
        return {"arrays": {name: value.copy() for name, value in self.model.items()}, "progress": dict(self.progress)}

    def load(self, arrays, progress=None):
        for name, value in arrays.items():
            if name in self.model:
                self.model[name][...] = value
        self.progress = dict(progress or {})
        return True

    def stats(self):
        return {_node_key(n): dict(c) for n, c in self.counters.items()}

    def release(self):
        self.model, self.rounds, self.progress = {}, {}, {}
        return True

    def positions(self):
        return {key: (sum(p["position"]), p["loss_sum"], p["weight_sum"], p["epoch"]) for key, p in self.progress.items()}


def _counters():
    return {"pushes": 0, "staleness_sum": 0, "staleness_max": 0, "bytes_in": 0, "bytes_out": 0, "wait_seconds": 0.0}
