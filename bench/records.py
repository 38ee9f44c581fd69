"""What every peer runner of ``hogwild bench`` builds its records with (`hogwild.bench.peers`,
`hogwild.bench.torch_peer`): a skipped record, an optional import, the objective-and-accuracy scores of a linear
model or an MLP, a trace point, a finished record."""

from __future__ import annotations

import importlib


def skipped(system, reason, mode="-", threads=None, device="cpu"):
    """The record of a peer that did not run, and why."""
    return {"system": system, "mode": mode, "threads": threads, "device": device, "skipped": True, "reason": reason}


def optional_module(module_name):
    """The module, or None when it is not installed (or is blocked, as tests do with ``sys.modules[name] = None``)."""
    try:
        return importlib.import_module(module_name)
    except ImportError:
        return None


def trace_point(seconds, score, params):
    """``[seconds, objective, test accuracy]`` of ``params`` scored by ``score`` (accuracy None for regression)."""
    objective, metrics = score(*params)
    return [float(seconds), objective, metrics.get("test_accuracy")]


def finish_record(record, problem, score, params, trace):
    """Fill the objective and test metrics of ``record`` from the final ``params``."""
    objective, metrics = score(*params)
    record.update(metrics)
    record["train_loss"] = objective
    record["trace"] = trace
    return record


def linear_score(problem):
    """``score(coef, intercept) -> (objective, test metrics)`` of a linear model."""
    return lambda coef, intercept: (problem.linear_objective(coef, intercept), problem.linear_test_metrics(coef, intercept))


def mlp_score(problem, activation):
    """``score(weights, biases) -> (objective, test metrics)`` of an MLP."""
    return lambda weights, biases: (
        problem.mlp_objective(weights, biases, activation),
        problem.mlp_test_metrics(weights, biases, activation),
    )
