"""Fitted models: the `Model` protocol every model kind follows, `LinearModel` and `MLPModel`.

A model is its arrays plus a JSON-able description: ``arrays()`` and ``meta()`` are all that
`hogwild.model_io` writes (with ``hash_bits``: a model trained on hashed features hashes what it scores), and
``from_arrays(arrays, meta)`` rebuilds it. `hogwild.metrics.evaluate_model`
needs only ``classes``, ``has_proba``, ``decision_function``, ``predict_from_scores`` and ``proba_from_scores``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._inputs import Features, load_xy
from .errors import DataError

_PREDICT_BLOCK = 256  # MLP rows per compiled forward call when predicting: bounds the scratch, keeps it in cache

PROBA_LOSSES = ("log_loss", "modified_huber")


class Model:
    """The protocol of a fitted model (`LinearModel`, `MLPModel`).

    Attributes: ``kind`` ("linear" | "mlp"), ``classes`` (sorted labels, or None for regression),
    ``n_features``, ``loss``, ``has_proba``.
    """

    kind = None
    classes = None
    n_features = 0
    loss = None
    hash_bits = None  # trained on hashed features (hogwild.hashing): inputs are hashed into 2**hash_bits columns

    @property
    def has_proba(self):
        raise NotImplementedError

    def decision_function(self, X, ignore_extra_features=False):
        """Scores: shape (n,) for binary and regression models, (n, K) for multiclass ones.

        A memory-mapped matrix (a binary cache larger than memory) is scored a piece of rows at a time, and the
        pages of each piece are dropped once it is scored.
        """
        from .memory import csr_is_mapped, release_rows, row_pieces

        X, _ = load_xy(X)
        if not (sp.issparse(X) and X.format == "csr" and csr_is_mapped(X)):
            return self._scores(self._hashed(X), ignore_extra_features)
        parts = []
        for first, stop in row_pieces(X.indptr, X.shape[0]):
            parts.append(self._scores(self._hashed(X[first:stop]), ignore_extra_features))
            release_rows(X, first, stop)
        if not parts:
            return self._scores(self._hashed(X), ignore_extra_features)
        return np.concatenate(parts, axis=0)

    def _hashed(self, X):
        """X with its features hashed as the training rows were (any width), or X itself for a model without."""
        if self.hash_bits is None:
            return X
        from .hashing import hash_features

        return hash_features(X, self.hash_bits)

    def _scores(self, X, ignore_extra_features):
        """`decision_function` of a matrix in memory (the model kind's own arithmetic)."""
        raise NotImplementedError

    def predict_from_scores(self, scores):
        """Labels (classification) or values (regression) from `decision_function`'s scores."""
        scores = np.asarray(scores)
        if self.classes is None:
            return scores
        if scores.ndim == 1:
            return self.classes[(scores > 0).astype(np.intp)]
        return self.classes[np.argmax(scores, axis=1)]

    def proba_from_scores(self, scores):
        raise NotImplementedError

    def predict(self, X, ignore_extra_features=False):
        """Predicted labels (classification) or values (regression) of the rows of X."""
        return self.predict_from_scores(self.decision_function(X, ignore_extra_features=ignore_extra_features))

    def predict_proba(self, X, ignore_extra_features=False):
        """Class probabilities, shape (n, K) in ``classes`` order; AttributeError when the loss gives none."""
        if not self.has_proba:
            raise AttributeError(
                f"predict_proba is not available for loss={self.loss!r}; "
                "use log_loss or modified_huber (or multiclass softmax)"
            )
        return self.proba_from_scores(self.decision_function(X, ignore_extra_features=ignore_extra_features))

    def arrays(self):
        raise NotImplementedError

    def meta(self):
        raise NotImplementedError

    @classmethod
    def from_arrays(cls, arrays, meta):
        raise NotImplementedError

    def save(self, path):
        """Write this model to ``path`` (see `hogwild.model_io.save_model`); returns the path."""
        from .model_io import save_model

        return save_model(self, path)


class LinearModel(Model):
    """A fitted linear model: scores ``X @ coef + intercept``.

    ``coef`` has shape (n_features, n_outputs) (n_outputs = 1 for binary and regression, K for multiclass),
    ``intercept`` shape (n_outputs,). ``multiclass`` is "binary", "ovr" or "softmax"; ``classes`` holds the
    sorted labels (None for regression); ``config`` the training config as a dict.
    """

    kind = "linear"

    def __init__(self, coef, intercept, classes, loss, multiclass="binary", config=None):
        self.coef = np.ascontiguousarray(coef)
        if self.coef.ndim == 1:
            self.coef = self.coef.reshape(-1, 1)
        self.intercept = np.ascontiguousarray(intercept, dtype=self.coef.dtype).reshape(-1)
        self.classes = None if classes is None else np.asarray(classes)
        self.loss = loss
        self.multiclass = multiclass
        self.config = dict(config or {})
        self.n_features = int(self.coef.shape[0])

    @property
    def n_outputs(self):
        return int(self.coef.shape[1])

    @property
    def dtype(self):
        return self.coef.dtype

    @property
    def has_proba(self):
        if self.classes is None:
            return False
        return self.multiclass == "softmax" or self.loss in PROBA_LOSSES

    def _scores(self, X, ignore_extra_features):
        from ._inputs import as_csr, match_features

        csr = match_features(as_csr(X, self.coef.dtype), self.n_features, ignore_extra_features)
        scores = np.asarray(csr.to_scipy() @ self.coef, dtype=np.float64) + self.intercept
        return scores[:, 0] if self.n_outputs == 1 else scores

    def proba_from_scores(self, scores):
        scores = np.asarray(scores, dtype=np.float64)
        if self.multiclass == "softmax":
            shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
            return shifted / shifted.sum(axis=1, keepdims=True)
        if self.loss == "modified_huber":
            positive = (np.clip(scores, -1.0, 1.0) + 1.0) / 2.0
        else:
            positive = _sigmoid(scores)
        if scores.ndim == 1:
            return np.column_stack([1.0 - positive, positive])
        # One-vs-rest: normalize the K binary probabilities (scikit-learn's rule), uniform where all are 0.
        total = positive.sum(axis=1, keepdims=True)
        uniform = np.full_like(positive, 1.0 / positive.shape[1])
        return np.where(total > 0, positive / np.where(total > 0, total, 1.0), uniform)

    def arrays(self):
        out = {"coef": self.coef, "intercept": self.intercept}
        if self.classes is not None:
            out["classes"] = _plain_array(self.classes)
        return out

    def meta(self):
        return {
            "kind": self.kind,
            "loss": self.loss,
            "multiclass": self.multiclass,
            "n_features": self.n_features,
            "n_outputs": self.n_outputs,
            "dtype": str(self.coef.dtype),
            "config": self.config,
        }

    @classmethod
    def from_arrays(cls, arrays, meta):
        coef = arrays["coef"]
        if coef.ndim != 2 or arrays["intercept"].shape != (coef.shape[1],):
            raise DataError(f"model arrays have inconsistent shapes {coef.shape} and {arrays['intercept'].shape}")
        return cls(
            coef, arrays["intercept"], arrays.get("classes"), meta["loss"], meta.get("multiclass", "binary"),
            meta.get("config"),
        )

    def __repr__(self):
        what = "regression" if self.classes is None else f"{len(self.classes)} classes"
        return f"LinearModel(loss={self.loss!r}, {what}, n_features={self.n_features}, dtype={self.dtype})"


def _sigmoid(z):
    out = np.empty_like(z)
    positive = z >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-z[positive]))
    e = np.exp(z[~positive])
    out[~positive] = e / (1.0 + e)
    return out


