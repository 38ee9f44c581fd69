"""Slow, obvious NumPy twins of the compiled linear kernels: the executable specification of every update.

Every compiled kernel in `hogwild.kernels.linear` (and its CUDA twin) must match these to ~1e-12 in float64
when given the same row order. The shared vocabulary:

* ``W``: weights, shape (n_features, n_outputs), C order; ``b``: intercept, shape (n_outputs,).
  n_outputs is 1 for binary and regression losses, K for multiclass (ovr: K binary losses; softmax: one
  cross-entropy over K scores).
* ``targets``: float64 per row; binary: -1/+1; regression: the value; multiclass: the class index 0..K-1.
* ``sample_weight``: float64 per row (class weights already folded in).
* ``params``: the dict built by `hogwild.kernels.linear.kernel_params` with keys ``loss`` (a name),
  ``multiclass`` ("binary" | "ovr" | "softmax"), ``epsilon``, ``clip`` (0 = off), ``fit_intercept``,
  ``intercept_decay`` (the intercept's step multiplier), ``l2``, ``l1``, ``schedule``, ``lr``, ``epoch_factor``
  (decay**epoch), ``t0``, ``power_t``, ``normalizer`` (`naive_normalizer`), ``average_start`` (ASGD's first
  averaged step, 1-based; 0 = off), ``ftrl_beta``.
* ``inv_freq[j] = n_rows / (rows whose feature j is non-zero)`` (0 for features that never occur).
* ``scale[j]``: the normalized schedule's largest |x_j| (`naive_feature_scales`).

The objective all modes share (the Hogwild! paper's decomposition of the penalty over examples)::

    F(W, b) = (1/n) sum_i s_i loss(x_i W + b, y_i) + l2/2 ||W||^2 + l1 |W|_1

For a uniformly drawn row, shrinking only its non-zero coordinates by ``eta * l2 * inv_freq[j]`` has
expectation ``eta * l2 * W[j]``: the gradient of the L2 term, without touching coordinates the row does not own
(which is what makes the update safe without locks). We use this same rule in serial, sync, average, locked
and async modes, so that every mode (and the CUDA kernels) optimize one objective.

ONE ROW (``serial``; ``async``/``average``/``locked`` run the same rule per worker)::

    eta   = schedule(t)                              # t counts rows (global step), see `naive_eta`
    p     = x W + b                                  # scores, shape (K,)
    d     = dloss(p, y), clipped to [-clip, clip]    # see `naive_loss`
    g     = s * d
    u    += l1 * eta * t_stride                      # Tsuruoka's cumulative L1 penalty (t_stride=1 serially)
    for each non-zero (j, x_j) of the row, for each output k:
        if schedule == adagrad:
            grad       = g[k] x_j + l2 inv_freq[j] W[j,k]
            acc[j,k]  += grad^2
            W[j,k]    -= lr grad / (sqrt(acc[j,k]) + ADAGRAD_EPS)
        elif schedule == normalized:                 # Ross, Mineiro & Langford (2013)
            grad       = g[k] x_j + l2 inv_freq[j] W[j,k]
            acc[j,k]  += grad^2
            W[j,k]    -= lr normalizer grad / (scale[j] (sqrt(acc[j,k]) + ADAGRAD_EPS scale[j]))
        elif schedule == ftrl:                       # FTRL-Proximal (McMahan et al. 2013), alpha = lr
            gi = g[k] x_j;  n' = acc[j,k] + gi^2
            z[j,k]    += gi - (sqrt(n') - sqrt(acc[j,k])) / lr W[j,k];  acc[j,k] = n'
            W[j,k]     = 0 if |z| <= l1 (t+1), else -(z - sign(z) l1 (t+1)) / ((beta + sqrt(n')) / lr + l2 (t+1))
        else:
            W[j,k]     = W[j,k] max(0, 1 - eta l2 inv_freq[j]) - eta g[k] x_j
        if l1 > 0 and schedule != ftrl: cumulative-penalty clip of W[j,k] toward 0 (see `_apply_l1`)
    if fit_intercept: b[k] -= intercept_decay eta g[k]  (adagrad: intercept_decay lr g[k] / (sqrt(acc_b[k]) + eps);
                      normalized: the same with lr normalizer; ftrl: the ftrl rule at alpha = intercept_decay lr,
                      without penalties)
    t += t_stride
    ASGD (average_start > 0): once t (1-based, after the step) >= average_start, the running mean of the iterates,
        m = t - average_start + 1;  avg_W += (W - avg_W) / m;  avg_b += (b - avg_b) / m   (every coordinate)

FTRL's penalties grow with the step, l1 (t+1) and l2 (t+1): FTRL regularizes the SUM of the t losses it has
seen, so a per-example strength (the objective's) is t times that. The normalized schedule's ``normalizer`` is
``1 / sqrt(mean_i sum_j (x_ij / scale_j)^2 (+1 for the intercept))``.

ONE MINI-BATCH (``sync``, B rows split into n_workers contiguous slices)::

    eta = schedule(t)                                # t counts mini-batch steps here
    G[j,k] = sum over workers w of scale_w * sum_{rows i of slice w} g_i[k] x_ij
             scale_w = 1 / |batch|                  (aggregate="weighted")
             scale_w = 1 / (n_nonempty_workers |slice w|)   (aggregate="mean")
    C[j]   = number of rows of the batch whose feature j is non-zero
    gb[k]  = same aggregation of g_i[k]
    u += l1 * eta
    for each j touched by the batch, each k:
        r = l2 inv_freq[j] C[j] / |batch|
        adagrad: grad = G[j,k] + r W[j,k]; acc += grad^2; W -= lr grad / (sqrt(acc) + ADAGRAD_EPS)
        normalized, ftrl: as for one row, with G[j,k] for g[k] x_j and the batch step t
        else:    W[j,k] = W[j,k] max(0, 1 - eta r) - eta G[j,k]
        l1: as above
    b[k] -= eta gb[k]  (adagrad: acc_b)
    t += 1;  ASGD: as above, over mini-batch steps

With batch_size=1 and one worker, sync is serial (up to rounding).

AVERAGE (``average``, T replicas; see `naive_epoch_average`)::

    each replica starts as a copy of (W, b, acc, z) and runs the one-row rule over its contiguous shard of the
    epoch's order, its k-th row at global step t + k T + w, with lr times gain (gain = T; FTRL: 1)
    every average_every rows (and at the epoch's end) the replicas merge:
        W, b       = mean over replicas
        acc, z     = start + sum over replicas of (replica - start)   # statistics of the rows seen

This module is the independent statement of the arithmetic: it does not call the compiled functions of
`hogwild.kernels.arithmetic` (which the CPU and CUDA kernels share), it restates them. It reads only the names
of `hogwild.kernels.codes` (a variant here is a name, as in the ``params`` dict), and its tables name every
loss, schedule and multiclass rule the kernels have codes for (tests/test_arithmetic.py checks that).
"""

