"""Slow, obvious NumPy twins of the compiled MLP kernels in `hogwild.kernels.mlp` (float64 throughout).

Parameters are a list of ``(W, b)`` pairs, ``W`` of shape ``(fan_in, fan_out)``; the flat layout of the kernels
is converted with `unflatten`/`flatten`. The math is the module docstring of `hogwild.kernels.mlp`, written
with matrix products instead of loops. Like ``tests/naive.py`` it restates the shared scalar arithmetic of
`hogwild.kernels.arithmetic` rather than calling it; its variants are names, and its tables name every
activation, output and optimizer the kernels have codes for (tests/test_arithmetic.py checks that).
"""

import numpy as np
import scipy.sparse as sp


def unflatten(params, dims):
    """The flat parameter vector as a list of ``(W, b)`` copies."""
    layers, position = [], 0
    for fan_in, fan_out in zip(dims[:-1], dims[1:]):
        W = params[position : position + fan_in * fan_out].reshape(fan_in, fan_out).astype(np.float64)
        position += fan_in * fan_out
        b = params[position : position + fan_out].astype(np.float64)
        position += fan_out
        layers.append((W, b))
    return layers


def flatten(layers):
    return np.concatenate([np.concatenate([W.ravel(), b]) for W, b in layers])


# (f(z), f'(z) written in terms of a = f(z)) of each hidden activation, by name.
NAIVE_ACTIVATIONS = {
    "relu": (lambda z: np.maximum(z, 0.0), lambda a: (a > 0).astype(np.float64)),
    "tanh": (np.tanh, lambda a: 1.0 - a * a),
    "sigmoid": (lambda z: 1.0 / (1.0 + np.exp(-z)), lambda a: a * (1.0 - a)),
}
OUTPUTS = ("softmax", "logistic", "identity")
OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop")


def activate(z, activation):
    return NAIVE_ACTIVATIONS[activation][0](z)


def slope(a, activation):
    return NAIVE_ACTIVATIONS[activation][1](a)


def forward(layers, X, activation):
    """Activations of every layer; the last entry is the raw output scores."""
    acts = [X]
    for index, (W, b) in enumerate(layers):
        z = np.asarray(acts[-1] @ W) + b
        acts.append(activate(z, activation) if index < len(layers) - 1 else z)
    return acts


def loss_and_output_delta(scores, y, output):
    """Summed loss over rows, and dLoss/dscores per row (not yet divided by the batch size)."""
    losses, delta = row_losses_and_output_delta(scores, y, output)
    return float(np.sum(losses)), delta


def row_losses_and_output_delta(scores, y, output):
    """Loss of each row, and dLoss/dscores per row (not yet divided by the batch size)."""
    if output == "softmax":
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_total = np.log(np.exp(shifted).sum(axis=1))
        rows = np.arange(len(y))
        loss = log_total - shifted[rows, y]
        p = np.exp(shifted - log_total[:, None])
        p[rows, y] -= 1.0
        return loss, p
    if output == "logistic":
        z = scores[:, 0]
        target = (y == 1).astype(np.float64)
        loss = np.logaddexp(0.0, np.where(target == 1, -z, z))
        return loss, (1.0 / (1.0 + np.exp(-z)) - target)[:, None]
    if output != "identity":
        raise ValueError(output)
    diff = scores - y
    return 0.5 * np.sum(diff * diff, axis=1), diff


def batch_gradient(layers, X, y, activation, output, sample_weight=None):
    """``(loss_sum, grads)``: the summed loss and the mean gradient ``[(dW, db), ...]`` over the rows of X.

    With ``sample_weight`` (one per row) each row's loss and gradient are scaled by its weight; the mean is
    still over the rows (the batch size), as in the kernels.
    """
    acts = forward(layers, X, activation)
    losses, delta = row_losses_and_output_delta(acts[-1], y, output)
    weights = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    loss = float(np.sum(weights * losses))
    delta = delta * weights[:, None] / X.shape[0]
    grads = [None] * len(layers)
    for index in range(len(layers) - 1, -1, -1):
        W, _ = layers[index]
        a_in = acts[index]
        dW = np.asarray(a_in.T @ delta) if not sp.issparse(a_in) else np.asarray((a_in.T @ delta))
        grads[index] = (dW, delta.sum(axis=0))
        if index > 0:
            delta = (delta @ W.T) * slope(a_in, activation)
    return loss, grads