def _plain_array(values):
    """An array numpy can save without pickle: numbers stay numbers, anything else becomes unicode text."""
    values = np.asarray(values)
    if values.dtype == object:
        return values.astype(str)
    return values


def _mlp_kernels():
    """The compiled MLP kernels, imported on first use so that loading a model file does not load Numba."""
    from .kernels import mlp

    return mlp


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
        _, _, n_params = _mlp_kernels().layout(self.dims)
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
        w_off, _, _ = _mlp_kernels().layout(self.dims)
        return [
            self.params[w : w + fan_in * fan_out].reshape(fan_in, fan_out)
            for w, fan_in, fan_out in zip(w_off, self.dims[:-1], self.dims[1:])
        ]

    @property
    def intercepts(self):
        """Bias vectors, one view of ``params`` per layer."""
        _, b_off, _ = _mlp_kernels().layout(self.dims)
        return [self.params[b : b + fan_out] for b, fan_out in zip(b_off, self.dims[1:])]

    # --- prediction ----------------------------------------------------------------------------------
    def decision_function(self, X, ignore_extra_features=False):
        """Raw output scores: ``(n,)`` for two classes or one regression target, else ``(n, n_outputs)``."""
        if isinstance(X, Features):
            return self._scores(X, ignore_extra_features)
        return super().decision_function(X, ignore_extra_features)

    def _scores(self, X, ignore_extra_features):
        data = X if isinstance(X, Features) else Features(X, self.dtype, self.n_features, "X", ignore_extra_features)
        kernels = _mlp_kernels()
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


def init_mlp_params(dims, activation, seed, dtype):
    """Initial flat parameters: He-normal (relu) or Glorot-uniform (tanh, sigmoid, and the output layer).

    Drawn in float64 from ``seed`` and then cast, so float32 and float64 runs start from the same network.
    """
    rng = np.random.default_rng([int(seed), 0x4D4C50])  # a stream of its own, apart from the shuffles
    parts = []
    n_layers = len(dims) - 1
    for layer, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
        if activation == "relu" and layer < n_layers - 1:
            weights = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=fan_in * fan_out)
        else:
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            weights = rng.uniform(-limit, limit, size=fan_in * fan_out)
        parts += [weights, np.zeros(fan_out)]
    return np.concatenate(parts).astype(dtype)
