"""Small MLPs (one to three hidden layers) trained by Hogwild! threads or with a barrier per mini-batch.

`train_mlp` is the engine; `MLPModel` the fitted network (the same model protocol as the linear model:
``decision_function``/``predict``/``predict_proba``/``arrays``/``meta``/``save``); `MLPClassifier` and
`MLPRegressor` are the scikit-learn style estimators. The compiled kernels and their math are in
`hogwild.kernels.mlp`; ``tests/naive_mlp.py`` is their NumPy twin.

Modes:

* ``serial``: one worker, micro-batches of ``batch_size`` rows in the epoch's shuffled order. Deterministic and
  bitwise reproducible for a seed.
* ``async`` (Hogwild!): the epoch's shuffled rows are split into one contiguous shard per thread; every thread
  runs micro-batches on its shard and updates the shared weights and optimizer state without locks.
  Not deterministic with more than one thread.
* ``sync``: each mini-batch of ``batch_size`` rows is split over the threads; each computes the mean gradient
  of its slice into its own buffers, the buffers are combined (``aggregate="mean"`` or ``"weighted"`` by rows)
  and one update is applied. Bitwise reproducible for a seed and thread count; with one thread it equals
  ``serial``.
* ``average``, ``locked`` (and the GPU's ``atomic``) raise `ConfigError` here: an MLP step writes every
  weight above the first layer, so per-example locks would serialize the workers completely, and replica
  averaging of non-convex networks is not implemented.

Options that mean something different for an MLP: ``schedule`` scales the optimizer's ``lr`` per epoch
(``constant``; ``decay``: ``lr * decay**epoch``; ``invscaling``: ``lr / (epoch + 1)**power_t``); the linear
models' ``optimal`` (Bottou's 1/(l2 t) step, which assumes a convex objective) and ``adagrad`` (the
per-coordinate step that ``optimizer="rmsprop"``/``"adam"`` provide) are read as ``constant``. ``train_loss`` in the history is the
mean loss of each row measured before its own micro-batch's update (like scikit-learn's ``loss_curve_``,
without the L2 term).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import time

import numpy as np
import scipy.sparse as sp

from ._io import available_cores
from ._workers import WorkerPool
from .config import REGRESSION_LOSSES, TrainConfig
from .errors import CheckpointError, ConfigError, DataError, DivergenceError, TrainingInterrupted
from .metrics import evaluate_model
from .models import Model, init_mlp_params as init_params
from .results import TrainResult

_PREDICT_BLOCK = 256  # rows per compiled forward call when predicting: bounds the scratch, keeps it in cache


def _kernels():
    """The compiled kernels, imported on first use so ``import hogwild.mlp`` does not load Numba."""
    from .kernels import mlp

    return mlp


# --------------------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------------------
class _Input:
    """A feature matrix in the form the kernels take: a dense 2-D C array, or the CSR triple.

    Sparse input of any scipy format goes through `hogwild._inputs.as_csr` (canonical CSR, int64 ``indptr``,
    int32 ``indices``); dense input stays dense (the first layer then runs as a dense product that skips
    zeros). Paths and dataset objects are loaded by `hogwild._inputs.load_xy` before this.
    With ``n_features`` given, fewer columns are padded, more raise `DataError` unless
    ``ignore_extra_features``.
    """

    def __init__(self, X, dtype, n_features=None, name="X", ignore_extra_features=False):
        from ._inputs import as_csr, match_features

        dtype = np.dtype(dtype)
        if sp.issparse(X):
            csr = as_csr(X, dtype, name)
            if n_features is not None:
                csr = match_features(csr, n_features, ignore_extra_features, name)
            self.dense = False
            self.n_rows, self.n_features = csr.n_rows, csr.n_features
            # One indptr type keeps one compiled variant of each MLP kernel (the linear engine reads int32 too).
            self.indptr = np.asarray(csr.indptr, dtype=np.int64)
            self.indices, self.data = csr.indices, csr.data
            self.X = np.zeros((1, 1), dtype=dtype)
            self.nnz = csr.nnz
        else:
            array = np.asarray(X)
            if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
                raise DataError(f"{name} must be numeric; got dtype {array.dtype}")
            if array.ndim != 2:
                raise DataError(f"{name} must be 2-dimensional (rows x features); got shape {array.shape}")
            if n_features is not None and array.shape[1] != n_features:
                if array.shape[1] < n_features:
                    array = np.hstack([array, np.zeros((array.shape[0], n_features - array.shape[1]), array.dtype)])
                elif ignore_extra_features:
                    array = array[:, :n_features]
                else:
                    raise DataError(
                        f"{name} has {array.shape[1]} features but the model was trained on {n_features}; "
                        "pass ignore_extra_features=True (--ignore-extra-features) to drop the extra ones"
                    )
            self.dense = True
            self.n_rows, self.n_features = array.shape
            self.X = np.ascontiguousarray(array, dtype=dtype)
            if not np.all(np.isfinite(self.X)):
                raise DataError(f"{name} contains NaN or infinite values; remove or impute them before training")
            self.indptr = np.zeros(1, dtype=np.int64)
            self.indices = np.zeros(0, dtype=np.int32)
            self.data = np.zeros(0, dtype=dtype)
            self.nnz = int(np.count_nonzero(self.X))

    def args(self):
        return self.dense, self.X, self.indptr, self.indices, self.data

    def max_row_nnz(self):
        if self.dense:
            return self.n_features
        return int(np.max(np.diff(self.indptr))) if self.n_rows else 0

    def take(self, rows):
        """The rows ``rows`` as a new `_Input` (used to hold out a validation split)."""
        out = object.__new__(_Input)
        out.__dict__.update(self.__dict__)
        if self.dense:
            out.X = np.ascontiguousarray(self.X[rows])
            out.nnz = int(np.count_nonzero(out.X))
        else:
            matrix = sp.csr_matrix((self.data, self.indices, self.indptr), shape=(self.n_rows, self.n_features))[rows]
            out.indptr = np.ascontiguousarray(matrix.indptr, dtype=np.int64)
            out.indices = np.ascontiguousarray(matrix.indices, dtype=np.int32)
            out.data = np.ascontiguousarray(matrix.data)
            out.nnz = int(out.indices.size)
        out.n_rows = len(rows)
        return out

    def as_matrix(self):
        if self.dense:
            return self.X
        return sp.csr_matrix((self.data, self.indices, self.indptr), shape=(self.n_rows, self.n_features))


def _load_x(X):
    """X itself, or the features of a path / dataset object (`hogwild._inputs.load_xy`)."""
    from ._inputs import load_xy

    return load_xy(X)[0]


# --------------------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------------------
class MLPModel(Model):
    """A fitted MLP: flat parameters (see `hogwild.kernels.mlp` for the layout), layer sizes and output.

    ``output`` is ``"softmax"`` (K > 2 classes), ``"logistic"`` (two classes, one output unit) or
    ``"identity"`` (regression). ``classes`` is the sorted array of class labels, or None for regression.
    """

    kind = "mlp"

    def __init__(self, params, dims, activation, output, classes=None):
        self.params = np.ascontiguousarray(params)
        self.dims = np.asarray(dims, dtype=np.int64)
        self.activation = activation
        self.output = output
        self.classes = None if classes is None else np.asarray(classes)
        _, _, n_params = _kernels().layout(self.dims)
        if self.params.ndim != 1 or self.params.size != n_params:
            raise DataError(f"MLP parameters have {self.params.size} values but layers {list(self.dims)} need {n_params}")

    # --- protocol attributes -------------------------------------------------------------------------
    @property
    def n_features(self):
        return int(self.dims[0])

    @property
    def n_outputs(self):
        return int(self.dims[-1])

    @property
    def hidden(self):
        return tuple(int(d) for d in self.dims[1:-1])

    @property
    def loss(self):
        return "squared_error" if self.output == "identity" else "log_loss"

    @property
    def has_proba(self):
        return self.classes is not None

    @property
    def dtype(self):
        return self.params.dtype

    @property
    def coefs(self):
        """Weight matrices, one ``(fan_in, fan_out)`` view of ``params`` per layer."""
        w_off, _, _ = _kernels().layout(self.dims)
        return [
            self.params[w : w + fan_in * fan_out].reshape(fan_in, fan_out)
            for w, fan_in, fan_out in zip(w_off, self.dims[:-1], self.dims[1:])
        ]

    @property
    def intercepts(self):
        """Bias vectors, one view of ``params`` per layer."""
        _, b_off, _ = _kernels().layout(self.dims)
        return [self.params[b : b + fan_out] for b, fan_out in zip(b_off, self.dims[1:])]

    # --- prediction ----------------------------------------------------------------------------------
    def decision_function(self, X, ignore_extra_features=False):
        """Raw output scores: ``(n,)`` for two classes or one regression target, else ``(n, n_outputs)``."""
        data = X if isinstance(X, _Input) else _Input(_load_x(X), self.dtype, self.n_features, "X", ignore_extra_features)
        kernels = _kernels()
        w_off, b_off, _ = kernels.layout(self.dims)
        block = max(1, min(_PREDICT_BLOCK, data.n_rows))
        act_off, size = kernels.activation_offsets(self.dims, block)
        acts = np.empty(size, dtype=self.dtype)
        scores = np.empty((data.n_rows, self.n_outputs), dtype=self.dtype)
        if data.n_rows:
            kernels.predict_scores(
                *data.args(), self.params, self.dims, w_off, b_off, act_off,
                kernels.ACTIVATIONS[self.activation], block, acts, scores,
            )
        return scores[:, 0] if self.n_outputs == 1 else scores

    def proba_from_scores(self, scores):
        """Class probabilities ``(n, n_classes)`` from scores: softmax, or the logistic sigmoid for two classes."""
        if self.classes is None:
            raise DataError("a regression MLP gives no probabilities")
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim == 1:
            positive = np.empty_like(scores)
            np.negative(scores, out=positive)
            positive = 1.0 / (1.0 + np.exp(np.clip(positive, -500, 500)))
            return np.column_stack([1.0 - positive, positive])
        shifted = scores - scores.max(axis=1, keepdims=True)
        np.exp(shifted, out=shifted)
        shifted /= shifted.sum(axis=1, keepdims=True)
        return shifted

    # --- serialization -------------------------------------------------------------------------------
    def arrays(self):
        """The model's arrays by name: ``coef_0.., intercept_0..`` and ``classes`` (classifiers)."""
        out = {}
        for layer, (coef, intercept) in enumerate(zip(self.coefs, self.intercepts)):
            out[f"coef_{layer}"] = np.ascontiguousarray(coef)
            out[f"intercept_{layer}"] = np.ascontiguousarray(intercept)
        if self.classes is not None:
            out["classes"] = self.classes
        return out

    def meta(self):
        """JSON-able description: kind, layer sizes, activation, output, loss, dtype."""
        return {
            "kind": self.kind,
            "dims": [int(d) for d in self.dims],
            "n_features": self.n_features,
            "hidden": list(self.hidden),
            "activation": self.activation,
            "output": self.output,
            "loss": self.loss,
            "dtype": str(self.dtype),
        }

    @classmethod
    def from_arrays(cls, arrays, meta):
        """Rebuild a model from `arrays` and `meta` (checks every shape against ``meta['dims']``)."""
        try:
            dims = [int(d) for d in meta["dims"]]
            activation, output = meta["activation"], meta["output"]
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"MLP model metadata is incomplete: {exc}") from None
        dtype = np.dtype(meta.get("dtype", "float32"))
        parts = []
        for layer, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
            coef = np.asarray(arrays.get(f"coef_{layer}"))
            intercept = np.asarray(arrays.get(f"intercept_{layer}"))
            if coef.shape != (fan_in, fan_out) or intercept.shape != (fan_out,):
                raise DataError(
                    f"MLP layer {layer} has shapes {coef.shape} and {intercept.shape}; expected "
                    f"({fan_in}, {fan_out}) and ({fan_out},)"
                )
            parts += [coef.ravel(), intercept]
        classes = arrays.get("classes")
        return cls(np.concatenate(parts).astype(dtype), dims, activation, output, classes)

    def __repr__(self):
        return f"MLPModel(dims={list(self.dims)}, activation={self.activation!r}, output={self.output!r})"


