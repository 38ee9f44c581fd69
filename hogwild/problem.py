"""The training problem every runner starts from: features, labels, classes, row weights, evaluation sets.

`prepare_problem` is the one place where what a user hands `hogwild.train` is checked and turned into a
`Problem`: paths and dataset objects are loaded, labels are checked against the classes, ``sample_weight`` and
``class_weight`` become one weight per row, ``validation_fraction`` holds rows out (one split rule for
every model), and with ``hash_bits`` the training rows' features are hashed (`hogwild.hashing`). Runners then put the features into their kernels' form (`hogwild._inputs.as_csr` for the linear
kernels, `hogwild._inputs.Features` for the MLP kernels, which keep dense input dense).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ._inputs import CSR, as_csr, as_dense, as_labels, load_xy
from .errors import ConfigError, DataError

# The hold-out split's own random stream, apart from the shuffles (seeded by (seed, epoch)) and the MLP's
# initial weights.
_SPLIT_STREAM = 7919


@dataclass
class Problem:
    """Training rows as given (validation rows removed) and what was derived from them.

    ``X``: a scipy CSR matrix or a 2-D ndarray. ``labels``: one label per row (regression targets may have
    several columns). ``classes``: sorted class labels, or None for regression. ``sample_weight``: one
    non-negative weight per row with the class weights folded in, or None when every row weighs 1.
    ``evaluations``: ``[(name, X, y)]`` for the "validation" and "test" sets scored after every epoch.
    ``row_ids``: each training row's row in the X the user gave, when a hold-out split renumbered them (so
    that an error can name the user's row), else None.
    """

    X: object
    labels: np.ndarray
    classes: np.ndarray | None
    sample_weight: np.ndarray | None
    sparse_input: bool
    evaluations: list = field(default_factory=list)
    row_ids: np.ndarray | None = None

    @property
    def n_rows(self):
        return int(self.X.shape[0])

    @property
    def n_features(self):
        return int(self.X.shape[1])

    @property
    def is_regression(self):
        return self.classes is None

    def fingerprint(self):
        """The training data's `hogwild.checkpoint.data_fingerprint` (a resumed run must see the same data)."""
        from .checkpoint import data_fingerprint

        return data_fingerprint(self.X, self.labels)


def prepare_problem(X, y, config, *, X_val=None, y_val=None, X_test=None, y_test=None, sample_weight=None,
                    classes=None, multi_output=False):
    """A `Problem` from what the user passed; every mistake is a one-sentence `DataError` or `ConfigError`.

    ``multi_output``: whether the runner can fit a regression target with several columns (the MLP).
    """
    X, y = load_xy(X, y)
    sparse_input = sp.issparse(X) or bool(getattr(X, "sparse_input", False))
    if isinstance(X, CSR):  # already in kernel form (the estimators check X before training)
        X = X.to_scipy()
    X = X.tocsr() if sp.issparse(X) else as_dense(X)
    n_rows = X.shape[0]
    if n_rows == 0:
        raise DataError("X has no rows to train on")
    labels = as_labels(y, n_rows, allow_columns=multi_output and config.is_regression)
    classes = _classes(labels, classes, config)
    weights = _row_weights(sample_weight, labels, classes, config)
    evaluations = []
    row_ids = None
    if X_val is None and config.validation_fraction > 0:
        train_rows, val_rows = split_rows(n_rows, config.validation_fraction, config.seed)
        X_val, y_val = take_rows(X, val_rows), labels[val_rows]
        if sp.issparse(X_val):
            # The setup pass checks the training rows only (`hogwild.runners._setup.scan_features`): check the
            # held-out ones now, not at the first epoch's end, and sort them once, not at every evaluation.
            X_val = as_csr(X_val, X_val.dtype if X_val.dtype.kind == "f" else np.float64,
                           name="X (its rows held out for validation)").to_scipy()
        X, labels = take_rows(X, train_rows), labels[train_rows]
        weights = None if weights is None else weights[train_rows]
        row_ids = train_rows
    if config.hash_bits is not None:
        # the training rows only: the evaluation sets stay as given, and the model hashes them as it scores
        # (hogwild.hashing), as it hashes whatever predict gives it
        from .hashing import hash_features

        X = hash_features(X, config.hash_bits)
    for name, Xe, ye in (("validation", X_val, y_val), ("test", X_test, y_test)):
        if Xe is not None:
            Xe, ye = load_xy(Xe, ye)
            evaluations.append((name, Xe, as_labels(ye, Xe.shape[0], name=f"y_{name}",
                                                     allow_columns=multi_output and config.is_regression)))
    return Problem(X, labels, classes, weights, sparse_input, evaluations, row_ids)


