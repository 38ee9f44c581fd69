"""`A3C` and `A2C`: the Python API, in Stable-Baselines3's shape (``learn``, ``predict``, ``save``, ``load``).

Both build an `RLConfig` from their keywords (the same names as `hogwild rl train`'s options, with
underscores) and train through `hogwild.rl.trainer.train_rl`, so checkpoints, ``resume`` and Ctrl-C work as on
the command line. `A2C` is `A3C` with ``algo="a2c"``: a barrier per update, reproducible for a seed and a
thread count.
"""

from __future__ import annotations

import dataclasses

from ..errors import ConfigError, DataError
from .config import RLConfig


class A3C:
    """Asynchronous advantage actor-critic: ``threads`` actor-learners updating one network lock-free.

    ``env`` is a Gymnasium id: CartPole-v1 and Acrobot-v1 run compiled; any other id with a Discrete action
    space and a Box observation space is stepped through Gymnasium (``backend="gymnasium"`` forces that path).
    Other keywords are `RLConfig` fields (``lr``, ``t_max``, ``envs_per_worker``, ``optimizer``, ...).
    """

    algo = "a3c"

    def __init__(self, env="CartPole-v1", *, threads=None, seed=0, **options):
        names = {f.name for f in dataclasses.fields(RLConfig)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise ConfigError(unknown[0], f"{type(self).__name__} has no option {unknown[0]!r}")
        if options.get("algo", self.algo) != self.algo:
            raise ConfigError("algo", f"{type(self).__name__} is algo={self.algo!r}; use the other class instead")
        options["algo"] = self.algo
        self.config = RLConfig(env=env, threads=threads, seed=seed, **options).validate()
        self.policy = None
        self.history = []
        self.result = None

    @property
    def solved(self):
        """The last `learn`'s solve record (steps, seconds, evaluation return), or None."""
        return None if self.result is None else self.result.solved

    def learn(self, total_steps=None, callback=None):
        """Train for ``total_steps`` environment steps (default: the environment's budget), or until the target
        return is reached; continues from the current weights when called again. Returns ``self``."""
        from .trainer import train_rl

        config = self.config if total_steps is None else self.config.replace(steps=int(total_steps))
        result = train_rl(config, callback=callback, init_policy=self.policy)
        self.result = result
        self.policy = result.model
        self.history = self.history + list(result.history)
        return self

    def _policy(self):
        if self.policy is None:
            raise DataError(f"this {type(self).__name__} has not been trained; call learn() or load() first")
        return self.policy

    def predict(self, obs, deterministic=True):
        """The action for one observation (an int), or actions for a batch of observations."""
        return self._policy().predict(obs, deterministic=deterministic)

    def evaluate(self, episodes=100, seed=0, deterministic=True, env=None):
        """Mean return and more over ``episodes`` fresh episodes (see `hogwild.rl.evaluation.evaluate_policy`)."""
        from .envs import resolve_env
        from .evaluation import evaluate_policy

        spec = resolve_env(env or self.config.env, self.config.backend)
        return evaluate_policy(self._policy(), spec, episodes, seed=seed, deterministic=deterministic)

    def save(self, path):
        """Write the trained policy (.npz with a JSON header, atomically); returns ``path``."""
        return self._policy().save(path)

    @classmethod
    def load(cls, path, **options):
        """An agent holding the policy stored at ``path`` (its config restored from the file when it has one)."""
        from .policy import load_policy

        policy = load_policy(path)
        stored = dict(policy.config or {})
        names = {f.name for f in dataclasses.fields(RLConfig)}
        kept = {k: v for k, v in stored.items() if k in names and k not in ("algo", "env", "threads", "seed")}
        if kept.get("hidden") is not None:
            kept["hidden"] = tuple(kept["hidden"])
        kept.update(options)
        agent = cls(policy.env, threads=stored.get("threads"), seed=stored.get("seed", 0), **kept)
        agent.policy = policy
        return agent

    def __repr__(self):
        return f"{type(self).__name__}(env={self.config.env!r}, threads={self.config.threads}, seed={self.config.seed})"


class A2C(A3C):
    """Synchronous advantage actor-critic: the workers' gradients are averaged at a barrier, then applied once."""

    algo = "a2c"