# --------------------------------------------------------------------------------------------------------
# training state
# --------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class MLPTrainingState:
    """Everything needed to continue training: weights, optimizer state, step counter, epochs done.

    `to_dict` / `from_dict` give a dict of arrays and JSON-able scalars (for checkpoints). The shuffle of
    epoch ``e`` is drawn from ``(seed, e)``, so ``epoch`` is the whole RNG state. Mid-epoch (a checkpoint at
    a chunk boundary), ``progress`` holds the rows each worker has done in the current epoch (``sync``: the
    rows done, in its first slot) and ``loss_sum`` their summed loss; both are zero between epochs.
    """

    params: np.ndarray
    state1: np.ndarray
    state2: np.ndarray
    step: np.ndarray  # one int64: the optimizer's step counter (shared by all workers)
    dims: np.ndarray
    activation: str
    output: str
    classes: np.ndarray | None = None
    epoch: int = 0
    progress: np.ndarray | None = None
    loss_sum: float = 0.0

    def model(self, copy=True):
        params = self.params.copy() if copy else self.params
        classes = None if self.classes is None else self.classes.copy()
        return MLPModel(params, self.dims, self.activation, self.output, classes)

    def to_dict(self):
        out = {
            "params": self.params,
            "state1": self.state1,
            "state2": self.state2,
            "dims": self.dims,
            "step": int(self.step[0]),
            "epoch": int(self.epoch),
            "activation": self.activation,
            "output": self.output,
            "loss_sum": float(self.loss_sum),
        }
        if self.classes is not None:
            out["classes"] = self.classes
        if self.progress is not None:
            out["progress"] = self.progress
        return out

    def mid_epoch(self):
        """Whether some rows of the current epoch are already done (a chunk-boundary checkpoint)."""
        return self.progress is not None and bool(np.any(self.progress))

    @classmethod
    def from_dict(cls, values):
        params = np.ascontiguousarray(values["params"])
        return cls(
            params=params,
            state1=np.ascontiguousarray(values["state1"], dtype=params.dtype),
            state2=np.ascontiguousarray(values["state2"], dtype=params.dtype),
            step=np.array([int(values["step"])], dtype=np.int64),
            dims=np.asarray(values["dims"], dtype=np.int64),
            activation=str(values["activation"]),
            output=str(values["output"]),
            classes=None if values.get("classes") is None else np.asarray(values["classes"]),
            epoch=int(values["epoch"]),
            progress=None if values.get("progress") is None else np.array(values["progress"], dtype=np.int64),
            loss_sum=float(values.get("loss_sum", 0.0)),
        )


