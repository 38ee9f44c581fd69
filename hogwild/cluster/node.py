"""A cluster node: a Ray actor that holds one shard and trains it with Hogwild! threads (`ShardTrainer`),
meeting the parameter server or the averager every ``--sync-every`` rows.

The shard's arrays arrive from the object store (zero-copy, read-only, when the store is on the node's own
machine). The node trains with the CPUs Ray assigned to it, not the host's core count: inside a ``num_cpus=1``
actor the affinity mask still shows every core (SCALEOUT.md, pitfall 5).
"""

from __future__ import annotations

import os
import socket
import time

import numpy as np
import scipy.sparse as sp

from . import aggregate
from .errors import ClusterError
from .shard import ShardTrainer, even_sync_points, every_sync_points


def assigned_threads(default=1):
    """The whole CPUs Ray assigned to the calling actor (at least 1)."""
    try:
        import ray

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0)
    except Exception:  # noqa: BLE001 - outside Ray: the caller's default
        return int(default)
    return max(1, int(cpus))


class Node:
    """One node's shard, its `ShardTrainer`, and its side of the cross-node protocol."""

    def __init__(self):
        self.shard = None

    def setup(self, index, shard, config, classes, plan, servers, timeout):
        """Take a run's shard and settings (an actor serves one run at a time, and may serve several in turn:
        `hogwild.cluster.runner` keeps idle actors warm, with their compiled kernels loaded). Returns `info`."""
        self.index = int(index)
        self.threads = int(config.threads or assigned_threads())
        X = sp.csr_matrix((shard["data"], shard["indices"], shard["indptr"]),
                          shape=(len(shard["indptr"]) - 1, int(shard["n_features"])), copy=False)
        self.shard = ShardTrainer(X, shard["y"], config, classes=classes, sample_weight=shard.get("sample_weight"),
                                  node=self.index, threads=self.threads)
        self.cross_node = plan["cross_node"]
        if self.cross_node == "average":
            self.sync_points = even_sync_points(self.shard.n_rows, plan["rounds"])
        else:
            self.sync_points = every_sync_points(self.shard.n_rows, plan["sync_every"])
        self.chunk_rows = self.shard.chunk_rows_for(self.sync_points)
        self.servers = servers  # ps: [(handle, lo, hi)] per shard; average: [(handle, 0, n_features)]
        self.timeout = float(timeout)
        self.base = None
        self.seen = None  # the servers' push counters of each row at this node's last pull
        self.counters = {}
        return self.info()

    def release(self):
        """Drop the run's shard and state (the object store may free the shard)."""
        if self.shard is not None:
            self.shard.close()
        self.shard = self.servers = self.base = None
        return True

    def info(self):
        import ray

        return {"node": self.index, "host": socket.gethostname(), "pid": os.getpid(), "threads": self.threads,
                "rows": self.shard.n_rows, "nnz": int(self.shard.X.nnz),
                "ray_node": ray.get_runtime_context().get_node_id()}

    def set_state(self, parameters, progress=None):
        """Take the cluster's weights, and a checkpoint's per-node progress when resuming mid-epoch."""
        if progress is not None:
            self.shard.restore(progress, parameters, self.sync_points)
        else:
            self.shard.set_parameters(parameters)
        return True

    def run_epoch(self, epoch):
        """Train this node's shard for epoch ``epoch`` (from where it stands), syncing at every sync point;
        returns the epoch's counters."""
        import ray

        shard = self.shard
        shard.start_epoch(epoch)
        started = time.perf_counter()
        self.counters = {"syncs": 0, "comm_seconds": 0.0, "bytes_sent": 0, "bytes_received": 0, "staleness": [],
                         "rows_start": shard.position()}
        if self.cross_node == "ps":
            self._pull(ray)
            sync = self._sync_ps
        else:
            self.last_position = shard.position()
            sync = self._sync_average
        shard.train(self.sync_points, sync, chunk_rows=self.chunk_rows)
        if self.cross_node == "ps":
            self._call(ray, [handle.finish.remote(self.index) for handle, _, _ in self.servers])
        seconds = time.perf_counter() - started
        progress = shard.progress()
        counters = self.counters
        staleness = counters.pop("staleness")
        return {
            "node": self.index, "rows": shard.n_rows - counters.pop("rows_start"), "seconds": seconds,
            "loss_sum": progress["loss_sum"] if shard.epoch == epoch else float(self.final_loss[0]),
            "weight_sum": progress["weight_sum"] if shard.epoch == epoch else float(self.final_loss[1]),
            "staleness_mean": float(np.mean(staleness)) if staleness else 0.0,
            "staleness_max": int(max(staleness)) if staleness else 0,
            "compute_seconds": seconds - counters["comm_seconds"], **counters,
        }

    # --- the two protocols ---------------------------------------------------------------------------------------
    def _call(self, ray, futures):
        started = time.perf_counter()
        try:
            replies = ray.get(futures, timeout=self.timeout)
        except ray.exceptions.GetTimeoutError:
            raise ClusterError(f"node {self.index} waited more than {self.timeout:g} s (--cluster-timeout) for "
                               "the server's reply") from None
        except ray.exceptions.RayActorError:
            raise ClusterError(f"node {self.index} lost its server actor; resume from the last checkpoint "
                               "(--resume)") from None
        self.counters["comm_seconds"] += time.perf_counter() - started
        return replies

    def _pull(self, ray):
        replies = self._call(ray, [handle.pull.remote(self.index) for handle, _, _ in self.servers])
        self._take(replies)

    def _take(self, replies):
        """Write the servers' arrays into the live parameters and remember them as the base of the next delta."""
        live = self.shard.parameters()
        if self.seen is None:
            self.seen = np.zeros(live["W"].shape[0], dtype=np.uint32)
        for (handle, lo, hi), reply in zip(self.servers, replies):
            self.seen[lo:hi] = reply["touched"]
            self.counters["bytes_received"] += aggregate.nbytes(*(v for v in reply.values() if isinstance(v, np.ndarray)))
            live["W"][lo:hi] = reply["W"]
            if live["acc_W"].size:
                live["acc_W"][lo:hi] = reply["acc_W"]
            if "b" in reply:
                live["b"][...] = reply["b"]
                if live["acc_b"].size:
                    live["acc_b"][...] = reply["acc_b"]
        self.base = {name: value.copy() for name, value in live.items()}

    def _sync_ps(self, shard, index):
        import ray

        live = shard.parameters()
        last = index == len(self.sync_points) - 1
        rows, dW = aggregate.row_delta(live["W"], self.base["W"])
        acc = live["acc_W"].size > 0
        if acc:
            acc_rows, _ = aggregate.row_delta(live["acc_W"], self.base["acc_W"])
            rows = aggregate.union_rows(rows, acc_rows)
            dW = (live["W"][rows].astype(np.float64) - self.base["W"][rows])
            dacc = (live["acc_W"][rows].astype(np.float64) - self.base["acc_W"][rows])
        progress = shard.progress()
        if last:
            self.final_loss = (progress["loss_sum"], progress["weight_sum"])
        futures = []
        for handle, lo, hi in self.servers:
            mask = (rows >= lo) & (rows < hi)
            push = {"rows": rows[mask], "W": dW[mask], "seen": self.seen[rows[mask]]}
            if acc:
                push["acc_W"] = dacc[mask]
            if lo == 0:
                push["b"] = live["b"].astype(np.float64) - self.base["b"]
                if live["acc_b"].size:
                    push["acc_b"] = live["acc_b"].astype(np.float64) - self.base["acc_b"]
            self.counters["bytes_sent"] += aggregate.nbytes(*(v for v in push.values()))
            futures.append(handle.push_pull.remote(self.index, push, progress, last))
        replies = self._call(ray, futures)
        self.counters["staleness"].append(int(max(reply["staleness"] for reply in replies)))
        self.counters["syncs"] += 1
        self._take(replies)

    def _sync_average(self, shard, index):
        import ray

        live = shard.parameters()
        position = shard.position()
        progress = shard.progress()
        if index == len(self.sync_points) - 1:
            self.final_loss = (progress["loss_sum"], progress["weight_sum"])
        rows = position - self.last_position
        self.last_position = position
        handle = self.servers[0][0]
        replica = {name: value for name, value in live.items()}
        self.counters["bytes_sent"] += aggregate.nbytes(*replica.values())
        (result,) = self._call(ray, [handle.contribute.remote(self.index, (shard.epoch, index), replica, rows, progress)])
        self.counters["bytes_received"] += aggregate.nbytes(*result.values())
        self.counters["syncs"] += 1
        shard.set_parameters(result)
