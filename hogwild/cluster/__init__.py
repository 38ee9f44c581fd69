"""Training across machines on a Ray cluster (``--cluster``): Hogwild! threads inside each node, a parameter
server (``--cross-node ps``, Downpour SGD) or synchronous model averaging (``--cross-node average``) across them.

Modules, each with one job:
  aggregate  the arithmetic of combining nodes (mean, by rows, by AdaGrad sums; staleness-scaled pushes), NumPy
  shard      a node's shard trained by the one-machine engine, syncing every K rows
  server     the parameter-server shard and averager actors
  node       the node actor
  connect    start (local:N) or join (auto, HOST:PORT) a Ray cluster; Ray is imported only there
  runner     the driver: placement, epochs, progress, node loss, snapshots; the engine's runner for --cluster
             (registered in hogwild.runners.RUNNERS under the "ray" backend)
  loop       `train`: the front door with --cluster set (and ``result.cluster``)
  simulate   a discrete-event simulator of the same arithmetic on virtual clocks, to 100 nodes

Ray is an optional extra (``pip install 'hogwild[ray]'``); `aggregate`, `shard` and `simulate` run without it.
"""


def train(*args, **kwargs):
    """`hogwild.cluster.loop.train`: `hogwild.train` on a Ray cluster (``cluster=...``)."""
    from .loop import train as cluster_train

    return cluster_train(*args, **kwargs)