def new_state(dims, activation, output, classes, seed, dtype, init_model=None):
    """A fresh `MLPTrainingState` (from ``init_model``'s weights when given)."""
    if init_model is not None:
        if [int(d) for d in init_model.dims] != [int(d) for d in dims]:
            raise ConfigError("hidden", f"init_model has layers {list(init_model.dims)} but the data and --hidden give {list(dims)}")
        params = np.array(init_model.params, dtype=dtype)
    else:
        params = init_params(dims, activation, seed, dtype)
    return MLPTrainingState(
        params=params,
        state1=np.zeros_like(params),
        state2=np.zeros_like(params),
        step=np.zeros(1, dtype=np.int64),
        dims=np.asarray(dims, dtype=np.int64),
        activation=activation,
        output=output,
        classes=classes,
    )


def gradient(model, X, y):
    """``(mean_loss, grad)``: the loss and the flat gradient of ``model.params`` over all rows of X as one batch.

    The compiled micro-batch kernel, without L2 and without an update: the building block that tests compare
    with finite differences and with the NumPy twin (and that GPU kernels can be checked against).
    """
    kernels = _kernels()
    data = _Input(X, model.dtype, model.n_features)
    regression = model.classes is None
    y_index, y_value, output, _ = _encode_targets(y, model.classes, regression, model.dtype, data.n_rows)
    if output != model.output:
        raise DataError(f"y gives a {output} output but the model has {model.output}")
    w_off, b_off, n_params = kernels.layout(model.dims)
    width = int(model.dims[1])
    n_first = model.n_features * width
    worker = _Worker(model.dims, data.n_rows, model.n_features, n_params - n_first, model.dtype)
    rows = np.arange(data.n_rows, dtype=np.int64)
    loss, n_touched = kernels.batch_gradient(
        *data.args(), y_index, y_value, kernels.OUTPUTS[output], kernels.ACTIVATIONS[model.activation], rows,
        model.params, model.dims, w_off, b_off, worker.act_off, worker.acts, worker.deltas,
        worker.grad_rows, worker.touched, worker.slot, worker.grad_rest,
    )
    grad = np.zeros(n_params, dtype=model.dtype)
    first = grad[:n_first].reshape(model.n_features, width)
    first[worker.touched[:n_touched]] = worker.grad_rows[: n_touched * width].reshape(n_touched, width)
    grad[n_first:] = worker.grad_rest
    return loss / data.n_rows, grad


# --------------------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------------------
MLP_MODES = ("async", "sync", "serial")
# Bottou's "optimal" step assumes a convex, L2-regularized objective; "adagrad" is the linear models'
# per-coordinate step, which the MLP optimizers (rmsprop, adam) provide. An MLP refuses both by name;
# the default schedule "auto" means "constant" for an MLP.
_LINEAR_SCHEDULES = ("optimal", "adagrad")


