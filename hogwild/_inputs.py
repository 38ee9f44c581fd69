"""Input coercion: whatever a user passes becomes the CSR triple the kernels read.

Accepted: scipy sparse matrices and arrays of any format (CSR, CSC, COO, ...), dense array-likes, int64 or
int32 indices, the project's dataset objects (anything with ``X`` and ``y`` attributes) and LIBSVM file paths
(loaded with `hogwild.datasets.libsvm.load_libsvm`). The result is canonical CSR (sorted, no duplicate
indices: the ``locked`` mode and the row-frequency counts rely on it) with an int32 or int64 ``indptr`` (as
given: the kernels are compiled for both, and widening scipy's int32 one would cost 8 bytes a row), int32
``indices`` and ``data`` in the requested float dtype, copied only when something has to change. A
memory-mapped matrix (a binary cache) is checked a piece at a time, dropping the pages it has read, and a
conversion of it goes to a temporary mapped file (`hogwild.memory`), so data larger than memory stays on disk.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .errors import DataError
from .memory import csr_is_mapped, mapped_rows, streamed_all_finite, streamed_canonical

_INT32_MAX = np.iinfo(np.int32).max


@dataclass
class CSR:
    """A CSR matrix as the kernels see it."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    n_features: int
    # Whether the user handed us sparse data (a scipy matrix, a LIBSVM file) or a dense array: scikit-learn's
    # SGD damps the intercept's step on sparse input, and hogwild's default does the same (intercept_decay).
    sparse_input: bool = True

    @property
    def n_rows(self):
        return self.indptr.shape[0] - 1

    @property
    def nnz(self):
        return int(self.indptr[-1])

    def to_scipy(self):
        """A scipy CSR matrix sharing these arrays."""
        return sp.csr_matrix((self.data, self.indices, self.indptr), shape=(self.n_rows, self.n_features), copy=False)


def load_xy(X, y=None):
    """(X, y) from a path or a dataset object; otherwise returned unchanged."""
    if isinstance(X, (str, os.PathLike)):
        from hogwild.datasets.libsvm import load_libsvm

        loaded = load_libsvm(X)
        if isinstance(loaded, tuple):
            X_loaded, y_loaded = loaded[0], loaded[1]
        else:
            X_loaded, y_loaded = loaded.X, loaded.y
        return X_loaded, (y_loaded if y is None else y)
    if hasattr(X, "X") and hasattr(X, "y") and not sp.issparse(X) and not isinstance(X, np.ndarray):
        return X.X, (X.y if y is None else y)
    return X, y


def as_csr(X, dtype=np.float32, name="X", check_finite=True, check_canonical=True):
    """A `CSR` of X (any sparse format or a dense array-like) with int32/int64 indptr, int32 indices, ``dtype`` data.

    ``check_finite=False`` leaves the NaN/infinity check to the caller, ``check_canonical=False`` the canonical
    form (sorted, no duplicates): training checks both in the one pass it makes over the rows before its first
    epoch (`hogwild.runners._setup.scan_features`), which sorts a copy when they are not.
    """
    dtype = np.dtype(dtype)
    sparse_input = sp.issparse(X) or getattr(X, "sparse_input", False)
    if isinstance(X, CSR):
        X = X.to_scipy()
    matrix = X.tocsr() if sp.issparse(X) else sp.csr_matrix(as_dense(X, name))
    n_rows, n_features = matrix.shape
    if n_features > _INT32_MAX:
        raise DataError(f"{name} has {n_features} features; at most {_INT32_MAX} are supported")
    mapped = csr_is_mapped(matrix)
    if mapped:
        # data larger than memory: every pass reads a piece at a time and drops its pages (hogwild.memory)
        if check_canonical and streamed_canonical(matrix.indptr, matrix.indices, n_rows):
            matrix.has_canonical_format = True  # spares scipy its own whole-array check
        canonical = matrix.has_canonical_format if check_canonical else True  # else: the caller checks it
        if canonical and (matrix.data.dtype != dtype or matrix.indices.dtype != np.int32):
            matrix = mapped_rows(matrix, dtype=dtype)  # the converted copy goes to a temporary mapped file
    if check_canonical and not matrix.has_canonical_format:
        matrix = matrix.copy()
        matrix.sum_duplicates()
        matrix.sort_indices()
    data = np.ascontiguousarray(matrix.data, dtype=dtype)
    if check_finite and not (streamed_all_finite(data) if mapped else _all_finite(data)):
        raise DataError(f"{name} contains NaN or infinite values; remove or impute them before training")
    indices = np.ascontiguousarray(matrix.indices, dtype=np.int32)
    indptr_dtype = np.int32 if matrix.indptr.dtype == np.int32 else np.int64
    indptr = np.ascontiguousarray(matrix.indptr, dtype=indptr_dtype)
    return CSR(indptr, indices, data, int(n_features), bool(sparse_input))


def as_dense(X, name="X"):
    """X as a numeric 2-D ndarray (no copy when it already is one); one-sentence errors otherwise."""
    array = np.asarray(X)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        try:
            array = array.astype(np.float64)
        except TypeError as exc:
            raise TypeError(f"{name} must be numeric: {exc}") from None
        except ValueError as exc:
            raise DataError(f"{name} must be numeric; could not convert its values to floats ({exc})") from None
    if array.ndim != 2:
        raise DataError(
            f"{name} must be 2-dimensional (rows x features); got shape {array.shape}. Reshape your data "
            "with array.reshape(-1, 1) for one feature or array.reshape(1, -1) for one sample"
        )
    return array


