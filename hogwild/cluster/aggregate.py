"""The arithmetic of combining nodes' models, as plain NumPy functions (no Ray): what the cluster's server
actors, the discrete-event simulator and the reference tests all call.

Two families:

- Model averaging (``--cross-node average``, local SGD / federated averaging): every node trains its own
  replica for a round, then the replicas are combined into one model that every node continues from.
  `combine` does it by one of three rules (``--aggregate``):

  ``mean``       the plain mean of the replicas;
  ``weighted``   weighted by the rows each node trained in the round (WAG: a node that saw three times the rows
                 counts three times; with even shards it equals the mean);
  ``adagrad``    per coordinate, weighted by each node's AdaGrad sum of squared gradients for that coordinate,
                 as Vowpal Wabbit's allreduce does (``accumulate_weighted_avg`` in its gd.cc): a node that never
                 saw a feature has a zero sum there and does not drag that weight back towards its stale value.

  The optimizer state (the AdaGrad sums) is combined by the same weights, except under ``adagrad``, where VW
  keeps the sums' self-weighted mean ``sum_i g_i**2 / sum_i g_i``.

- The parameter server (``--cross-node ps``, Downpour SGD, Dean et al. 2012): a node pushes the change of its
  weights since its last pull (`row_delta` encodes it as the rows that changed) and the server adds it, scaled
  per coordinate by `row_staleness_scale`: ``1 / (1 + s_r)``, where ``s_r`` counts the other pushes that wrote
  row r of W after the node pulled it (Zhang, Gupta, Lian & Liu, "Staleness-aware Async-SGD", IJCAI 2016,
  divide the step by the staleness, which in their count includes the update itself; here it is counted per
  feature, since on sparse data most features are written by few nodes). A change nobody overtook is applied
  whole; a feature all N nodes write in step is damped by about 1/N. The intercept, written by every push,
  takes the push's whole staleness (`staleness_scale`). Summing unscaled deltas (what SCALEOUT.md's prototype
  did) tracked serial SGD on a9a with 2 nodes but lost 0.7 points on news20 (softmax) and diverged with 4 nodes
  on a9a in the simulator (`hogwild.cluster.simulate`); the damped rule held those within 0.1-0.5 point. At 16
  nodes on an rcv1-shaped set, whose informative features are the popular ones, damping costs about 1/N of the
  progress per epoch, and the plain sum (``--ps-step sum``) reached serial accuracy in 6 epochs where damping
  did not (docs/scaling.md).
  AdaGrad sums are statistics of gradients, not steps: their deltas are added unscaled.

Every function computes in float64 and writes results in the target's dtype.
"""

from __future__ import annotations

import numpy as np

RULES = ("mean", "weighted", "adagrad")
# The names of the arrays a linear model's replica has: weights, intercepts, and their AdaGrad sums (zero-size
# when the schedule is not AdaGrad).
PARAMETERS = ("W", "b", "acc_W", "acc_b")
# Which AdaGrad sum weighs which parameter under the adagrad rule.
SUM_OF = {"W": "acc_W", "b": "acc_b"}


def mean(arrays):
    """The element-wise mean of equally shaped arrays, in float64."""
    return np.mean(np.stack([np.asarray(a, dtype=np.float64) for a in arrays]), axis=0)


def weighted_mean(arrays, weights):
    """``sum_i weights[i] * arrays[i] / sum_i weights[i]`` in float64; the plain mean when the weights sum to 0."""
    weights = np.asarray(weights, dtype=np.float64)
    total = float(weights.sum())
    if not total > 0:
        return mean(arrays)
    out = np.zeros(np.shape(arrays[0]), dtype=np.float64)
    for weight, array in zip(weights, arrays):
        if weight:
            out += (weight / total) * np.asarray(array, dtype=np.float64)
    return out


def coordinate_weighted_mean(arrays, sums):
    """Per coordinate ``sum_i sums[i] * arrays[i] / sum_i sums[i]`` (VW's AdaGrad-weighted average), in float64.

    Where no node has a positive sum (a coordinate nobody touched), the plain mean is kept.
    """
    stacked = np.stack([np.asarray(a, dtype=np.float64) for a in arrays])
    weights = np.stack([np.asarray(s, dtype=np.float64) for s in sums])
    total = weights.sum(axis=0)
    plain = stacked.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        weighted = (weights * stacked).sum(axis=0) / total
    return np.where(total > 0, weighted, plain)


def self_weighted_sums(sums):
    """VW's combined AdaGrad sums: per coordinate ``sum_i g_i**2 / sum_i g_i`` (0 where all are 0)."""
    stacked = np.stack([np.asarray(s, dtype=np.float64) for s in sums])
    total = stacked.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        combined = (stacked * stacked).sum(axis=0) / total
    return np.where(total > 0, combined, 0.0)


