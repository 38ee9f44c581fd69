"""How the bench scores a run after each epoch, the same way for every system: the objective and test metrics of
the runner's live weights (`_EpochScorer`, a chunk hook plus an epoch callback), and the per-epoch trace. Used by
the study (`hogwild.bench.study`) and the cluster axis (`hogwild.bench.cluster`)."""

from __future__ import annotations

import numpy as np


def _linear_params(model, problem):
    coef = np.asarray(model.coef, dtype=np.float64)
    intercept = np.asarray(model.intercept, dtype=np.float64)
    if problem.task == "multiclass":
        return coef, intercept
    return coef[:, 0], float(intercept[0])


def score_model(problem, model):
    """``(objective, test metrics)`` of a trained model (a `LinearModel` or an MLP model), the bench's way."""
    if getattr(model, "kind", "linear") == "mlp":
        return (problem.mlp_objective(model.coefs, model.intercepts, model.activation),
                problem.mlp_test_metrics(model.coefs, model.intercepts, model.activation))
    coef, intercept = _linear_params(model, problem)
    return problem.linear_objective(coef, intercept), problem.linear_test_metrics(coef, intercept)


class _EpochScorer:
    """Chunk hook and epoch callback that score the runner's live weights after each epoch.

    The engine stops its epoch clock before the epoch event, so scoring here is not timed. A runner that never
    calls the hook leaves None in ``scores``; `_trace` then takes the engine's own record for that epoch.
    """

    def __init__(self, problem):
        self.problem = problem
        self.runner = None
        self.scores = []

    def hook(self, runner):
        self.runner = runner

    def __call__(self, event):
        if event.get("kind") != "epoch":
            return
        model = None
        if self.runner is not None and hasattr(self.runner, "model"):
            model = _live_model(self.runner)
        self.scores.append(None if model is None else score_model(self.problem, model))


def _live_model(runner):
    """The runner's current model, sharing its weights where it allows (no worker writes between epochs)."""
    try:
        return runner.model(copy=False)
    except TypeError:  # a runner whose model() always copies
        return runner.model()


def _trace(history, scores):
    """``([[seconds, objective, accuracy], ...], source)`` after each epoch: the bench's scores where it has them."""
    trace, total, source = [], 0.0, "bench"
    for epoch, record in enumerate(history):
        total += float(record["seconds"])
        score = scores[epoch] if epoch < len(scores) else None
        if score is None:
            trace.append([total, float(record["train_loss"]), record.get("test_accuracy")])
            source = "engine"
        else:
            objective, metrics = score
            trace.append([total, objective, metrics.get("test_accuracy")])
    return trace, source
