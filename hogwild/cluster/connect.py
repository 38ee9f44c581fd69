"""Reach a Ray cluster for ``--cluster``: start a local one (``local:N``), or join a running one (``auto``,
``HOST:PORT``). Ray is imported here and only here, lazily: ``import hogwild`` never pays for it.

Settings that SCALEOUT.md found necessary on every node:
- ``RAY_AUTH_MODE`` is set explicitly (a token left in ``~/.ray`` by an earlier run otherwise switches token
  authentication on for one node and not the other, and the joining node fails with ``InvalidAuthToken``);
- a local cluster's raylets get explicit CPU counts and object-store sizes (each would otherwise claim the
  whole host), and no dashboard;
- an address is probed with a plain TCP connection first: ``ray.init`` retries a dead address for minutes,
  printing a log line every few seconds.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from hogwild._io import available_cores
from hogwild.config import parse_cluster

from .errors import ClusterError

# Object store per raylet of a local cluster: shards are put there once; SCALEOUT.md's CI ran in ~200 MB.
LOCAL_OBJECT_STORE_BYTES = 256 * 2**20
INSTALL_HINT = "pip install 'hogwild[ray]'"


def import_ray():
    """The ``ray`` module, or a `ClusterError` saying how to install it."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--cluster needs Ray, which is not installed; install it with {INSTALL_HINT}") from None
    return ray


@dataclass
class Connection:
    """A live connection to a cluster; `close` shuts down what `connect` started (and only that)."""

    ray: object
    kind: str
    started: object = None  # the local `ray.cluster_utils.Cluster`, when we started one
    joined: bool = False  # whether `connect` called ray.init (else an existing connection was reused)
    node_ids: list = field(default_factory=list)

    def close(self):
        if self.joined:
            self.ray.shutdown()
            self.joined = False
        if self.started is not None:
            self.started.shutdown()
            self.started = None


def connect(cluster, n_nodes=None, cpus_per_node=None):
    """A `Connection` to the cluster ``cluster`` names (``local:N``, ``auto`` or ``HOST:PORT``).

    A process already connected to Ray (``ray.init`` done, as in the tests' session cluster) reuses that
    connection whatever ``cluster`` says, and leaves it open on `close`.
    """
    kind, value = parse_cluster(cluster)
    ray = import_ray()
    if ray.is_initialized():
        return Connection(ray, kind)
    if kind == "local":
        return _start_local(ray, value, cpus_per_node)
    if kind == "address":
        probe(value)
    try:
        ray.init(address=value if kind == "address" else "auto", include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    except ConnectionError as exc:
        raise ClusterError(f"--cluster {cluster}: no running Ray cluster was found ({_first_line(exc)}); start one "
                           "with `ray start --head` or use --cluster local:N") from None
    return Connection(ray, kind, joined=True)


def _start_local(ray, n_nodes, cpus_per_node):
    from ray.cluster_utils import Cluster

    cpus = int(cpus_per_node or max(1, available_cores() // n_nodes))
    args = {"num_cpus": cpus, "object_store_memory": LOCAL_OBJECT_STORE_BYTES}
    try:
        cluster = Cluster(initialize_head=True, head_node_args={**args, "include_dashboard": False})
        for _ in range(n_nodes - 1):
            cluster.add_node(**args)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
    except Exception as exc:  # noqa: BLE001 - Ray raises many kinds here; the user gets one sentence
        raise ClusterError(f"--cluster local:{n_nodes}: could not start a local Ray cluster "
                           f"({type(exc).__name__}: {_first_line(exc)})") from None
    return Connection(ray, "local", started=cluster, joined=True)


def probe(address, timeout=3.0):
    """A `ClusterError` unless something accepts TCP connections at ``address`` (HOST:PORT) within ``timeout``."""
    host, port = address.rsplit(":", 1)
    host = host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return
    except OSError as exc:
        raise ClusterError(
            f"--cluster {address}: nothing answers there ({exc.strerror or exc}); start the head with "
            f"`ray start --head --port {port}` and pass its address"
        ) from None


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
