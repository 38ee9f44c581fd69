"""The benchmark's shared problem: one train/test split and ONE way to score every system's final parameters.

Each system reports its own training loss in its own convention (scikit-learn adds ``alpha * R(w)``, LIBLINEAR
sums ``C * loss``, Vowpal Wabbit prints a progressive loss). A fair comparison evaluates all of them the same way,
here, from the parameters each one learned:

    objective(w, b) = mean_i loss(y_i, x_i . w + b) + l2 / 2 * ||w||^2 + l1 * ||w||_1

with the loss written as scikit-learn writes it (``log_loss`` is ``log(1 + exp(-y z))`` for y in {-1, +1},
``squared_error`` is ``(y - z)^2 / 2``) and the intercept unregularized. Multiclass one-vs-rest is the mean of the
K binary objectives; softmax is the mean cross-entropy plus ``l2 / 2 * ||W||_F^2``. For an MLP it is the mean
cross-entropy (squared error for regression) of the network's output plus ``l2 / 2 * sum ||W_layer||^2``
(biases unregularized).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from hogwild.config import REGRESSION_LOSSES


def margin_loss(loss, margins, epsilon=0.1):
    """Per-example loss of a binary classifier at margins ``y * z`` (y in {-1, +1}), scikit-learn's definitions."""
    m = np.asarray(margins, dtype=np.float64)
    if loss == "log_loss":
        return np.logaddexp(0.0, -m)
    if loss == "hinge":
        return np.maximum(0.0, 1.0 - m)
    if loss == "squared_hinge":
        return np.maximum(0.0, 1.0 - m) ** 2
    if loss == "modified_huber":
        return np.where(m >= 1.0, 0.0, np.where(m >= -1.0, (1.0 - m) ** 2, -4.0 * m))
    if loss == "perceptron":
        return np.maximum(0.0, -m)
    raise ValueError(f"{loss!r} is not a classification loss")


def residual_loss(loss, residuals, epsilon=0.1):
    """Per-example loss of a regressor at residuals ``y - z``, scikit-learn's definitions."""
    r = np.abs(np.asarray(residuals, dtype=np.float64))
    if loss == "squared_error":
        return 0.5 * r * r
    if loss == "huber":
        return np.where(r <= epsilon, 0.5 * r * r, epsilon * r - 0.5 * epsilon * epsilon)
    if loss == "epsilon_insensitive":
        return np.maximum(0.0, r - epsilon)
    raise ValueError(f"{loss!r} is not a regression loss")


def _softmax_cross_entropy(scores, label_index):
    scores = np.asarray(scores, dtype=np.float64)
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    return log_norm - shifted[np.arange(len(label_index)), label_index]


