"""What the linear runners (CPU and CUDA) share: the data in kernel form, the training state, the model.

`LinearData` turns a `hogwild.problem.Problem` into what the linear kernels read: canonical CSR (int32 or int64
``indptr`` as given, data in the weights' type), targets encoded in the weights' type (-1/+1, the class index,
or the regression value), one weight per row or one for all rows, and the inverse row frequency of every
feature (the Hogwild! paper's L2 scaling). `LinearState` is everything a checkpoint holds.

Memory. Beyond the data, training holds the model, the optimizer's per-coordinate state, ``inv_freq`` (one
float per feature), per-worker scratch (``sync``: buffers of n_features per worker; ``average``: replicas)
and the block order; ``tests/test_memory.py`` measures it with tracemalloc.
"""

from __future__ import annotations

import numpy as np

from .._inputs import as_csr
from ..memory import STREAM_ELEMENTS, csr_is_mapped, release
from ..errors import CheckpointError, ConfigError, DataError
from ..models import LinearModel


class LinearData:
    """The training rows as the linear kernels read them, and the facts derived from the labels."""

    def __init__(self, problem, config):
        self.dtype = np.dtype(config.dtype)
        self.csr = as_csr(problem.X, self.dtype, check_finite=False)  # inverse_row_frequency checks the values
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
        self.inv_freq = inverse_row_frequency(self.csr)
        self.intercept_decay = config.effective_intercept_decay(self.csr.sparse_input)

    def _encode(self, labels):
        """The kernels' targets, in the weights' type: -1/+1 (binary), the class index, or the regression target."""
        if self.classes is None:
            return np.ascontiguousarray(labels, dtype=self.dtype)
        # chunk by chunk, so that no temporary of a byte or more per row outlives a chunk
        targets = np.empty(labels.shape[0], dtype=self.dtype)
        one, minus_one = self.dtype.type(1.0), self.dtype.type(-1.0)
        for start in range(0, labels.shape[0], 1 << 14):
            part = labels[start : start + (1 << 14)]
            if self.multiclass == "binary":
                targets[start : start + part.shape[0]] = np.where(part == self.classes[1], one, minus_one)
            else:
                targets[start : start + part.shape[0]] = np.searchsorted(self.classes, part)
        return targets

    def params(self, config, epoch):
        """The readable dict of one epoch's update parameters (`hogwild.kernels.linear.kernel_params`)."""
        from hogwild.kernels.linear import kernel_params

        return kernel_params(config, epoch, self.multiclass, self.intercept_decay)


def inverse_row_frequency(csr, n_threads=None):
    """``n_rows / (rows containing feature j)`` (0 for absent features): the paper's L2 scaling.

    CSR rows hold each index once, so counting indices counts rows. The count is the one pass training makes
    over the data before its first epoch, so it also checks every value (`DataError` at the first NaN or
    infinity); it runs on the available cores, each counting a slice of the non-zeros into its own array.
    """
    import threading

    from hogwild.kernels.stats import count_features_checked

    from .._io import available_cores

    n_threads = n_threads or min(available_cores(), max(1, csr.nnz // (1 << 20)))
    bounds = [(csr.nnz * t) // n_threads for t in range(n_threads + 1)]
    counts = np.zeros((n_threads, csr.n_features), dtype=np.int32 if csr.n_rows < 2**31 else np.int64)
    bad = [-1] * n_threads

    mapped = csr_is_mapped(csr)

    def count(t):
        if not mapped:
            bad[t] = count_features_checked(csr.indices, csr.data, bounds[t], bounds[t + 1], counts[t])
            return
        # a memory-mapped cache: a piece at a time, dropping the pages read, so the file does not become resident
        for start in range(bounds[t], bounds[t + 1], STREAM_ELEMENTS):
            stop = min(bounds[t + 1], start + STREAM_ELEMENTS)
            bad[t] = count_features_checked(csr.indices, csr.data, start, stop, counts[t])
            release(csr.indices, start, stop)
            release(csr.data, start, stop)
            if bad[t] >= 0:
                return

    threads = [threading.Thread(target=count, args=(t,)) for t in range(1, n_threads)]
    for thread in threads:
        thread.start()
    count(0)
    for thread in threads:
        thread.join()
    first_bad = min((p for p in bad if p >= 0), default=-1)
    if first_bad >= 0:
        row = int(np.searchsorted(csr.indptr, first_bad, side="right")) - 1
        raise DataError(f"X contains NaN or infinite values (row {row}); remove or impute them before training")
    total = counts.sum(axis=0, dtype=np.int64) if n_threads > 1 else counts[0]
    return np.where(total > 0, csr.n_rows / np.maximum(total, 1), 0.0)


def check_linear_config(config):
    """Options a linear model cannot honour."""
    if config.effective_schedule == "adagrad" and config.l1_strength > 0:
        raise ConfigError("schedule", "--schedule adagrad cannot be combined with an L1 penalty (--l1)")


class LinearState:
    """The training state of a linear model mid-run: weights, optimizer state, counters.

    ``W`` (n_features, K), ``b`` (K,), ``acc_W``/``acc_b`` (AdaGrad sums of squared gradients, zero-size when
    unused), ``q_l1`` (Tsuruoka's per-coordinate applied L1 penalty, zero-size when unused), ``u`` (per worker,
    the cumulative L1 penalty), ``t`` (global step at the start of the current epoch: rows, or mini-batches in
    sync mode), ``position`` (per worker: rows of its shard done in the current epoch), ``loss_sum`` /
    ``weight_sum`` (progressive loss of the current epoch so far), ``replicas`` (average mode: the per-worker
    copies of W, b, acc_W, acc_b, q_l1 mid-epoch, else None) and ``rows_since_average``.
    """

    ARRAYS = ("W", "b", "acc_W", "acc_b", "q_l1", "u", "position")
    SCALARS = ("t", "loss_sum", "weight_sum", "rows_since_average", "n_workers")

    def __init__(self, n_features, n_outputs, dtype, n_workers, adagrad, l1):
        self.W = np.zeros((n_features, n_outputs), dtype=dtype)
        self.b = np.zeros(n_outputs, dtype=dtype)
        self.acc_W = np.zeros((n_features, n_outputs) if adagrad else (0, n_outputs), dtype=dtype)
        self.acc_b = np.zeros(n_outputs if adagrad else 0, dtype=dtype)
        self.q_l1 = np.zeros((n_features, n_outputs) if l1 else (0, n_outputs), dtype=dtype)
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
        state = cls(data.csr.n_features, data.n_outputs, data.dtype, n_workers,
                    config.effective_schedule == "adagrad", config.l1_strength > 0)
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
            arrays = {name: np.ascontiguousarray(np.array(values[name])) for name in self.ARRAYS}
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
    W = W.astype(np.float64, copy=False)
    return 0.5 * config.l2_strength * float(np.sum(W * W)) + config.l1_strength * float(np.abs(W).sum())


def linear_model(state, data, config, copy=True):
    """The `LinearModel` of ``state``'s weights."""
    W, b = (state.W.copy(), state.b.copy()) if copy else (state.W, state.b)
    return LinearModel(W, b, data.classes, config.loss, data.multiclass, config.to_dict())