def mlp_config(config=None, **changes):
    """A validated `TrainConfig` with ``model="mlp"``; refuses options an MLP cannot honour (`ConfigError`)."""
    if config is None:
        config = TrainConfig(model="mlp")
    elif isinstance(config, dict):
        config = TrainConfig(**{"model": "mlp", **config})
    changes = {"model": "mlp", **changes}
    config = config.replace(**changes)
    if config.schedule in _LINEAR_SCHEDULES:
        raise ConfigError(
            "schedule",
            f"--schedule {config.schedule} is for linear models; with --model mlp use constant, decay or invscaling "
            "(the optimizer, e.g. --optimizer adam, adapts the step)",
        )
    if config.mode not in MLP_MODES:
        raise ConfigError(
            "mode",
            f"--mode {config.mode} is not available with --model mlp; use async (Hogwild!), sync or serial",
        )
    if config.loss not in ("log_loss", "squared_error"):
        raise ConfigError(
            "loss",
            f"--loss {config.loss} is not available with --model mlp; use log_loss (classification) or squared_error (regression)",
        )
    epsilon = getattr(config, "adam_epsilon", 1e-8)
    if not (epsilon > 0 and np.isfinite(epsilon)):
        raise ConfigError("adam_epsilon", f"--adam-epsilon must be a positive number; got {epsilon!r}")
    return config


def epoch_lr(config, epoch):
    """The learning rate of epoch ``epoch`` (0-based) under ``config.schedule`` (see the module docstring)."""
    if config.effective_schedule == "decay":
        return config.lr * config.decay**epoch
    if config.effective_schedule == "invscaling":
        return config.lr / (epoch + 1.0) ** config.power_t
    return config.lr


def epoch_order(seed, epoch, n_rows, shuffle=True):
    """The row order of one epoch: a permutation drawn from ``(seed, epoch)`` (storage order without shuffle)."""
    if not shuffle:
        return np.arange(n_rows, dtype=np.int64)
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n_rows).astype(np.int64)


# --------------------------------------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------------------------------------
class _Worker:
    """One worker's private scratch: activations, deltas and gradient buffers (nothing here is shared)."""

    def __init__(self, dims, batch_size, max_touched, n_rest, dtype):
        kernels = _kernels()
        self.act_off, size = kernels.activation_offsets(dims, batch_size)
        width = int(dims[1])
        self.acts = np.zeros(size, dtype=dtype)
        self.deltas = np.zeros(size, dtype=dtype)
        self.grad_rows = np.zeros(max_touched * width, dtype=dtype)
        self.touched = np.arange(max_touched, dtype=np.int64)  # dense input: every feature, in order
        self.slot = np.full(int(dims[0]), -1, dtype=np.int64)
        self.grad_rest = np.zeros(n_rest, dtype=dtype)


