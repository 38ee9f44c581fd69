"""What can go wrong on a cluster, as one sentence each (the CLI prints it and exits 1)."""

from __future__ import annotations

from hogwild.errors import HogwildError


class ClusterError(HogwildError, RuntimeError):
    """The cluster cannot be reached or started, a node or server was lost under ``--on-node-loss abort``, or a
    wait on the cluster ran past ``--cluster-timeout``. The message names the option or the node."""


class NodeLostWarning(UserWarning):
    """A node actor died and training continues on the others (``--on-node-loss continue``): one line."""