from __future__ import annotations

import math

import numpy as np

ADAGRAD_EPS = 1e-8

# The step size at global step t (0-based) of each schedule; adagrad's global rate is lr (it scales per coordinate).
NAIVE_SCHEDULES = {
    "constant": lambda params, t: params["lr"],
    "adagrad": lambda params, t: params["lr"],
    "decay": lambda params, t: params["lr"] * params["epoch_factor"],
    "invscaling": lambda params, t: params["lr"] / (t + 1.0) ** params["power_t"],
    "optimal": lambda params, t: params["lr"] / (params["l2"] * (params["t0"] + t)),
    # scikit-learn's "adaptive": constant within an epoch (the epoch loop divides lr by 5 when the loss stalls)
    "adaptive": lambda params, t: params["lr"],
    # per-coordinate: their global rate is lr
    "normalized": lambda params, t: params["lr"],
    "ftrl": lambda params, t: params["lr"],
}
MULTICLASS_RULES = ("binary", "ovr", "softmax")


def naive_eta(params, t):
    """The step size at global step ``t`` (0-based) for every schedule but adagrad (where it is ``lr``)."""
    schedule = params["schedule"]
    if schedule not in NAIVE_SCHEDULES:
        raise ValueError(schedule)
    return NAIVE_SCHEDULES[schedule](params, t)