class _Engine:
    """Runs epochs of one mode over prepared data, updating a `MLPTrainingState` in place."""

    def __init__(self, data, y_index, y_value, state, config, n_workers):
        kernels = _kernels()
        self.kernels = kernels
        self.data, self.y_index, self.y_value = data, y_index, y_value
        self.state, self.config = state, config
        self.n_workers = n_workers
        dims = state.dims
        self.w_off, self.b_off, n_params = kernels.layout(dims)
        self.n_rest = n_params - int(dims[0]) * int(dims[1])
        batch = config.batch_size
        if data.dense:
            max_touched = data.n_features
        else:
            max_touched = min(data.n_features, batch * max(1, data.max_row_nnz()))
        self.workers = [_Worker(dims, batch, max_touched, self.n_rest, state.params.dtype) for _ in range(n_workers)]
        if config.mode == "sync" and n_workers > 1:
            merged_touched = data.n_features if data.dense else min(data.n_features, n_workers * max_touched)
            self.merged = _Worker(dims, 1, merged_touched, self.n_rest, state.params.dtype)
        self.output = kernels.OUTPUTS[state.output]
        self.activation = kernels.ACTIVATIONS[state.activation]
        self.optimizer = kernels.OPTIMIZERS[config.optimizer]
        self.epsilon = float(getattr(config, "adam_epsilon", 1e-8))
        self.clip_norm = float(config.clip_norm) if config.clip_norm else 0.0

    def _hyper(self, lr):
        """The update's scalars in the weights' dtype (one compiled variant per dtype, float32 loops stay float32)."""
        c, cast = self.config, self.state.params.dtype.type
        return (cast(lr), cast(c.l2), self.optimizer, cast(c.momentum), cast(c.beta1), cast(c.beta2),
                cast(self.epsilon), cast(self.clip_norm))

    def _train_rows(self, worker, order, start, stop, lr):
        """Compiled training of ``order[start:stop]`` by one worker; returns the summed loss."""
        s, w = self.state, self.workers[worker]
        return self.kernels.train_chunk(
            *self.data.args(), self.y_index, self.y_value, self.output, self.activation, order, start, stop,
            self.config.batch_size, s.params, s.state1, s.state2, s.step, s.dims, self.w_off, self.b_off, w.act_off,
            *self._hyper(lr), w.acts, w.deltas, w.grad_rows, w.touched, w.slot, w.grad_rest,
        )

    def run_epoch(self, pool, order, lr, on_chunk):
        """The rest of one pass over ``order``, from ``state.progress``; returns the epoch's summed loss.

        ``state.progress`` and ``state.loss_sum`` are brought up to date before each
        ``on_chunk(rows_done, loss_sum)`` call, so a checkpoint taken there resumes at exactly that point.
        """
        s = self.state
        if s.progress is None or s.progress.shape != (self.n_workers,):
            s.progress = np.zeros(self.n_workers, dtype=np.int64)
        if self.config.mode == "sync" and self.n_workers > 1:
            return self._epoch_sync(pool, order, lr, on_chunk)
        n = order.shape[0]
        chunk = self.config.chunk_rows
        bounds = np.linspace(0, n, self.n_workers + 1).astype(np.int64)
        position = bounds[:-1] + s.progress
        loss_sum, rows_done = s.loss_sum, int(s.progress.sum())
        while True:
            active = [w for w in range(self.n_workers) if position[w] < bounds[w + 1]]
            if not active:
                break
            spans = {w: (int(position[w]), int(min(position[w] + chunk, bounds[w + 1]))) for w in active}

            def task(w):
                return self._train_rows(w, order, *spans[w], lr)

            losses = pool.run(task, workers=active, row_range=lambda w: spans[w])
            for w in active:
                position[w] = spans[w][1]
                rows_done += spans[w][1] - spans[w][0]
            loss_sum += float(sum(losses))
            s.progress[:] = position - bounds[:-1]
            s.loss_sum = loss_sum
            on_chunk(rows_done, loss_sum)
        return loss_sum

    def _epoch_sync(self, pool, order, lr, on_chunk):
        """Barrier per mini-batch: per-worker gradients of the slices, combined, applied once."""
        kernels, s, m = self.kernels, self.state, self.merged
        n, batch, n_workers = order.shape[0], self.config.batch_size, self.n_workers
        width = int(s.dims[1])
        dense = self.data.dense
        grad_rows_each = np.stack([w.grad_rows for w in self.workers])
        grad_rest_each = np.stack([w.grad_rest for w in self.workers])
        touched_each = np.stack([w.touched for w in self.workers])
        # the kernels write into these stacked rows directly, so nothing is copied per mini-batch
        for index, w in enumerate(self.workers):
            w.grad_rows, w.grad_rest, w.touched = grad_rows_each[index], grad_rest_each[index], touched_each[index]
        n_touched_each = np.zeros(n_workers, dtype=np.int64)
        losses = np.zeros(n_workers)
        weights = np.zeros(n_workers)
        hyper = self._hyper(lr)
        first = int(s.progress[0])  # a multiple of the batch size: checkpoints fall between mini-batches
        loss_sum, rows_done, next_report = s.loss_sum, first, first + self.config.chunk_rows

        for start in range(first, n, batch):
            stop = min(start + batch, n)
            cuts = np.linspace(start, stop, n_workers + 1).astype(np.int64)

            def task(index):
                w = self.workers[index]
                rows = order[cuts[index] : cuts[index + 1]]
                loss, touched = kernels.batch_gradient(
                    *self.data.args(), self.y_index, self.y_value, self.output, self.activation, rows,
                    s.params, s.dims, self.w_off, self.b_off, w.act_off, w.acts, w.deltas,
                    w.grad_rows, w.touched, w.slot, w.grad_rest,
                )
                losses[index], n_touched_each[index] = loss, touched

            active = [w for w in range(n_workers) if cuts[w + 1] > cuts[w]]
            pool.run(task, workers=active, row_range=lambda w: (int(cuts[w]), int(cuts[w + 1])))
            sizes = np.diff(cuts).astype(np.float64)
            if self.config.aggregate == "weighted":
                weights[:] = sizes / sizes.sum()
            else:
                weights[:] = np.where(sizes > 0, 1.0 / len(active), 0.0)
            n_touched = kernels.merge_gradients(
                weights, n_touched_each, touched_each, grad_rows_each, grad_rest_each, width,
                m.touched, m.slot, m.grad_rows, m.grad_rest,
            )
            kernels.apply_update(
                s.params, s.state1, s.state2, s.step, m.grad_rows, m.touched, n_touched, m.grad_rest,
                s.dims, self.w_off, self.b_off, *hyper,
            )
            kernels.release_slots(m.touched, n_touched, m.slot)  # the merge uses slots for dense input too
            if not dense:
                for index in active:
                    w = self.workers[index]
                    kernels.release_slots(w.touched, n_touched_each[index], w.slot)
            loss_sum += float(losses[active].sum())
            rows_done = stop
            if rows_done >= next_report or stop == n:
                next_report += self.config.chunk_rows
                s.progress[0], s.loss_sum = rows_done, loss_sum
                on_chunk(rows_done, loss_sum)
        return loss_sum


def _encode_targets(y, classes, regression, dtype, n_rows):
    """``(y_index, y_value, output, classes)`` in the kernels' form; checks the labels against ``classes``."""
    y = np.asarray(y)
    if y.shape[0] != n_rows:
        raise DataError(f"X has {n_rows} rows but y has {y.shape[0]} labels")
    if regression:
        values = y.reshape(n_rows, -1) if y.ndim <= 2 else None
        if values is None:
            raise DataError(f"y must be 1-D or 2-D for regression; got shape {y.shape}")
        values = np.ascontiguousarray(values, dtype=dtype)
        if not np.all(np.isfinite(values)):
            raise DataError("y contains NaN or infinite values")
        return np.zeros(1, dtype=np.int64), values, "identity", None
    if y.ndim != 1:
        raise DataError(f"y must be 1-D class labels; got shape {y.shape}")
    if classes is None:
        classes = np.unique(y)
    classes = np.asarray(classes)
    if classes.size < 2:
        raise DataError(f"classification needs at least two classes; y has only {classes.tolist()}")
    index = np.searchsorted(classes, y)
    index = np.clip(index, 0, classes.size - 1)
    unknown = classes[index] != y
    if np.any(unknown):
        raise DataError(f"y has labels not among the model's classes: {np.unique(y[unknown])[:5].tolist()}")
    output = "logistic" if classes.size == 2 else "softmax"
    return index.astype(np.int64), np.zeros((1, 1), dtype=dtype), output, classes


def epoch_record(epoch, seconds, loss_sum, lr, data, model, val, test):
    """The history record of one finished MLP epoch (CPU or GPU): timings, train loss, metrics on val/test."""
    record = {
        "epoch": epoch,
        "seconds": seconds,
        "train_loss": loss_sum / data.n_rows,
        "rows_per_s": data.n_rows / max(seconds, 1e-12),
        "nnz_per_s": data.nnz / max(seconds, 1e-12),
        "lr": lr,
    }
    if val is not None:
        record.update(_metric_record(model, "validation", *val))
    if test is not None:
        record.update(_metric_record(model, "test", *test))
    return record


