"""``hogwild rl``: train A3C/A2C policies on compiled (or Gymnasium) environments, evaluate saved policies.

The training options are generated from `hogwild.rl.config.RLConfig`'s fields (flag, default, choices, help),
so the CLI never re-validates: `RLConfig.validate` speaks and its `ConfigError` becomes a usage error naming
the flag. NumPy and Numba load only inside the commands.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time

import click

from hogwild.cli.options import IntTuple

TRAIN_EPILOG = """Examples:

\b
  hogwild rl train CartPole-v1 --algo a3c --threads 2 --save cartpole.npz
  hogwild rl train CartPole-v1 --algo a2c --threads 2 --seed 3 --metrics-json run.json
  hogwild rl train Acrobot-v1 --threads 2 --save acrobot.npz
  hogwild rl train MountainCar-v0 --steps 2000000   # any Gymnasium env with discrete actions: Python stepping
  hogwild rl train CartPole-v1 --checkpoint-dir ckpt   # Ctrl-C, then rerun with --resume

\b
Training stops at --steps, or earlier at the first epoch whose greedy evaluation reaches the target return
with margin (mean minus three standard errors >= the environment's reward threshold), confirmed on other
episodes (--no-stop-at-target to train on). Progress goes to stderr, the summary to stdout.
"""

EVALUATE_EPILOG = """Examples:

\b
  hogwild rl evaluate cartpole.npz CartPole-v1 --episodes 100
  hogwild rl evaluate cartpole.npz --json          # ENV defaults to the one the policy was trained on
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def rl():
    """Reinforcement learning: A3C (lock-free) and A2C (barrier) actor-learners on one shared network."""


# --- options from RLConfig ---------------------------------------------------------------------------------
def _fields():
    from hogwild.rl.config import RLConfig

    return [f for f in dataclasses.fields(RLConfig) if f.metadata.get("cli")]


def _click_type(f):
    annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    base = annotation.split("|")[0].strip()
    return {"int": int, "float": float, "str": str, "bool": bool, "tuple": IntTuple()}.get(base, str)


def rl_config_options(command):
    """Add one click option per `RLConfig` field that has a flag."""
    for f in reversed(_fields()):
        meta = f.metadata
        kind = _click_type(f)
        kwargs = {"help": meta["help"], "show_default": True}
        if meta.get("envvar"):
            kwargs.update(envvar=meta["envvar"], show_envvar=True)
        if meta.get("choices"):
            kwargs["type"] = click.Choice(meta["choices"])
        elif kind is not bool:
            kwargs["type"] = kind
        default = f.default
        kwargs["default"] = ",".join(str(v) for v in default) if isinstance(default, tuple) else default
        if default is None and "default" not in meta["help"].lower():
            kwargs["show_default"] = "none"
        if default is None and "default" in meta["help"].lower():
            kwargs["show_default"] = False
        if kind is bool and "/" not in meta["cli"]:
            kwargs["is_flag"] = True
        command = click.option(meta["cli"], f.name, **kwargs)(command)
    return command


def build_rl_config(env, values):
    """A validated `RLConfig`; a bad value becomes a usage error naming its flag (or ENV)."""
    from hogwild.errors import ConfigError
    from hogwild.rl.config import RLConfig, flag

    names = {f.name for f in dataclasses.fields(RLConfig)}
    kwargs = {k: v for k, v in values.items() if k in names}
    try:
        return RLConfig(env=env, **kwargs).validate()
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint=f"'{flag(exc.option)}'") from None


def _resolve(env, backend):
    from hogwild.errors import ConfigError
    from hogwild.rl.config import flag
    from hogwild.rl.envs import resolve_env

    try:
        return resolve_env(env, backend)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint=f"'{flag(exc.option)}'") from None


# --- progress ------------------------------------------------------------------------------------------------
def _number(value, digits=1):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "nan"
    return f"{value:.{digits}f}"


def format_epoch(record, n_epochs=None):
    """One progress line per epoch: steps, episodes, mean training return, greedy evaluation, speed."""
    from hogwild.cli.progress import format_rate

    total = f"/{n_epochs}" if n_epochs else ""
    parts = [f"epoch {record['epoch']}{total}", f"steps {record['steps']:,}", f"episodes {record['episodes']:,}",
             f"mean return {_number(record.get('mean_return'))}"]
    if "eval_return" in record:
        parts.append(f"eval {_number(record['eval_return'])} ({record['eval_episodes']} ep)")
    parts.append(f"{format_rate(record.get('steps_per_s'))} steps/s")
    parts.append(f"{record.get('elapsed', 0.0):.2f} s")
    if record.get("solved"):
        parts.append("solved")
    return "  ".join(parts)


class RLProgress:
    """Trainer callback: a live line on a terminal after every chunk, one line per epoch otherwise (stderr)."""

    def __init__(self, n_epochs=None, quiet=False, stream=None):
        self.stream = stream if stream is not None else click.get_text_stream("stderr")
        try:
            self.live = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.live = False
        self.quiet, self.n_epochs = quiet, n_epochs
        self._shown = False
        self._last = -math.inf

    def __call__(self, event):
        if self.quiet:
            return
        if event.get("kind") == "chunk" and self.live:
            now = time.perf_counter()
            if now - self._last < 0.1:
                return
            self._last = now
            line = (f"epoch {event['epoch']} [{event['rows_done']:,}/{event['rows_total']:,} steps]  "
                    f"episodes {event['episodes']:,}  mean return {_number(event.get('mean_return'))}")
            self.stream.write("\r" + line + "\x1b[K")
            self.stream.flush()
            self._shown = True
        elif event.get("kind") == "epoch":
            self.clear()
            click.echo(format_epoch(event, self.n_epochs), file=self.stream)

    def notice(self, message):
        if not self.quiet:
            self.clear()
            click.echo(f"hogwild: {message}", file=self.stream)

    def clear(self):
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