def naive_loss(params, scores, y):
    """(loss, dloss/dscores) of one row, before clipping; ``scores`` has shape (K,)."""
    loss, multiclass, eps = params["loss"], params["multiclass"], params["epsilon"]
    K = scores.shape[0]
    if multiclass == "softmax":
        c = int(y)
        shifted = scores - scores.max()
        proba = np.exp(shifted) / np.exp(shifted).sum()
        d = proba.copy()
        d[c] -= 1.0
        return -math.log(max(proba[c], 1e-300)), d
    if multiclass == "ovr":
        labels = np.where(np.arange(K) == int(y), 1.0, -1.0)
    elif multiclass == "binary":
        labels = np.array([y], dtype=np.float64)
    else:
        raise ValueError(multiclass)
    total, d = 0.0, np.zeros(K)
    for k in range(K):
        value, d[k] = _binary_or_regression(loss, scores[k], labels[k], eps)
        total += value
    return total, d


def _log_loss(p, y, eps):
    z = p * y
    if z > 18.0:
        return math.exp(-z), -y * math.exp(-z)
    if z < -18.0:
        return -z, -y
    return math.log1p(math.exp(-z)), -y / (1.0 + math.exp(z))


def _margin_loss(threshold):
    """hinge (threshold 1) and perceptron (threshold 0): max(0, threshold - p y)."""

    def loss(p, y, eps):
        z = p * y
        return (threshold - z, -y) if z <= threshold else (0.0, 0.0)

    return loss


def _squared_hinge(p, y, eps):
    z = 1.0 - p * y
    return (z * z, -2.0 * y * z) if z > 0 else (0.0, 0.0)


def _modified_huber(p, y, eps):
    z = p * y
    if z >= 1.0:
        return 0.0, 0.0
    if z >= -1.0:
        return (1.0 - z) ** 2, -2.0 * y * (1.0 - z)
    return -4.0 * z, -4.0 * y


def _squared_error(p, y, eps):
    r = p - y
    return 0.5 * r * r, r


def _huber(p, y, eps):
    r = p - y
    if abs(r) <= eps:
        return 0.5 * r * r, r
    return eps * abs(r) - 0.5 * eps * eps, eps if r > 0 else -eps


def _epsilon_insensitive(p, y, eps):
    r = y - p
    if r > eps:
        return r - eps, -1.0
    if -r > eps:
        return -r - eps, 1.0
    return 0.0, 0.0


# (loss, dloss/dp) of one score p against a binary (y = -1/+1) or regression target, by the loss's name.
NAIVE_LOSSES = {
    "log_loss": _log_loss,
    "hinge": _margin_loss(1.0),
    "squared_hinge": _squared_hinge,
    "modified_huber": _modified_huber,
    "perceptron": _margin_loss(0.0),
    "squared_error": _squared_error,
    "huber": _huber,
    "epsilon_insensitive": _epsilon_insensitive,
}


def _binary_or_regression(loss, p, y, eps):
    if loss not in NAIVE_LOSSES:
        raise ValueError(loss)
    return NAIVE_LOSSES[loss](p, y, eps)


def _scores(W, b, cols, vals):
    """x W + b, summed left to right from zero and then offset by b (the kernels' order of additions)."""
    total = np.zeros(W.shape[1])
    for j, x in zip(cols, vals):
        total += x * W[j]
    return total + b


def _apply_l1(W, q, j, k, u):
    """Tsuruoka et al. (2009): pull W[j,k] toward 0 by what it is owed of the total penalty u, never across 0."""
    z = W[j, k]
    if z > 0.0:
        W[j, k] = max(0.0, z - (u + q[j, k]))
    elif z < 0.0:
        W[j, k] = min(0.0, z + (u - q[j, k]))
    q[j, k] += W[j, k] - z