@dataclass
class BenchProblem:
    """One dataset split once (fixed seed) and shared, never copied, by every run of a study.

    ``y_*`` keep the original labels; ``classes`` are the sorted distinct training labels (None for
    regression); ``task`` is "binary", "multiclass" or "regression".
    """

    X_train: object
    y_train: np.ndarray
    X_test: object
    y_test: np.ndarray
    loss: str = "log_loss"
    l2: float = 0.0
    l1: float = 0.0
    epsilon: float = 0.1
    multiclass: str = "ovr"
    name: str = "data"

    def __post_init__(self):
        if self.loss in REGRESSION_LOSSES:
            self.task, self.classes = "regression", None
        else:
            self.classes = np.unique(self.y_train)
            self.task = "binary" if len(self.classes) <= 2 else "multiclass"
        self._train_index = self.label_index(self.y_train)
        self._test_index = self.label_index(self.y_test)

    # --- shapes ------------------------------------------------------------------------------------
    @property
    def n_train(self):
        return self.X_train.shape[0]

    @property
    def n_features(self):
        return self.X_train.shape[1]

    @property
    def nnz_train(self):
        return int(self.X_train.nnz) if sp.issparse(self.X_train) else int(np.count_nonzero(self.X_train))

    @property
    def is_sparse(self):
        return sp.issparse(self.X_train)

    def label_index(self, y):
        """Position of each label in ``classes`` (-1 for a label unseen in training); None for regression."""
        if self.classes is None:
            return None
        index = np.searchsorted(self.classes, y)
        index = np.clip(index, 0, len(self.classes) - 1)
        return np.where(self.classes[index] == y, index, -1)

    def signed_labels(self, y=None, positive=None):
        """Labels as -1/+1 floats: +1 for ``positive`` (default: the larger class, scikit-learn's convention)."""
        y = self.y_train if y is None else y
        positive = self.classes[-1] if positive is None else positive
        return np.where(y == positive, 1.0, -1.0)

    # --- the one objective -------------------------------------------------------------------------
    def _penalty(self, matrices):
        total = 0.0
        for w in matrices:
            w = np.asarray(w, dtype=np.float64)
            if self.l2:
                total += 0.5 * self.l2 * float(np.sum(w * w))
            if self.l1:
                total += self.l1 * float(np.sum(np.abs(w)))
        return total

    def linear_scores(self, coef, intercept, X=None):
        """Scores ``X @ coef + intercept`` in float64: shape (n,) for one weight vector, (n, K) for K."""
        X = self.X_train if X is None else X
        coef = np.asarray(coef, dtype=np.float64)
        scores = np.asarray(X @ coef, dtype=np.float64)
        return scores + np.asarray(intercept, dtype=np.float64)

    def linear_objective(self, coef, intercept):
        """The regularized average training loss of a linear model (see the module docstring)."""
        coef = np.asarray(coef, dtype=np.float64)
        scores = self.linear_scores(coef, intercept)
        if self.task == "regression":
            return float(residual_loss(self.loss, self.y_train - scores, self.epsilon).mean()) + self._penalty([coef])
        if self.task == "binary":
            margins = self.signed_labels() * scores.reshape(-1)
            return float(margin_loss(self.loss, margins, self.epsilon).mean()) + self._penalty([coef])
        if self.multiclass == "softmax":
            return float(_softmax_cross_entropy(scores, self._train_index).mean()) + self._penalty([coef])
        per_class = []
        for k, label in enumerate(self.classes):
            margins = np.where(self._train_index == k, 1.0, -1.0) * scores[:, k]
            per_class.append(margin_loss(self.loss, margins, self.epsilon).mean() + self._penalty([coef[:, k]]))
        return float(np.mean(per_class))

    def linear_test_metrics(self, coef, intercept):
        """{"test_accuracy": ...} (classification) or {"test_accuracy": None, "test_rmse": ...} (regression)."""
        scores = self.linear_scores(coef, intercept, self.X_test)
        if self.task == "regression":
            return {"test_accuracy": None, "test_rmse": float(np.sqrt(np.mean((self.y_test - scores) ** 2)))}
        if scores.ndim == 1 or scores.shape[1] == 1:
            predicted = np.where(scores.reshape(-1) > 0, self.classes[-1], self.classes[0])
        else:
            predicted = self.classes[np.argmax(scores, axis=1)]
        return {"test_accuracy": float(np.mean(predicted == self.y_test))}

    def mlp_output(self, weights, biases, activation, X):
        """The network's raw output (logits, or the regression value) for rows ``X``; weights are (in, out)."""
        hidden = X
        for layer, (w, b) in enumerate(zip(weights, biases)):
            w = np.asarray(w, dtype=np.float64)
            hidden = np.asarray(hidden @ w, dtype=np.float64) + np.asarray(b, dtype=np.float64)
            if layer < len(weights) - 1:
                if activation == "relu":
                    hidden = np.maximum(hidden, 0.0)
                elif activation == "tanh":
                    hidden = np.tanh(hidden)
                else:
                    hidden = 0.5 * (1.0 + np.tanh(0.5 * hidden))  # the logistic function, overflow-free
        return hidden

    def _mlp_data_loss(self, output, y, index):
        if self.task == "regression":
            return residual_loss("squared_error", y - output.reshape(-1)).mean()
        if output.shape[1] == 1:  # one logistic output unit for a binary problem (scikit-learn's layout)
            return margin_loss("log_loss", self.signed_labels(y) * output[:, 0]).mean()
        return _softmax_cross_entropy(output, index).mean()

    def mlp_objective(self, weights, biases, activation):
        """Mean cross-entropy (or squared error) of the network on the training set plus l2/2 * sum ||W||^2."""
        output = self.mlp_output(weights, biases, activation, self.X_train)
        return float(self._mlp_data_loss(output, self.y_train, self._train_index)) + self._penalty(weights)

    def mlp_test_metrics(self, weights, biases, activation):
        """Test accuracy (or RMSE) of the network's predictions."""
        output = self.mlp_output(weights, biases, activation, self.X_test)
        if self.task == "regression":
            return {"test_accuracy": None, "test_rmse": float(np.sqrt(np.mean((self.y_test - output.reshape(-1)) ** 2)))}
        if output.shape[1] == 1:
            predicted = np.where(output[:, 0] > 0, self.classes[-1], self.classes[0])
        else:
            predicted = self.classes[np.argmax(output, axis=1)]
        return {"test_accuracy": float(np.mean(predicted == self.y_test))}


def split_train_test(X, y, test_fraction=0.2, seed=0, groups=None):
    """(X_train, y_train, X_test, y_test): a fixed-seed random split of the rows, each part copied once.

    The training rows keep their storage order (sorted row indices) so that no system pays for a permuted
    layout that another does not. With ``groups`` (one label per row, e.g. the original image of an
    augmented copy), whole groups go to one side: about ``test_fraction`` of the groups are test groups.
    """
    n = X.shape[0]
    rng = np.random.default_rng(seed)
    if groups is not None:
        groups = np.asarray(groups)
        names = np.unique(groups)
        n_test_groups = int(round(names.size * test_fraction))
        if not 0 <= n_test_groups < names.size:
            raise ValueError(f"test fraction {test_fraction} leaves no training groups")
        in_test = np.isin(groups, rng.permutation(names)[:n_test_groups])
        test_rows, train_rows = np.flatnonzero(in_test), np.flatnonzero(~in_test)
        y = np.asarray(y)
        return X[train_rows], y[train_rows], X[test_rows], y[test_rows]
    n_test = int(round(n * test_fraction))
    if not 0 <= n_test < n:
        raise ValueError(f"test fraction {test_fraction} leaves no training rows")
    order = rng.permutation(n)
    test_rows = np.sort(order[:n_test])
    train_rows = np.sort(order[n_test:])
    y = np.asarray(y)
    return X[train_rows], y[train_rows], X[test_rows], y[test_rows]
