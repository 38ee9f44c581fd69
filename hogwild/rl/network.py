"""The policy/value network's layout (the layer table of `hogwild.kernels.policy_net`) and its initial weights."""

from __future__ import annotations

import dataclasses

import numpy as np

NETWORKS = ("shared", "separate")


@dataclasses.dataclass(frozen=True)
class Network:
    """Sizes and offsets of one policy/value network: everything but the weights.

    ``network="shared"``: one trunk of ``hidden`` layers, then a linear policy head and a linear value head.
    ``"separate"``: a policy MLP and a value MLP, each with its own ``hidden`` layers (what Stable-Baselines3's
    ``MlpPolicy`` builds for A2C).
    """

    obs_dim: int
    n_actions: int
    hidden: tuple
    activation: str
    network: str
    layers: np.ndarray  # (n_layers, N_COLUMNS) int64, see hogwild.kernels.policy_net
    policy_off: int
    value_off: int
    act_size: int
    n_params: int

    @classmethod
    def build(cls, obs_dim, n_actions, hidden=(64, 64), activation="tanh", network="shared"):
        from ..kernels.policy_net import N_COLUMNS

        rows = []
        position, n_params = int(obs_dim), 0

        def add(in_off, fan_in, fan_out, hidden_layer):
            nonlocal position, n_params
            out_off = position
            position += fan_out
            w_off = n_params
            n_params += fan_in * fan_out
            b_off = n_params
            n_params += fan_out
            rows.append((in_off, out_off, fan_in, fan_out, w_off, b_off, int(hidden_layer)))
            return out_off

        def tower(source, width):
            for size in hidden:
                source = add(source, width, int(size), True)
                width = int(size)
            return source, width

        if network == "shared":
            source, width = tower(0, int(obs_dim))
            policy_off = add(source, width, int(n_actions), False)
            value_off = add(source, width, 1, False)
        else:
            source, width = tower(0, int(obs_dim))
            policy_off = add(source, width, int(n_actions), False)
            source, width = tower(0, int(obs_dim))
            value_off = add(source, width, 1, False)
        layers = np.asarray(rows, dtype=np.int64).reshape(-1, N_COLUMNS)
        return cls(int(obs_dim), int(n_actions), tuple(int(h) for h in hidden), activation, network, layers,
                   policy_off, value_off, position, n_params)

    @property
    def activation_code(self):
        from ..kernels.policy_net import ACTIVATIONS

        return ACTIVATIONS[self.activation]

    def describe(self):
        """JSON-able description (what a policy file's header records)."""
        return {"obs_dim": self.obs_dim, "n_actions": self.n_actions, "hidden": list(self.hidden),
                "activation": self.activation, "network": self.network}

    def init_params(self, seed, dtype):
        """Orthogonal initial weights, zero biases, drawn from ``seed``.

        Gains as in Stable-Baselines3's actor-critic policies: sqrt(2) for hidden layers, 0.01 for the policy
        head (so the first policy is close to uniform and explores) and 1 for the value head.
        """
        from ..kernels.policy_net import B_OFF, FAN_IN, FAN_OUT, HIDDEN, OUT_OFF, W_OFF

        rng = np.random.default_rng([int(seed), 0x504F4C])
        params = np.zeros(self.n_params, dtype=np.float64)
        for row in self.layers:
            fan_in, fan_out = int(row[FAN_IN]), int(row[FAN_OUT])
            if row[HIDDEN]:
                gain = np.sqrt(2.0)
            elif row[OUT_OFF] == self.policy_off:
                gain = 0.01
            else:
                gain = 1.0
            weights = _orthogonal(rng, fan_in, fan_out) * gain
            params[row[W_OFF]:row[W_OFF] + fan_in * fan_out] = weights.ravel()
            params[row[B_OFF]:row[B_OFF] + fan_out] = 0.0
        return params.astype(dtype)


def _orthogonal(rng, rows, cols):
    """A ``(rows, cols)`` matrix with orthonormal rows or columns (whichever is fewer), as torch's orthogonal_."""
    flat = rng.normal(size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    return q if rows >= cols else q.T