def _all_finite(values, chunk=1 << 20):
    """Whether every value is finite, without np.isfinite's one-byte-per-value mask of the whole array."""
    # A NaN or an infinity makes the sum non-finite, so a finite sum settles it in one buffered pass; only a
    # sum that overflows (huge float64 values) or a real non-finite value needs the element-wise check.
    if math.isfinite(float(np.sum(values, dtype=np.float64))):
        return True
    return all(np.isfinite(values[start : start + chunk]).all() for start in range(0, values.size, chunk))


def match_features(csr, n_features, ignore_extra_features=False, name="X"):
    """``csr`` with exactly ``n_features`` columns: fewer are padded; more raise `DataError` or are dropped."""
    if csr.n_features == n_features:
        return csr
    if csr.n_features < n_features:
        return CSR(csr.indptr, csr.indices, csr.data, n_features, csr.sparse_input)
    if not ignore_extra_features:
        raise DataError(
            f"{name} has {csr.n_features} features but the model was trained on {n_features}; "
            "pass ignore_extra_features=True (--ignore-extra-features) to drop the extra ones"
        )
    keep = csr.indices < n_features
    counts = np.add.reduceat(keep.astype(np.int64), csr.indptr[:-1]) if csr.nnz else np.zeros(csr.n_rows, np.int64)
    # reduceat misreads empty rows (it returns the next element); zero them explicitly.
    counts[np.diff(csr.indptr) == 0] = 0
    indptr = np.zeros(csr.n_rows + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return CSR(indptr, np.ascontiguousarray(csr.indices[keep]), np.ascontiguousarray(csr.data[keep]), n_features,
               csr.sparse_input)


def as_labels(y, n_rows, name="y", allow_columns=False):
    """y as a 1-d array of length n_rows (no NaN for numeric labels); with ``allow_columns``, a 2-d array of
    n_rows regression targets is kept as it is (a multi-output MLP)."""
    if y is None:
        raise DataError(f"{name} is required for training")
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels.ravel()
    multi = allow_columns and labels.ndim == 2
    if not (labels.ndim == 1 or multi):
        raise DataError(f"{name} must have one label per row ({n_rows}); got shape {labels.shape}")
    if labels.shape[0] != n_rows:
        raise DataError(f"{name} must have one label per row: X has {n_rows} rows but {name} has "
                        f"{labels.shape[0]} labels")
    if np.issubdtype(labels.dtype, np.floating) and not _all_finite(labels):
        raise DataError(f"{name} contains NaN or infinite values")
    return labels


class Features:
    """A feature matrix in the form the MLP kernels take: a dense 2-D C array, or the CSR triple.

    Sparse input goes through `as_csr` (canonical CSR, int32 ``indices``; ``indptr`` widened to int64 so each
    MLP kernel has one compiled variant); dense input stays dense (the first layer then runs as a dense
    product). With ``n_features`` given, fewer columns are padded, more raise `DataError` unless
    ``ignore_extra_features``.
    """

    def __init__(self, X, dtype, n_features=None, name="X", ignore_extra_features=False):
        dtype = np.dtype(dtype)
        if sp.issparse(X) or isinstance(X, CSR):
            csr = as_csr(X, dtype, name)
            if n_features is not None:
                csr = match_features(csr, n_features, ignore_extra_features, name)
            self.dense = False
            self.n_rows, self.n_features = csr.n_rows, csr.n_features
            self.indptr = np.asarray(csr.indptr, dtype=np.int64)
            self.indices, self.data = csr.indices, csr.data
            self.X = np.zeros((1, 1), dtype=dtype)
            self.nnz = csr.nnz
        else:
            array = as_dense(X, name)
            if n_features is not None and array.shape[1] != n_features:
                if array.shape[1] < n_features:
                    array = np.hstack([array, np.zeros((array.shape[0], n_features - array.shape[1]), array.dtype)])
                elif ignore_extra_features:
                    array = array[:, :n_features]
                else:
                    raise DataError(
                        f"{name} has {array.shape[1]} features but the model was trained on {n_features}; "
                        "pass ignore_extra_features=True (--ignore-extra-features) to drop the extra ones"
                    )
            self.dense = True
            self.n_rows, self.n_features = array.shape
            self.X = np.ascontiguousarray(array, dtype=dtype)
            if not np.all(np.isfinite(self.X)):
                raise DataError(f"{name} contains NaN or infinite values; remove or impute them before training")
            self.indptr = np.zeros(1, dtype=np.int64)
            self.indices = np.zeros(0, dtype=np.int32)
            self.data = np.zeros(0, dtype=dtype)
            self.nnz = int(np.count_nonzero(self.X))

    def args(self):
        """The kernels' input arguments: ``dense, X, indptr, indices, data``."""
        return self.dense, self.X, self.indptr, self.indices, self.data

    def max_row_nnz(self):
        if self.dense:
            return self.n_features
        return int(np.max(np.diff(self.indptr))) if self.n_rows else 0

    def as_matrix(self):
        if self.dense:
            return self.X
        return sp.csr_matrix((self.data, self.indices, self.indptr), shape=(self.n_rows, self.n_features))
