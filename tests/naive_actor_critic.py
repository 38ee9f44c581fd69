"""Slow, obvious NumPy twins of the compiled actor-critic math (`hogwild.kernels.actor_critic`), float64.

The network is read from the same layer table as the kernels (`hogwild.kernels.policy_net`), but evaluated with
matrix products over the whole batch; the loss is written as the formula, and its gradient by hand-written
backpropagation. ``loss`` alone is what the finite-difference check differentiates.
"""

import numpy as np

from hogwild.kernels.policy_net import B_OFF, FAN_IN, FAN_OUT, HIDDEN, IN_OFF, OUT_OFF, W_OFF


def _layer(params, row):
    fan_in, fan_out = int(row[FAN_IN]), int(row[FAN_OUT])
    W = params[row[W_OFF]:row[W_OFF] + fan_in * fan_out].reshape(fan_in, fan_out).astype(np.float64)
    b = params[row[B_OFF]:row[B_OFF] + fan_out].astype(np.float64)
    return W, b


def forward(params, network, obs):
    """Activation rows ``(n, act_size)`` of a batch of observations."""
    obs = np.asarray(obs, dtype=np.float64)
    acts = np.zeros((obs.shape[0], network.act_size))
    acts[:, :network.obs_dim] = obs
    for row in network.layers:
        W, b = _layer(params, row)
        z = acts[:, row[IN_OFF]:row[IN_OFF] + row[FAN_IN]] @ W + b
        if row[HIDDEN]:
            z = np.tanh(z) if network.activation == "tanh" else np.maximum(z, 0.0)
        acts[:, row[OUT_OFF]:row[OUT_OFF] + row[FAN_OUT]] = z
    return acts


def heads(params, network, obs):
    """``(logits, values)`` of a batch."""
    acts = forward(params, network, obs)
    logits = acts[:, network.policy_off:network.policy_off + network.n_actions]
    return logits, acts[:, network.value_off]


def log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def loss(params, network, obs, actions, targets, entropy_coef, value_coef, advantages=None):
    """Mean actor-critic loss; ``advantages`` (held constant) default to ``targets - V`` at these params."""
    logits, values = heads(params, network, obs)
    log_p = log_softmax(logits)
    p = np.exp(log_p)
    entropy = -(p * log_p).sum(axis=1)
    if advantages is None:
        advantages = targets - values
    chosen = log_p[np.arange(len(actions)), actions]
    per_sample = -chosen * advantages + value_coef * 0.5 * (targets - values) ** 2 - entropy_coef * entropy
    return per_sample.mean()


def gradient(params, network, obs, actions, targets, entropy_coef, value_coef):
    """Gradient of `loss` (advantages held constant) by backpropagation, flat like ``params``."""
    acts = forward(params, network, obs)
    n = obs.shape[0]
    logits = acts[:, network.policy_off:network.policy_off + network.n_actions]
    values = acts[:, network.value_off]
    log_p = log_softmax(logits)
    p = np.exp(log_p)
    entropy = -(p * log_p).sum(axis=1)
    advantages = targets - values
    onehot = np.eye(network.n_actions)[actions]
    deltas = np.zeros_like(acts)
    deltas[:, network.policy_off:network.policy_off + network.n_actions] = (
        advantages[:, None] * (p - onehot) + entropy_coef * p * (log_p + entropy[:, None])
    ) / n
    deltas[:, network.value_off] = value_coef * (values - targets) / n
    grad = np.zeros(network.n_params)
    for row in network.layers[::-1]:
        W, _ = _layer(params, row)
        out = slice(row[OUT_OFF], row[OUT_OFF] + row[FAN_OUT])
        inp = slice(row[IN_OFF], row[IN_OFF] + row[FAN_IN])
        delta = deltas[:, out]
        if row[HIDDEN]:
            a = acts[:, out]
            delta = delta * ((1.0 - a * a) if network.activation == "tanh" else (a > 0))
        fan_in, fan_out = int(row[FAN_IN]), int(row[FAN_OUT])
        grad[row[W_OFF]:row[W_OFF] + fan_in * fan_out] += (acts[:, inp].T @ delta).ravel()
        grad[row[B_OFF]:row[B_OFF] + fan_out] += delta.sum(axis=0)
        if row[IN_OFF] >= network.obs_dim:
            deltas[:, inp] += delta @ W.T
    return grad


def n_step_returns(rewards, ends, bootstrap, last_value, gamma):
    """Returns of one rollout, written forwards as sums: R_t = sum_k gamma^k r_{t+k} (+ the tail's value)."""
    T = len(rewards)
    out = np.zeros(T)
    for t in range(T):
        total, discount = 0.0, 1.0
        for k in range(t, T):
            total += discount * rewards[k]
            discount *= gamma
            if ends[k] == 1:  # terminated: nothing after
                break
            if ends[k] == 2:  # truncated: the value of the final observation
                total += discount * bootstrap[k]
                break
        else:
            total += discount * last_value
        out[t] = total
    return out
