"""Shape, sparsity and label statistics of a dataset, including the Hogwild! paper's Omega, Delta and rho.

Niu et al. (2011) show that lock-free SGD runs close to serial speed-up when the rows rarely collide:
Omega (the largest number of features in one row), Delta (the largest fraction of rows that contain one
feature) and rho (the largest fraction of rows whose supports meet a given row's) measure how rarely.
Omega and Delta are exact. rho is exact for sets of at most ``exact_max_rows`` rows; for larger ones it is the
maximum over ``sample`` rows drawn at random (so a lower bound of the true rho), and the sample size is
reported with it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from hogwild.errors import DataError
from hogwild.kernels import stats as _kernels

EXACT_MAX_ROWS = 20_000
SAMPLE_ROWS = 1_000
MAX_LISTED_LABELS = 50  # more distinct labels than this are summarized as a real-valued target


def dataset_stats(X, y=None, exact_max_rows=EXACT_MAX_ROWS, sample=SAMPLE_ROWS, seed=0):
    """Return a dict of statistics of ``X`` (CSR, or anything scipy can convert) and labels ``y``.

    Keys: ``rows, features, nnz, density, nnz_per_row_min, nnz_per_row_mean, nnz_per_row_max``, ``omega``
    (= nnz_per_row_max), ``delta``, ``delta_feature`` (the column that attains it), ``rho``, ``rho_exact``
    (bool), ``rho_sample_rows`` (rows scanned for rho: all of them when exact), ``rho_row`` (a row that
    attains it), ``empty_rows``, ``empty_features``, and when ``y`` is given ``labels``: a dict
    ``{label: count}`` (label text as in LIBSVM files, in increasing order) and ``n_classes``, or for a
    real-valued target ``labels`` None and ``label_min/label_mean/label_max``. Pass ``exact_max_rows=None``
    to compute rho exactly whatever the size.
    """
    X = _as_canonical_csr(X)
    n_rows, n_features = X.shape
    if n_rows == 0:
        raise DataError("the dataset has no rows, so it has no statistics")
    row_nnz = np.diff(X.indptr)
    degrees = np.empty(n_features, dtype=np.int64)
    _kernels.feature_degrees(X.indices, n_features, degrees)

    stats = {
        "rows": int(n_rows),
        "features": int(n_features),
        "nnz": int(X.nnz),
        "density": float(X.nnz) / (float(n_rows) * n_features) if n_features else 0.0,
        "nnz_per_row_min": int(row_nnz.min()),
        "nnz_per_row_mean": float(row_nnz.mean()),
        "nnz_per_row_max": int(row_nnz.max()),
        "empty_rows": int(np.count_nonzero(row_nnz == 0)),
        "empty_features": int(np.count_nonzero(degrees == 0)) if n_features else 0,
    }
    stats["omega"] = stats["nnz_per_row_max"]
    top = int(np.argmax(degrees)) if n_features else 0
    stats["delta"] = float(degrees[top]) / n_rows if n_features else 0.0
    stats["delta_feature"] = top
    stats.update(_rho(X, degrees, exact_max_rows, sample, seed))
    if y is not None:
        stats.update(label_stats(y, n_rows))
    return stats


def label_stats(y, n_rows=None):
    """``{"labels": {label: count}}`` for class labels, or the min/mean/max of a real-valued target."""
    y = np.asarray(y)
    if n_rows is not None and y.shape[0] != n_rows:
        raise DataError(f"there are {y.shape[0]} labels for {n_rows} rows")
    values, counts = np.unique(y, return_counts=True)
    integral = np.all(np.isfinite(values)) and np.all(values == np.round(values))
    if integral and values.size <= MAX_LISTED_LABELS:
        signed = values.size > 0 and values[0] < 0
        labels = {_label_text(v, signed): int(c) for v, c in zip(values, counts)}
        return {"labels": labels, "n_classes": int(values.size)}
    return {
        "labels": None,
        "n_classes": None,
        "label_min": float(values.min()) if values.size else None,
        "label_mean": float(y.mean()) if y.size else None,
        "label_max": float(values.max()) if values.size else None,
    }


def _label_text(value, signed):
    """A label as LIBSVM files write it: '+1'/'-1' when there are negative labels, '1', '2', ... otherwise."""
    value = float(value)
    if value != int(value):
        return repr(value)
    return f"{int(value):+d}" if signed else str(int(value))


def _as_canonical_csr(X):
    """CSR with sorted, duplicate-free indices (feature degrees and overlaps count distinct entries)."""
    if not sp.issparse(X):
        X = sp.csr_matrix(np.asarray(X))
    X = X.tocsr()
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    return X


def _rho(X, degrees, exact_max_rows, sample, seed):
    """rho and how it was obtained: every row when the set is small, else ``sample`` random rows."""
    n_rows = X.shape[0]
    exact = exact_max_rows is None or n_rows <= exact_max_rows or (sample is not None and sample >= n_rows)
    if exact:
        rows = np.arange(n_rows, dtype=np.int64)
    else:
        if sample is None or int(sample) < 1:
            raise DataError(f"rho needs a sample of at least 1 row, not {sample}")
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(n_rows, size=int(sample), replace=False)).astype(np.int64)
    # Upper bound of each row's overlap count: the rows its features reach, with repeats; scanning rows by
    # decreasing bound lets the kernel stop as soon as no remaining row can beat the best count.
    reach = np.zeros(X.nnz + 1, dtype=np.int64)
    np.cumsum(degrees[X.indices], out=reach[1:])
    bounds_all = reach[X.indptr[1:]] - reach[X.indptr[:-1]]
    bounds = np.minimum(bounds_all[rows], n_rows).astype(np.int64)
    order = np.argsort(-bounds, kind="stable")
    rows, bounds = rows[order], bounds[order]
    csc = X.tocsc()
    counts = np.empty(rows.shape[0], dtype=np.int64)
    best = _kernels.overlap_counts(rows, bounds, X.indptr, X.indices, csc.indptr, csc.indices, n_rows, counts)
    attained = int(rows[int(np.argmax(counts))]) if rows.size and best > 0 else 0
    return {
        "rho": best / n_rows,
        "rho_exact": bool(exact),
        "rho_sample_rows": int(rows.shape[0]),
        "rho_row": attained,
    }


__all__ = ["dataset_stats", "label_stats", "EXACT_MAX_ROWS", "SAMPLE_ROWS"]