class NoImprovementStop:
    """tol / n_iter_no_change early stopping on the validation loss (RMSE for regression), else the train loss."""

    def __init__(self, config):
        self.tol, self.patience = config.tol, config.n_iter_no_change
        self.best, self.since_best = np.inf, 0

    def __call__(self, record):
        """True when training should stop after this epoch's ``record``."""
        if self.tol is None:
            return False
        monitored = record.get("validation_loss", record.get("validation_rmse", record["train_loss"]))
        if monitored < self.best - self.tol:
            self.best, self.since_best = monitored, 0
            return False
        self.since_best += 1
        return self.since_best >= self.patience


def _metric_record(model, prefix, X, y):
    metrics = evaluate_model(model, X, y)
    names = {"accuracy": "accuracy", "log_loss": "loss", "roc_auc": "auc", "rmse": "rmse", "mae": "mae"}
    return {f"{prefix}_{names[k]}": v for k, v in metrics.items() if k in names}


def train_mlp(
    X, y, config=None, *, X_val=None, y_val=None, X_test=None, y_test=None, callback=None, init_model=None,
    state=None, init_state=None, classes=None,
):
    """Train an MLP on ``X`` (dense or CSR) and ``y``; returns a `TrainResult` (model + per-epoch history).

    ``config`` is a `TrainConfig` (or a dict of its fields); ``model="mlp"`` is implied. Classification
    (``loss="log_loss"``) or regression (``loss="squared_error"``) follows ``config.loss``.
    ``init_model`` starts from a model's weights (fresh optimizer state); ``state`` (an `MLPTrainingState`,
    updated in place) continues a previous run with its optimizer state and epoch count, for ``partial_fit``
    and checkpoints; ``init_state`` is the same as a dict (`MLPTrainingState.to_dict`, copied);
    ``config.epochs`` more epochs are run. The state used is returned as ``result.training_state``
    and exported as ``result.state`` (a dict of arrays and scalars, like the linear engine's). ``classes`` fixes the class labels (``partial_fit`` on a first batch that
    lacks some of them). ``callback(event)`` receives
    ``{"kind": "chunk", ...}`` between chunks and ``{"kind": "epoch", **record}`` after each epoch.
    Raises `DivergenceError` when the loss or weights become non-finite.
    """
    config = mlp_config(config)
    if config.device != "cpu":
        from .device import resolve_device

        if resolve_device(config.device) == "cuda":
            from .gpu_mlp import train_mlp_gpu

            return train_mlp_gpu(X, y, config, X_val=X_val, y_val=y_val, X_test=X_test, y_test=y_test,
                                 callback=callback, init_model=init_model, state=state, init_state=init_state,
                                 classes=classes)
    trainer = MLPTrainer(X, y, config, X_val=X_val, y_val=y_val, X_test=X_test, y_test=y_test, callback=callback,
                         init_model=init_model, state=state, init_state=init_state, classes=classes)
    # Checkpoints, --resume, graceful Ctrl-C/SIGTERM and worker faults wrap the epoch loop, as for linear models.
    from .resilience import run_resilient

    return run_resilient(trainer)


