"""Fitted models: the `Model` protocol every model kind follows, and `LinearModel` (sparse linear models).

A model is its arrays plus a JSON-able description: ``arrays()`` and ``meta()`` are all that
`hogwild.model_io` writes, and ``from_arrays(arrays, meta)`` rebuilds it. `hogwild.metrics.evaluate_model`
needs only ``classes``, ``has_proba``, ``decision_function``, ``predict_from_scores`` and ``proba_from_scores``.
"""

from __future__ import annotations

import numpy as np

from .errors import DataError

PROBA_LOSSES = ("log_loss", "modified_huber")


class Model:
    """The protocol of a fitted model (`LinearModel`, `hogwild.mlp.MLPModel`).

    Attributes: ``kind`` ("linear" | "mlp"), ``classes`` (sorted labels, or None for regression),
    ``n_features``, ``loss``, ``has_proba``.
    """

    kind = None
    classes = None
    n_features = 0
    loss = None

    @property
    def has_proba(self):
        raise NotImplementedError

    def decision_function(self, X, ignore_extra_features=False):
        """Scores: shape (n,) for binary and regression models, (n, K) for multiclass ones."""
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

    def decision_function(self, X, ignore_extra_features=False):
        from ._inputs import as_csr, load_xy, match_features

        X, _ = load_xy(X)
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
