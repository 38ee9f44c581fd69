"""The one epoch loop every runner is driven by: row order, step size, evaluation, early stopping, history.

`EpochLoop.run` asks its runner (`hogwild.runners.Runner`) for one epoch at a time over a `RowOrder` and the
epoch's learning rate, and between the runner's chunks of rows it emits the one chunk event
(`hogwild.results.CHUNK_KEYS`) that progress bars read, runs the chunk hooks (where checkpoints, Ctrl-C and
cluster synchronisation happen) and checks the progressive loss. After each epoch it scores the validation and
test sets, appends the history record (`hogwild.results.HISTORY_KEYS`) and applies the one early-stopping rule.
`hogwild.resilience.run_resilient` drives the loop: ``snapshot``/``restore_snapshot``, ``fingerprint``,
``epoch``, ``position``, ``model``, ``history``, ``hooks`` and ``callback`` are all it uses. The row order
(blocks of rows shuffled per epoch, from the seed and the epoch number) is `hogwild.order`'s.
"""

from __future__ import annotations

import copy
import math
import time

from .errors import CheckpointError, DivergenceError
from .metrics import evaluate_model
from .order import epoch_order
from .results import TrainResult

def epoch_rate(config, epoch):
    """The learning rate of epoch ``epoch`` (0-based): the part of the schedule that changes per epoch.

    ``decay``: ``lr * decay**epoch`` (the Hogwild! paper's); an MLP's ``invscaling``: ``lr / (epoch+1)**power_t``.
    The linear models' ``invscaling`` and ``optimal`` steps change with every row, inside the kernels, from
    this rate. ``adaptive`` starts from ``lr``; `EarlyStopping` divides it as the loss stalls (the loop
    multiplies this rate by its ``rate_factor``).
    """
    schedule = config.effective_schedule
    if schedule == "decay":
        return config.effective_lr * config.decay**epoch
    if schedule == "invscaling" and config.model == "mlp":
        return config.effective_lr / (epoch + 1.0) ** config.power_t
    return config.effective_lr


class EarlyStopping:
    """scikit-learn's rule (SGD and MLP alike): stop after ``n_iter_no_change`` epochs in which the monitored
    value did not fall below the best so far minus ``tol``.

    The monitored value is the validation loss (RMSE for regression; 1 - accuracy where no loss exists),
    else the training loss. With ``adaptive_lr`` (the base rate of ``schedule="adaptive"``) the rule first
    lowers the rate: each time it fires while the rate ``adaptive_lr * rate_factor`` is above 1e-6, the rate is
    divided by 5 and the count starts again (scikit-learn's ``learning_rate="adaptive"``); only then does it stop.
    """

    MIN_ADAPTIVE_RATE = 1e-6  # scikit-learn's floor: below it, a stall stops the run instead

    def __init__(self, tol, patience, adaptive_lr=None):
        self.tol, self.patience = tol, patience
        self.best, self.since_best = math.inf, 0
        self.adaptive_lr = adaptive_lr
        self.rate_factor = 1.0

    @staticmethod
    def monitored(record):
        for key in ("validation_loss", "validation_rmse"):
            if key in record:
                return record[key]
        if "validation_accuracy" in record:
            return 1.0 - record["validation_accuracy"]
        return record["train_loss"]

    def __call__(self, record):
        """Whether training should stop after this epoch's ``record``."""
        if self.tol is None:
            return False
        value = self.monitored(record)
        if value > self.best - self.tol:
            self.since_best += 1
        else:
            self.since_best = 0
        self.best = min(self.best, value)
        if self.since_best < self.patience:
            return False
        if self.adaptive_lr is not None and self.adaptive_lr * self.rate_factor > self.MIN_ADAPTIVE_RATE:
            self.rate_factor /= 5.0
            self.since_best = 0
            return False
        return True

    def state(self):
        return {"best": float(self.best), "since_best": int(self.since_best), "rate_factor": float(self.rate_factor)}

    def restore(self, state):
        self.best, self.since_best = float(state["best"]), int(state["since_best"])
        self.rate_factor = float(state.get("rate_factor", 1.0))


def _metric_record(model, prefix, X, y):
    names = {"accuracy": "accuracy", "log_loss": "loss", "roc_auc": "auc", "rmse": "rmse", "mae": "mae"}
    return {f"{prefix}_{names[k]}": v for k, v in evaluate_model(model, X, y).items() if k in names}


