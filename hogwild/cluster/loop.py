"""`train` on a Ray cluster: the one front door with ``config.cluster`` set (kept for its name and its
``result.cluster`` convenience). The cluster runner (`hogwild.cluster.runner.ClusterRunner`) is registered in
`hogwild.runners.RUNNERS` under the "ray" backend, so `hogwild.train` and the CLI reach it the same way.
"""

from __future__ import annotations

from hogwild.engine import resolve_config
from hogwild.engine import train as engine_train
from hogwild.errors import ConfigError


def train(X, y=None, config=None, **kwargs):
    """`hogwild.train` on a Ray cluster (``config.cluster``); the same arguments and the same `TrainResult`.

    ``result.cluster`` holds the last epoch's per-node and overall counters; each history record has them too.
    """
    overrides = {k: kwargs.pop(k) for k in list(kwargs) if k in _FIELDS}
    config = resolve_config(config, overrides)
    if config.cluster is None:
        raise ConfigError("cluster", "hogwild.cluster.train needs --cluster (cluster=...): local:N, auto or HOST:PORT")
    result = engine_train(X, y, config, **kwargs)
    result.cluster = result.history[-1].get("cluster") if result.history else None
    return result


def _fields():
    import dataclasses

    from hogwild.config import TrainConfig

    return {f.name for f in dataclasses.fields(TrainConfig)}


_FIELDS = _fields()
