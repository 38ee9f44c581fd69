"""Where each training option applies: one table that `TrainConfig.validate` and the CLI both read.

An option set where it has no effect (``--hidden`` on a linear model, ``--multiclass softmax`` with a regression
loss, ``--average-every`` outside ``--mode average``) is refused with a `ConfigError` naming it, never silently
ignored. "Set" means: in Python, a value that differs from the field's default (`TrainConfig.validate`); on the
command line, any flag the user typed (`hogwild.cli.train` asks click which ones), even at its default value.

A rule marked ``python=False`` is checked on the command line only: scikit-learn's estimators pass ``eta0``
and ``power_t`` whatever the schedule (scikit-learn ignores them where they do not apply), the GPU trainers
set ``threads=1`` for their single device, and a sweep over modes or schedules in Python (the tests, ``hogwild
bench``) hands every run one set of per-mode and step-size knobs (``batch_size``, ``average_every``,
``aggregate``, ``decay``); refusing those values in `TrainConfig.validate` would refuse scikit-learn's own
contract and every such sweep. What Python refuses is the model family's and the loss's (``hidden`` on a linear
model, ``multiclass`` with a regression loss, ``l1`` under ``penalty="l2"``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .errors import ConfigError

EPSILON_LOSSES = ("huber", "epsilon_insensitive")


@dataclass(frozen=True)
class Scope:
    """Where one option applies: ``applies(config)``, the same in words, and the fields that decide it."""

    applies: Callable
    where: str
    deciders: tuple
    python: bool = True


def _linear(c):
    return c.model == "linear"


def _mlp(c):
    return c.model == "mlp"


SCOPES = {
    # hash_bits has no entry: it applies to every model, device, mode and cluster (the training rows are hashed
    # before any runner sees them, and every model hashes what it scores).
    # model family
    "hidden": Scope(_mlp, "with --model mlp", ("model",)),
    "activation": Scope(_mlp, "with --model mlp", ("model",)),
    "optimizer": Scope(_mlp, "with --model mlp", ("model",)),
    "clip_norm": Scope(_mlp, "with --model mlp (a linear model clips the loss derivative: --clip)", ("model",)),
    "momentum": Scope(lambda c: _mlp(c) and c.optimizer == "momentum", "with --model mlp --optimizer momentum",
                      ("model", "optimizer")),
    "beta1": Scope(lambda c: _mlp(c) and c.optimizer == "adam", "with --model mlp --optimizer adam",
                   ("model", "optimizer")),
    "beta2": Scope(lambda c: _mlp(c) and c.optimizer in ("adam", "rmsprop"),
                   "with --model mlp and --optimizer adam or rmsprop", ("model", "optimizer")),
    "adam_epsilon": Scope(lambda c: _mlp(c) and c.optimizer in ("adam", "rmsprop"),
                          "with --model mlp and --optimizer adam or rmsprop", ("model", "optimizer")),
    "multiclass": Scope(lambda c: _linear(c) and not c.is_regression,
                        "to classification losses with --model linear (an MLP always uses softmax)", ("model", "loss")),
    "penalty": Scope(_linear, "with --model linear (an MLP takes --l2 only)", ("model",)),
    "l1": Scope(lambda c: _linear(c) and c.effective_penalty in ("l1", "elasticnet"),
                "with --model linear and --penalty auto, l1 or elasticnet", ("model", "penalty")),
    "l2": Scope(lambda c: _mlp(c) or c.effective_penalty in ("l2", "elasticnet"),
                "with --penalty auto, l2 or elasticnet", ("penalty",)),
    "epsilon": Scope(lambda c: _linear(c) and c.loss in EPSILON_LOSSES,
                     "with --model linear and --loss huber or epsilon_insensitive", ("model", "loss")),
    "fit_intercept": Scope(_linear, "with --model linear (an MLP always has biases)", ("model",)),
    "intercept_decay": Scope(lambda c: _linear(c) and c.fit_intercept, "with --model linear and --intercept",
                             ("model", "fit_intercept")),
    "class_weight": Scope(lambda c: not c.is_regression, "with a classification loss", ("loss",)),
    "clip": Scope(_linear, "with --model linear (an MLP clips the gradient norm: --clip-norm)", ("model",)),
    "average": Scope(_linear, "with --model linear (ASGD averages a linear model's iterates)", ("model",)),
    # step size
    "lr": Scope(lambda c: c.effective_schedule != "optimal", "with a schedule other than optimal",
                ("schedule",), python=False),
    "decay": Scope(lambda c: c.effective_schedule == "decay", "with --schedule decay", ("schedule",), python=False),
    "power_t": Scope(lambda c: c.effective_schedule == "invscaling", "with --schedule invscaling", ("schedule",),
                     python=False),
    # parallelism
    "aggregate": Scope(lambda c: c.mode == "sync" or (c.cluster is not None and c.cross_node == "average"),
                       "with --mode sync, or --cluster with --cross-node average", ("mode", "cluster", "cross_node"),
                       python=False),
    "average_every": Scope(lambda c: c.mode == "average", "with --mode average", ("mode",), python=False),
    "batch_size": Scope(lambda c: c.mode == "sync" or _mlp(c) or c.device != "cpu",
                        "with --mode sync, --model mlp or a GPU (--device cuda or auto)", ("mode", "model", "device"),
                        python=False),
    "threads": Scope(lambda c: (c.mode != "serial" and c.device != "cuda") or c.threads in (None, 1),
                     "with a parallel --mode on the CPU (serial and CUDA runs use one worker)", ("mode", "device"),
                     python=False),
    # cluster runs (hogwild.cluster)
    **{name: Scope(lambda c: c.cluster is not None, "with --cluster", ("cluster",))
       for name in ("nodes", "cross_node", "sync_every", "on_node_loss", "cluster_timeout", "shard_weights")},
    **{name: Scope(lambda c: c.cluster is not None and c.cross_node == "ps", "with --cluster and --cross-node ps",
                   ("cluster", "cross_node"))
       for name in ("ps_shards", "max_staleness", "ps_step")},
    # stopping and checkpoints
    "n_iter_no_change": Scope(lambda c: c.tol is not None, "with --tol", ("tol",)),
    "checkpoint_every": Scope(lambda c: bool(c.checkpoint_dir), "with --checkpoint-dir", ("checkpoint_dir",)),
    "checkpoint_seconds": Scope(lambda c: bool(c.checkpoint_dir), "with --checkpoint-dir", ("checkpoint_dir",)),
}

# Values that change nothing wherever they are set: a zero strength is no penalty at all (scikit-learn's
# estimators pass l2=0 with penalty="l1").
INERT = {"l1": (0.0,), "l2": (0.0,)}


def check_applicable(config, given=None):
    """Raise `ConfigError` for the first option that is set where it does not apply; return ``config``.

    ``given``: the option names the user set explicitly (the CLI). Without it, every option whose value differs
    from its default counts as set, and only rules with ``python=True`` are used. An `INERT` value never counts.
    """
    import dataclasses

    defaults = {
        f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
        for f in dataclasses.fields(config)
    }
    for name, scope in SCOPES.items():
        value = getattr(config, name)
        if _inert(name, value):
            continue
        if given is not None:
            is_set = name in given
        else:
            is_set = scope.python and not _same(value, defaults[name])
        if is_set and not scope.applies(config):
            raise ConfigError(name, _message(config, name, value, scope))
    return config


def _inert(name, value):
    try:
        return any(_same(value, inert) for inert in INERT.get(name, ()))
    except TypeError:
        return False


def _same(value, default):
    """Whether a value equals a field's default (tuples and lists alike; True is not 1)."""
    if isinstance(value, bool) != isinstance(default, bool):
        return False
    if isinstance(default, tuple) or isinstance(value, (list, tuple)):
        try:
            return tuple(value) == tuple(default)
        except TypeError:
            return False
    try:
        return bool(value == default)
    except (TypeError, ValueError):  # an array compared elementwise: not a default
        return False


def _message(config, name, value, scope):
    settings = ", ".join(_shown(field, getattr(config, field), type(config)) for field in scope.deciders)
    return f"{_shown(name, value, type(config))} applies only {scope.where}; this run has {settings}: remove it or change those options"


def flag_of(config_type, name):
    """The CLI spelling of a `TrainConfig` field (from its metadata), for messages both CLI and Python users read."""
    import dataclasses

    for f in dataclasses.fields(config_type):
        if f.name == name and f.metadata.get("cli"):
            return f.metadata["cli"].split("/")[0]
    return "--" + name.replace("_", "-")


def _shown(name, value, config_type):
    """An option as the user would type it: ``--hidden 128``, ``--no-intercept``, ``--checkpoint-dir (none)``."""
    flag = flag_of(config_type, name)
    if isinstance(value, bool):
        return flag if value else "--no-" + flag[2:]
    if value is None:
        return f"no {flag}"
    if isinstance(value, tuple):
        return f"{flag} {','.join(str(v) for v in value)}"
    return f"{flag} {value}"
