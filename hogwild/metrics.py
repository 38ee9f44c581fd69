"""Evaluation metrics in NumPy (scikit-learn is a test dependency only, never imported by the core).

Names match scikit-learn's so that ``--metrics-json``, ``evaluate --json`` and the bench share one vocabulary:
accuracy, log_loss, roc_auc, rmse, mae, precision/recall per class.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-15


def accuracy(y_true, y_pred):
    """Fraction of exact matches, in [0, 1]."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean(y_true == y_pred)) if y_true.size else float("nan")


def log_loss(y_true, proba, classes):
    """Mean negative log-likelihood of the true class; ``proba`` is (n, K) with columns in ``classes`` order."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim == 1:
        proba = np.column_stack([1.0 - proba, proba])
    index = np.searchsorted(classes, y_true)
    index = np.clip(index, 0, len(classes) - 1)
    known = np.asarray(classes)[index] == y_true
    picked = np.where(known, proba[np.arange(len(index)), index], 0.0)
    return float(-np.mean(np.log(np.clip(picked, _EPS, 1.0)))) if len(index) else float("nan")


def roc_auc(y_true_binary, scores):
    """Area under the ROC curve from scores (Mann-Whitney U with tie-averaged ranks); NaN for one class."""
    y = np.asarray(y_true_binary).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(y.size, dtype=np.float64)
    # average ranks over ties, so that constant scores give exactly 0.5
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    stops = np.concatenate([boundaries, [y.size]])
    average = (starts + stops + 1) / 2.0
    ranks[order] = np.repeat(average, stops - starts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def rmse(y_true, y_pred):
    diff = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return float(np.sqrt(np.mean(diff * diff))) if diff.size else float("nan")


def mae(y_true, y_pred):
    diff = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return float(np.mean(np.abs(diff))) if diff.size else float("nan")


def per_class_precision_recall(y_true, y_pred, classes):
    """{class: {"precision", "recall", "support"}} with JSON-able keys (classes rendered by `class_key`)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    out = {}
    for c in classes:
        predicted = y_pred == c
        actual = y_true == c
        hits = int(np.sum(predicted & actual))
        out[class_key(c)] = {
            "precision": hits / int(predicted.sum()) if predicted.any() else 0.0,
            "recall": hits / int(actual.sum()) if actual.any() else 0.0,
            "support": int(actual.sum()),
        }
    return out


def class_key(c):
    """A class label as a JSON key: integral floats print without '.0' (LIBSVM labels are often 1, 2, ...)."""
    if isinstance(c, (float, np.floating)) and float(c).is_integer():
        return str(int(c))
    return str(c.item() if hasattr(c, "item") else c)


def evaluate_model(model, X, y):
    """The standard metrics of ``model`` on (X, y), as a flat dict of JSON-able values.

    Classification: accuracy, log_loss (when the model gives probabilities), roc_auc (binary),
    per_class (multiclass). Regression: rmse, mae.
    """
    y = np.asarray(y)
    if model.classes is None:
        pred = model.predict(X)
        return {"rmse": rmse(y, pred), "mae": mae(y, pred), "n_samples": int(y.size)}
    scores = model.decision_function(X)
    pred = model.predict_from_scores(scores)
    out = {"accuracy": accuracy(y, pred), "n_samples": int(y.size)}
    if model.has_proba:
        proba = model.proba_from_scores(scores)
        out["log_loss"] = log_loss(y, proba, model.classes)
    if len(model.classes) == 2:
        positive_scores = scores if scores.ndim == 1 else scores[:, -1]
        out["roc_auc"] = roc_auc(y == model.classes[1], positive_scores)
    else:
        out["per_class"] = per_class_precision_recall(y, pred, model.classes)
    return out