class EpochLoop:
    """One training run: a runner, the problem it trains on, the epoch counter, the history.

    ``hooks``: callables ``hook(loop)`` run at every chunk boundary (checkpoints, signals, cluster sync; they
    may read and write ``loop.parameters()`` in place). ``callback(event)``: chunk and epoch events.
    """

    def __init__(self, runner, problem, config, *, callback=None, hooks=()):
        self.runner, self.problem, self.config = runner, problem, config
        self.callback = callback
        self.hooks = list(hooks)
        self.epoch = 0
        self.history = []
        adaptive_lr = config.effective_lr if config.effective_schedule == "adaptive" else None
        self.stopping = EarlyStopping(config.tol, config.n_iter_no_change, adaptive_lr)

    # --- what hooks and hogwild.resilience read ---------------------------------------------------------
    def position(self):
        """Rows done in the current epoch, over all workers."""
        return int(self.runner.position())

    def parameters(self):
        """The runner's live shared arrays by name, writable in place between chunks."""
        return self.runner.parameters()

    def model(self, copy=True):
        """The runner's model as the weights stand; trained on hashed features, it hashes what it scores."""
        model = self.runner.model(copy=copy)
        model.hash_bits = self.config.hash_bits
        return model

    def fingerprint(self):
        return self.problem.fingerprint()

    def snapshot(self):
        """Everything a checkpoint holds: the runner's state, the epoch counter, early stopping and history."""
        return {
            "engine": self.runner.snapshot(),
            "loop": {"epoch": int(self.epoch), **self.stopping.state()},
            "history": copy.deepcopy(self.history),
        }

    def restore_snapshot(self, snapshot):
        """Continue from a `snapshot`; one that is not a training state of this runner is a `CheckpointError`."""
        try:
            engine, loop = snapshot["engine"], snapshot["loop"]
            epoch = int(loop["epoch"])
            history = list(snapshot.get("history") or [])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"the saved training state is incomplete ({type(exc).__name__}: {exc})") from None
        if epoch < 0:
            raise CheckpointError(f"the saved training state has a negative epoch count ({epoch})")
        self.runner.restore(engine)
        self.stopping.restore(loop)
        self.epoch, self.history = epoch, history

    # --- the loop -------------------------------------------------------------------------------------------
    def run(self):
        """Epochs until ``config.epochs`` have run in all (a restored run continues) or early stopping says so."""
        config, runner = self.config, self.runner
        stopped_early = False
        while self.epoch < config.epochs:
            order = epoch_order(runner.n_rows, config.seed, self.epoch, config.shuffle, runner.order_block_shift,
                                getattr(runner, "order_window_rows", None))
            lr = epoch_rate(config, self.epoch) * self.stopping.rate_factor
            started = time.perf_counter()
            outcome = runner.run_epoch(order, self.epoch, lr, self._chunk_boundary)
            seconds = time.perf_counter() - started
            if not math.isfinite(outcome.train_loss):
                self._diverged()
            self.epoch += 1
            record = self._record(seconds, outcome)
            self.history.append(record)
            # the stopping rule's counters advance before the callback, where the epoch's checkpoint is taken
            stop = self.stopping(record)
            if self.callback is not None:
                self.callback({"kind": "epoch", **record})
            if stop:
                stopped_early = True
                break
        return TrainResult(model=self.model(copy=True), history=self.history, config=config,
                           stopped_early=stopped_early, state=self.snapshot())

    def _chunk_boundary(self, rows_done, loss):
        """Called by the runner between chunks, when no worker is writing."""
        if not math.isfinite(loss):
            self._diverged()
        if self.callback is not None:
            self.callback({"kind": "chunk", "epoch": self.epoch + 1, "rows_done": int(rows_done),
                           "rows_total": int(self.runner.n_rows), "loss": float(loss)})
        for hook in self.hooks:
            hook(self)

    def _diverged(self):
        clip = "--clip-norm" if self.config.model == "mlp" else "--clip"
        raise DivergenceError(
            f"training diverged at epoch {self.epoch + 1} (non-finite weights or loss); "
            f"try a smaller --lr than {self.config.effective_lr:g} (or {clip}, or another --schedule)"
        )

    def _record(self, seconds, outcome):
        runner = self.runner
        record = {
            "epoch": self.epoch,
            "seconds": seconds,
            "train_loss": float(outcome.train_loss),
            "rows_per_s": runner.n_rows / seconds if seconds > 0 else float("inf"),
            "nnz_per_s": runner.nnz / seconds if seconds > 0 else float("inf"),
            "lr": float(outcome.lr),
            **outcome.extras,
        }
        if self.problem.evaluations:
            model = self.model(copy=False)  # no worker writes between epochs
            for name, X, y in self.problem.evaluations:
                record.update(_metric_record(model, name, X, y))
        return record


__all__ = ["EpochLoop", "EarlyStopping", "epoch_rate"]
