"""The CPU training engine for sparse linear models: `train(X, y, config) -> TrainResult`.

Python keeps the epoch loop, the schedule's bookkeeping, evaluation and early stopping; compiled ``nogil``
kernels (`hogwild.kernels.linear`) do the rows. Workers are Python threads (`hogwild._workers.WorkerPool`)
that each run one kernel call over a chunk of ``config.chunk_rows`` rows of their shard; between chunk rounds
the engine checks ``pool.stop``, watches for divergence, reports progress to ``callback`` and calls the
chunk hooks (where checkpoints are taken).

Row order. Visiting CSR rows through a full random permutation thrashes the caches (DESIGN.md measured ~4x
slower than storage order). We shuffle BLOCKS of `SHUFFLE_BLOCK_ROWS` consecutive rows instead: the block
order is a fresh permutation every epoch (drawn from ``(seed, epoch)``, so a resumed run needs no RNG state),
and inside a block rows are read in storage order, so the hardware prefetcher streams each block. The kernels
take the block permutation itself (`RowOrder`: one int64 per 32 rows) and compute each row's index, so the
order costs 0.25 bytes a row, not a second copy of anything per row.

Memory. Beyond the data (the CSR arrays as given, int32 or int64 ``indptr``, and one encoded label per row in
the weights' type), training holds the model, the optimizer's per-coordinate state, ``inv_freq`` (one float per
feature), per-worker scratch (per-worker buffers of n_features in ``sync`` mode, replicas in ``average`` mode)
and the block order. ``tests/test_memory.py`` measures it with tracemalloc.

All modes minimize the same objective (tests/naive.py states it); see `hogwild.kernels.linear` for the
per-mode rules, and `EngineState` for everything a checkpoint must hold.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import numpy as np

from ._inputs import as_csr, as_labels, load_xy
from ._io import available_cores
from ._workers import WorkerPool
from .config import TrainConfig
from .errors import CheckpointError, ConfigError, DataError, DivergenceError, TrainingInterrupted
from .metrics import evaluate_model
from .models import LinearModel
from .results import TrainResult

__all__ = ["train", "TrainResult", "EngineState", "RowOrder", "epoch_order", "epoch_row_order", "SHUFFLE_BLOCK_ROWS"]

# Rows per shuffled block (a power of two: the kernels find a row with a shift and a mask): 32 rows of ~75
# non-zeros are ~20 KB of data, long enough for the prefetcher.
SHUFFLE_BLOCK_SHIFT = 5
SHUFFLE_BLOCK_ROWS = 1 << SHUFFLE_BLOCK_SHIFT


@dataclass(frozen=True)
class RowOrder:
    """An epoch's row order, stored as its block permutation (what the kernels take: `kernel_args`).

    ``blocks`` is a permutation of the ``ceil(n_rows / 2**shift)`` block numbers; the last block may hold
    fewer rows (``2**shift - gap``), so the rows after it in the order sit ``gap`` places earlier than a full
    block would put them: position r of the epoch reads block position ``s >> shift``, offset ``s & mask``,
    where ``s = r + gap`` from ``r >= gap_at`` on (`hogwild.kernels.linear.row_at`).
    """

    blocks: np.ndarray
    shift: int
    gap_at: int
    gap: int
    n_rows: int

    def kernel_args(self):
        return self.blocks, self.shift, self.gap_at, self.gap

    def expand(self):
        """The order as one int64 row index per position (tests, the GPU engine)."""
        positions = np.arange(self.n_rows, dtype=np.int64)
        positions[self.gap_at:] += self.gap
        return (self.blocks[positions >> self.shift] << self.shift) | (positions & ((1 << self.shift) - 1))


def epoch_order(n_rows, seed, epoch, shuffle=True, block_shift=SHUFFLE_BLOCK_SHIFT):
    """The `RowOrder` of an epoch: blocks of ``2**block_shift`` rows in a per-epoch random order."""
    block_rows = 1 << block_shift
    n_blocks = -(-n_rows // block_rows)
    if not shuffle or n_rows <= block_rows:
        blocks = np.arange(n_blocks, dtype=np.int64)
    else:
        blocks = np.random.default_rng([int(seed), int(epoch)]).permutation(n_blocks).astype(np.int64)
    if n_blocks == 0:
        return RowOrder(blocks, block_shift, 0, 0, 0)
    last = n_rows - (n_blocks - 1) * block_rows  # rows in the (possibly partial) last block
    position = int(np.flatnonzero(blocks == n_blocks - 1)[0])
    return RowOrder(blocks, block_shift, position * block_rows + last, block_rows - last, int(n_rows))


def epoch_row_order(n_rows, seed, epoch, shuffle=True, block_shift=SHUFFLE_BLOCK_SHIFT):
    """The int64 order in which an epoch visits the rows (`epoch_order`, expanded)."""
    return epoch_order(n_rows, seed, epoch, shuffle, block_shift).expand()


class EngineState:
    """Everything the epoch loop needs to continue: weights, optimizer state, counters.

    ``W`` (n_features, K), ``b`` (K,), ``acc_W``/``acc_b`` (AdaGrad sums of squared gradients, zero-size when
    unused), ``q_l1`` (Tsuruoka's per-coordinate applied L1 penalty, zero-size when unused), ``u`` (per worker,
    the cumulative L1 penalty), ``t`` (global step at the start of the current epoch: rows, or mini-batches in
    sync mode), ``epoch`` (epochs finished), ``position`` (per worker: rows of its shard done in the current
    epoch), ``loss_sum``/``weight_sum`` (progressive loss of the current epoch so far), ``replicas`` (average
    mode: the per-worker copies of W, b, acc_W, acc_b, q_l1 mid-epoch, else None) and ``rows_since_average``.
    `export` gives a dict of NumPy arrays and JSON-able scalars; `restore` rebuilds the state from one.
    """

    ARRAYS = ("W", "b", "acc_W", "acc_b", "q_l1", "u", "position")
    SCALARS = ("t", "epoch", "loss_sum", "weight_sum", "rows_since_average", "n_workers", "best_loss", "no_improvement")

    def __init__(self, n_features, n_outputs, dtype, n_workers, adagrad, l1):
        self.W = np.zeros((n_features, n_outputs), dtype=dtype)
        self.b = np.zeros(n_outputs, dtype=dtype)
        self.acc_W = np.zeros((n_features, n_outputs) if adagrad else (0, n_outputs), dtype=dtype)
        self.acc_b = np.zeros(n_outputs if adagrad else 0, dtype=dtype)
        self.q_l1 = np.zeros((n_features, n_outputs) if l1 else (0, n_outputs), dtype=dtype)
        self.u = np.zeros((n_workers, 1), dtype=np.float64)
        self.position = np.zeros(n_workers, dtype=np.int64)
        self.t = 0.0
        self.epoch = 0
        self.loss_sum = 0.0
        self.weight_sum = 0.0
        self.rows_since_average = 0
        self.n_workers = n_workers
        self.best_loss = math.inf
        self.no_improvement = 0
        self.replicas = None

    def export(self):
        """A dict of arrays and JSON-able scalars (copies), enough to `restore` this state exactly."""
        out = {name: getattr(self, name).copy() for name in self.ARRAYS}
        for name in self.SCALARS:
            value = getattr(self, name)
            out[name] = float(value) if isinstance(value, float) else int(value)
        if self.replicas is not None:
            out["replicas"] = {name: array.copy() for name, array in self.replicas.items()}
        return out

    @classmethod
    def restore(cls, values):
        """The state `export` described."""
        state = cls.__new__(cls)
        for name in cls.ARRAYS:
            setattr(state, name, np.ascontiguousarray(np.array(values[name])))
        for name in cls.SCALARS:
            setattr(state, name, values[name])
        state.t = float(state.t)
        replicas = values.get("replicas")
        state.replicas = None if replicas is None else {k: np.ascontiguousarray(v) for k, v in replicas.items()}
        return state


def _resolve_config(config, overrides):
    if config is None:
        config = TrainConfig()
    elif isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    return config.replace(**overrides) if overrides else config.replace()


def train(
    X, y=None, config=None, *, X_val=None, y_val=None, X_test=None, y_test=None, callback=None, init_model=None,
    sample_weight=None, classes=None, init_state=None, hooks=(), **overrides,
):
    """Train a model on (X, y) as ``config`` (plus keyword ``overrides`` of its fields) says; returns a `TrainResult`.

    X: any sparse matrix, a dense array, a dataset object or a LIBSVM path. ``X_val``/``y_val`` and
    ``X_test``/``y_test`` are evaluated every epoch (validation also drives early stopping; without it,
    ``validation_fraction`` holds out rows of X). ``callback(event)`` receives ``{"kind": "chunk", ...}`` per
    chunk round and ``{"kind": "epoch", **record}`` per epoch. ``init_model`` warm-starts the weights;
    ``init_state`` (an `EngineState.export` dict) continues a run exactly; ``classes`` fixes the label set
    (partial fitting); ``hooks`` are callables ``hook(trainer)`` run at every chunk boundary (checkpoints).
    The returned result also carries ``result.state`` (the final `EngineState` export).
    """
    config = _resolve_config(config, overrides)
    kwargs = dict(X_val=X_val, y_val=y_val, X_test=X_test, y_test=y_test, callback=callback, init_model=init_model)
    if config.model == "mlp":
        from .mlp import train_mlp

        return train_mlp(X, y, config, classes=classes, init_state=init_state, **kwargs)
    if config.device != "cpu":
        from .device import resolve_device

        if resolve_device(config.device) == "cuda":
            from .gpu_engine import train_linear_gpu

            return train_linear_gpu(X, y, config, sample_weight=sample_weight, classes=classes,
                                    init_state=init_state, hooks=hooks, **kwargs)
    if config.mode == "atomic":
        raise ConfigError("mode", "--mode atomic needs a CUDA GPU (--device cuda); on the CPU use async, sync, "
                                  "average, serial or locked")
    trainer = Trainer(X, y, config, X_val=X_val, y_val=y_val, X_test=X_test, y_test=y_test,
                      sample_weight=sample_weight, classes=classes, init_model=init_model, init_state=init_state,
                      callback=callback, hooks=hooks)
    # Checkpoints, --resume, graceful Ctrl-C/SIGTERM and worker faults (issue 8) wrap the epoch loop.
    from .resilience import run_resilient

    return run_resilient(trainer)


def _replicate(array, n_workers):
    """``n_workers`` copies of ``array`` (average mode), stacked; a 1-D one (the intercept, its AdaGrad sum) is
    padded to 128 bytes a copy, because workers that write one cache line on every row stall each other (false
    sharing: average x2 went from 1.81x to 1.90x with the intercepts 128 bytes apart, on the rcv1-shaped set)."""
    if array.ndim == 1:
        padded = np.zeros((n_workers, max(array.shape[0], 128 // array.itemsize)), dtype=array.dtype)
        padded[:, : array.shape[0]] = array
        return padded
    return np.repeat(array[None], n_workers, axis=0)


def _replica_views(state, name):
    """The stacked replicas of ``state.<name>`` without their padding: shape (n_workers, *state.<name>.shape)."""
    return state.replicas[name][(slice(None), *(slice(0, size) for size in getattr(state, name).shape))]


def _inverse_row_frequency(csr, chunk=1 << 18):
    """``n_rows / (rows containing feature j)`` (0 for absent features): the paper's L2 scaling.

    CSR rows hold each index once, so counting indices counts rows. NumPy's bincount needs no kernel load but
    widens its input to int64: counting a chunk at a time keeps that copy at 2 MB instead of 8 bytes per
    non-zero.
    """
    counts = np.zeros(csr.n_features, dtype=np.int64)
    for start in range(0, csr.nnz, chunk):
        counts += np.bincount(csr.indices[start : min(csr.nnz, start + chunk)], minlength=csr.n_features)
    return np.where(counts > 0, csr.n_rows / np.maximum(counts, 1), 0.0)


class Trainer:
    """One training run of a linear model on the CPU: the prepared problem, the state and the epoch loop."""

    def __init__(self, X, y, config, *, X_val=None, y_val=None, X_test=None, y_test=None, sample_weight=None,
                 classes=None, init_model=None, init_state=None, callback=None, hooks=()):
        self.config = config
        self.callback = callback
        self.hooks = list(hooks)
        self.dtype = np.dtype(config.dtype)
        X, y = load_xy(X, y)
        csr = as_csr(X, self.dtype)
        labels = as_labels(y, csr.n_rows)
        if csr.n_rows == 0:
            raise DataError("X has no rows to train on")
        weights = self._sample_weight(sample_weight, csr.n_rows)
        self._prepare_targets(labels, classes)
        class_weights = self._class_weights(labels)
        if class_weights is not None:
            weights = np.broadcast_to(weights, labels.shape) * class_weights
        if X_val is None and config.validation_fraction > 0:
            csr, labels, weights, X_val, y_val = self._hold_out(csr, labels, weights)
        self.csr = csr
        self.labels = labels
        self.targets = self._encode(labels)
        # One weight per row, or a single weight for all rows when the user gave none (no O(rows) array of ones;
        # the kernels read `sample_weight[0]` then).
        self.sample_weight = np.ascontiguousarray(weights, dtype=np.float64)
        self.evaluations = []
        for name, Xe, ye in (("validation", X_val, y_val), ("test", X_test, y_test)):
            if Xe is not None:
                Xe, ye = load_xy(Xe, ye)
                self.evaluations.append((name, Xe, as_labels(ye, Xe.shape[0], name=f"y_{name}")))

        self.inv_freq = _inverse_row_frequency(csr)
        self.n_workers = 1 if config.mode == "serial" else (config.threads or available_cores())
        if config.effective_schedule == "adagrad" and config.l1_strength > 0:
            raise ConfigError("schedule", "--schedule adagrad cannot be combined with an L1 penalty (--l1)")
        if init_state is not None:
            self.state = EngineState.restore(init_state)
            if self.state.W.shape != (csr.n_features, self.n_outputs) or self.state.n_workers != self.n_workers:
                raise DataError("the saved training state does not match this data's shape or thread count")
        else:
            self.state = EngineState(csr.n_features, self.n_outputs, self.dtype, self.n_workers,
                                     config.effective_schedule == "adagrad", config.l1_strength > 0)
            if init_model is not None:
                self._warm_start(init_model)
        self.history = []

    # --- problem preparation ------------------------------------------------------------------------
    def _sample_weight(self, sample_weight, n_rows):
        if sample_weight is None:
            return np.ones(1, dtype=np.float64)
        weights = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
        if weights.shape[0] != n_rows or not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise DataError(f"sample_weight must hold {n_rows} finite non-negative numbers")
        if not weights.sum() > 0:
            raise DataError("sample_weight sums to zero: there is nothing to train on")
        return weights

    def _prepare_targets(self, labels, classes):
        config = self.config
        if config.is_regression:
            self.classes = None
            self.multiclass = "binary"
            self.n_outputs = 1
            if not np.issubdtype(labels.dtype, np.number):
                raise DataError(f"regression needs numeric targets; got labels of type {labels.dtype}")
            return
        found = np.unique(labels)
        self.classes = np.unique(np.asarray(classes)) if classes is not None else found
        unknown = np.setdiff1d(found, self.classes)
        if unknown.size:
            raise DataError(f"y has labels {unknown[:5].tolist()} that are not among the classes {self.classes.tolist()}")
        if self.classes.size < 2:
            raise DataError(
                    f"classification needs at least two classes in y; found {self.classes.size} class: "
                    f"{self.classes.tolist()}"
                )
        if self.classes.size == 2:
            self.multiclass, self.n_outputs = "binary", 1
        else:
            self.multiclass, self.n_outputs = config.multiclass, int(self.classes.size)
            if self.multiclass == "softmax" and config.loss != "log_loss":
                raise ConfigError("multiclass", f"--multiclass softmax needs --loss log_loss; got {config.loss}")

    def _encode(self, labels):
        """The kernels' targets, in the weights' type: -1/+1 (binary), the class index, or the regression target."""
        if self.classes is None:
            return np.ascontiguousarray(labels, dtype=self.dtype)
        if self.multiclass == "binary":
            return np.where(labels == self.classes[1], self.dtype.type(1.0), self.dtype.type(-1.0))
        return np.searchsorted(self.classes, labels).astype(self.dtype)

    def _class_weights(self, labels):
        class_weight = self.config.class_weight
        if class_weight is None or self.classes is None:
            return None
        index = np.searchsorted(self.classes, labels)
        if class_weight == "balanced":
            counts = np.bincount(index, minlength=self.classes.size).astype(np.float64)
            per_class = np.where(counts > 0, labels.size / (self.classes.size * np.maximum(counts, 1)), 0.0)
        elif isinstance(class_weight, dict):
            per_class = np.ones(self.classes.size)
            for label, weight in class_weight.items():
                where = np.flatnonzero(self.classes == label)
                if where.size == 0:
                    raise ConfigError("class_weight", f"class_weight names class {label!r}, which is not in y")
                per_class[where[0]] = float(weight)
        else:
            raise ConfigError("class_weight", f"class_weight must be None, 'balanced' or a dict; got {class_weight!r}")
        return per_class[index]

    def _hold_out(self, csr, labels, weights):
        n = csr.n_rows
        n_val = max(1, int(round(self.config.validation_fraction * n)))
        if n_val >= n:
            raise DataError(f"validation_fraction leaves no training rows out of {n}")
        permutation = np.random.default_rng([int(self.config.seed), 7919]).permutation(n)
        val_rows, train_rows = np.sort(permutation[:n_val]), np.sort(permutation[n_val:])
        matrix = csr.to_scipy()
        train_csr = as_csr(matrix[train_rows], self.dtype)
        train_csr.sparse_input = csr.sparse_input
        train_weights = weights if weights.size == 1 else weights[train_rows]
        return train_csr, labels[train_rows], train_weights, matrix[val_rows], labels[val_rows]

    def _warm_start(self, model):
        coef = np.asarray(getattr(model, "coef", None))
        if coef.ndim != 2 or coef.shape != self.state.W.shape:
            raise DataError(f"init_model has weights of shape {coef.shape}; this problem needs {self.state.W.shape}")
        if self.classes is not None and (model.classes is None or not np.array_equal(model.classes, self.classes)):
            raise DataError("init_model was trained on other classes than this data's")
        self.state.W[...] = coef
        self.state.b[...] = model.intercept

    # --- the loop -----------------------------------------------------------------------------------
    def params(self, epoch):
        from hogwild.kernels.linear import kernel_params

        decay = self.config.effective_intercept_decay(self.csr.sparse_input)
        return kernel_params(self.config, epoch, self.multiclass, decay)

    # --- what hogwild.resilience drives (checkpoints, resume, restarts) --------------------------------
    def snapshot(self):
        """The resumable state and the history so far (copies): what a checkpoint holds."""
        return {"engine": self.state.export(), "history": copy.deepcopy(self.history)}

    def restore_snapshot(self, snapshot):
        """Continue from a `snapshot` (refused when it belongs to another data shape or thread count)."""
        state = EngineState.restore(snapshot["engine"])
        expected = (self.csr.n_features, self.n_outputs)
        if state.W.shape != expected or state.n_workers != self.n_workers:
            raise CheckpointError(
                f"the checkpoint's weights are {state.W.shape} for {state.n_workers} workers, but this run has "
                f"{expected} for {self.n_workers}; resume with the same data and --threads"
            )
        self.state = state
        self.history = list(snapshot.get("history") or [])

    def fingerprint(self):
        """The training data's `hogwild.checkpoint.data_fingerprint` (checked when resuming)."""
        from .checkpoint import data_fingerprint

        return data_fingerprint(self.csr.to_scipy(), self.labels)

    def position(self):
        """Rows done in the current epoch, over all workers."""
        return int(self.state.position.sum())

    @property
    def epoch(self):
        """Epochs finished."""
        return int(self.state.epoch)

    def parameters(self):
        """The live shared arrays by name (weights and optimizer state), writable in place between chunks."""
        state = self.state
        return {"W": state.W, "b": state.b, "acc_W": state.acc_W, "acc_b": state.acc_b}

    def model(self, copy=True):
        """The current weights as a `LinearModel`."""
        W, b = (self.state.W.copy(), self.state.b.copy()) if copy else (self.state.W, self.state.b)
        return LinearModel(W, b, self.classes, self.config.loss, self.multiclass, self.config.to_dict())

    def run(self):
        config = self.config
        stopped_early = False
        with WorkerPool(self.n_workers) as pool:
            self.pool = pool
            while self.state.epoch < config.epochs:
                started = time.perf_counter()
                self._run_epoch()
                seconds = time.perf_counter() - started
                record = self._record(seconds)
                self.history.append(record)
                # the stopping rule's counters advance before the callback, where the epoch's checkpoint is taken
                stop = self._should_stop(record)
                if self.callback is not None:
                    self.callback({"kind": "epoch", **record})
                if stop:
                    stopped_early = True
                    break
        result = TrainResult(model=self.model(), history=self.history, config=config, stopped_early=stopped_early)
        result.state = self.state.export()
        return result

    def _run_epoch(self):
        state, config = self.state, self.config
        params = self.params(state.epoch)
        order = epoch_order(self.csr.n_rows, config.seed, state.epoch, config.shuffle)
        if config.mode == "sync":
            t_end = self._epoch_sync(order, params)
        else:
            t_end = self._epoch_rows(order, params)
        if not (np.all(np.isfinite(state.W)) and np.all(np.isfinite(state.b))):
            self._diverged()
        self.last_eta = self._eta_at(params, t_end - 1)
        self.epoch_loss = state.loss_sum / self.csr.n_rows + self._penalty()
        state.t = t_end
        state.epoch += 1
        state.position[:] = 0
        state.loss_sum = state.weight_sum = 0.0
        state.rows_since_average = 0

    def _eta_at(self, params, t):
        from hogwild.kernels.linear import step_size

        return step_size(params, max(t, 0.0))

    def _penalty(self):
        W = self.state.W.astype(np.float64, copy=False)
        return 0.5 * self.config.l2_strength * float(np.sum(W * W)) + self.config.l1_strength * float(np.abs(W).sum())

    def _diverged(self):
        raise DivergenceError(
            f"training diverged at epoch {self.state.epoch + 1} (non-finite weights or loss); "
            f"try a smaller --lr than {self.config.lr:g} (or --clip, or another --schedule)"
        )

    def _chunk_boundary(self, rows_done, rows_total):
        state = self.state
        if not (math.isfinite(state.loss_sum) and np.all(np.isfinite(state.b))):
            self._diverged()
        if self.callback is not None:
            loss = state.loss_sum / max(state.weight_sum, 1e-300)
            self.callback({"kind": "chunk", "epoch": state.epoch + 1, "rows_done": int(rows_done),
                           "rows_total": int(rows_total), "loss": float(loss)})
        for hook in self.hooks:
            hook(self)
        if self.pool.stop.is_set():
            raise TrainingInterrupted(None, model=self.model(), history=self.history)

    def _epoch_rows(self, order, params):
        """serial, async, locked and average: the one-row kernel over each worker's shard, chunk by chunk."""
        from hogwild.kernels.linear import STRIPE_SHIFT, kernel_scalars, sgd_rows, sgd_rows_single

        state, config, csr = self.state, self.config, self.csr
        T = self.n_workers
        n = order.n_rows
        bounds = [(n * w) // T for w in range(T + 1)]
        scalars = kernel_scalars(params)
        t_epoch = state.t
        use_locks = config.mode == "locked"
        locks = np.zeros(((csr.n_features >> STRIPE_SHIFT) + 2) if use_locks else 1, dtype=np.int64)
        average = config.mode == "average" and T > 1
        if average and state.replicas is None:
            state.replicas = {name: _replicate(getattr(state, name), T) for name in ("W", "b", "acc_W", "acc_b", "q_l1")}
        scratch = np.zeros((T, 2, self.n_outputs), dtype=np.float64)
        # One output without L1 or locks (most binary and regression runs) takes the specialized kernel.
        single = self.n_outputs == 1 and not use_locks and params["l1"] == 0.0
        if single:
            (loss_code, multiclass_code, epsilon, clip, intercept_step, l2, _l1, schedule, lr, epoch_factor, t0,
             power_t) = scalars
            single_scalars = (loss_code, multiclass_code, epsilon, clip, intercept_step, schedule, lr, epoch_factor,
                              l2, t0, power_t)
            l2_reg = (l2 * self.inv_freq).astype(self.dtype)
        quota = config.chunk_rows
        if average:
            quota = max(1, min(quota, config.average_every // T))

        def task(w):
            lo = bounds[w] + int(state.position[w])
            hi = min(bounds[w + 1], lo + quota)
            if lo >= hi:
                return 0.0, 0.0, 0
            if average:
                arrays = [_replica_views(state, name)[w] for name in ("W", "b", "acc_W", "acc_b", "q_l1")]
            else:
                arrays = [state.W, state.b, state.acc_W, state.acc_b, state.q_l1]
            t_start = t_epoch + (lo - bounds[w]) * T + w
            if single:
                W, b, acc_W, acc_b, _ = arrays
                return (*sgd_rows_single(
                    csr.indptr, csr.indices, csr.data, self.targets, self.sample_weight, *order.kernel_args(), lo, hi,
                    W.reshape(-1), b, acc_W.reshape(-1), acc_b, l2_reg, scratch[w], *single_scalars,
                    float(t_start), float(T),
                ), hi - lo)
            loss_sum, weight_sum = sgd_rows(
                csr.indptr, csr.indices, csr.data, self.targets, self.sample_weight, *order.kernel_args(), lo, hi,
                *arrays, self.inv_freq, scratch[w], *scalars, float(t_start), float(T), state.u[w], locks,
                use_locks, STRIPE_SHIFT,
            )
            return loss_sum, weight_sum, hi - lo

        def row_range(w):
            lo = bounds[w] + int(state.position[w])
            return lo, min(bounds[w + 1], lo + quota)

        while True:
            done = sum(int(state.position[w]) for w in range(T))
            if done >= n:
                break
            results = self.pool.run(task, row_range=row_range)
            for w, (loss_sum, weight_sum, rows) in enumerate(results):
                state.loss_sum += loss_sum
                state.weight_sum += weight_sum
                state.position[w] += rows
                state.rows_since_average += rows
            if T > 1:
                # Every worker's copy of the L1 total stands for the whole run's; keep them together.
                state.u[:] = state.u.max()
            done = int(state.position.sum())
            if average and (state.rows_since_average >= config.average_every or done >= n):
                self._average_replicas(final=done >= n)
            self._chunk_boundary(done, n)
        return t_epoch + n

    def _average_replicas(self, final):
        state = self.state
        for name in state.replicas:
            stacked = _replica_views(state, name)
            if stacked.size == 0:
                continue
            mean = stacked.mean(axis=0, dtype=np.float64).astype(stacked.dtype)
            getattr(state, name)[...] = mean
            stacked[...] = mean[None]
        state.rows_since_average = 0
        if final:
            state.replicas = None

    def _epoch_sync(self, order, params):
        """sync: mini-batches; the workers meet at in-kernel barriers (see `sync_batches`)."""
        from hogwild.kernels.linear import AGGREGATE_CODES, kernel_scalars, sync_batches

        state, config, csr = self.state, self.config, self.csr
        T, K, d = self.n_workers, self.n_outputs, csr.n_features
        n = order.n_rows
        batch = config.batch_size
        per_call = batch * max(1, config.chunk_rows // batch)
        scalars = kernel_scalars(params)
        grad_buffers = np.zeros((T, d, K), dtype=self.dtype)
        count_buffers = np.zeros((T, d), dtype=np.float64)
        marks = np.zeros((T, d), dtype=np.uint8)
        touched = np.zeros((T, d), dtype=np.int32)
        n_touched = np.zeros(T, dtype=np.int64)
        intercept_buffers = np.zeros((T, K), dtype=np.float64)
        slice_rows = np.zeros(T, dtype=np.int64)
        done = np.zeros(d, dtype=np.uint8)
        barrier = np.zeros(3, dtype=np.int64)  # count, generation, abort (see kernels.atomics.barrier_wait)
        scratch = np.zeros((T, 2, K), dtype=np.float64)
        aggregate = AGGREGATE_CODES[config.aggregate]
        t_epoch = state.t
        position = int(state.position[0])

        while position < n:
            lo, hi = position, min(n, position + per_call)
            t_start = t_epoch + lo // batch

            def task(w, lo=lo, hi=hi, t_start=t_start):
                return sync_batches(
                    csr.indptr, csr.indices, csr.data, self.targets, self.sample_weight, *order.kernel_args(), lo, hi, batch, w, T,
                    aggregate, state.W, state.b, state.acc_W, state.acc_b, state.q_l1, self.inv_freq, scratch[w],
                    grad_buffers, count_buffers, marks, touched, n_touched, intercept_buffers, slice_rows, done,
                    barrier, *scalars, float(t_start), state.u[w],
                )

            results = self.pool.run(task, row_range=lambda w, lo=lo, hi=hi: (lo, hi),
                                    on_failure=lambda: barrier.__setitem__(2, 1))
            for loss_sum, weight_sum in results:
                state.loss_sum += loss_sum
                state.weight_sum += weight_sum
            position = hi
            state.position[:] = position
            self._chunk_boundary(position, n)
        return t_epoch + -(-n // batch)

    # --- records and stopping ------------------------------------------------------------------------
    def _record(self, seconds):
        state = self.state
        rows = self.csr.n_rows
        record = {
            "epoch": state.epoch,
            "seconds": seconds,
            "train_loss": float(self.epoch_loss),
            "rows_per_s": rows / seconds if seconds > 0 else float("inf"),
            "nnz_per_s": self.csr.nnz / seconds if seconds > 0 else float("inf"),
            "lr": float(self.last_eta),
        }
        if self.evaluations:
            model = self.model(copy=False)
            for name, Xe, ye in self.evaluations:
                metrics = evaluate_model(model, Xe, ye)
                for key, prefix_key in (("accuracy", "accuracy"), ("log_loss", "loss"), ("roc_auc", "auc"),
                                        ("rmse", "rmse"), ("mae", "mae")):
                    if key in metrics:
                        record[f"{name}_{prefix_key}"] = metrics[key]
        return record

    def _monitored(self, record):
        for key in ("validation_loss", "validation_rmse"):
            if key in record:
                return record[key]
        if "validation_accuracy" in record:
            return 1.0 - record["validation_accuracy"]
        return record["train_loss"]

    def _should_stop(self, record):
        tol = self.config.tol
        if tol is None:
            return False
        value = self._monitored(record)
        state = self.state
        if value > state.best_loss - tol:
            state.no_improvement += 1
        else:
            state.no_improvement = 0
        state.best_loss = min(state.best_loss, value)
        return state.no_improvement >= self.config.n_iter_no_change