class MLPTrainer:
    """One MLP training run on the CPU: the prepared data, the `MLPTrainingState` and the epoch loop.

    It offers what `hogwild.resilience.run_resilient` drives, like the linear `hogwild.engine.Trainer`:
    ``hooks`` run at every chunk boundary, ``callback``, ``snapshot``/``restore_snapshot``, ``fingerprint``,
    ``position`` and ``model``. ``run`` trains until ``config.epochs`` epochs more than the starting state had.
    """

    def __init__(self, X, y, config, *, X_val=None, y_val=None, X_test=None, y_test=None, callback=None,
                 init_model=None, state=None, init_state=None, classes=None, hooks=()):
        from ._inputs import load_xy

        self.config = config = self._config(config)
        self.callback, self.hooks = callback, list(hooks)
        X, y = load_xy(X, y)
        if X_val is not None:
            X_val, y_val = load_xy(X_val, y_val)
        if X_test is not None:
            X_test, y_test = load_xy(X_test, y_test)
        if y is None:
            raise DataError("y is required for training")
        dtype = np.dtype(config.dtype)
        regression = config.loss in REGRESSION_LOSSES
        if state is None and init_state is not None:
            state = MLPTrainingState.from_dict(
                {k: (np.array(v) if isinstance(v, np.ndarray) else v) for k, v in init_state.items()}
            )
        n_features = None if state is None else int(state.dims[0])
        data = _Input(X, dtype, n_features)
        if data.n_rows == 0:
            raise DataError("X has no rows to train on")
        if state is not None and classes is None:
            classes = state.classes
        y_index, y_value, output, classes = _encode_targets(y, classes, regression, dtype, data.n_rows)
        y_labels = np.asarray(y)

        if X_val is None and config.validation_fraction > 0:
            n_val = max(1, int(round(config.validation_fraction * data.n_rows)))
            if n_val >= data.n_rows:
                raise DataError(f"--validation-fraction {config.validation_fraction} leaves no rows to train on")
            perm = np.random.default_rng([int(config.seed), 0x56414C]).permutation(data.n_rows)
            held, kept = np.sort(perm[:n_val]), np.sort(perm[n_val:])
            X_val = data.take(held)
            y_val = y_labels[held]
            data = data.take(kept)
            y_labels = y_labels[kept]
            y_index = y_index[kept] if y_index.size > 1 else y_index
            y_value = y_value[kept] if regression else y_value

        n_outputs = y_value.shape[1] if regression else (1 if output == "logistic" else classes.size)
        dims = np.array([data.n_features, *config.hidden, n_outputs], dtype=np.int64)
        if state is None:
            state = new_state(dims, config.activation, output, classes, config.seed, dtype, init_model)
        else:
            if list(state.dims) != list(dims) or state.output != output:
                raise ConfigError("hidden", f"the training state has layers {list(state.dims)} but the data and --hidden give {list(dims)}")
            if state.params.dtype != dtype:
                raise ConfigError("dtype", f"the training state is {state.params.dtype} but --dtype is {config.dtype}")

        self.n_workers = self._workers(config, data.n_rows)
        self.data, self.y_labels, self.state = data, y_labels, state
        self.y_index, self.y_value = y_index, y_value
        self.engine = self._make_engine()
        self.val = None if X_val is None else (X_val if isinstance(X_val, _Input) else _Input(X_val, dtype, data.n_features, "X_val"), y_val)
        self.test = None if X_test is None else (_Input(X_test, dtype, data.n_features, "X_test"), y_test)
        self.target_epoch = state.epoch + config.epochs
        self.history = []
        self.should_stop = NoImprovementStop(config)
        self.pool = None

    def _config(self, config):
        return mlp_config(config)

    def _workers(self, config, n_rows):
        threads = config.threads or available_cores()
        return 1 if config.mode == "serial" else max(1, min(int(threads), n_rows))

    def _make_engine(self):
        return _Engine(self.data, self.y_index, self.y_value, self.state, self.config, self.n_workers)

    # --- what hogwild.resilience drives ----------------------------------------------------------------
    def snapshot(self):
        """The training state, early-stopping counters and history so far (copies): what a checkpoint holds."""
        engine = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in self.state.to_dict().items()}
        engine["n_workers"] = self.n_workers
        stop = self.should_stop
        return {"engine": engine, "history": copy.deepcopy(self.history),
                "early_stopping": {"best": float(stop.best), "since_best": int(stop.since_best)}}

    def restore_snapshot(self, snapshot):
        """Continue from a `snapshot` (refused when it has other layers, or stopped mid-epoch with other --threads)."""
        values = snapshot["engine"]
        restored = MLPTrainingState.from_dict(values)
        if list(restored.dims) != list(self.state.dims) or restored.params.dtype != self.state.params.dtype:
            raise CheckpointError(
                f"the checkpoint holds a {restored.params.dtype} network with layers {list(restored.dims)}, but this "
                f"run has {self.state.params.dtype} {list(self.state.dims)}; resume with the same data and --hidden"
            )
        if restored.mid_epoch() and int(values.get("n_workers", self.n_workers)) != self.n_workers:
            raise CheckpointError(
                f"the checkpoint was taken mid-epoch by {values.get('n_workers')} workers but this run has "
                f"{self.n_workers}; resume with the same --threads"
            )
        state = self.state
        state.params[...] = restored.params  # in place: the engine and the live model hold these arrays
        state.state1[...] = restored.state1
        state.state2[...] = restored.state2
        state.step[...] = restored.step
        state.epoch, state.progress, state.loss_sum = restored.epoch, restored.progress, restored.loss_sum
        self.history = list(snapshot.get("history") or [])
        stop = snapshot.get("early_stopping") or {}
        self.should_stop.best = float(stop.get("best", np.inf))
        self.should_stop.since_best = int(stop.get("since_best", 0))

    def fingerprint(self):
        """The training data's `hogwild.checkpoint.data_fingerprint` (checked when resuming)."""
        from .checkpoint import data_fingerprint

        return data_fingerprint(self.data.as_matrix(), self.y_labels)

    def position(self):
        """Rows done in the current epoch, over all workers."""
        return 0 if self.state.progress is None else int(self.state.progress.sum())

    @property
    def epoch(self):
        """Epochs finished."""
        return int(self.state.epoch)

    def parameters(self):
        """The live shared arrays by name (weights and optimizer state), writable in place between chunks."""
        state = self.state
        return {"params": state.params, "state1": state.state1, "state2": state.state2}

    def model(self, copy=True):
        return self.state.model(copy=copy)

    # --- the epoch loop -----------------------------------------------------------------------------------
    def _chunk_boundary(self, rows_done, loss_sum):
        state = self.state
        if not np.isfinite(loss_sum) or not np.all(np.isfinite(state.params)):
            raise DivergenceError(
                f"training diverged in epoch {state.epoch + 1} (non-finite loss or weights) with --lr {self.config.lr}; "
                "try a smaller --lr or set --clip-norm"
            )
        if self.callback is not None:
            self.callback({"kind": "chunk", "epoch": state.epoch + 1, "rows_done": int(rows_done),
                           "n_rows": int(self.data.n_rows), "train_loss": loss_sum / max(rows_done, 1)})
        for hook in self.hooks:
            hook(self)
        if self.pool is not None and self.pool.stop.is_set():
            raise TrainingInterrupted(None, model=self.model(), history=self.history)

    def run(self):
        config, state, data = self.config, self.state, self.data
        stopped_early = False
        live_model = state.model(copy=False)  # shares the weights: evaluated between epochs, when no worker writes
        with WorkerPool(self.n_workers) as pool:
            self.pool = pool
            while state.epoch < self.target_epoch:
                lr = epoch_lr(config, state.epoch)
                order = epoch_order(config.seed, state.epoch, data.n_rows, config.shuffle)
                started = time.perf_counter()
                loss_sum = self.engine.run_epoch(pool, order, lr, self._chunk_boundary)
                seconds = time.perf_counter() - started
                state.epoch += 1
                state.progress[:] = 0
                state.loss_sum = 0.0
                record = epoch_record(state.epoch, seconds, loss_sum, lr, data, live_model, self.val, self.test)
                self.history.append(record)
                # the stopping rule's counters advance before the callback, where the epoch's checkpoint is taken
                stop = self.should_stop(record)
                if self.callback is not None:
                    self.callback({"kind": "epoch", **record})
                if stop:
                    stopped_early = True
                    break
        result = TrainResult(model=state.model(copy=True), history=self.history, config=config,
                             stopped_early=stopped_early)
        result.training_state = state  # for partial_fit and checkpoints: weights + optimizer state + epochs done
        result.state = state.to_dict()
        return result


