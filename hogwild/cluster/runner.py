"""The cluster runner: the driver's side of a run on a Ray cluster (``--cluster``).

It implements the engine's runner interface (``run_epoch(order, epoch, lr, on_chunk)``, ``snapshot``/``restore``,
``position``, ``parameters``, ``model``, ``close``), so the one epoch loop drives it as it drives a one-machine
runner: progress, checkpoints and Ctrl-C happen at ``on_chunk``, here called every `POLL_SECONDS` while the
nodes train.

Set-up: connect (`hogwild.cluster.connect`), split the rows into one contiguous shard per node (even, or by
``shard_weights``), put each shard in the object store once, start the server actors (`ParameterShard` x
``--ps-shards`` or one `Averager`, with no CPU reserved: they must never wait for a CPU a node holds, which
SCALEOUT.md saw hang silently) and one `Node` actor per node, pinned to a Ray node in turn and given
``--threads`` CPUs (default: the CPUs of its Ray node divided among the actors placed there).

An epoch: every live node runs ``Node.run_epoch``; the driver polls the servers for rows done and loss, and
notices a node actor that died (``RayActorError``): with ``--on-node-loss continue`` the servers forget it, one
warning line names it, and the epoch finishes on the others (its shard's remaining rows go untrained from then
on); with ``abort`` a `ClusterError` ends the run, after the last checkpoint.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import numpy as np

from . import aggregate
from .errors import ClusterError, NodeLostWarning

POLL_SECONDS = 0.25  # how often the driver reports progress (and can take a checkpoint) during an epoch


@dataclass
class ClusterProblem:
    """The prepared training data: CSR rows, labels, per-row sample weights (class weights folded in) or None,
    the classes (None for regression), and the model's shape and dtype."""

    X: object
    y: np.ndarray
    sample_weight: np.ndarray | None
    classes: np.ndarray | None
    n_features: int
    n_outputs: int
    dtype: np.dtype
    multiclass: str = "binary"
    loss: str = "log_loss"


def cluster_problem(problem, config):
    """The `ClusterProblem` of a prepared `hogwild.problem.Problem`: CSR rows in the weights' type, labels, row
    weights (class weights folded in), classes and the model's shape."""
    from hogwild._inputs import as_csr

    from .shard import n_outputs_of

    dtype = np.dtype(config.dtype)
    classes = problem.classes
    n_outputs = n_outputs_of(config, classes)
    multiclass = "binary" if n_outputs == 1 else config.multiclass
    X = as_csr(problem.X, dtype).to_scipy()
    return ClusterProblem(X=X, y=problem.labels, sample_weight=problem.sample_weight, classes=classes,
                          n_features=int(X.shape[1]), n_outputs=n_outputs, dtype=dtype, multiclass=multiclass,
                          loss=config.loss)


def shard_bounds(n_rows, n_nodes, weights=None):
    """Row bounds ``[0, ..., n_rows]`` of ``n_nodes`` contiguous shards, even or in proportion to ``weights``."""
    weights = np.ones(n_nodes) if weights is None else np.asarray(weights, dtype=np.float64)
    edges = np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
    bounds = np.round(edges * n_rows).astype(np.int64)
    bounds[-1] = n_rows
    if np.any(np.diff(bounds) < 1):
        raise ClusterError(f"{n_rows} rows cannot be split into {n_nodes} non-empty shards (--nodes, shard_weights)")
    return bounds