def combine(replicas, rows, rule):
    """One model from the nodes' replicas: a dict of the `PARAMETERS` present, each in its input dtype.

    ``replicas``: one dict of arrays per node (``W``, ``b`` and, under AdaGrad, ``acc_W``, ``acc_b``);
    ``rows``: the rows each node trained since the last combination (the ``weighted`` rule's weights);
    ``rule``: one of `RULES`.
    """
    if rule not in RULES:
        raise ValueError(f"unknown aggregation rule {rule!r}; expected one of {', '.join(RULES)}")
    if not replicas:
        raise ValueError("combine needs at least one replica")
    names = [name for name in PARAMETERS if name in replicas[0]]
    out = {}
    for name in names:
        arrays = [replica[name] for replica in replicas]
        dtype = np.asarray(arrays[0]).dtype
        if np.asarray(arrays[0]).size == 0:
            out[name] = np.asarray(arrays[0]).copy()
            continue
        if rule == "mean":
            value = mean(arrays)
        elif rule == "weighted":
            value = weighted_mean(arrays, rows)
        elif name in SUM_OF:
            sums = [replica.get(SUM_OF[name]) for replica in replicas]
            if any(s is None or np.asarray(s).size == 0 for s in sums):
                raise ValueError("the adagrad rule needs each node's AdaGrad sums (acc_W, acc_b)")
            value = coordinate_weighted_mean(arrays, sums)
        else:
            value = self_weighted_sums(arrays)
        out[name] = value.astype(dtype, copy=False)
    return out


def staleness_scale(staleness):
    """The factor a push's delta is scaled by on the server: ``1 / (1 + staleness)`` (``staleness``: the other
    nodes' pushes applied between the node's pull and its push)."""
    return 1.0 / (1.0 + max(0.0, float(staleness)))


def row_staleness_scale(touched_now, touched_seen):
    """Per-row step factors ``1 / (1 + s_r)``, where ``s_r`` is how many pushes touched row r between the node's
    pull and its push: the server's push counters of those rows now, minus the counters the node pulled with
    its weights (both uint32; the difference is taken modulo 2**32, so the counters may wrap).

    The per-coordinate form of `staleness_scale`: on sparse data a feature that only this node's shard holds is
    never stale and its change is applied whole, while a feature every node writes is damped by about 1/N.
    """
    now = np.asarray(touched_now, dtype=np.uint32)
    seen = np.asarray(touched_seen, dtype=np.uint32)
    stale = (now - seen).astype(np.float64)  # uint32 arithmetic wraps, as the counters do
    return 1.0 / (1.0 + stale)


def row_delta(current, base):
    """The change ``current - base`` of a (d, K) array as ``(rows, values)``: the int32 indices of the rows that
    changed and those rows' differences (in float64). Hogwild! on sparse data touches few rows per round, so
    this is what a node sends; `dense_size` says when sending everything would be smaller."""
    current = np.asarray(current)
    base = np.asarray(base)
    difference = current.astype(np.float64) - base.astype(np.float64)
    if difference.ndim == 1:
        difference = difference[:, None]
    changed = np.flatnonzero(np.any(difference != 0, axis=1)).astype(np.int32)
    return changed, difference[changed]


def union_rows(*row_sets):
    """The sorted int32 union of several row index arrays."""
    sets = [np.asarray(r, dtype=np.int32) for r in row_sets if r is not None and len(r)]
    if not sets:
        return np.zeros(0, dtype=np.int32)
    return np.unique(np.concatenate(sets)).astype(np.int32)


def apply_rows(target, rows, values, scale=1.0):
    """``target[rows] += scale * values`` in place (float64 arithmetic, stored in the target's dtype); ``scale``
    is one number or one per row."""
    if len(rows) == 0:
        return target
    view = target.reshape(target.shape[0], -1) if target.ndim > 1 else target.reshape(-1, 1)
    scale = np.asarray(scale, dtype=np.float64)
    if scale.ndim == 1:
        scale = scale[:, None]
    updated = view[rows].astype(np.float64) + scale * np.asarray(values, dtype=np.float64).reshape(len(rows), -1)
    view[rows] = updated.astype(target.dtype)
    return target


def apply_dense(target, delta, scale=1.0):
    """``target += scale * delta`` in place (float64 arithmetic, stored in the target's dtype)."""
    if target.size:
        target[...] = (target.astype(np.float64) + scale * np.asarray(delta, dtype=np.float64)).astype(target.dtype)
    return target


def nbytes(*arrays):
    """Bytes of the arrays' payloads (what a message carries, ignoring framing)."""
    return int(sum(np.asarray(a).nbytes for a in arrays if a is not None))