# --------------------------------------------------------------------------------------------------------
# scikit-learn style estimators
# --------------------------------------------------------------------------------------------------------
class _MLPEstimator:
    """Shared parts of `MLPClassifier` and `MLPRegressor` (parameters, fit, partial_fit, attributes)."""

    _loss = "log_loss"

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        solver="adam",
        optimizer=None,
        learning_rate_init=0.001,
        learning_rate="constant",
        alpha=1e-4,
        batch_size=32,
        max_iter=20,
        momentum=0.9,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        clip_norm=None,
        shuffle=True,
        tol=None,
        n_iter_no_change=5,
        early_stopping=False,
        validation_fraction=0.1,
        random_state=None,
        mode="async",
        n_threads=None,
        dtype="float32",
        device="cpu",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.optimizer = optimizer
        self.learning_rate_init = learning_rate_init
        self.learning_rate = learning_rate
        self.alpha = alpha
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.momentum = momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.clip_norm = clip_norm
        self.shuffle = shuffle
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.mode = mode
        self.n_threads = n_threads
        self.dtype = dtype
        self.device = device

    # --- parameters ----------------------------------------------------------------------------------
    @classmethod
    def _param_names(cls):
        signature = inspect.signature(_MLPEstimator.__init__)
        return [name for name in signature.parameters if name != "self"]

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ConfigError(name, f"{type(self).__name__} has no parameter {name!r}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = inspect.signature(_MLPEstimator.__init__).parameters
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if v != defaults[k].default]
        return f"{type(self).__name__}({', '.join(changed)})"

    def _config(self, epochs):
        hidden = self.hidden_layer_sizes
        hidden = (hidden,) if isinstance(hidden, (int, np.integer)) else tuple(int(h) for h in hidden)
        if self.random_state is None:
            seed = getattr(self, "_seed", None)
            if seed is None:
                seed = self._seed = int(np.random.SeedSequence().entropy % (2**31))
        elif isinstance(self.random_state, (int, np.integer)):
            seed = int(self.random_state)
        else:
            raise ConfigError("random_state", f"random_state must be None or an integer; got {self.random_state!r}")
        changes = dict(
            loss=self._loss,
            hidden=hidden,
            activation=self.activation,
            optimizer=self.optimizer or self.solver,
            lr=float(self.learning_rate_init),
            schedule=self.learning_rate,
            l2=float(self.alpha),
            batch_size=int(self.batch_size),
            epochs=int(epochs),
            momentum=float(self.momentum),
            beta1=float(self.beta_1),
            beta2=float(self.beta_2),
            clip_norm=self.clip_norm,
            shuffle=bool(self.shuffle),
            tol=self.tol,
            n_iter_no_change=int(self.n_iter_no_change),
            validation_fraction=float(self.validation_fraction) if self.early_stopping else 0.0,
            seed=seed,
            mode=self.mode,
            threads=self.n_threads,
            dtype=self.dtype,
            device=self.device,
        )
        if "adam_epsilon" in {f.name for f in dataclasses.fields(TrainConfig)}:
            changes["adam_epsilon"] = float(self.epsilon)
        return mlp_config(TrainConfig(model="mlp"), **changes)

    # --- training ------------------------------------------------------------------------------------
    def fit(self, X, y, X_val=None, y_val=None, callback=None):
        """Train from a fresh network for ``max_iter`` epochs; returns ``self``."""
        self._seed = None
        self._state = None
        self.history_ = []
        return self._train(X, y, self.max_iter, X_val, y_val, callback, classes=None)

    def partial_fit(self, X, y, classes=None):
        """One more epoch over ``(X, y)``, keeping the weights and optimizer state; returns ``self``."""
        if getattr(self, "_state", None) is None:
            self.history_ = []
        return self._train(X, y, 1, None, None, None, classes=classes)

    def _train(self, X, y, epochs, X_val, y_val, callback, classes):
        config = self._config(epochs)
        if classes is not None:
            classes = np.unique(np.asarray(classes))
        result = train_mlp(
            X, y, config, X_val=X_val, y_val=y_val, callback=callback, state=getattr(self, "_state", None),
            classes=classes,
        )
        self._state = result.training_state
        self.model_ = result.model
        self.history_ = list(getattr(self, "history_", [])) + result.history
        self.n_iter_ = len(self.history_)
        self.loss_curve_ = [record["train_loss"] for record in self.history_]
        self.n_features_in_ = self.model_.n_features
        self.coefs_ = [c.copy() for c in self.model_.coefs]
        self.intercepts_ = [b.copy() for b in self.model_.intercepts]
        return self

    def _check_fitted(self):
        if getattr(self, "model_", None) is None:
            raise DataError(f"this {type(self).__name__} is not fitted yet; call fit first")
        return self.model_

    def predict(self, X):
        return self._check_fitted().predict(X)


class MLPClassifier(_MLPEstimator):
    """Multi-layer perceptron classifier (softmax cross-entropy, or logistic output for two classes).

    scikit-learn's parameter names; ``solver`` (or its alias ``optimizer``) is one of sgd, momentum, adam,
    rmsprop; ``mode`` async|sync|serial, ``n_threads``, ``dtype``, ``device`` as in `TrainConfig`.
    Defaults differ from scikit-learn's where the Hogwild! engine wants it: ``batch_size=32``, ``max_iter=20``
    and no early stopping unless ``tol`` is set.
    """

    _loss = "log_loss"

    @property
    def classes_(self):
        return self._check_fitted().classes

    def predict_proba(self, X):
        return self._check_fitted().predict_proba(X)

    def decision_function(self, X):
        return self._check_fitted().decision_function(X)

    def score(self, X, y):
        """Mean accuracy on ``(X, y)``."""
        return float(np.mean(self.predict(X) == np.asarray(y)))


class MLPRegressor(_MLPEstimator):
    """Multi-layer perceptron regressor (squared error; ``y`` may have several columns)."""

    _loss = "squared_error"

    def score(self, X, y):
        """Coefficient of determination R^2 on ``(X, y)`` (averaged uniformly over outputs)."""
        y = np.asarray(y, dtype=np.float64)
        pred = np.asarray(self.predict(X), dtype=np.float64).reshape(y.shape)
        y2, p2 = y.reshape(len(y), -1), pred.reshape(len(y), -1)
        residual = ((y2 - p2) ** 2).sum(axis=0)
        total = ((y2 - y2.mean(axis=0)) ** 2).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(total > 0, 1.0 - residual / total, np.where(residual == 0, 1.0, 0.0))
        return float(np.mean(r2))