class ClusterRunner:
    """A training run across the nodes of a Ray cluster (see the module docstring)."""

    modes = ("auto", "async", "serial", "locked", "sync")  # inside each node (auto: async); across: ps, average
    order_block_shift = 5
    multi_output = False

    @classmethod
    def check_config(cls, config):
        from hogwild.runners._linear import check_linear_config

        check_linear_config(config)

    def __init__(self, problem, config, init_model=None):
        from .connect import connect

        problem = cluster_problem(problem, config)
        self.problem, self.config = problem, config
        self.n_rows = int(problem.X.shape[0])
        self.nnz = int(problem.X.nnz)
        self.n_workers = 1  # the driver's; each node runs the threads Ray gave it
        self.timeout = float(config.cluster_timeout)
        self.connection = connect(config.cluster, cpus_per_node=config.threads)
        ray = self.ray = self.connection.ray
        self._actors = []
        try:
            self._start(ray)
        except BaseException:
            self.close()
            raise
        if init_model is not None:
            self._warm_start(init_model)

    def _warm_start(self, model):
        from hogwild.errors import DataError

        coef = np.asarray(getattr(model, "coef", None))
        if coef.shape != self.params["W"].shape:
            raise DataError(f"init_model has weights of shape {coef.shape}; this problem needs {self.params['W'].shape}")
        self.params["W"][...] = coef
        self.params["b"][...] = model.intercept

    # --- set-up -----------------------------------------------------------------------------------------------
    def _start(self, ray):
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from .node import Node
        from .server import Averager, ParameterShard

        config, problem = self.config, self.problem
        placed = [node for node in ray.nodes() if node.get("Alive") and node.get("Resources", {}).get("CPU", 0) >= 1]
        if not placed:
            raise ClusterError(f"--cluster {config.cluster}: the cluster has no live node with a CPU to train on")
        placed.sort(key=lambda node: (not node.get("IsHeadNode", False), node["NodeID"]))
        kind = config.cluster.split(":")[0]
        default_nodes = int(config.cluster.split(":")[1]) if kind == "local" else len(placed)
        n_nodes = int(config.nodes or default_nodes)
        if config.shard_weights is not None and len(config.shard_weights) != n_nodes:
            raise ClusterError(f"shard_weights has {len(config.shard_weights)} sizes for {n_nodes} nodes (--nodes)")
        self.bounds = shard_bounds(self.n_rows, n_nodes, config.shard_weights)
        self.n_nodes = n_nodes
        self.live = list(range(n_nodes))
        self.lost = {}
        parameters = self._initial_parameters()
        self.params = parameters
        # --- servers: on the driver's node, no CPU reserved
        head = placed[0]["NodeID"]
        server_options = {"num_cpus": 0, "max_concurrency": 1000,
                          "scheduling_strategy": NodeAffinitySchedulingStrategy(head, soft=True)}
        wanted = []  # (class, options, key, setup arguments) of every actor this run needs
        if config.cross_node == "ps":
            n_shards = max(1, min(int(config.ps_shards), problem.n_features))
            edges = [(problem.n_features * s) // n_shards for s in range(n_shards + 1)]
            ranges = [(edges[s], edges[s + 1]) for s in range(n_shards)]
            for s, (lo, hi) in enumerate(ranges):
                arrays = {"W": parameters["W"][lo:hi], "acc_W": parameters["acc_W"][lo:hi]}
                if s == 0:
                    arrays.update(b=parameters["b"], acc_b=parameters["acc_b"])
                wanted.append((ParameterShard, server_options, ("ParameterShard", head, 0),
                               (s, lo, hi, arrays, self.live, config.max_staleness, self.timeout, config.ps_step)))
        else:
            ranges = [(0, problem.n_features)]
            wanted.append((Averager, server_options, ("Averager", head, 0),
                           (config.aggregate, parameters, self.live, self.timeout)))
        servers = self._take(ray, wanted)
        self.servers = [(handle, lo, hi) for handle, (lo, hi) in zip(servers, ranges)]
        # --- nodes: round-robin over the Ray nodes, each shard put in the object store once
        rounds = max(1, math.ceil(int(np.max(np.diff(self.bounds))) / config.sync_every))
        plan = {"cross_node": config.cross_node, "rounds": rounds, "sync_every": int(config.sync_every)}
        per_ray_node = {}
        for i in range(n_nodes):
            per_ray_node.setdefault(placed[i % len(placed)]["NodeID"], []).append(i)
        wanted, order = [], []
        self.shard_refs = [None] * n_nodes
        for ray_node in placed:
            members = per_ray_node.get(ray_node["NodeID"], [])
            available = float(ray_node["Resources"]["CPU"])
            share = available / max(1, len(members))
            # whole CPUs where there are enough; more nodes than CPUs share them (each then runs one thread)
            cpus = config.threads or (int(share) if share >= 1 else share)
            for i in members:
                self.shard_refs[i] = ray.put(self._shard(i))
                options = {"num_cpus": cpus, "max_restarts": 0,
                           "scheduling_strategy": NodeAffinitySchedulingStrategy(ray_node["NodeID"], soft=False)}
                wanted.append((Node, options, ("Node", ray_node["NodeID"], cpus),
                               (i, self.shard_refs[i], config, problem.classes, plan, self.servers, self.timeout)))
                order.append(i)
        handles = self._take(ray, wanted, infos=True)
        self.nodes, self.infos = [None] * n_nodes, [None] * n_nodes
        for i, (handle, info) in zip(order, handles):
            self.nodes[i], self.infos[i] = handle, info
        self.epoch_counters = {}
        self.pending_progress = None
        self.rows_done = 0

    def _take(self, ray, wanted, infos=False):
        """Actors for ``wanted`` (class, options, pool key, setup arguments), warm ones from the pool first, each
        set up for this run; with ``infos``, ``(handle, setup's reply)`` pairs."""
        handles = _POOL.take(ray, [(cls, options, key) for cls, options, key, _ in wanted])
        self._actors += [(handle, key) for handle, (_, _, key, _) in zip(handles, wanted)]
        futures = [handle.setup.remote(*arguments) for handle, (_, _, _, arguments) in zip(handles, wanted)]
        replies = []
        for (cls, _, _, arguments), future in zip(wanted, futures):
            what = f"node {arguments[0]}" if cls.__name__ == "Node" else f"the {cls.__name__} actor"
            try:
                replies.append(ray.get(future, timeout=self.timeout))
            except ray.exceptions.GetTimeoutError:
                raise ClusterError(
                    f"{what} did not start within {self.timeout:g} s (--cluster-timeout): the cluster may lack the "
                    f"CPUs it asks for (--threads {self.config.threads or 'default'}) or the memory for its shard"
                ) from None
            except ray.exceptions.RayActorError as exc:
                raise ClusterError(f"{what} failed to start: {_cause(exc)}") from None
            except ray.exceptions.RayTaskError as exc:
                raise _task_error(arguments[0], exc) from None
        return list(zip(handles, replies)) if infos else handles

    def _initial_parameters(self):
        problem, config = self.problem, self.config
        d, k, dtype = problem.n_features, problem.n_outputs, np.dtype(problem.dtype)
        adagrad = config.effective_schedule == "adagrad"
        return {
            "W": np.zeros((d, k), dtype=dtype), "b": np.zeros(k, dtype=dtype),
            "acc_W": np.zeros((d, k) if adagrad else (0, k), dtype=dtype),
            "acc_b": np.zeros(k if adagrad else 0, dtype=dtype),
        }

    def _shard(self, i):
        lo, hi = int(self.bounds[i]), int(self.bounds[i + 1])
        X = self.problem.X[lo:hi]
        weights = self.problem.sample_weight
        return {
            "indptr": X.indptr, "indices": X.indices, "data": X.data, "n_features": self.problem.n_features,
            "y": np.asarray(self.problem.y[lo:hi]),
            "sample_weight": None if weights is None else np.ascontiguousarray(weights[lo:hi]),
        }

    # --- the runner interface --------------------------------------------------------------------------------
    def run_epoch(self, order, epoch, lr, on_chunk):
        """Train epoch ``epoch`` on every live node; ``on_chunk(rows_done, loss_so_far)`` every `POLL_SECONDS`.

        ``order`` (the one-machine row order) is not used: each node shuffles its own shard by its own seed.
        """
        ray = self.ray
        self._clean = False
        resume = self.pending_progress
        self.pending_progress = None
        clocks = {}
        calls = {}
        params = ray.put(self.params)
        for i in self.live:
            progress = None if resume is None else resume.get(str(i))
            if progress is not None and int(progress["epoch"]) != int(epoch):
                progress = None
            calls[i] = self.nodes[i].set_state.remote(params, progress)
            if progress is not None:
                clocks[str(i)] = int(np.searchsorted(self._sync_points(i), sum(progress["position"]), side="right"))
        for i, future in calls.items():
            self._node_call(i, future, epoch)
        self._wait([h.start_epoch.remote(self.live, clocks) for h, _, _ in self.servers], "starting the epoch")
        # The servers start every epoch from the driver's copy (a warm start, a checkpoint, or last epoch's end).
        self._wait([h.load.remote(self._server_arrays(self.params, lo, hi, s == 0), resume)
                    for s, (h, lo, hi) in enumerate(self.servers)], "loading the servers")
        started = time.perf_counter()
        futures = {self.nodes[i].run_epoch.remote(epoch): i for i in self.live}
        summaries = {}
        last_progress = time.perf_counter()
        last_rows = -1
        while futures:
            ready, _ = ray.wait(list(futures), num_returns=len(futures), timeout=POLL_SECONDS)
            for future in ready:
                i = futures.pop(future)
                try:
                    summaries[i] = ray.get(future, timeout=self.timeout)
                except ray.exceptions.RayActorError as exc:
                    self._node_lost(i, epoch, exc)
                except ray.exceptions.RayTaskError as exc:
                    raise _task_error(i, exc) from None
            rows, loss = self._poll(epoch, summaries)
            if rows != last_rows:
                last_rows, last_progress = rows, time.perf_counter()
            elif time.perf_counter() - last_progress > self.timeout:
                raise ClusterError(f"no node made progress for {self.timeout:g} s (--cluster-timeout); nodes "
                                   f"{sorted(futures.values())} are still running")
            on_chunk(rows, loss)
        if not self.live:
            raise ClusterError("every node was lost; resume from the last checkpoint with --resume")
        self._fetch_parameters()
        seconds = time.perf_counter() - started
        self.epoch_counters = self._metrics(summaries, seconds)
        loss_sum = sum(s["loss_sum"] for s in summaries.values())
        weight_sum = sum(s["weight_sum"] for s in summaries.values())
        self.rows_done = 0
        self._clean = True
        from hogwild.results import EpochOutcome
        from hogwild.runners._linear import penalty

        counters = self.epoch_counters
        extras = {"nodes": counters.get("nodes_live"), "staleness": counters.get("staleness"),
                  "mb_moved": counters.get("bytes_moved", 0) / 1e6, "comm_fraction": counters.get("comm_fraction"),
                  "cluster": counters}
        loss = loss_sum / max(weight_sum, 1e-300) + penalty(self.params["W"], self.config)
        return EpochOutcome(train_loss=loss, lr=float(lr), extras=extras)

    def snapshot(self):
        """The cluster's weights and every node's progress at its last sync (mid-epoch: a consistent cut of
        each server), as arrays and JSON-able values."""
        replies = self._wait([h.state.remote() for h, _, _ in self.servers], "reading the servers' state")
        arrays = self._assemble([r["arrays"] for r in replies])
        progress = {}
        for reply in replies:
            progress.update(reply["progress"])
        return {"arrays": arrays, "progress": progress, "live": list(self.live), "n_nodes": self.n_nodes,
                "bounds": [int(b) for b in self.bounds]}

    def restore(self, state):
        """Continue from a `snapshot` (refused when the shards differ)."""
        bounds = [int(b) for b in state["bounds"]]
        if bounds != [int(b) for b in self.bounds]:
            raise ClusterError(f"the checkpoint's shards ({len(bounds) - 1} nodes, rows {bounds}) differ from this "
                               f"run's ({self.n_nodes} nodes); resume with the same --nodes and data")
        for name, value in state["arrays"].items():
            if name in self.params and self.params[name].size:
                self.params[name][...] = value
        self.pending_progress = dict(state.get("progress") or {})
        for i in range(self.n_nodes):
            if i not in state.get("live", self.live) and i in self.live:
                self.live.remove(i)
                self.lost[i] = "lost before the checkpoint"

    def position(self):
        return int(self.rows_done)

    def parameters(self):
        return self.params

    def model(self, copy=True):
        from hogwild.models import LinearModel

        W, b = (self.params["W"].copy(), self.params["b"].copy()) if copy else (self.params["W"], self.params["b"])
        problem = self.problem
        return LinearModel(W, b, problem.classes, self.config.loss, problem.multiclass, self.config.to_dict())

    def metrics(self):
        """Per node and overall counters of the last epoch (rows/s, staleness, bytes moved, communication)."""
        return self.epoch_counters

    def close(self):
        """End the run: after a clean epoch end the actors go back to the pool (warm for the next run of this
        driver); after an error or an interruption mid-epoch they are killed, since one may still be busy."""
        ray = getattr(self, "ray", None)
        actors, self._actors = getattr(self, "_actors", []), []
        lost = {id(self.nodes[i]) for i in getattr(self, "lost", {}) if getattr(self, "nodes", None)}
        connection = getattr(self, "connection", None)
        keep = getattr(self, "_clean", False) and connection is not None and connection.started is None
        if keep:
            try:
                ray.get([handle.release.remote() for handle, _ in actors if id(handle) not in lost], timeout=self.timeout)
            except Exception:  # noqa: BLE001 - an actor that cannot release is not reused
                keep = False
        for handle, key in actors:
            if keep and id(handle) not in lost:
                _POOL.give(key, handle)
            else:
                _kill(ray, handle)
        self.shard_refs = []
        if connection is not None:
            connection.close()
            self.connection = None

    # --- internals --------------------------------------------------------------------------------------------
    def _wait(self, futures, doing):
        ray = self.ray
        try:
            return ray.get(futures, timeout=self.timeout)
        except ray.exceptions.GetTimeoutError:
            raise ClusterError(f"the cluster did not answer within {self.timeout:g} s (--cluster-timeout) while "
                               f"{doing}") from None
        except ray.exceptions.RayActorError as exc:
            raise ClusterError(f"an actor of the cluster died while {doing} ({_cause(exc)}); resume from the last "
                               "checkpoint with --resume") from None

    def _node_call(self, i, future, epoch):
        """The reply of a call on node ``i``; a node found dead is handled as lost (None)."""
        ray = self.ray
        try:
            return ray.get(future, timeout=self.timeout)
        except ray.exceptions.GetTimeoutError:
            raise ClusterError(f"node {i} did not answer within {self.timeout:g} s (--cluster-timeout)") from None
        except ray.exceptions.RayActorError as exc:
            self._node_lost(i, epoch, exc)
        except ray.exceptions.RayTaskError as exc:
            raise _task_error(i, exc) from None
        return None

    def _sync_points(self, i):
        from .shard import even_sync_points, every_sync_points

        n = int(self.bounds[i + 1] - self.bounds[i])
        if self.config.cross_node == "average":
            return even_sync_points(n, max(1, math.ceil(int(np.max(np.diff(self.bounds))) / self.config.sync_every)))
        return every_sync_points(n, self.config.sync_every)

    def _server_arrays(self, arrays, lo, hi, first):
        if self.config.cross_node == "average":
            return arrays
        out = {"W": arrays["W"][lo:hi], "acc_W": arrays["acc_W"][lo:hi]}
        if first:
            out.update(b=arrays["b"], acc_b=arrays["acc_b"])
        return out

    def _assemble(self, replies):
        out = {name: value.copy() for name, value in self.params.items()}
        for (handle, lo, hi), arrays in zip(self.servers, replies):
            if self.config.cross_node == "average":
                for name, value in arrays.items():
                    if name in out:
                        out[name][...] = value
                continue
            out["W"][lo:hi] = arrays["W"]
            if out["acc_W"].size:
                out["acc_W"][lo:hi] = arrays["acc_W"]
            if "b" in arrays:
                out["b"][...] = arrays["b"]
                out["acc_b"][...] = arrays["acc_b"]
        return out

    def _fetch_parameters(self):
        replies = self._wait([h.state.remote() for h, _, _ in self.servers], "reading the weights")
        for name, value in self._assemble([r["arrays"] for r in replies]).items():
            self.params[name][...] = value

    def _poll(self, epoch, summaries):
        """Rows done this epoch and the loss so far, from the servers' last-sync records and finished nodes."""
        try:
            positions = self.ray.get(self.servers[0][0].positions.remote(), timeout=self.timeout)
        except self.ray.exceptions.RayActorError as exc:
            raise ClusterError(f"the {'parameter server' if self.config.cross_node == 'ps' else 'averager'} actor "
                               f"died ({_cause(exc)}); resume from the last checkpoint with --resume") from None
        rows = loss_sum = weight_sum = 0.0
        for key, (done, node_loss, node_weight, node_epoch) in positions.items():
            i = int(key)
            if i in summaries or int(node_epoch) != int(epoch):
                continue
            rows, loss_sum, weight_sum = rows + done, loss_sum + node_loss, weight_sum + node_weight
        for i, summary in summaries.items():
            rows += int(self.bounds[i + 1] - self.bounds[i])
            loss_sum += summary["loss_sum"]
            weight_sum += summary["weight_sum"]
        self.rows_done = int(rows)
        return int(rows), loss_sum / max(weight_sum, 1e-300)

    def _node_lost(self, i, epoch, exc):
        info = self.infos[i] or {}
        lo, hi = int(self.bounds[i]), int(self.bounds[i + 1])
        where = f" on {info['host']}" if info.get("host") else ""
        if self.config.on_node_loss == "abort":
            raise ClusterError(f"node {i}{where} (rows {lo}..{hi}) was lost in epoch {epoch + 1}: its actor died; "
                               "stopping (--on-node-loss abort); resume from the last checkpoint with --resume")
        self.live.remove(i)
        self.lost[i] = f"epoch {epoch + 1}"
        self._wait([h.drop.remote(i) for h, _, _ in self.servers], f"forgetting node {i}")
        if not self.live:
            raise ClusterError(f"node {i}{where} was lost in epoch {epoch + 1} and no node is left; resume from the "
                               "last checkpoint with --resume")
        warnings.warn(
            f"node {i}{where} (rows {lo}..{hi}) was lost in epoch {epoch + 1}: its actor died; continuing on "
            f"{len(self.live)} node{'s' if len(self.live) > 1 else ''} without its rows (--on-node-loss continue)",
            NodeLostWarning, stacklevel=2,
        )

    def _metrics(self, summaries, seconds):
        try:
            server_stats = self._wait([h.stats.remote() for h, _, _ in self.servers], "reading the counters")
        except ClusterError:
            server_stats = []
        nodes = []
        for i in range(self.n_nodes):
            info = self.infos[i] or {}
            summary = summaries.get(i)
            row = {"node": i, "host": info.get("host"), "ray_node": info.get("ray_node"), "threads": info.get("threads"),
                   "shard_rows": int(self.bounds[i + 1] - self.bounds[i]), "shard_nnz": info.get("nnz"),
                   "lost": self.lost.get(i)}
            if summary is not None:
                node_seconds = max(summary["seconds"], 1e-9)
                row.update(
                    rows=summary["rows"], seconds=summary["seconds"], rows_per_s=summary["rows"] / node_seconds,
                    syncs=summary["syncs"], staleness_mean=summary["staleness_mean"],
                    staleness_max=summary["staleness_max"], bytes_sent=summary["bytes_sent"],
                    bytes_received=summary["bytes_received"], comm_seconds=summary["comm_seconds"],
                    comm_fraction=summary["comm_seconds"] / node_seconds,
                )
            nodes.append(row)
        done = [row for row in nodes if "rows" in row]
        total_rows = sum(row["rows"] for row in done)
        moved = sum(row["bytes_sent"] + row["bytes_received"] for row in done)
        staleness = [row["staleness_mean"] for row in done if row["syncs"]]
        server_wait = sum(c.get("wait_seconds", 0.0) for stats in server_stats for c in stats.values())
        return {
            "cross_node": self.config.cross_node,
            "nodes_live": len(self.live),
            "nodes": nodes,
            "rows_per_s": total_rows / seconds if seconds > 0 else None,
            "staleness": float(np.mean(staleness)) if staleness and self.config.cross_node == "ps" else 0.0,
            "bytes_moved": int(moved),
            "comm_fraction": float(np.mean([row["comm_fraction"] for row in done])) if done else None,
            "server_wait_seconds": server_wait,
            "seconds": seconds,
        }


class _ActorPool:
    """Idle actors of this driver, kept warm between runs: a fresh node actor is a new process that imports
    NumPy, SciPy and Numba and loads the compiled kernels (seconds); a warm one starts a run in milliseconds.
    Keyed by (class, Ray node, CPUs); emptied when the driver reconnects. Idle node actors hold their CPUs, so
    a run that cannot use them kills them before it asks Ray for new ones."""

    def __init__(self):
        self.idle = {}
        self.session = None

    def take(self, ray, wanted):
        session = ray.get_runtime_context().get_job_id()
        if session != self.session:
            self.idle, self.session = {}, session
        handles = [None] * len(wanted)
        for n, (_, _, key) in enumerate(wanted):
            bucket = self.idle.get(key)
            if bucket:
                handles[n] = bucket.pop()
        if any(handle is None and key[2] > 0 for handle, (_, _, key) in zip(handles, wanted)):
            for key in [key for key in self.idle if key[2] > 0]:  # free the CPUs the unused idle actors hold
                for handle in self.idle.pop(key):
                    _kill(ray, handle)
        for n, (cls, options, _) in enumerate(wanted):
            if handles[n] is None:
                handles[n] = ray.remote(cls).options(**options).remote()
        return handles

    def give(self, key, handle):
        self.idle.setdefault(key, []).append(handle)


_POOL = _ActorPool()


def _kill(ray, handle):
    try:
        ray.kill(handle, no_restart=True)
    except Exception:  # noqa: BLE001 - already dead
        pass


def _cause(exc):
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _task_error(i, exc):
    """The error a node raised, as the user's error when it is one (divergence, a timeout), else one sentence."""
    from hogwild.errors import HogwildError

    cause = getattr(exc, "cause", None)
    if isinstance(cause, HogwildError):
        return cause
    return ClusterError(f"node {i} failed: {type(cause).__name__ if cause else 'error'}: {_cause(cause or exc)}")
