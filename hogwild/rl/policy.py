"""`PolicyModel`: a trained policy/value network, its predictions, and its file (.npz + JSON header, atomic).

The file follows `hogwild.model_io`'s conventions, with its own format name so that neither loader mistakes
one kind for the other: one ``.npz`` holding ``params`` (the flat weights, layout in
`hogwild.kernels.policy_net`) and a ``__header__`` member of UTF-8 JSON (format, version, library version, the
environment id, the network's sizes, dtype, the training config and a summary of the run, and a SHA-256 of
the weights). No pickle; written through `hogwild._io.atomic_write`; every way a file can be unusable is one
`ModelFormatError` sentence naming it.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from .._io import atomic_write
from ..errors import DataError, ModelFormatError
from .network import NETWORKS, Network

FORMAT = "hogwild-policy"
FORMAT_VERSION = 1
_HEADER = "__header__"


class PolicyModel:
    """A categorical policy and a value function sharing one flat parameter array.

    ``predict(obs)`` gives actions (greedy by default), ``action_probabilities(obs)`` the softmax policy,
    ``value(obs)`` the critic's estimate. ``env`` is the Gymnasium id it was trained on.
    """

    def __init__(self, params, network, env, config=None, training=None):
        self.params = np.ascontiguousarray(params)
        self.network = network
        self.env = str(env)
        self.config = config
        self.training = dict(training or {})
        if self.params.ndim != 1 or self.params.size != network.n_params:
            raise DataError(f"the policy has {self.params.size} weights but its network needs {network.n_params}")

    @property
    def dtype(self):
        return self.params.dtype

    @property
    def obs_dim(self):
        return self.network.obs_dim

    @property
    def n_actions(self):
        return self.network.n_actions

    def _scores(self, obs):
        from ..kernels.policy_net import forward_batch

        array = np.asarray(obs, dtype=self.dtype)
        single = array.ndim == 1
        array = np.ascontiguousarray(array.reshape(1, -1) if single else array.reshape(array.shape[0], -1))
        if array.shape[1] != self.obs_dim:
            raise DataError(f"observations have {array.shape[1]} values but the policy expects {self.obs_dim}")
        logits = np.empty((array.shape[0], self.n_actions), dtype=self.dtype)
        values = np.empty(array.shape[0], dtype=self.dtype)
        scratch = np.zeros(self.network.act_size, dtype=self.dtype)
        net = self.network
        forward_batch(self.params, net.layers, net.activation_code, array, scratch, net.policy_off, net.value_off,
                      logits, values)
        return logits, values, single

    def action_probabilities(self, obs):
        """Softmax policy ``(n, n_actions)`` (or ``(n_actions,)`` for one observation)."""
        logits, _, single = self._scores(obs)
        shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
        np.exp(shifted, out=shifted)
        shifted /= shifted.sum(axis=1, keepdims=True)
        return shifted[0] if single else shifted

    def value(self, obs):
        """The critic's value estimate of each observation."""
        _, values, single = self._scores(obs)
        return float(values[0]) if single else values.astype(np.float64)

    def predict(self, obs, deterministic=True, rng=None):
        """Actions for ``obs`` (one observation or a batch): the most probable, or sampled when not deterministic."""
        logits, _, single = self._scores(obs)
        if deterministic:
            actions = np.argmax(logits, axis=1)
        else:
            rng = np.random.default_rng(rng)
            shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
            probabilities = np.exp(shifted)
            probabilities /= probabilities.sum(axis=1, keepdims=True)
            draws = rng.random((logits.shape[0], 1))
            actions = np.minimum((probabilities.cumsum(axis=1) <= draws).sum(axis=1), self.n_actions - 1)
        return int(actions[0]) if single else actions.astype(np.int64)

    # --- files ---------------------------------------------------------------------------------------------
    def header(self):
        from .. import __version__

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "library_version": __version__,
            "kind": "actor-critic",
            "env": self.env,
            "network": self.network.describe(),
            "dtype": str(self.dtype),
            "config": self.config,
            "training": self.training,
            "sha256": _checksum(self.params),
        }

    def save(self, path):
        """Write the policy to ``path`` atomically; returns ``path``."""
        encoded = np.frombuffer(json.dumps(self.header(), allow_nan=False, default=_json_default).encode("utf-8"),
                                dtype=np.uint8)
        with atomic_write(path, "wb") as handle:
            np.savez(handle, **{_HEADER: encoded, "params": self.params})
        return path

    def __repr__(self):
        net = self.network
        return (f"PolicyModel(env={self.env!r}, network={net.network!r}, hidden={list(net.hidden)}, "
                f"activation={net.activation!r}, dtype={self.dtype})")


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def _checksum(params):
    digest = hashlib.sha256()
    array = np.ascontiguousarray(params)
    digest.update(str(array.dtype).encode())
    digest.update(repr(array.shape).encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def load_policy(path):
    """The `PolicyModel` stored at ``path``; `ModelFormatError` (one sentence naming the file) if unusable."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            members = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise ModelFormatError(f"{path}: policy file not found") from None
    except IsADirectoryError:
        raise ModelFormatError(f"{path}: is a directory, not a policy file") from None
    except PermissionError:
        raise ModelFormatError(f"{path}: policy file is not readable (permission denied)") from None
    except Exception as exc:  # noqa: BLE001 - a damaged archive fails in many ways (see hogwild.model_io)
        raise ModelFormatError(f"{path}: not a readable hogwild policy file ({type(exc).__name__})") from None
    if not all(isinstance(value, np.ndarray) for value in members.values()):
        raise ModelFormatError(f"{path}: not a hogwild policy file (a member is not an array)")
    header_bytes = members.pop(_HEADER, None)
    if header_bytes is None or header_bytes.dtype != np.uint8:
        raise ModelFormatError(f"{path}: not a hogwild policy file (no header)")
    try:
        header = json.loads(header_bytes.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFormatError(f"{path}: the policy header is damaged (not valid JSON)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        if isinstance(header, dict) and header.get("format") == "hogwild-model":
            raise ModelFormatError(f"{path}: is a supervised hogwild model, not a policy (use hogwild evaluate)")
        raise ModelFormatError(f"{path}: not a hogwild policy file")
    if header.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(
            f"{path}: policy format version {header.get('format_version')!r} is not supported (expects {FORMAT_VERSION})"
        )
    params = members.get("params")
    if params is None or params.ndim != 1 or params.dtype.kind != "f":
        raise ModelFormatError(f"{path}: the policy file has no usable weights")
    if header.get("sha256") != _checksum(params):
        raise ModelFormatError(f"{path}: the policy weights do not match their checksum (the file was damaged or edited)")
    try:
        described = header["network"]
        hidden = tuple(int(h) for h in described["hidden"])
        if described["network"] not in NETWORKS or described["activation"] not in ("tanh", "relu"):
            raise ValueError("unknown network or activation")
        network = Network.build(int(described["obs_dim"]), int(described["n_actions"]), hidden,
                                described["activation"], described["network"])
        return PolicyModel(params, network, str(header["env"]), header.get("config"), header.get("training"))
    except (KeyError, TypeError, ValueError, DataError) as exc:
        raise ModelFormatError(f"{path}: the policy file is inconsistent ({exc})") from None
