"""`RLConfig`: the one description of an actor-critic run, shared by `hogwild.rl.A3C`/`A2C` and `hogwild rl train`.

Every option is a dataclass field whose metadata carries its help text, CLI flag and allowed values; the CLI
builds its options from these fields (`hogwild.cli.rl`) and `RLConfig.validate` is the only validation.
Defaults are the ones that solve CartPole-v1 (see docs/benchmarks.md, block ``rl-cartpole``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ..errors import ConfigError
from .envs import BACKENDS
from .network import NETWORKS

ALGOS = ("a3c", "a2c")  # a3c: lock-free asynchronous updates; a2c: synchronous barrier average
OPTIMIZERS = ("rmsprop", "adam")
ACTIVATIONS = ("tanh", "relu")
LR_SCHEDULES = ("constant", "linear")
DTYPES = ("float32", "float64")


def option(default, help, cli=None, choices=None, envvar=None):
    """An `RLConfig` field with the metadata its CLI option is built from."""
    meta = {"help": help, "cli": cli, "choices": choices, "envvar": envvar}
    return field(default=default, metadata=meta)


@dataclass
class RLConfig:
    """All the knobs of an actor-critic run. Field names are the Python names; ``metadata['cli']`` the flag."""

    env: str = option("CartPole-v1", "Gymnasium id of the environment (compiled: CartPole-v1, Acrobot-v1).")
    algo: str = option("a3c", "a3c: workers update the shared weights lock-free (Hogwild!); a2c: a barrier per "
                       "update averages the workers' gradients (reproducible for a seed and --threads).",
                       "--algo", ALGOS)
    threads: int | None = option(None, "Actor-learner threads (default: the cores available).", "--threads",
                                 envvar="HOGWILD_THREADS")
    steps: int | None = option(None, "Environment steps to train for, over all workers (default: the "
                               "environment's budget: CartPole-v1 500,000, Acrobot-v1 1,000,000, others 1,000,000).",
                               "--steps")
    steps_per_epoch: int = option(10_000, "Environment steps per epoch (rounded up to whole updates of every "
                                  "worker): the unit of progress lines, evaluations and checkpoints.",
                                  "--steps-per-epoch")
    envs_per_worker: int = option(4, "Environment copies each worker steps in turn (its batch: envs x t_max).",
                                  "--envs-per-worker")
    t_max: int = option(5, "Steps per environment between two updates (the n of the n-step returns).", "--t-max")
    gamma: float = option(0.99, "Discount factor.", "--gamma")
    lr: float = option(0.001, "Learning rate.", "--lr")
    lr_schedule: str = option("constant", "constant, or linear decay to zero over --steps (the paper's).",
                              "--lr-schedule", LR_SCHEDULES)
    optimizer: str = option("rmsprop", "rmsprop (statistics shared lock-free, as in the A3C paper) or adam.",
                            "--optimizer", OPTIMIZERS)
    rmsprop_alpha: float = option(0.99, "RMSProp decay of the squared-gradient average.", "--rmsprop-alpha")
    beta1: float = option(0.9, "Adam first-moment decay.", "--beta1")
    beta2: float = option(0.999, "Adam second-moment decay.", "--beta2")
    eps: float = option(1e-5, "Added to the root of the second moment (rmsprop, adam).", "--eps")
    entropy_coef: float = option(0.01, "Weight of the entropy bonus.", "--entropy-coef")
    value_coef: float = option(0.5, "Weight of the value loss.", "--value-coef")
    clip_norm: float | None = option(40.0, "Clip each update's gradient to this global L2 norm (0: off). The "
                                     "loss is a mean over the batch, so 40 only guards against rare huge "
                                     "gradients; a tight clip (0.5) lets the value loss's gradient shrink the "
                                     "policy's, which stalled Acrobot-v1.", "--clip-norm")
    hidden: tuple = option((64, 64), "Hidden layer sizes, e.g. 64,64 (one to three layers).", "--hidden")
    activation: str = option("tanh", "Hidden activation.", "--activation", ACTIVATIONS)
    network: str = option("separate", "separate policy and value networks, or one shared trunk with two heads.",
                          "--network", NETWORKS)
    dtype: str = option("float32", "Floating type of the weights.", "--dtype", DTYPES)
    seed: int = option(0, "Seed of every random choice; each worker derives its own stream.", "--seed")
    backend: str = option("auto", "auto: compiled environment when there is one, else Gymnasium; compiled; or "
                          "gymnasium (the Python-stepping path, for any Gymnasium environment).",
                          "--backend", BACKENDS)
    target_return: float | None = option(None, "Stop once a greedy evaluation reaches this return with margin: "
                                         "its mean minus three standard errors (default: the environment's reward "
                                         "threshold: CartPole-v1 475, Acrobot-v1 -100).", "--target-return")
    stop_at_target: bool = option(True, "Stop training when the target return is reached.",
                                  "--stop-at-target/--no-stop-at-target")
    eval_episodes: int = option(100, "Episodes of the greedy evaluation after each epoch (0: no evaluation).",
                                "--eval-episodes")
    chunk_updates: int = option(64, "Updates a worker runs per kernel call; between calls progress is "
                                "reported, Ctrl-C noticed and checkpoints taken.", "--chunk-updates")
    checkpoint_dir: str | None = option(None, "Write checkpoints to this folder (the last two good ones are kept).",
                                        "--checkpoint-dir")
    checkpoint_every: int = option(1, "Checkpoint every N epochs (with --checkpoint-dir).", "--checkpoint-every")
    checkpoint_seconds: float | None = option(None, "Also checkpoint every S seconds, at a chunk boundary.",
                                              "--checkpoint-seconds")
    resume: bool = option(False, "Continue from the newest valid checkpoint in --checkpoint-dir.", "--resume")
    on_worker_error: str = option("abort", "When a worker raises: abort the run (keeping the last checkpoint) or "
                                  "roll back to the last good state and run again.", "--on-worker-error",
                                  ("abort", "restart"))

    # ------------------------------------------------------------------------------------------------
    @property
    def mode(self):
        """The engine's name for the update mode: async (A3C) or sync (A2C)."""
        return "async" if self.algo == "a3c" else "sync"

    def replace(self, **changes):
        """A validated copy with ``changes`` applied (unknown names raise `ConfigError`)."""
        names = {f.name for f in dataclasses.fields(self)}
        for name in changes:
            if name not in names:
                raise ConfigError(name, f"unknown option {name!r}")
        return dataclasses.replace(self, **changes).validate()

    def to_dict(self):
        """Plain JSON-able dict of every field (tuples become lists)."""
        return {f.name: (list(v) if isinstance(v, tuple) else v)
                for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}

    @classmethod
    def from_dict(cls, values):
        """Inverse of `to_dict`; ignores keys this version does not know."""
        names = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in values.items() if k in names}
        if kept.get("hidden") is not None:
            kept["hidden"] = tuple(kept["hidden"])
        return cls(**kept).validate()

    def validate(self):
        """Check every field; raise `ConfigError` naming the option. Returns ``self``."""
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if choices and value not in choices:
                raise ConfigError(f.name, f"{flag(f.name)} must be one of {', '.join(choices)}; got {value!r}")

        def number(name, low=None, high=None, low_open=False, high_open=False, allow_none=False):
            value = getattr(self, name)
            if value is None and allow_none:
                return
            bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            bad = bad or (low is not None and (value < low or (low_open and value == low)))
            bad = bad or (high is not None and (value > high or (high_open and value == high)))
            if bad:
                low_text = "(" if low_open else "["
                high_text = ")" if high_open else "]"
                where = f"in {low_text}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}{high_text}"
                raise ConfigError(name, f"{flag(name)} must be a number {where}; got {value!r}")

        def count(name, allow_none=False, minimum=1):
            value = getattr(self, name)
            if value is None and allow_none:
                return
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                kind = "a positive" if minimum == 1 else "a non-negative"
                raise ConfigError(name, f"{flag(name)} must be {kind} integer; got {value!r}")

        count("threads", allow_none=True)
        count("steps", allow_none=True)
        for name in ("steps_per_epoch", "envs_per_worker", "t_max", "chunk_updates", "checkpoint_every"):
            count(name)
        count("eval_episodes", minimum=0)
        count("seed", minimum=0)
        number("gamma", 0.0, 1.0)
        number("lr", 0.0, low_open=True)
        number("rmsprop_alpha", 0.0, 1.0, high_open=True)
        number("beta1", 0.0, 1.0, high_open=True)
        number("beta2", 0.0, 1.0, high_open=True)
        number("eps", 0.0, low_open=True)
        number("entropy_coef", 0.0)
        number("value_coef", 0.0)
        number("clip_norm", 0.0, allow_none=True)
        number("target_return", allow_none=True)
        number("checkpoint_seconds", 0.0, low_open=True, allow_none=True)
        hidden = self.hidden
        if isinstance(hidden, int):
            hidden = (hidden,)
        try:
            hidden = tuple(hidden)
        except TypeError:
            hidden = None
        if (hidden is None or not 1 <= len(hidden) <= 3
                or any(isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= 4096 for h in hidden)):
            raise ConfigError("hidden", f"--hidden must be one to three layer sizes in 1..4096; got {self.hidden!r}")
        self.hidden = hidden
        if not isinstance(self.env, str) or not self.env:
            raise ConfigError("env", f"the environment must be a Gymnasium id such as CartPole-v1; got {self.env!r}")
        if self.resume and not self.checkpoint_dir:
            raise ConfigError("resume", "--resume needs --checkpoint-dir")
        return self


def flag(name):
    """The CLI spelling of a field, for messages that both the CLI and Python users read."""
    for f in dataclasses.fields(RLConfig):
        if f.name == name and f.metadata.get("cli"):
            return f.metadata["cli"].split("/")[0]
    if name == "env":
        return "ENV"
    return "--" + name.replace("_", "-")