def naive_feature_scales(X):
    """Each column's largest |value| (1 for a column that is absent or all zero): the normalized schedule's scale."""
    scales = np.abs(X).max(axis=0)
    scales = np.asarray(scales.todense() if hasattr(scales, "todense") else scales, dtype=np.float64).ravel()
    return np.where(scales > 0, scales, 1.0)


def naive_normalizer(X, scales, sample_weight, fit_intercept):
    """``1 / sqrt(weighted mean over rows of sum_j (x_ij / scale_j)^2, plus 1 for a fitted intercept)``."""
    dense = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    norms = ((dense / scales) ** 2).sum(axis=1)
    weights = np.broadcast_to(np.asarray(sample_weight, dtype=np.float64), norms.shape)
    mean = float((weights * norms).sum() / weights.sum()) + (1.0 if fit_intercept else 0.0)
    return 1.0 / math.sqrt(mean) if mean > 0 else 1.0


class NaiveExtras:
    """The state some schedules and ASGD add: ftrl's z (``z_W``, ``z_b``), the normalized schedule's ``scale``,
    and ASGD's running means of the iterates (``avg_W``, ``avg_b``: the averaged model itself)."""

    def __init__(self, W, b, scale=None):
        self.z_W, self.z_b = np.zeros_like(W), np.zeros_like(b)
        self.avg_W, self.avg_b = np.zeros_like(W), np.zeros_like(b)
        self.scale = scale

    def average(self, W, b, step, params):
        """After step ``step`` (1-based): fold the iterate into the running mean once averaging has begun."""
        start = params.get("average_start", 0.0)
        if start > 0 and step >= start:
            m = step - start + 1.0
            self.avg_W += (W - self.avg_W) / m
            self.avg_b += (b - self.avg_b) / m


def naive_epoch_serial(X, targets, sample_weight, row_order, W, b, acc_W, acc_b, q_l1, inv_freq, params, t_start,
                       u_start, extras=None):
    """Run the one-row rule over ``row_order`` (in place on W, b, acc_W, acc_b, q_l1 and ``extras``, a
    `NaiveExtras` for the normalized and ftrl schedules and ASGD).

    Returns ``(t_end, u_end, loss_sum, weight_sum)``: the step counter and cumulative L1 penalty after the
    pass, and the sample-weighted sum of the per-row losses seen before each update (progressive loss).
    """
    indptr, indices, data = X.indptr, X.indices, X.data
    extras = extras if extras is not None else NaiveExtras(W, b)
    t, u = float(t_start), float(u_start)
    clip = params["clip"]
    cumulative_l1 = params["l1"] > 0 and params["schedule"] != "ftrl"
    loss_sum = weight_sum = 0.0
    for i in row_order:
        cols = indices[indptr[i] : indptr[i + 1]]
        vals = data[indptr[i] : indptr[i + 1]].astype(np.float64)
        eta = naive_eta(params, t)
        scores = _scores(W, b, cols, vals)
        value, d = naive_loss(params, scores, targets[i])
        if clip > 0:
            d = np.clip(d, -clip, clip)
        s = sample_weight[i]
        g = s * d
        loss_sum += s * value
        weight_sum += s
        if cumulative_l1:
            u += params["l1"] * eta
        for j, x in zip(cols, vals):
            for k in range(W.shape[1]):
                _update_coordinate(W, acc_W, j, k, g[k] * x, params["l2"] * inv_freq[j], eta, params, extras, t + 1.0)
                if cumulative_l1:
                    _apply_l1(W, q_l1, j, k, u)
        if params["fit_intercept"]:
            _update_intercept(b, acc_b, g, eta, params, extras)
        t += 1.0
        extras.average(W, b, t, params)
    return t, u, loss_sum, weight_sum


