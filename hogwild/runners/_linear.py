"""What the linear runners (CPU and CUDA) share: the data in kernel form, the training state, the model.

`LinearData` turns a `hogwild.problem.Problem` into what the linear kernels read: canonical CSR (int32 or int64
``indptr`` as given, data in the weights' type), targets encoded in the weights' type (-1/+1, the class index,
or the regression value), one weight per row or one for all rows, and the inverse row frequency of every
feature (the Hogwild! paper's L2 scaling). `LinearState` is everything a checkpoint holds.

Memory. Beyond the data, training holds the model, the optimizer's per-coordinate state, ``inv_freq`` and the
setup pass's sums of squares (one float each per feature; the pass itself two slices of three arrays per
feature), per-worker scratch (``sync``: buffers of n_features per worker; ``average``: replicas) and the block
order; ``tests/test_memory.py`` measures it with tracemalloc.
"""

from __future__ import annotations

import numpy as np

from .._inputs import as_csr
from ..errors import CheckpointError, ConfigError, DataError
from ..models import LinearModel
from ._setup import scan_features


class LinearData:
    """The training rows as the linear kernels read them, and the facts derived from the labels."""

    def __init__(self, problem, config):
        self.dtype = np.dtype(config.dtype)
        # canonical form and finite values are checked by the setup pass below, which reads the rows anyway
        self.csr = as_csr(problem.X, self.dtype, check_finite=False, check_canonical=False)
        self.csr.sparse_input = problem.sparse_input
        self.classes = problem.classes
        if problem.classes is None:
            self.multiclass, self.n_outputs = "binary", 1
        elif problem.classes.size == 2:
            self.multiclass, self.n_outputs = "binary", 1
        else:
            self.multiclass, self.n_outputs = config.multiclass, int(problem.classes.size)
            if self.multiclass == "softmax" and config.loss != "log_loss":
                raise ConfigError("multiclass", f"--multiclass softmax needs --loss log_loss; got {config.loss}")
        self.targets = self._encode(problem.labels)
        # One weight per row, or a single weight for all rows when the user gave none (no O(rows) array of ones;
        # the kernels read `sample_weight[0]` then).
        weights = np.ones(1) if problem.sample_weight is None else problem.sample_weight
        self.sample_weight = np.ascontiguousarray(weights, dtype=np.float64)
        self.stats = scan_features(self.csr, self.sample_weight, problem.row_ids)
        if self.stats is None:  # rows not in canonical form: sort them (a copy) and read them again
            self.csr = as_csr(self.csr, self.dtype, check_finite=False)  # (keeps the CSR's sparse_input)
            self.stats = scan_features(self.csr, self.sample_weight, problem.row_ids)
            if self.stats is None:
                raise DataError("X's rows are still not in canonical form after sorting them; this is a bug")
        self.inv_freq = self.stats.inverse_row_frequency()
        self.intercept_decay = config.effective_intercept_decay(self.csr.sparse_input)
        # The normalized schedule's per-feature scales (largest |x_j|) and its rate factor (`FeatureStats`).
        self.fit_intercept = bool(config.fit_intercept)
        self.scale = self.stats.scales(self.dtype) if config.effective_schedule == "normalized" else None
        self.normalizer = 1.0 if self.scale is None else self.stats.rate_normalizer(self.scale, self.fit_intercept)
        self.stats.keep_sums_only()

    def _encode(self, labels):
        """The kernels' targets, in the weights' type: -1/+1 (binary), the class index, or the regression target."""
        if self.classes is None:
            return np.ascontiguousarray(labels, dtype=self.dtype)
        # chunk by chunk, so that no temporary of a byte or more per row outlives a chunk
        targets = np.empty(labels.shape[0], dtype=self.dtype)
        for start in range(0, labels.shape[0], 1 << 14):
            part, out = labels[start : start + (1 << 14)], targets[start : start + (1 << 14)]
            if self.multiclass == "binary":
                # 0/1 straight into the targets, -1/+1 once all are in: 10x faster than np.where's copies
                np.equal(part, self.classes[1], out=out, casting="unsafe")
            else:
                out[:] = np.searchsorted(self.classes, part)
        if self.multiclass == "binary":
            targets *= 2
            targets -= 1
        return targets

    def params(self, config, epoch, lr=None):
        """The readable dict of one epoch's update parameters (`hogwild.kernels.linear.kernel_params`).

        ``lr`` is the loop's rate for the epoch. Only ``schedule="adaptive"`` takes it as the kernels' base rate
        (the loop lowers it as the loss stalls); every other schedule's per-epoch and per-row factors are the
        kernels' own, applied to the config's rate (`TrainConfig.rate`).
        """
        from hogwild.kernels.linear import kernel_params

        base = lr if lr is not None and config.effective_schedule == "adaptive" else None
        return kernel_params(config, epoch, self.multiclass, self.intercept_decay, base, self.normalizer,
                             self.n_outputs)

    def l2_factors(self, l2):
        """``l2 * inv_freq`` in the weights' type: each feature's L2 factor as the one-output and sync kernels read
        it (precomputed, so that no non-zero pays for the multiplication or a conversion)."""
        return (l2 * self.inv_freq).astype(self.dtype)

    def use_scale(self, scale):
        """Train with the per-feature scales ``scale`` (a continued run's, merged with this data's): the rate
        factor follows them."""
        self.scale = scale
        self.normalizer = self.stats.rate_normalizer(scale, self.fit_intercept)


