"""What training returns: the model, the per-epoch history, and how the run ended."""

from __future__ import annotations

from dataclasses import dataclass, field

# Keys every history record has. Optional ones, present when the data was given:
#   validation_loss, validation_accuracy, validation_auc, test_loss, test_accuracy, test_auc
#   (regression: validation_rmse, test_rmse)
HISTORY_KEYS = ("epoch", "seconds", "train_loss", "rows_per_s", "nnz_per_s", "lr")
# Keys of every chunk event ({"kind": "chunk", ...}), whatever the runner: progress bars, checkpoints and
# signal handling read only these. ``epoch`` is 1-based (the epoch in progress); ``loss`` is the progressive
# training loss of the epoch so far.
CHUNK_KEYS = ("kind", "epoch", "rows_done", "rows_total", "loss")


@dataclass
class TrainResult:
    """``model``: a fitted `LinearModel` or `MLPModel`. ``history``: one dict per epoch (see HISTORY_KEYS).

    ``stopped_early`` is True when tol/n_iter_no_change ended the run; ``checkpoint`` is the last checkpoint
    written (or None); ``state`` is the run's final training state (`hogwild.loop.EpochLoop.snapshot`), which
    ``hogwild.train(..., init_state=result.state)`` continues from.
    """

    model: object
    history: list = field(default_factory=list)
    config: object = None
    stopped_early: bool = False
    checkpoint: str | None = None
    state: dict | None = None

    @property
    def epochs_run(self):
        return len(self.history)

    @property
    def seconds(self):
        return float(sum(record["seconds"] for record in self.history))


@dataclass
class EpochOutcome:
    """What a runner reports after an epoch: the training objective it measured, the last step size, and any
    runner-specific figures for the history record (a cluster runner's per-node counters, say)."""

    train_loss: float
    lr: float
    extras: dict = field(default_factory=dict)