def naive_epoch_average(X, targets, sample_weight, row_order, W, b, acc_W, acc_b, inv_freq, params, t_start, bounds,
                        quota, average_every, extras):
    """Average mode over ``row_order`` with ``len(bounds) - 1`` replicas (in place on W, b, acc_W, acc_b and
    ``extras``' z): rounds in which each replica takes up to ``quota`` rows of its shard ``bounds[w]:bounds[w+1]``,
    a merge once ``average_every`` rows have passed since the last, and at the end. No cumulative L1 (its
    per-worker totals are the runner's bookkeeping). Returns t_end."""
    T = len(bounds) - 1
    gain = 1.0 if params["schedule"] == "ftrl" else float(T)
    replica_params = {**params, "lr": params["lr"] * gain}
    start = {"W": W, "b": b, "acc_W": acc_W, "acc_b": acc_b, "z_W": extras.z_W, "z_b": extras.z_b}
    replicas = []
    for _ in range(T):
        copy = {name: array.copy() for name, array in start.items()}
        extra = NaiveExtras(copy["W"], copy["b"], extras.scale)
        extra.z_W, extra.z_b = copy["z_W"], copy["z_b"]
        replicas.append((copy, extra))
    position = [0] * T
    rows_since_merge = 0
    n = len(row_order)
    while sum(position) < n:
        for w, (copy, extra) in enumerate(replicas):
            lo = bounds[w] + position[w]
            hi = min(bounds[w + 1], lo + quota)
            for p in range(lo, hi):
                naive_epoch_serial(X, targets, sample_weight, [row_order[p]], copy["W"], copy["b"], copy["acc_W"],
                                   copy["acc_b"], np.zeros((0, 1)), inv_freq, replica_params,
                                   t_start + (p - bounds[w]) * T + w, 0.0, extra)
            position[w] += hi - lo
            rows_since_merge += hi - lo
        if rows_since_merge >= average_every or sum(position) >= n:
            for name, array in start.items():
                stacked = np.stack([copy[name] for copy, _ in replicas])
                if name in ("W", "b"):
                    array[...] = stacked.mean(axis=0)
                else:
                    array[...] = array + (stacked - array[None]).sum(axis=0)
            for copy, _ in replicas:
                for name, array in start.items():
                    copy[name][...] = array
            rows_since_merge = 0
    return t_start + n


def _ftrl(weight, acc, z, gradient, alpha, beta, l1, l2):
    """One FTRL-Proximal step of a coordinate: the new (weight, acc, z)."""
    n_after = acc + gradient * gradient
    z = z + gradient - (math.sqrt(n_after) - math.sqrt(acc)) / alpha * weight
    if abs(z) <= l1:
        return 0.0, n_after, z
    return -(z - math.copysign(l1, z)) / ((beta + math.sqrt(n_after)) / alpha + l2), n_after, z


def _update_coordinate(W, acc_W, j, k, gradient, reg, eta, params, extras=None, step=None):
    """One coordinate's step; ``step`` is the 1-based step (FTRL's penalties grow with it)."""
    schedule = params["schedule"]
    if schedule == "adagrad":
        grad = gradient + reg * W[j, k]
        acc_W[j, k] += grad * grad
        W[j, k] -= params["lr"] * grad / (math.sqrt(acc_W[j, k]) + ADAGRAD_EPS)
    elif schedule == "normalized":
        grad = gradient + reg * W[j, k]
        acc_W[j, k] += grad * grad
        scale = extras.scale[j]
        rate = params["lr"] * params["normalizer"]
        W[j, k] -= rate * grad / (scale * (math.sqrt(acc_W[j, k]) + ADAGRAD_EPS * scale))
    elif schedule == "ftrl":
        W[j, k], acc_W[j, k], extras.z_W[j, k] = _ftrl(W[j, k], acc_W[j, k], extras.z_W[j, k], gradient, params["lr"],
                                                       params["ftrl_beta"], params["l1"] * step, params["l2"] * step)
    else:
        W[j, k] = W[j, k] * max(0.0, 1.0 - eta * reg) - eta * gradient