def take_rows(X, rows):
    """``X[rows]`` (rows sorted); from a memory-mapped matrix, a copy in temporary mapped files instead of memory
    (`hogwild.memory.mapped_rows`), so that a hold-out split of data larger than memory stays on disk."""
    from .memory import csr_is_mapped, mapped_rows

    if sp.issparse(X) and X.format == "csr" and csr_is_mapped(X):
        return mapped_rows(X, rows)
    return X[rows]


def split_rows(n_rows, fraction, seed):
    """``(train_rows, held_out_rows)``, both sorted: ``round(fraction * n_rows)`` rows (at least one) held out."""
    n_held = max(1, int(round(fraction * n_rows)))
    if n_held >= n_rows:
        raise DataError(f"--validation-fraction {fraction:g} leaves no training rows out of {n_rows}")
    permutation = np.random.default_rng([int(seed), _SPLIT_STREAM]).permutation(n_rows)
    return np.sort(permutation[n_held:]), np.sort(permutation[:n_held])


def _classes(labels, classes, config):
    if config.is_regression:
        if not np.issubdtype(labels.dtype, np.number):
            raise DataError(f"regression needs numeric targets; got labels of type {labels.dtype}")
        if classes is not None:
            raise ConfigError("classes", "classes are for classification; this is a regression loss")
        return None
    found = _unique(labels)
    classes = np.unique(np.asarray(classes)) if classes is not None else found
    unknown = np.setdiff1d(found, classes)
    if unknown.size:
        raise DataError(f"y has labels {unknown[:5].tolist()} that are not among the classes {classes.tolist()}")
    if classes.size < 2:
        raise DataError(
            f"classification needs at least two classes in y; found {classes.size} class: {classes.tolist()}"
        )
    return classes


def _unique(labels, chunk=1 << 14):
    """``np.unique(labels)`` without its sorted copy of every label: for numbers of two values, their minimum,
    maximum and a compiled count of the others (`hogwild.kernels.stats.count_others`; 160,000 binary labels
    0.28 -> 0.08 ms), else unique values of each chunk, then of those (training memory must not grow by 8 bytes a
    row for this)."""
    if labels.ndim == 1 and labels.dtype.kind in "iuf" and labels.shape[0] > 0:
        from hogwild.kernels.stats import count_others

        low, high = labels.min(), labels.max()
        # (NaN labels are refused before this; np.unique would keep each NaN apart)
        if low == low and high == high and count_others(labels, low, high) == 0:
            return np.unique(np.array([low, high], dtype=labels.dtype))
    if labels.shape[0] <= chunk:
        return np.unique(labels)
    return np.unique(np.concatenate([np.unique(labels[start : start + chunk])
                                     for start in range(0, labels.shape[0], chunk)]))


def _row_weights(sample_weight, labels, classes, config):
    """One weight per row (``sample_weight`` times the row's class weight), or None when all are 1."""
    weights = None
    if sample_weight is not None:
        weights = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
        if weights.shape[0] != labels.shape[0] or not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise DataError(f"sample_weight must hold {labels.shape[0]} finite non-negative numbers")
        if not weights.sum() > 0:
            raise DataError("sample_weight sums to zero: there is nothing to train on")
    per_class = _class_weights(config.class_weight, labels, classes)
    if per_class is not None:
        weights = per_class if weights is None else weights * per_class
    return weights


def _class_weights(class_weight, labels, classes):
    """Each row's class weight ('balanced': n_rows / (n_classes * rows of the class), as scikit-learn's)."""
    if class_weight is None:
        return None
    if classes is None:
        raise ConfigError("class_weight", "class_weight is for classification; this is a regression loss")
    index = np.searchsorted(classes, labels)
    if isinstance(class_weight, str) and class_weight == "balanced":
        counts = np.bincount(index, minlength=classes.size).astype(np.float64)
        per_class = np.where(counts > 0, labels.size / (classes.size * np.maximum(counts, 1)), 0.0)
    elif isinstance(class_weight, dict):
        per_class = np.ones(classes.size)
        for label, weight in class_weight.items():
            where = np.flatnonzero(classes == label)
            if where.size == 0:
                raise ConfigError("class_weight", f"class_weight names class {label!r}, which is not in y")
            weight = float(weight)
            if not (np.isfinite(weight) and weight >= 0):
                raise ConfigError("class_weight", f"class_weight of class {label!r} must be a non-negative number")
            per_class[where[0]] = weight
    else:
        raise ConfigError("class_weight", f"class_weight must be None, 'balanced' or a dict; got {class_weight!r}")
    return per_class[index]


__all__ = ["Problem", "prepare_problem", "split_rows", "take_rows"]