# --- commands --------------------------------------------------------------------------------------------------
@rl.command(epilog=TRAIN_EPILOG, context_settings={"max_content_width": 100})
@click.argument("env", metavar="ENV")
@rl_config_options
@click.option("--save", "save_path", metavar="PATH", help="Write the trained policy here (.npz + JSON header, atomic).")
@click.option("--metrics-json", "metrics_path", metavar="PATH",
              help="Write the config, per-epoch history and the solve record as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
def train(env, save_path, metrics_path, quiet, **values):
    """Train a policy on ENV (a Gymnasium id; CartPole-v1 and Acrobot-v1 run compiled)."""
    import warnings

    config = build_rl_config(env, values)
    _resolve(config.env, config.backend)
    from hogwild.rl.trainer import RLTrainer
    from hogwild.resilience import run_resilient

    progress = RLProgress(quiet=quiet)
    trainer = RLTrainer(config, callback=progress)
    progress.n_epochs = trainer.n_epochs

    def show(message, category, filename, lineno, file=None, line=None):
        progress.notice(str(message))

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = show
            result = run_resilient(trainer)
    finally:
        progress.clear()
    if save_path:
        result.model.save(save_path)
    report = {
        "config": config.to_dict(),
        "env": trainer.spec.id,
        "compiled": trainer.spec.compiled,
        "threads": trainer.n_workers,
        "target_return": trainer.target,
        "steps": result.steps,
        "episodes": result.episodes,
        "seconds": result.seconds,
        "solved": result.solved,
        "epochs": result.history,
        "checkpoint": result.checkpoint,
    }
    if metrics_path:
        from hogwild.cli.train import write_json

        write_json(metrics_path, report)
    if not quiet:
        click.echo(_summary(report, save_path, metrics_path))


def _summary(report, save_path, metrics_path):
    from hogwild.cli.progress import format_rate

    config = report["config"]
    rate = report["steps"] / report["seconds"] if report["seconds"] else None
    lines = [
        f"trained {config['algo']} on {report['env']} ({'compiled' if report['compiled'] else 'Gymnasium'}) with "
        f"{report['threads']} thread(s): {report['steps']:,} steps, {report['episodes']:,} episodes in "
        f"{report['seconds']:.2f} s ({format_rate(rate)} steps/s)"
    ]
    solved, target = report["solved"], report["target_return"]
    if solved:
        lines.append(f"solved at {solved['steps']:,} steps, {solved['seconds']:.2f} s: greedy mean return "
                     f"{solved['eval_return']:.1f}, confirmed {solved['confirm_return']:.1f} on other episodes "
                     f"(target {target:g}, {config['eval_episodes']} episodes each)")
    elif target is not None and config["eval_episodes"]:
        last = next((r for r in reversed(report["epochs"]) if "eval_return" in r), None)
        shown = f"; last greedy evaluation {last['eval_return']:.1f}" if last else ""
        lines.append(f"target return {target:g} not reached{shown}")
    if save_path:
        lines.append(f"policy saved to {save_path}")
    if metrics_path:
        lines.append(f"metrics written to {metrics_path}")
    return "\n".join(lines)


@rl.command(epilog=EVALUATE_EPILOG, context_settings={"max_content_width": 100})
@click.argument("policy_path", metavar="POLICY")
@click.argument("env", metavar="[ENV]", required=False)
@click.option("--episodes", type=click.IntRange(min=1), default=100, show_default=True, help="Episodes to run.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the episodes' starts.")
@click.option("--stochastic", is_flag=True, help="Sample actions from the policy instead of taking the most probable.")
@click.option("--backend", type=click.Choice(("auto", "compiled", "gymnasium")), default="auto", show_default=True,
              help="auto: the compiled environment when there is one; gymnasium: step Gymnasium's own.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (mean_return, std_return, ...).")
def evaluate(policy_path, env, episodes, seed, stochastic, backend, as_json):
    """Run a saved POLICY for whole episodes of ENV (default: its training environment); report the returns."""
    from hogwild.rl.evaluation import evaluate_policy
    from hogwild.rl.policy import load_policy

    policy = load_policy(policy_path)
    spec = _resolve(env or policy.env, backend)
    summary = evaluate_policy(policy, spec, episodes, seed=seed, deterministic=not stochastic,
                              target=spec.reward_threshold)
    summary["policy"] = str(policy_path)
    if as_json:
        from hogwild.cli.train import _jsonable

        click.echo(json.dumps(_jsonable(summary), indent=2))
        return
    threshold = spec.reward_threshold
    verdict = ""
    if threshold is not None:
        verdict = f" ({'reaches' if summary['mean_return'] >= threshold else 'below'} the threshold {threshold:g})"
    click.echo(
        f"{spec.id}: mean return {summary['mean_return']:.2f} +/- {summary['std_return']:.2f} over "
        f"{summary['episodes']} episodes (min {summary['min_return']:g}, max {summary['max_return']:g}, "
        f"mean length {summary['mean_length']:.1f}){verdict}"
    )


@rl.command()
def envs():
    """List the compiled environments (any other Gymnasium id trains through Gymnasium)."""
    from hogwild.rl.envs import compiled_envs

    for spec in compiled_envs().values():
        click.echo(f"{spec.id}: {spec.obs_dim} observations, {spec.n_actions} actions, time limit {spec.max_steps}, "
                   f"reward threshold {spec.reward_threshold:g}, default --steps {spec.default_steps:,}")