def _update_intercept(b, acc_b, g, eta, params, extras=None):
    decay = params.get("intercept_decay", 1.0)
    schedule = params["schedule"]
    for k in range(b.shape[0]):
        if schedule in ("adagrad", "normalized"):
            rate = params["lr"] * (params["normalizer"] if schedule == "normalized" else 1.0)
            acc_b[k] += g[k] * g[k]
            b[k] -= decay * rate * g[k] / (math.sqrt(acc_b[k]) + ADAGRAD_EPS)
        elif schedule == "ftrl":
            b[k], acc_b[k], extras.z_b[k] = _ftrl(b[k], acc_b[k], extras.z_b[k], g[k], decay * params["lr"],
                                                  params["ftrl_beta"], 0.0, 0.0)
        else:
            b[k] -= decay * eta * g[k]


def naive_epoch_sync(
    X, targets, sample_weight, row_order, W, b, acc_W, acc_b, q_l1, inv_freq, params, t_start, u_start,
    batch_size, n_workers, aggregate, extras=None,
):
    """Run the mini-batch rule over ``row_order`` in batches of ``batch_size`` split over ``n_workers``.

    Returns ``(t_end, u_end, loss_sum, weight_sum)``; ``t`` counts mini-batch steps.
    """
    indptr, indices, data = X.indptr, X.indices, X.data
    extras = extras if extras is not None else NaiveExtras(W, b)
    K = W.shape[1]
    t, u = float(t_start), float(u_start)
    clip = params["clip"]
    cumulative_l1 = params["l1"] > 0 and params["schedule"] != "ftrl"
    loss_sum = weight_sum = 0.0
    n = len(row_order)
    for start in range(0, n, batch_size):
        batch = row_order[start : min(n, start + batch_size)]
        size = len(batch)
        eta = naive_eta(params, t)
        slices = [batch[(w * size) // n_workers : ((w + 1) * size) // n_workers] for w in range(n_workers)]
        nonempty = sum(1 for rows in slices if len(rows))
        G = np.zeros_like(W)
        C = np.zeros(W.shape[0])
        gb = np.zeros(K)
        for rows in slices:
            if not len(rows):
                continue
            scale = 1.0 / size if aggregate == "weighted" else 1.0 / (nonempty * len(rows))
            G_w = np.zeros_like(W)
            gb_w = np.zeros(K)
            for i in rows:
                cols = indices[indptr[i] : indptr[i + 1]]
                vals = data[indptr[i] : indptr[i + 1]].astype(np.float64)
                scores = _scores(W, b, cols, vals)
                value, d = naive_loss(params, scores, targets[i])
                if clip > 0:
                    d = np.clip(d, -clip, clip)
                s = sample_weight[i]
                g = s * d
                loss_sum += s * value
                weight_sum += s
                G_w[cols] += np.outer(vals, g)
                C[cols] += 1.0
                gb_w += g
            G += G_w * scale
            gb += gb_w * scale
        if cumulative_l1:
            u += params["l1"] * eta
        for j in np.flatnonzero(C):
            reg = params["l2"] * inv_freq[j] * C[j] / size
            for k in range(K):
                _update_coordinate(W, acc_W, j, k, G[j, k], reg, eta, params, extras, t + 1.0)
                if cumulative_l1:
                    _apply_l1(W, q_l1, j, k, u)
        if params["fit_intercept"]:
            _update_intercept(b, acc_b, gb, eta, params, extras)
        t += 1.0
        extras.average(W, b, t, params)
    return t, u, loss_sum, weight_sum


def naive_objective(X, targets, sample_weight, W, b, params):
    """F(W, b) = (1/n) sum_i s_i loss_i + l2/2 ||W||^2 + l1 |W|_1, in float64."""
    scores = np.asarray(X @ W, dtype=np.float64) + b
    total = 0.0
    for i in range(scores.shape[0]):
        value, _ = naive_loss(params, scores[i], targets[i])
        total += sample_weight[i] * value
    n = scores.shape[0]
    return total / n + 0.5 * params["l2"] * float(np.sum(W * W)) + params["l1"] * float(np.sum(np.abs(W)))
