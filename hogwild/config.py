"""`TrainConfig`: the one description of a training run, shared by `hogwild.train`, the estimators and the CLI.

Every option is a dataclass field whose metadata carries its help text, its CLI flag and its allowed values;
`hogwild.cli.options` builds the click options from these fields and `TrainConfig.validate` is the only
validation there is. The estimators translate scikit-learn's parameter names into these fields.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .errors import ConfigError
from .option_scope import check_applicable, flag_of

# Every mode some runner implements (the CLI's choices); which runner implements which is the runner's own
# `modes` (hogwild.runners), checked by the front door once the device is known.
MODES = ("auto", "async", "sync", "average", "serial", "locked", "atomic")
BINARY_LOSSES = ("log_loss", "hinge", "squared_hinge", "modified_huber", "perceptron")
REGRESSION_LOSSES = ("squared_error", "huber", "epsilon_insensitive")
LOSSES = BINARY_LOSSES + REGRESSION_LOSSES
PENALTIES = ("auto", "l2", "l1", "elasticnet", "none")
SCHEDULES = ("auto", "constant", "decay", "invscaling", "optimal", "adaptive", "adagrad", "normalized", "ftrl")
# Schedules that step each coordinate by its own accumulated gradients (no global step to damp the intercept by).
PER_COORDINATE_SCHEDULES = ("adagrad", "normalized", "ftrl")
ACTIVATIONS = ("relu", "tanh", "sigmoid")
OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop")
CROSS_NODE_MODES = ("ps", "average")
CLUSTER_NODE_MODES = ("auto", "async", "serial", "locked", "sync")  # inside a node; auto runs async (no per-thread replicas)


def option(default, help, cli=None, choices=None, envvar=None, python_only=False, auto=False):
    """A `TrainConfig` field with the metadata the CLI builds its option from (``auto``: the flag also takes the
    word "auto", meaning None)."""
    meta = {"help": help, "cli": cli, "choices": choices, "envvar": envvar, "python_only": python_only, "auto": auto}
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """All the knobs of a training run. Field names are the Python names; ``metadata['cli']`` the CLI flag."""

    # --- model and objective -------------------------------------------------------------------------
    model: str = option("linear", "Model family: a sparse linear model or a small MLP.", "--model", ("linear", "mlp"))
    loss: str = option(
        "log_loss",
        "Loss (scikit-learn's names). Classification: log_loss, hinge, squared_hinge, modified_huber, "
        "perceptron; regression: squared_error, huber, epsilon_insensitive.",
        "--loss",
        LOSSES,
    )
    multiclass: str = option(
        "ovr",
        "Multiclass strategy: one-vs-rest (K binary models in one pass) or softmax (one d x K model; by default "
        "trained by adagrad at 0.1/sqrt(K): see --schedule and --lr).",
        "--multiclass",
        ("ovr", "softmax"),
    )
    penalty: str = option(
        "auto",
        "Regularizer; 'auto' picks l2, l1 or elasticnet from which of --l2/--l1 is non-zero.",
        "--penalty",
        PENALTIES,
    )
    l2: float = option(1e-5, "L2 regularization strength (per example, as in scikit-learn's alpha); >= 0.", "--l2")
    l1: float = option(0.0, "L1 regularization strength (cumulative-penalty truncation, Tsuruoka et al. 2009); >= 0.", "--l1")
    epsilon: float = option(0.1, "Width of the insensitive zone (epsilon_insensitive) or the huber threshold; >= 0.", "--epsilon")
    fit_intercept: bool = option(True, "Learn an unregularized intercept.", "--intercept/--no-intercept")
    intercept_decay: float | None = option(
        None,
        "Multiplier of the intercept's step. Default: 0.01 on sparse input (a LIBSVM file, a sparse matrix) with "
        "a global step schedule (constant, decay, invscaling, optimal, adaptive), as scikit-learn's SGD does; 1 "
        "on dense input and with adagrad, normalized and ftrl, whose per-coordinate steps already adapt the "
        "intercept's. > 0.",
        "--intercept-decay",
    )
    class_weight: object = option(None, "None, 'balanced', or a {class: weight} dict.", python_only=True)
    hash_bits: int | None = option(
        None,
        "Feature hashing: train on 2^B weights, feature index j going to MurmurHash3(j) mod 2^B (scikit-learn's "
        "murmurhash3_32 of the 0-based index; what collides within a row is summed). The model records B, and "
        "predict and evaluate hash their input the same way. 1 to 30 (default: no hashing).",
        "--hash-bits",
    )

    # --- MLP ---------------------------------------------------------------------------------------
    hidden: tuple = option((128,), "MLP hidden layer sizes, e.g. 256,64 (one to three layers, each 1 to 4096).", "--hidden")
    activation: str = option("relu", "MLP hidden activation.", "--activation", ACTIVATIONS)
    optimizer: str = option("sgd", "MLP optimizer; its state lives beside the weights, updated lock-free.", "--optimizer", OPTIMIZERS)
    momentum: float = option(0.9, "Momentum coefficient (optimizer=momentum); in [0, 1).", "--momentum")
    beta1: float = option(0.9, "Adam first-moment decay; in [0, 1).", "--beta1")
    beta2: float = option(0.999, "Adam/RMSprop second-moment decay; in [0, 1).", "--beta2")
    clip_norm: float | None = option(None, "MLP: clip each micro-batch gradient to this global L2 norm; > 0.", "--clip-norm")
    adam_epsilon: float = option(1e-8, "MLP: epsilon added to the root of the second moment (adam, rmsprop); > 0.", "--adam-epsilon")

    # --- step size ---------------------------------------------------------------------------------
    schedule: str = option(
        "auto",
        "Step-size schedule: auto (linear models: normalized, or ftrl with an L1 penalty, adagrad on a --cluster; "
        "MLPs: constant, their optimizer adapts the step); constant lr; decay lr*beta**epoch (the Hogwild! "
        "paper's); invscaling lr/t**power_t; optimal (Bottou) 1/(l2*(t0+t)); adaptive (scikit-learn's: lr until "
        "the loss stalls for --n-iter-no-change epochs by --tol, then divided by 5); adagrad (per-coordinate, "
        "lock-free); normalized (per-coordinate adaptive steps divided by each feature's largest |value|: "
        "Ross, Mineiro & Langford 2013, Vowpal Wabbit's default; features need no scaling); ftrl "
        "(FTRL-Proximal, McMahan et al. 2013: per-coordinate, exact zeros under --l1).",
        "--schedule",
        SCHEDULES,
    )
    lr: float | None = option(
        None,
        "Initial learning rate (eta0); > 0. Default: 0.5 with the normalized schedule (Vowpal Wabbit's), else 0.1; "
        "a K-class softmax under a per-coordinate schedule (adagrad, normalized, ftrl) divides the default by "
        "sqrt(K). Not used by schedule=optimal (the CLI refuses it there).",
        "--lr",
    )
    decay: float = option(0.9, "Per-epoch decay factor beta (schedule=decay); in (0, 1].", "--decay")
    power_t: float = option(0.5, "Exponent of schedule=invscaling; >= 0.", "--power-t")
    clip: float | None = option(None, "Clip the loss derivative to [-clip, clip] before each update (linear models); > 0.", "--clip")
    average: int = option(
        0,
        "Averaged SGD (ASGD, Polyak-Ruppert; scikit-learn's average=): N >= 1 makes the model the average of the "
        "weight iterates from the N-th row on (sync mode: from the mini-batch holding it), in every mode and on "
        "the GPU; 0: the last iterate. Linear models; 0 to 2^62. Not --mode average (per-worker replicas).",
        "--average",
    )

    # --- parallelism -------------------------------------------------------------------------------
    mode: str = option(
        "auto",
        "Update mode: auto (measure the rows/s of serial, async and average at each thread count in short "
        "rounds at the start, take the fastest, re-check the runner-up now and then; a GPU runs async), async "
        "(Hogwild!, lock-free), sync (barrier per mini-batch), average (per-worker replicas taking T times the "
        "step, merged every --average-every rows), "
        "serial (one deterministic worker), locked (per-example locks: the paper's baseline), atomic (CUDA "
        "only: atomic adds on every weight).",
        "--mode",
        MODES,
    )
    aggregate: str = option(
        "mean",
        "sync mode: combine worker gradients by plain mean or weighted by each worker's row count. Cluster runs "
        "(--cross-node average): combine the nodes' models by plain mean, by rows (weighted), or per "
        "coordinate by each node's AdaGrad sums (adagrad, as Vowpal Wabbit's allreduce).",
        "--aggregate",
        ("mean", "weighted", "adagrad"),
    )
    average_every: int = option(100_000, "average mode: rows each replica trains between two averagings; 1 to 2^31-1.", "--average-every")
    threads: int | None = option(
        None,
        "Worker threads, 1 to 4 per available core (at least 16, at most 1024), or auto: the cores available "
        "(with --mode auto, the most it tries) [default: auto].",
        "--threads",
        envvar="HOGWILD_THREADS",
        auto=True,
    )
    batch_size: int = option(
        256,
        "Rows per mini-batch: the barrier unit of sync mode, the micro-batch of an MLP worker; 1 to 1,048,576.",
        "--batch-size",
    )
    chunk_rows: int | None = option(
        None,
        "Rows a worker processes per kernel call; between chunks the engine reports progress, checks "
        "for Ctrl-C and takes checkpoints; 1 to 2^31-1. Default: 65,536 for a linear model in memory, 16,384 for "
        "an MLP or for a linear model streamed from a cache.",
        "--chunk-rows",
    )
    device: str = option("cpu", "Where to train: cpu, cuda, or auto (GPU when one is present).", "--device", ("cpu", "cuda", "auto"))
    dtype: str = option("float32", "Floating type of the weights (and of the data inside kernels).", "--dtype", ("float32", "float64"))

    # --- epochs, stopping, randomness --------------------------------------------------------------
    epochs: int = option(10, "Passes over the training data (max_iter); 1 to 1,000,000.", "--epochs")
    shuffle: bool = option(True, "Reshuffle the rows every epoch.", "--shuffle/--no-shuffle")
    seed: int = option(0, "Seed of every random choice; each worker derives its own stream; 0 to 2^32-1.", "--seed")
    tol: float | None = option(
        None,
        "Stop when the monitored loss has not improved by tol (>= 0) for n_iter_no_change epochs (None: never).",
        "--tol",
    )
    n_iter_no_change: int = option(5, "Epochs without improvement before stopping (with --tol); 1 to 1,000,000.", "--n-iter-no-change")
    validation_fraction: float = option(
        0.0,
        "Hold out this fraction of the training rows to monitor (early stopping watches it when > 0); in [0, 1).",
        "--validation-fraction",
    )

    # --- checkpoints and faults --------------------------------------------------------------------
    checkpoint_dir: str | None = option(None, "Write checkpoints to this folder (the last two good ones are kept).", "--checkpoint-dir")
    checkpoint_every: int = option(1, "Checkpoint every N epochs (with --checkpoint-dir); 1 to 1,000,000.", "--checkpoint-every")
    checkpoint_seconds: float | None = option(None, "Also checkpoint every S seconds (> 0), at a chunk boundary (with --checkpoint-dir).", "--checkpoint-seconds")
    resume: bool = option(False, "Continue from the newest valid checkpoint in --checkpoint-dir.", "--resume")
    on_worker_error: str = option(
        "abort",
        "When a worker raises: abort the run (keeping the last checkpoint) or restart that worker's shard.",
        "--on-worker-error",
        ("abort", "restart"),
    )

    # --- cluster: several machines (hogwild.cluster; needs Ray: pip install 'hogwild[ray]') -------------
    cluster: str | None = option(
        None,
        "Train on a Ray cluster: local:N starts N local nodes (a laptop, CI); auto joins the cluster this "
        "machine belongs to; HOST:PORT joins the head at that address (run the driver on the head). "
        "Default: this machine only.",
        "--cluster",
    )
    nodes: int | None = option(None, "Cluster runs: node actors to train on, 1 to 1024 (default: N of local:N, else one per live Ray node).", "--nodes")
    cross_node: str = option(
        "average",
        "Cluster runs: how the nodes combine their work: ps (parameter-server actors; each node pushes its "
        "weight changes and pulls the weights every --sync-every rows, asynchronously: Downpour SGD) or average "
        "(synchronous model averaging every --sync-every rows, by --aggregate: local SGD).",
        "--cross-node",
        CROSS_NODE_MODES,
    )
    sync_every: int = option(
        10_000,
        "Cluster runs: rows a node trains between two syncs, 1 to 2^31-1 (average mode: rows of the largest "
        "shard; every node meets the others equally often).",
        "--sync-every",
    )
    ps_shards: int = option(1, "--cross-node ps: parameter-server actors, 1 to 1024, each holding a contiguous range of the features.", "--ps-shards")
    ps_step: str = option(
        "damped",
        "--cross-node ps: how the server applies a push: damped (each feature's change scaled by 1/(1 + the other "
        "pushes that wrote it since this node pulled it): safe with few, dense or multiclass features) or sum "
        "(Downpour's plain sum: faster per epoch on sparse data with many nodes, but it can overshoot where many "
        "nodes write the same features).",
        "--ps-step",
        ("damped", "sum"),
    )
    max_staleness: int = option(
        4,
        "--cross-node ps: a node may run at most this many syncs (>= 0) ahead of the slowest node still in the "
        "epoch (bounded staleness); each push is scaled by 1/(1 + pushes the node had not seen).",
        "--max-staleness",
    )
    on_node_loss: str = option(
        "continue",
        "Cluster runs: when a node actor dies, continue on the others (its shard's remaining rows go untrained) "
        "or abort (keeping the last checkpoint).",
        "--on-node-loss",
        ("continue", "abort"),
    )
    cluster_timeout: float = option(
        300.0,
        "Cluster runs: seconds (> 0) any wait on the cluster may take (start-up, a sync, a barrier) before the "
        "run stops with an error naming the node.",
        "--cluster-timeout",
    )
    shard_weights: tuple | None = option(
        None, "Cluster runs: relative shard sizes, one per node, e.g. (3, 1) (default: even shards).", python_only=True
    )

    # ------------------------------------------------------------------------------------------------
    def replace(self, **changes):
        """A validated copy with ``changes`` applied (unknown names raise `ConfigError`)."""
        names = {f.name for f in dataclasses.fields(self)}
        for name in changes:
            if name not in names:
                raise ConfigError(name, f"unknown option {name!r}")
        return dataclasses.replace(self, **changes).validate()

    def to_dict(self):
        """Plain JSON-able dict of every field (tuples become lists)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, values):
        """Inverse of `to_dict`; ignores keys this version does not know (forward compatibility)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in values.items() if k in names}
        if "hidden" in kept and kept["hidden"] is not None:
            kept["hidden"] = tuple(kept["hidden"])
        return cls(**kept).validate()

    # --- derived values the kernels use ------------------------------------------------------------
    @property
    def effective_penalty(self):
        """The penalty after resolving 'auto' from the strengths."""
        if self.penalty != "auto":
            return self.penalty
        if self.l1 > 0 and self.l2 > 0:
            return "elasticnet"
        if self.l1 > 0:
            return "l1"
        return "l2" if self.l2 > 0 else "none"

    @property
    def effective_schedule(self):
        """The schedule after resolving 'auto'.

        MLPs: constant (their optimizer adapts the step). Linear models: normalized, whose steps need neither
        scaled features nor a tuned rate; ftrl when an L1 penalty is set (its closed-form step gives the exact
        zeros an L1 model is for, where the cumulative penalty of the global-step schedules only approaches
        them); adagrad on a --cluster, whose nodes combine AdaGrad sums, and for a softmax: the per-feature
        scales that make normalized blind to units also erase the weighting that text features carry on
        purpose (tf-idf): on news20, normalized softmax reaches 82-83% held-out at any rate, adagrad 84.8%.
        """
        if self.schedule != "auto":
            return self.schedule
        if self.model == "mlp":
            return "constant"
        if self.cluster is not None or (self.multiclass == "softmax" and not self.is_regression):
            return "adagrad"
        return "ftrl" if self.l1_strength > 0 else "normalized"

    def chunk_rows_for(self, streaming=False):
        """``chunk_rows``, or the default for the model and the data: 65,536 rows a worker for a linear model in
        memory; 16,384 for an MLP, or for data streamed from a memory-mapped cache.

        A chunk is a round of the worker pool: waking its threads and the Python between two kernel calls cost
        ~0.1 ms a round on a 2-vCPU VM, 3% of `average` x2's epoch on the rcv1-shaped set at 16,384 rows a worker
        (2.9 ms of rows); at 65,536 the default auto's epoch went from 30.7 to 30.0 ms and `average` x2's from 30.7
        to 30.2 ms (8 interleaved pairs; serial's unchanged). A linear chunk of 65,536 rows is still ~10 ms there.
        An MLP's rows are 20-100x slower: its smaller chunk keeps progress and Ctrl-C within a fraction of a second. A streamed epoch keeps the chunk's rows
        resident (its windows are a chunk of rows, dropped once done), so it keeps the smaller chunk too."""
        if self.chunk_rows is not None:
            return int(self.chunk_rows)
        return 65_536 if self.model == "linear" and not streaming else 16_384

    @property
    def effective_lr(self):
        """The base learning rate: ``lr``, or the schedule's default (0.5 normalized, 0.1 otherwise)."""
        if self.lr is not None:
            return float(self.lr)
        return 0.5 if self.effective_schedule == "normalized" else 0.1

    def rate(self, multiclass="binary", n_outputs=1):
        """The kernels' base rate for a model of ``n_outputs`` scores combined by ``multiclass``.

        A user's ``lr`` as given. The default is `effective_lr`, divided by sqrt(K) for a K-class softmax under a
        per-coordinate schedule: such a schedule gives each of a feature's K coordinates a step of about the
        rate, whatever the size of its gradient, so one row moves the K-vector of scores about sqrt(K) times as
        far as a one-output model's; the division keeps that move the size the rate says. (news20, 20 classes:
        adagrad at 0.1 reaches 82.3% held-out, at 0.1/sqrt(20) 84.8%; LIBLINEAR one-vs-rest 83.4%.)
        """
        rate = self.effective_lr
        if (self.lr is None and multiclass == "softmax" and n_outputs > 1
                and self.effective_schedule in PER_COORDINATE_SCHEDULES):
            rate /= math.sqrt(n_outputs)
        return rate

    def effective_intercept_decay(self, sparse_input):
        """The intercept's step multiplier after resolving the default (None) for sparse or dense input.

        The intercept is updated by every row, a feature of sparse data only by the few rows that hold it; under
        one global step the intercept then takes far more (and noisier) steps than any weight. scikit-learn's
        SGD damps it by 0.01 on sparse input; the per-coordinate schedules need no damping (the intercept's own
        accumulated squared gradients shrink its step).
        """
        if self.intercept_decay is not None:
            return float(self.intercept_decay)
        return 0.01 if sparse_input and self.effective_schedule not in PER_COORDINATE_SCHEDULES else 1.0

    @property
    def l2_strength(self):
        return self.l2 if self.effective_penalty in ("l2", "elasticnet") else 0.0

    @property
    def l1_strength(self):
        return self.l1 if self.effective_penalty in ("l1", "elasticnet") else 0.0

    @property
    def is_regression(self):
        return self.loss in REGRESSION_LOSSES

    def validate(self):
        """Check every field; raise `ConfigError` naming the option. Returns ``self`` for chaining.

        Numbers must lie in the range their help text gives; integers given as NumPy integers become ints. An
        option set where it does not apply is refused (`hogwild.option_scope`).
        """
        import numbers
        import os

        from ._io import max_threads

        # Upper bounds: beyond them a value is a typo, overflows the kernels' 64-bit counters, or asks for
        # buffers no machine holds. The help texts state the same ranges.
        max_epochs, max_batch_size, max_rows, max_seed = 1_000_000, 1 << 20, 2**31 - 1, 2**32 - 1

        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if choices and (not isinstance(value, str) or value not in choices):
                raise ConfigError(f.name, f"{_flag(f.name)} must be one of {', '.join(choices)}; got {value!r}")
            if isinstance(f.default, bool):
                if isinstance(value, str) or value not in (True, False):
                    raise ConfigError(f.name, f"{_flag(f.name)} must be True or False; got {value!r}")
                setattr(self, f.name, bool(value))

        def number(name, low, high, low_open=False, high_open=False, allow_none=False):
            value = getattr(self, name)
            if value is None and allow_none:
                return
            shown = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ConfigError(name, f"{_flag(name)} must be a number in {shown}; got {value!r}")
            value = float(value)
            inside = (low < value if low_open else low <= value) and (value < high if high_open else value <= high)
            if not math.isfinite(value) or not inside:
                raise ConfigError(name, f"{_flag(name)} must be a finite number in {shown}; got {value!r}")

        def positive(name, allow_zero=False, allow_none=False):
            number(name, 0.0, math.inf, low_open=not allow_zero, high_open=True, allow_none=allow_none)

        def integer(name, low, high, allow_none=False):
            value = getattr(self, name)
            if value is None and allow_none:
                return
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
                raise ConfigError(name, f"{_flag(name)} must be an integer from {low:,} to {high:,}; got {value!r}")
            setattr(self, name, int(value))

        positive("l2", allow_zero=True)
        positive("l1", allow_zero=True)
        positive("epsilon", allow_zero=True)
        positive("lr", allow_none=True)
        positive("power_t", allow_zero=True)
        positive("clip", allow_none=True)
        positive("intercept_decay", allow_none=True)
        positive("clip_norm", allow_none=True)
        positive("adam_epsilon")
        positive("tol", allow_zero=True, allow_none=True)
        positive("checkpoint_seconds", allow_none=True)
        number("decay", 0.0, 1.0, low_open=True)
        for name in ("momentum", "beta1", "beta2"):
            number(name, 0.0, 1.0, high_open=True)
        number("validation_fraction", 0.0, 1.0, high_open=True)
        integer("epochs", 1, max_epochs)
        integer("batch_size", 1, max_batch_size)
        integer("chunk_rows", 1, max_rows, allow_none=True)
        integer("average_every", 1, max_rows)
        integer("n_iter_no_change", 1, max_epochs)
        integer("checkpoint_every", 1, max_epochs)
        integer("seed", 0, max_seed)
        integer("average", 0, 2**62)
        if isinstance(self.threads, str) and self.threads.strip().lower() == "auto":
            self.threads = None
        if self.threads is not None:
            cap = max_threads()
            if isinstance(self.threads, bool) or not isinstance(self.threads, numbers.Integral) or self.threads < 1:
                raise ConfigError("threads", f"--threads must be a positive integer; got {self.threads!r}")
            if self.threads > cap:
                raise ConfigError(
                    "threads",
                    f"--threads must be at most {cap} on this machine (4 per available core, at least 16, at most "
                    f"1024); got {self.threads!r}",
                )
            self.threads = int(self.threads)
        if self.checkpoint_dir is not None and not isinstance(self.checkpoint_dir, (str, os.PathLike)):
            raise ConfigError("checkpoint_dir", f"--checkpoint-dir must be a folder path; got {self.checkpoint_dir!r}")
        from .hashing import check_hash_bits

        self.hash_bits = check_hash_bits(self.hash_bits)
        if not (self.class_weight is None or self.class_weight == "balanced" or isinstance(self.class_weight, dict)):
            raise ConfigError("class_weight", f"class_weight must be None, 'balanced' or a dict; got {self.class_weight!r}")
        try:
            hidden = tuple(self.hidden) if self.hidden is not None else ()
        except TypeError:
            raise ConfigError("hidden", f"--hidden must be one to three layer sizes in 1..4096; got {self.hidden!r}") from None
        if self.model == "mlp":
            if not 1 <= len(hidden) <= 3 or any(
                isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1 or h > 4096 for h in hidden
            ):
                raise ConfigError("hidden", f"--hidden must be one to three layer sizes in 1..4096; got {self.hidden!r}")
            hidden = tuple(int(h) for h in hidden)
        self.hidden = hidden
        if self.penalty == "l1" and self.l1 == 0 or self.penalty == "elasticnet" and (self.l1 == 0 or self.l2 == 0):
            raise ConfigError("penalty", f"--penalty {self.penalty} needs a non-zero strength (--l1, and --l2 for elasticnet)")
        if self.effective_schedule == "optimal" and self.l2_strength == 0:
            raise ConfigError("schedule", "--schedule optimal needs --l2 > 0 (its step is 1/(l2*(t0+t)))")
        if self.resume and not self.checkpoint_dir:
            raise ConfigError("resume", "--resume needs --checkpoint-dir")
        self._validate_cluster()
        check_applicable(self)
        if self.multiclass == "softmax" and self.loss != "log_loss":
            raise ConfigError("multiclass", f"--multiclass softmax needs --loss log_loss; got {self.loss}")
        return self


    def _validate_cluster(self):
        """The cluster section's checks (`validate` calls them)."""
        for name in ("sync_every", "ps_shards"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, f"{_flag(name)} must be a positive integer; got {value!r}")
        if isinstance(self.max_staleness, bool) or not isinstance(self.max_staleness, int) or self.max_staleness < 0:
            raise ConfigError("max_staleness", f"--max-staleness must be a non-negative integer; got {self.max_staleness!r}")
        if self.nodes is not None and (isinstance(self.nodes, bool) or not isinstance(self.nodes, int) or self.nodes < 1):
            raise ConfigError("nodes", f"--nodes must be a positive integer; got {self.nodes!r}")
        timeout = self.cluster_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
            raise ConfigError("cluster_timeout", f"--cluster-timeout must be a positive number of seconds; got {timeout!r}")
        if self.shard_weights is not None:
            weights = tuple(self.shard_weights)
            if not weights or any(isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0
                                  for w in weights):
                raise ConfigError("shard_weights", f"shard_weights must be positive numbers, one per node; got {self.shard_weights!r}")
            if self.nodes is not None and len(weights) != self.nodes:
                raise ConfigError("shard_weights", f"shard_weights has {len(weights)} sizes for {self.nodes} nodes (--nodes)")
            self.shard_weights = weights
        if self.aggregate == "adagrad" and (self.cluster is None or self.effective_schedule != "adagrad"):
            raise ConfigError("aggregate", "--aggregate adagrad weighs the nodes of a --cluster run by their AdaGrad sums; "
                                           "it needs --cluster and --schedule adagrad (or auto)")
        if self.cluster is None:
            return
        try:
            parse_cluster(self.cluster)
        except ValueError as exc:
            raise ConfigError("cluster", str(exc)) from None
        if self.model != "linear":
            raise ConfigError("model", "--cluster trains linear models; an MLP (--model mlp) trains on one machine")
        if self.device != "cpu":
            raise ConfigError("device", "--cluster trains on the nodes' CPUs; leave out --device (or use cpu)")
        if self.mode not in CLUSTER_NODE_MODES:
            raise ConfigError("mode", f"--mode {self.mode} cannot run inside a cluster node; use one of "
                                      f"{', '.join(CLUSTER_NODE_MODES)} (--cross-node average averages across nodes)")
        if self.l1_strength > 0:
            raise ConfigError("l1", "--l1 cannot be combined with --cluster: the cumulative L1 penalty is kept per process")
        if self.average:
            raise ConfigError("average", "--average cannot be combined with --cluster: the nodes exchange weights, not "
                                         "the sums the averaged iterate is kept in")
        if self.effective_schedule in ("normalized", "ftrl"):
            raise ConfigError("schedule", f"--schedule {self.effective_schedule} cannot run on a --cluster: the nodes "
                                          "combine AdaGrad sums; use --schedule adagrad (or auto)")


def _flag(name):
    """The CLI spelling of a field, for messages that both the CLI and Python users read."""
    return flag_of(TrainConfig, name)


def parse_cluster(value):
    """``("local", N)``, ``("auto", None)`` or ``("address", "HOST:PORT")`` for a ``--cluster`` value; a
    `ValueError` with one sentence otherwise."""
    import re

    text = str(value).strip()
    if text == "auto":
        return "auto", None
    match = re.fullmatch(r"local:(\d+)", text)
    if match:
        n = int(match.group(1))
        if not 1 <= n <= 64:
            raise ValueError(f"--cluster local:N needs N between 1 and 64; got {text!r}")
        return "local", n
    match = re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})", text)
    if match and 0 < int(match.group(2)) < 65536:
        return "address", text
    raise ValueError(f"--cluster must be local:N, auto or HOST:PORT (the head's address); got {text!r}")
