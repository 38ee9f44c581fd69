"""Feature hashing: the columns of a sparse matrix mapped into 2^B columns with MurmurHash3.

``--hash-bits B`` (``TrainConfig.hash_bits``, the estimators' ``hash_bits``) trains on ``hash_features(X, B)``:
column ``j`` (0-based, as loaded: a LIBSVM file's index minus its index base) goes to column
``murmurhash3_32(j, seed=0, positive=True) mod 2^B`` (scikit-learn's ``sklearn.utils.murmurhash3_32`` of the
index as a 32-bit integer; the compiled hash is `hogwild.kernels.hashing`), with its sign kept, and columns of one
row that land in one bucket are summed. The model records B in its header (`hogwild.model_io`), and
``decision_function`` hashes whatever it is given the same way, so ``predict``, ``evaluate`` and the API take
the original, unhashed feature indices of any width.

A memory-mapped matrix (a binary cache larger than memory) is hashed a piece of rows at a time into temporary
mapped files (`hogwild.memory.MappedCSRWriter`); anything else is hashed in memory, in one compiled pass.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .errors import ConfigError

MIN_HASH_BITS = 1
MAX_HASH_BITS = 30  # 2^30 weights: the column count must stay below the kernels' int32 limit (2^31 - 1)


def check_hash_bits(bits, option="--hash-bits"):
    """``bits`` as an int in [MIN_HASH_BITS, MAX_HASH_BITS] (None stays None); `ConfigError` otherwise."""
    import numbers

    if bits is None:
        return None
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or not MIN_HASH_BITS <= bits <= MAX_HASH_BITS:
        raise ConfigError("hash_bits", f"{option} must be an integer from {MIN_HASH_BITS} to {MAX_HASH_BITS} (2 to "
                                       f"{2**MAX_HASH_BITS:,} weights); got {bits!r}")
    return int(bits)


def _as_csr(X):
    from ._inputs import CSR, as_dense

    if isinstance(X, CSR):  # the kernels' form (the estimators check X into it)
        return X.to_scipy()
    if sp.issparse(X):
        return X.tocsr()
    return sp.csr_matrix(as_dense(X))


def hash_features(X, bits):
    """A scipy CSR matrix of X's rows with their columns hashed into ``2**bits`` (see the module docstring)."""
    from hogwild.kernels.hashing import hash_rows

    from .memory import MappedCSRWriter, csr_is_mapped, release_rows, row_pieces

    bits = check_hash_bits(bits)
    X = _as_csr(X)
    n_rows, width, mask = X.shape[0], 1 << bits, (1 << bits) - 1
    dtype = X.data.dtype if X.data.dtype.kind == "f" else np.dtype(np.float64)
    if not csr_is_mapped(X):
        out_indices = np.empty(X.nnz, dtype=np.int32)
        out_data = np.empty(X.nnz, dtype=dtype)
        lengths = np.empty(n_rows, dtype=np.int64)
        written = hash_rows(X.indptr, X.indices, X.data.astype(dtype, copy=False), 0, n_rows, mask, out_indices,
                            out_data, lengths)
        indptr = np.zeros(n_rows + 1, dtype=np.int64 if written > np.iinfo(np.int32).max else np.int32)
        np.cumsum(lengths, out=indptr[1:])
        return sp.csr_matrix((out_data[:written].copy() if written < X.nnz else out_data,
                              out_indices[:written].copy() if written < X.nnz else out_indices, indptr),
                             shape=(n_rows, width), copy=False)
    writer = MappedCSRWriter(dtype)
    try:
        for first, stop in row_pieces(X.indptr, n_rows):
            nnz = int(X.indptr[stop]) - int(X.indptr[first])
            out_indices, out_data = np.empty(nnz, np.int32), np.empty(nnz, dtype)
            lengths = np.empty(stop - first, dtype=np.int64)
            written = hash_rows(X.indptr, X.indices, X.data, first, stop, mask, out_indices, out_data, lengths)
            writer.append(lengths, out_indices[:written], out_data[:written])
            release_rows(X, first, stop)
    except BaseException:
        writer.abandon()
        raise
    return writer.finish(width)


def collisions(X, bits):
    """How hashing ``X`` into ``2**bits`` columns collides: a dict of counts (`hogwild data info --hash-bits`).

    ``features_used``: columns of X with a non-zero; ``buckets_used``: hashed columns with one;
    ``features_colliding``: used columns that share their bucket with another used column (``features_used -
    buckets_used`` columns are lost in all); ``nnz`` and ``nnz_hashed``: non-zeros before and after, their
    difference being the ``row_collisions``: non-zeros summed into another of their own row.
    """
    from hogwild.kernels.hashing import hash_columns, hash_rows

    from .memory import pieces, release, release_rows, row_pieces

    bits = check_hash_bits(bits)
    X = _as_csr(X)
    used = np.zeros(X.shape[1], dtype=bool)
    for start, stop in pieces(X.nnz):
        used[X.indices[start:stop]] = True
        release(X.indices, start, stop)
    columns = np.flatnonzero(used).astype(np.int32)
    buckets = np.empty(columns.shape[0], dtype=np.int32)
    hash_columns(columns, (1 << bits) - 1, buckets)
    _, per_bucket = np.unique(buckets, return_counts=True)
    nnz_hashed = 0
    dtype = X.data.dtype if X.data.dtype.kind == "f" else np.dtype(np.float64)
    for first, stop in row_pieces(X.indptr, X.shape[0]):
        nnz = int(X.indptr[stop]) - int(X.indptr[first])
        nnz_hashed += int(hash_rows(X.indptr, X.indices, X.data.astype(dtype, copy=False), first, stop,
                                    (1 << bits) - 1, np.empty(nnz, np.int32), np.empty(nnz, dtype),
                                    np.empty(stop - first, np.int64)))
        release_rows(X, first, stop)
    return {
        "hash_bits": bits,
        "buckets": 1 << bits,
        "features_used": int(columns.size),
        "buckets_used": int(per_bucket.size),
        "features_colliding": int(per_bucket[per_bucket > 1].sum()),
        "nnz": int(X.nnz),
        "nnz_hashed": nnz_hashed,
        "row_collisions": int(X.nnz) - nnz_hashed,
    }


__all__ = ["hash_features", "collisions", "check_hash_bits", "MIN_HASH_BITS", "MAX_HASH_BITS"]
