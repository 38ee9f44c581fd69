"""Which environments hogwild can train on: the compiled ones by id, any other through Gymnasium.

`COMPILED` maps a Gymnasium id to the facts the runner needs about its Numba twin in
`hogwild.kernels.envs` (code, spaces, time limit, reward threshold, an upper bound on an episode's return).
`resolve_env` turns what a user typed into an `EnvSpec`: a compiled environment unless ``backend`` asks for
Gymnasium, otherwise ``gymnasium.make(id)`` (Gymnasium is an optional dependency: the ``rl`` extra). Every
refusal is a `ConfigError` naming the environment.
"""

from __future__ import annotations

import dataclasses
import math

from ..errors import ConfigError

BACKENDS = ("auto", "compiled", "gymnasium")


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """An environment as the runners see it.

    ``code`` is the compiled environment's code (`hogwild.kernels.envs`), or None for one stepped through
    Gymnasium by ``make()``. ``max_return`` bounds any episode's return (it lets evaluation stop early once a
    target is out of reach); ``reward_threshold`` is Gymnasium's "solved" level; ``default_steps`` the training
    budget `hogwild rl train` uses when ``--steps`` is not given.
    """

    id: str
    obs_dim: int
    n_actions: int
    max_steps: int
    reward_threshold: float | None
    max_return: float = math.inf
    code: int | None = None
    default_steps: int = 1_000_000
    obs_low: tuple = ()
    obs_high: tuple = ()

    @property
    def compiled(self):
        return self.code is not None

    def make(self):
        """A fresh Gymnasium environment (with its registered time limit) for the Python-stepping path."""
        gym = _gymnasium(self.id)
        return gym.make(self.id)

    def fingerprint(self):
        """What a checkpoint records about the environment (checked on resume)."""
        return {"env": self.id, "shape": [self.obs_dim, self.n_actions], "max_steps": self.max_steps}


def _compiled():
    from ..kernels.envs import ACROBOT, CARTPOLE

    pi = math.pi
    return {
        "CartPole-v1": EnvSpec(
            id="CartPole-v1", obs_dim=4, n_actions=2, max_steps=500, reward_threshold=475.0, max_return=500.0,
            code=CARTPOLE, default_steps=500_000,
            obs_low=(-4.8, -math.inf, -24 * pi / 180, -math.inf), obs_high=(4.8, math.inf, 24 * pi / 180, math.inf),
        ),
        "Acrobot-v1": EnvSpec(
            id="Acrobot-v1", obs_dim=6, n_actions=3, max_steps=500, reward_threshold=-100.0, max_return=0.0,
            code=ACROBOT, default_steps=1_000_000,
            obs_low=(-1.0, -1.0, -1.0, -1.0, -4 * pi, -9 * pi), obs_high=(1.0, 1.0, 1.0, 1.0, 4 * pi, 9 * pi),
        ),
    }


COMPILED_IDS = ("CartPole-v1", "Acrobot-v1")


def compiled_envs():
    """The compiled environments by Gymnasium id."""
    return _compiled()


def resolve_env(name, backend="auto"):
    """The `EnvSpec` of environment ``name``: compiled when possible and wanted, else through Gymnasium."""
    if backend not in BACKENDS:
        raise ConfigError("backend", f"--backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if not isinstance(name, str) or not name:
        raise ConfigError("env", f"the environment must be a Gymnasium id such as CartPole-v1; got {name!r}")
    compiled = _compiled()
    if backend != "gymnasium" and name in compiled:
        return compiled[name]
    if backend == "compiled":
        raise ConfigError(
            "env", f"environment {name!r} has no compiled version (compiled: {', '.join(COMPILED_IDS)}); "
            "use --backend gymnasium or auto to step it through Gymnasium"
        )
    return _gymnasium_spec(name)


def _gymnasium(name):
    try:
        import gymnasium
    except ImportError:
        raise ConfigError(
            "env", f"environment {name!r} is not compiled in hogwild (compiled: {', '.join(COMPILED_IDS)}); "
            "install Gymnasium (pip install 'hogwild[rl]') to train on it through the Python-stepping path"
        ) from None
    return gymnasium


def _gymnasium_spec(name):
    gym = _gymnasium(name)
    try:
        env = gym.make(name)
    except Exception as exc:  # noqa: BLE001 - Gymnasium raises several types for an unknown or broken id
        raise ConfigError("env", f"Gymnasium cannot make environment {name!r}: {_first_line(exc)}") from None
    try:
        from gymnasium import spaces

        if not isinstance(env.action_space, spaces.Discrete):
            raise ConfigError(
                "env", f"environment {name!r} has a {type(env.action_space).__name__} action space; hogwild's "
                "policies are categorical, so only Discrete actions are supported"
            )
        if not isinstance(env.observation_space, spaces.Box):
            raise ConfigError(
                "env", f"environment {name!r} has a {type(env.observation_space).__name__} observation space; "
                "only Box (vector) observations are supported"
            )
        obs_dim = int(math.prod(env.observation_space.shape))
        limit = getattr(env.spec, "max_episode_steps", None) or 0
        threshold = getattr(env.spec, "reward_threshold", None)
        return EnvSpec(
            id=name, obs_dim=obs_dim, n_actions=int(env.action_space.n), max_steps=int(limit),
            reward_threshold=None if threshold is None else float(threshold),
        )
    finally:
        env.close()


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
