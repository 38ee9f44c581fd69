"""The actor-critic epoch loop: learning rate per epoch, greedy evaluation, stopping at the target, history.

`RLTrainer` offers exactly what `hogwild.resilience.run_resilient` drives (``config``, ``epoch``,
``position()``, ``history``, ``snapshot()``/``restore_snapshot()``, ``fingerprint()``, ``model()``, ``hooks``,
``callback``, ``run()``), so checkpoints, ``--resume``, Ctrl-C/SIGTERM and worker faults behave as in
`hogwild train`. An "epoch" is a fixed number of environment steps (``steps_per_epoch``, rounded up to whole
updates of every worker).

After each epoch the policy is evaluated greedily over ``eval_episodes`` fresh episodes (their stream is drawn
from the seed and the epoch, so evaluation never disturbs training's streams and a resumed run evaluates the
same episodes). The target is reached (`solve_rule`) when the evaluation's mean return minus three standard errors
is at least the target return (the environment's reward threshold unless given), and so does a confirmation
on other episodes, so that a fresh evaluation of the saved policy reaches it too. With ``stop_at_target`` training stops there: that policy is the run's result, and
``result.solved`` records the steps and wall time it took.

Events for ``callback``: ``{"kind": "chunk", "epoch", "rows_done", "rows_total", "loss", "steps", "episodes",
"mean_return"}`` after every chunk (rows are environment steps) and ``{"kind": "epoch", **record}`` after every
epoch, where a record has ``epoch, steps, episodes, mean_return`` (last 100 training episodes, sampled
actions), ``seconds`` (the epoch's training time), ``steps_per_s``, ``policy_loss, value_loss, entropy,
grad_norm, lr``, ``eval_return``/``eval_episodes``/``eval_seconds`` when evaluated (and ``confirm_return`` when the
first evaluation passed and a confirmation was played), ``elapsed`` (wall time of
the run so far, evaluations included) and ``solved``.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import math
import time

import numpy as np

from .._io import available_cores
from ..errors import ConfigError, DivergenceError
from .config import RLConfig
from .envs import resolve_env
from .evaluation import evaluate_policy
from .network import Network

RECENT_EPISODES = 100  # training episodes the running mean return is taken over
# Standard errors an evaluation's mean return must clear the target by: about one for the luck of the evaluation
# that stops the run (the run stops at its first lucky one), two for the next evaluation of the saved policy.
STANDARD_ERRORS = 3.0


def confidently_reached(evaluation, target):
    """Whether one evaluation summary (`evaluate_policy`) shows ``target`` reached with margin: every requested
    episode was run and the mean return minus `STANDARD_ERRORS` standard errors is at least ``target``."""
    if target is None or not evaluation["complete"] or evaluation["episodes"] == 0:
        return False
    returns = np.asarray(evaluation["returns"])
    return bool(returns.mean() - STANDARD_ERRORS * returns.std() / math.sqrt(returns.size) >= target)


def solve_rule(evaluate, target):
    """``(solved, first, confirmation)``: the stopping rule of `hogwild rl train` (and of its benchmark's peers).

    ``evaluate(k)`` plays the k-th evaluation of the current policy on fresh episodes (k = 0, then 1). Solved:
    the first one `confidently_reached` the target, and so did a confirmation on other episodes. Returns are
    heavy-tailed where a policy sometimes gets stuck (Acrobot-v1), and one evaluation's standard error then
    understates the luck of a good draw; a second, independent one does not share that luck. The confirmation
    is played only when the first passes, so it costs nothing until the policy is nearly there.
    """
    first = evaluate(0)
    if not confidently_reached(first, target):
        return False, first, None
    confirmation = evaluate(1)
    return confidently_reached(confirmation, target), first, confirmation


@dataclasses.dataclass
class RLResult:
    """What `train_rl` returns: the policy, the per-epoch history and whether (and when) the target was reached.

    ``solved`` is None, or ``{"epoch", "steps", "seconds", "train_seconds", "eval_return", "confirm_return"}``: the first
    evaluation that reached the target, with the environment steps and the wall time (evaluations included;
    ``train_seconds`` without them) it took. ``checkpoint`` is the last checkpoint written, if any.
    """

    model: object
    history: list
    config: RLConfig
    solved: dict | None = None
    steps: int = 0
    episodes: int = 0
    seconds: float = 0.0
    checkpoint: str | None = None

    @property
    def epochs_run(self):
        return len(self.history)


class RLTrainer:
    """One actor-critic training run (see the module docstring for the loop and its events)."""

    def __init__(self, config=None, callback=None, hooks=(), init_policy=None, **changes):
        config = RLConfig() if config is None else (RLConfig.from_dict(config) if isinstance(config, dict) else config)
        self.config = config = config.replace(**changes) if changes else config.validate()
        self.spec = spec = resolve_env(config.env, config.backend)
        self.network = Network.build(spec.obs_dim, spec.n_actions, config.hidden, config.activation, config.network)
        params = None
        if init_policy is not None:
            if init_policy.network.describe() != self.network.describe():
                raise ConfigError(
                    "hidden", f"the initial policy's network {init_policy.network.describe()} differs from this "
                    f"run's {self.network.describe()}; use the same --hidden, --activation and --network"
                )
            params = init_policy.params
        self.n_workers = int(config.threads or available_cores())
        if spec.compiled:
            from .runner import CompiledRunner as Runner
        else:
            from .gym_runner import GymnasiumRunner as Runner
        Runner.check_config(config)
        self.runner = Runner(spec, self.network, config, self.n_workers, params=params)
        self.total_steps = int(config.steps or spec.default_steps)
        self.n_epochs = max(1, math.ceil(self.total_steps / self.runner.steps_per_epoch))
        self.target = config.target_return if config.target_return is not None else spec.reward_threshold
        self.callback, self.hooks = callback, list(hooks)
        self.history = []
        self._epoch = 0
        self.steps_done = 0  # environment steps of finished epochs
        self.episodes = 0
        self.recent = collections.deque(maxlen=RECENT_EPISODES)
        self.elapsed = 0.0  # wall time of earlier sessions of this run (a resumed run adds to it)
        self.train_seconds = 0.0
        self.solved = None
        self._epoch_episodes = 0
        self._session_start = None  # perf_counter() when this session's run() began

    # --- what hogwild.resilience drives ------------------------------------------------------------------
    @property
    def epoch(self):
        """Epochs finished."""
        return self._epoch

    def position(self):
        """Environment steps done in the current epoch."""
        return self.runner.position()

    def fingerprint(self):
        """The environment's identity (checked when resuming)."""
        return self.spec.fingerprint()

    def model(self, copy=True):
        policy = self.runner.model(copy=copy)
        policy.training = self._training_summary()
        return policy

    def parameters(self):
        return self.runner.parameters()

    def snapshot(self):
        """Runner state, counters, recent returns and history (copies): what a checkpoint holds."""
        engine = self.runner.snapshot()
        engine.update(
            epoch=self._epoch, steps_done=self.steps_done, episodes=self.episodes,
            recent=np.asarray(self.recent, dtype=np.float64), elapsed=self._elapsed_now(),
            train_seconds=self.train_seconds, epoch_episodes=self._epoch_episodes,
            solved=copy.deepcopy(self.solved),
        )
        return {"loop": engine, "history": copy.deepcopy(self.history)}

    def restore_snapshot(self, snapshot):
        engine = snapshot["loop"] if "loop" in snapshot else snapshot["engine"]  # "engine": before the core's loop
        self.runner.restore(engine)
        self._epoch = int(engine["epoch"])
        self.steps_done = int(engine["steps_done"])
        self.episodes = int(engine["episodes"])
        self.recent = collections.deque((float(r) for r in np.asarray(engine["recent"]).reshape(-1)),
                                        maxlen=RECENT_EPISODES)
        self.elapsed = float(engine.get("elapsed", 0.0))
        self.train_seconds = float(engine.get("train_seconds", 0.0))
        self._epoch_episodes = int(engine.get("epoch_episodes", 0))
        self.solved = engine.get("solved")
        self.history = list(snapshot.get("history") or [])
        self._session_start = time.perf_counter()

    # --- the loop -------------------------------------------------------------------------------------------
    def _elapsed_now(self):
        start = self._session_start
        return self.elapsed + (time.perf_counter() - start if start is not None else 0.0)

    def _lr(self, epoch):
        config = self.config
        if config.lr_schedule == "linear":
            return config.lr * (1.0 - epoch / self.n_epochs)
        return config.lr

    def _mean_return(self):
        return float(np.mean(self.recent)) if self.recent else math.nan

    def _on_chunk(self, steps_in_epoch, episodes, stats):
        from ..kernels.actor_critic import STAT_ENTROPY, STAT_POLICY_LOSS, STAT_SAMPLES, STAT_VALUE_LOSS

        returns, _ = episodes
        self.recent.extend(float(r) for r in returns)
        self.episodes += int(returns.shape[0])
        self._epoch_episodes += int(returns.shape[0])
        samples = max(stats[STAT_SAMPLES], 1.0)
        config = self.config
        loss = (stats[STAT_POLICY_LOSS] + config.value_coef * stats[STAT_VALUE_LOSS]
                - config.entropy_coef * stats[STAT_ENTROPY]) / samples
        if not math.isfinite(loss) or not np.all(np.isfinite(self.runner.params)):
            raise DivergenceError(
                f"training diverged in epoch {self._epoch + 1} (non-finite loss or weights) with --lr {config.lr:g}; "
                "try a smaller --lr or a smaller --clip-norm"
            )
        if self.callback is not None:
            self.callback({
                "kind": "chunk", "epoch": self._epoch + 1, "rows_done": int(steps_in_epoch),
                "rows_total": int(self.runner.steps_per_epoch), "loss": float(loss),
                "steps": int(self.steps_done + steps_in_epoch), "episodes": self.episodes,
                "mean_return": self._mean_return(),
            })
        for hook in self.hooks:
            hook(self)

    def _evaluate(self, k):
        """The k-th greedy evaluation after this epoch: its episodes are drawn from (seed, epoch, k)."""
        target = self.target if self.config.stop_at_target else None
        return evaluate_policy(self.runner.model(copy=False), self.spec, self.config.eval_episodes,
                               seed=self.config.seed * 1_000_003 + 2 * self._epoch + k, deterministic=True,
                               target=target, stop_early=True)

    def run(self):
        """Train until ``steps`` environment steps are done or the target is reached; returns an `RLResult`."""
        from ..kernels.actor_critic import (
            STAT_ENTROPY, STAT_GRAD_NORM, STAT_POLICY_LOSS, STAT_SAMPLES, STAT_UPDATES, STAT_VALUE_LOSS,
        )

        config = self.config
        self._session_start = time.perf_counter()
        try:
            while self._epoch < self.n_epochs and not (self.solved and config.stop_at_target):
                lr = self._lr(self._epoch)
                started = time.perf_counter()
                done_before = self.runner.position()
                stats = self.runner.run_epoch(None, self._epoch, lr, self._on_chunk).copy()
                seconds = time.perf_counter() - started
                epoch_steps = self.runner.steps_per_epoch
                self.runner.end_epoch()
                self._epoch += 1
                self.steps_done += epoch_steps
                self.train_seconds += seconds
                samples = max(stats[STAT_SAMPLES], 1.0)
                record = {
                    "epoch": self._epoch,
                    "steps": self.steps_done,
                    "episodes": self.episodes,
                    "epoch_episodes": self._epoch_episodes,
                    "mean_return": self._mean_return(),
                    "seconds": seconds,
                    "steps_per_s": (epoch_steps - done_before) / max(seconds, 1e-12),
                    "policy_loss": stats[STAT_POLICY_LOSS] / samples,
                    "value_loss": stats[STAT_VALUE_LOSS] / samples,
                    "entropy": stats[STAT_ENTROPY] / samples,
                    "grad_norm": stats[STAT_GRAD_NORM] / max(stats[STAT_UPDATES], 1.0),
                    "lr": lr,
                }
                self._epoch_episodes = 0
                if config.eval_episodes > 0:
                    reached, evaluation, confirmation = solve_rule(self._evaluate, self.target)
                    record.update(eval_return=evaluation["mean_return"], eval_episodes=evaluation["episodes"],
                                  eval_seconds=evaluation["seconds"])
                    if confirmation is not None:
                        record.update(confirm_return=confirmation["mean_return"],
                                      eval_seconds=evaluation["seconds"] + confirmation["seconds"])
                    if reached and self.solved is None:
                        self.solved = {"epoch": self._epoch, "steps": self.steps_done,
                                       "seconds": self._elapsed_now(), "train_seconds": self.train_seconds,
                                       "eval_return": evaluation["mean_return"],
                                       "confirm_return": confirmation["mean_return"]}
                record["elapsed"] = self._elapsed_now()
                record["solved"] = self.solved is not None
                self.history.append({k: (float(v) if isinstance(v, np.floating) else v) for k, v in record.items()})
                if self.callback is not None:
                    self.callback({"kind": "epoch", **self.history[-1]})
        finally:
            self.runner.close()
        self.elapsed = self._elapsed_now()
        self._session_start = None
        return RLResult(model=self.model(copy=True), history=self.history, config=config, solved=self.solved,
                        steps=self.steps_done + self.runner.position(), episodes=self.episodes,
                        seconds=self.elapsed)

    def _training_summary(self):
        return {"steps": int(self.steps_done + self.runner.position()), "episodes": int(self.episodes),
                "epochs": int(self._epoch), "threads": self.n_workers, "algo": self.config.algo,
                "solved": copy.deepcopy(self.solved), "seconds": float(self._elapsed_now())}


def train_rl(config=None, callback=None, init_policy=None, **changes):
    """Train an actor-critic policy (`RLConfig` or its fields as keywords) with checkpoints, resume and Ctrl-C.

    Returns an `RLResult`. The front door for `hogwild.rl.A3C`/`A2C` and `hogwild rl train`.
    """
    from ..resilience import run_resilient

    trainer = RLTrainer(config, callback=callback, init_policy=init_policy, **changes)
    return run_resilient(trainer)