def check_linear_config(config):
    """Options a linear model cannot honour."""
    schedule = config.effective_schedule
    if schedule in ("adagrad", "normalized") and config.l1_strength > 0:
        raise ConfigError("schedule", f"--schedule {schedule} cannot be combined with an L1 penalty (--l1); use "
                                      "--schedule ftrl (or auto), whose closed-form L1 step gives exact zeros")


class LinearState:
    """The training state of a linear model mid-run: weights, optimizer state, counters.

    ``W`` (n_features, K), ``b`` (K,), ``acc_W``/``acc_b`` (summed squared gradients of adagrad, normalized and
    ftrl, zero-size when unused), ``q_l1`` (Tsuruoka's per-coordinate applied L1 penalty, zero-size when unused),
    ``z_W``/``z_b`` (ftrl's z), ``avg_W``/``avg_b`` (ASGD's float64 sums of step-weighted weight changes: see
    `averaged_weights`), ``scale`` (normalized: each feature's largest |x|), ``u`` (per worker,
    the cumulative L1 penalty), ``t`` (global step at the start of the current epoch: rows, or mini-batches in
    sync mode), ``position`` (per worker: rows of its shard done in the current epoch), ``loss_sum`` /
    ``weight_sum`` (progressive loss of the current epoch so far), ``replicas`` (average mode: the per-worker
    copies of W, b, acc_W, acc_b, q_l1, z_W, z_b, avg_W, avg_b mid-epoch, else None) and ``rows_since_average``.
    """

    ARRAYS = ("W", "b", "acc_W", "acc_b", "q_l1", "z_W", "z_b", "avg_W", "avg_b", "scale", "u", "position")
    SCALARS = ("t", "loss_sum", "weight_sum", "rows_since_average", "n_workers")

    def __init__(self, n_features, n_outputs, dtype, n_workers, adagrad, l1, ftrl=False, average=False, scale=False):
        """``adagrad``: keep summed squared gradients (adagrad, normalized, ftrl); ``l1``: the cumulative L1
        penalty's debts; ``ftrl``: z; ``average``: ASGD's sums; ``scale``: the per-feature scales."""
        self.W = np.zeros((n_features, n_outputs), dtype=dtype)
        self.b = np.zeros(n_outputs, dtype=dtype)
        self.acc_W = np.zeros((n_features, n_outputs) if adagrad else (0, n_outputs), dtype=dtype)
        self.acc_b = np.zeros(n_outputs if adagrad else 0, dtype=dtype)
        self.q_l1 = np.zeros((n_features, n_outputs) if l1 else (0, n_outputs), dtype=dtype)
        self.z_W = np.zeros((n_features, n_outputs) if ftrl else (0, n_outputs), dtype=dtype)
        self.z_b = np.zeros(n_outputs if ftrl else 0, dtype=dtype)
        self.avg_W = np.zeros((n_features, n_outputs) if average else (0, n_outputs), dtype=np.float64)
        self.avg_b = np.zeros(n_outputs if average else 0, dtype=np.float64)
        self.scale = np.ones(n_features if scale else 0, dtype=dtype)
        self.u = np.zeros((n_workers, 1), dtype=np.float64)
        self.position = np.zeros(n_workers, dtype=np.int64)
        self.t = 0.0
        self.loss_sum = 0.0
        self.weight_sum = 0.0
        self.rows_since_average = 0
        self.n_workers = n_workers
        self.replicas = None

    @classmethod
    def fresh(cls, data, config, n_workers, init_model=None):
        """A new state for ``data`` (from ``init_model``'s weights when given)."""
        schedule = config.effective_schedule
        state = cls(data.csr.n_features, data.n_outputs, data.dtype, n_workers,
                    schedule in ("adagrad", "normalized", "ftrl"), config.l1_strength > 0 and schedule != "ftrl",
                    ftrl=schedule == "ftrl", average=config.average > 0, scale=data.scale is not None)
        if data.scale is not None:
            state.scale[...] = data.scale
        if init_model is not None:
            coef = np.asarray(getattr(init_model, "coef", None))
            if coef.ndim != 2 or coef.shape != state.W.shape:
                raise DataError(f"init_model has weights of shape {coef.shape}; this problem needs {state.W.shape}")
            if data.classes is not None and (init_model.classes is None
                                             or not np.array_equal(init_model.classes, data.classes)):
                raise DataError("init_model was trained on other classes than this data's")
            state.W[...] = coef
            state.b[...] = init_model.intercept
        return state

    def export(self):
        """A dict of arrays and JSON-able scalars (copies), enough to `restore` this state exactly."""
        out = {name: getattr(self, name).copy() for name in self.ARRAYS}
        for name in self.SCALARS:
            value = getattr(self, name)
            out[name] = float(value) if isinstance(value, float) else int(value)
        if self.replicas is not None:
            out["replicas"] = {name: array.copy() for name, array in self.replicas.items()}
        return out

    def restore(self, values):
        """Take over the state `export` described, after checking it fits this one (`CheckpointError`)."""
        try:
            # a state saved before an array existed lacks it; that is fine where this run does not use it either
            arrays = {name: np.ascontiguousarray(np.array(values[name] if name in values or getattr(self, name).size
                                                          else getattr(self, name))) for name in self.ARRAYS}
            scalars = {name: values[name] for name in self.SCALARS}
            replicas = values.get("replicas")
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"the saved linear-model state is incomplete ({type(exc).__name__}: {exc})") from None
        for name, array in arrays.items():
            mine = getattr(self, name)
            if array.shape != mine.shape:
                raise CheckpointError(
                    f"the saved state's {name} has shape {array.shape}, but this run needs {mine.shape}; resume "
                    "with the same data, --threads and options"
                )
            if array.dtype != mine.dtype:
                raise CheckpointError(f"the saved state's {name} is {array.dtype}, but this run uses {mine.dtype}")
        for name, array in arrays.items():
            setattr(self, name, array)
        self.t = float(scalars["t"])
        self.loss_sum, self.weight_sum = float(scalars["loss_sum"]), float(scalars["weight_sum"])
        self.rows_since_average = int(scalars["rows_since_average"])
        self.replicas = None if replicas is None else {k: np.ascontiguousarray(v) for k, v in replicas.items()}

    def merge_scale(self, data):
        """A continued run (``partial_fit``, ``init_state``) on data with larger values than its scales have seen:
        raise those scales and shrink their weights by old/new (the online rule of Ross et al. 2013, applied once
        per call), then let ``data`` train with the merged scales. A resumed run on the same data changes nothing."""
        if not self.scale.size or data.scale is None:
            return
        merged = np.maximum(self.scale, data.scale)
        grown = merged > self.scale
        if np.any(grown):
            ratio = (self.scale[grown] / merged[grown]).astype(self.W.dtype)
            self.W[grown] *= ratio[:, None]
            if self.avg_W.size:
                self.avg_W[grown] *= ratio[:, None]
            self.scale = merged
        data.use_scale(self.scale)

    def steps_done(self, config):
        """Global steps taken so far (rows; mini-batches in sync mode), mid-epoch included."""
        done = int(self.position.sum()) if config.mode != "sync" else -(-int(self.position[0]) // config.batch_size)
        return self.t + done

    def end_epoch(self, t_end):
        """Counters of a finished epoch: the global step moves on, positions and sums start again."""
        self.t = t_end
        self.position[:] = 0
        self.loss_sum = self.weight_sum = 0.0
        self.rows_since_average = 0

    def parameters(self):
        return {"W": self.W, "b": self.b, "acc_W": self.acc_W, "acc_b": self.acc_b}


def penalty(W, config):
    """The regularization term of the objective at weights ``W`` (reported with the training loss)."""
    # summed in float64 without float64 copies of W (news20's 1.2M weights: 8 ms an epoch in copies and page faults)
    flat = W.reshape(-1)
    total = 0.5 * config.l2_strength * float(np.einsum("i,i->", flat, flat, dtype=np.float64))
    if config.l1_strength:
        total += config.l1_strength * float(np.abs(W).sum(dtype=np.float64))
    return total


def averaged_weights(state, config):
    """ASGD's model: the average of the iterates from step ``average_start`` on, or None before that step.

    Averaging every iterate would cost O(n_features) a row; the kernels instead add ``(s - start) * d`` to
    ``avg_W`` for every change d a weight takes at step s (1-based), touching only the row's coordinates. After
    m averaged steps, the iterates' mean is ``W - avg_W / m``: with w_s = w_0 + d_1 + ... + d_s, the sum of
    w_1..w_m is m w_m - sum_s (s - 1) d_s. The sums are float64 so that the difference keeps its digits.
    """
    from hogwild.kernels.linear import asgd_start

    start = asgd_start(config)
    count = state.steps_done(config) - start + 1 if start > 0 else 0
    if count < 1 or not state.avg_W.size:
        return None
    W = (state.W - state.avg_W / count).astype(state.W.dtype)
    b = (state.b - state.avg_b / count).astype(state.b.dtype)
    return W, b


def linear_model(state, data, config, copy=True):
    """The `LinearModel` of ``state``'s weights (with ``average``: of their ASGD average, a new array)."""
    averaged = averaged_weights(state, config)
    if averaged is not None:
        W, b = averaged
    else:
        W, b = (state.W.copy(), state.b.copy()) if copy else (state.W, state.b)
    return LinearModel(W, b, data.classes, config.loss, data.multiclass, config.to_dict())