class NaiveOptimizer:
    """The kernels' update rules on a list of layers, with their state (lazy first layer for CSR input)."""

    def __init__(self, layers, optimizer, lr, l2, momentum=0.9, beta1=0.9, beta2=0.999, epsilon=1e-8, clip_norm=None):
        self.optimizer, self.lr, self.l2 = optimizer, lr, l2
        self.momentum, self.beta1, self.beta2, self.epsilon, self.clip_norm = momentum, beta1, beta2, epsilon, clip_norm
        self.state1 = [(np.zeros_like(W), np.zeros_like(b)) for W, b in layers]
        self.state2 = [(np.zeros_like(W), np.zeros_like(b)) for W, b in layers]
        self.t = 0

    def step(self, layers, grads, first_rows=None):
        """Update ``layers`` in place; ``first_rows`` (CSR input) limits the first layer to those rows."""
        rows = np.arange(layers[0][0].shape[0]) if first_rows is None else np.asarray(first_rows)
        full = []  # (param, grad incl. L2, state1, state2) for every block the step touches
        for index, ((W, b), (dW, db)) in enumerate(zip(layers, grads)):
            s1W, s1b = self.state1[index]
            s2W, s2b = self.state2[index]
            if index == 0:
                full.append((W, rows, dW[rows] + self.l2 * W[rows], s1W, s2W))
            else:
                full.append((W, slice(None), dW + self.l2 * W, s1W, s2W))
            full.append((b, slice(None), db.copy(), s1b, s2b))
        norm = np.sqrt(sum(float(np.sum(g * g)) for _, _, g, _, _ in full))
        scale = self.clip_norm / norm if self.clip_norm and norm > self.clip_norm else 1.0
        self.t += 1
        adam_lr = self.lr * np.sqrt(1.0 - self.beta2**self.t) / (1.0 - self.beta1**self.t)
        for param, where, g, s1, s2 in full:
            g = g * scale
            if self.optimizer == "sgd":
                param[where] -= self.lr * g
            elif self.optimizer == "momentum":
                s1[where] = self.momentum * s1[where] - self.lr * g
                param[where] += s1[where]
            elif self.optimizer == "adam":
                s1[where] = self.beta1 * s1[where] + (1.0 - self.beta1) * g
                s2[where] = self.beta2 * s2[where] + (1.0 - self.beta2) * g * g
                param[where] -= adam_lr * s1[where] / (np.sqrt(s2[where]) + self.epsilon)
            elif self.optimizer == "rmsprop":
                s2[where] = self.beta2 * s2[where] + (1.0 - self.beta2) * g * g
                param[where] -= self.lr * g / (np.sqrt(s2[where]) + self.epsilon)
            else:
                raise ValueError(self.optimizer)
        return norm


def train_serial(params, dims, X, y, activation, output, orders, lrs, batch_size, optimizer, l2, sample_weight=None,
                 **opt):
    """The ``serial`` engine in NumPy: for each epoch's row order and lr, micro-batch steps; returns params."""
    layers = unflatten(params, dims)
    naive = NaiveOptimizer(layers, optimizer, lrs[0], l2, **opt)
    losses = []
    for order, lr in zip(orders, lrs):
        naive.lr = lr
        total = 0.0
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            Xb = X[rows]
            weights = None if sample_weight is None else sample_weight[rows]
            loss, grads = batch_gradient(layers, Xb, y[rows], activation, output, weights)
            total += loss
            first_rows = np.unique(Xb.indices) if sp.issparse(Xb) else None
            naive.step(layers, grads, first_rows)
        losses.append(total / len(order))
    return flatten(layers), losses
