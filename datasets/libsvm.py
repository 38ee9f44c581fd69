"""Read and write LIBSVM/svmlight text: a strict, compiled, multi-threaded parser and a compiled writer.

What is accepted (exactly what scikit-learn's ``load_svmlight_file`` reads from real files):
``label [qid:N] index:value index:value ...`` per line; ``#`` starts a comment (whole line or trailing);
blank lines, tabs, ``\\r\\n`` line ends; labels ``+1/-1``, ``0/1``, ``1..K`` or any real number.
A ``qid:N`` token right after the label is validated and returned with ``query_id=True``, else ignored.
Indices are one-based unless ``zero_based`` says otherwise; ``"auto"`` reads them as zero-based if any
file given together has an index 0 (scikit-learn's rule). Explicit zero values are kept, as scikit-learn
keeps them.

What is rejected, with `LibsvmFormatError` naming the file, the 1-based line and the bad token (never a
skipped line): non-numeric label/index/value, a comma-separated (multi-label) label, a missing colon,
negative or too-large indices, indices not strictly ascending within a line, NaN/inf labels or values
(or values that overflow float32 when reading float32), non-ASCII bytes in a token, a truncated or corrupt
compressed stream. A file with no rows raises `DataError`.

Loads are cached by default (see `hogwild.datasets.cache`): the first parse writes the CSR arrays as
``.npy`` files, later loads memory-map them. ``load_libsvm`` also accepts the path of a cache folder
(``something.hwcache``) directly.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from hogwild._io import atomic_write, available_cores
from hogwild.errors import DataError
from hogwild.kernels import libsvm_parse as K

from . import cache as cache_module
from ._compressed import compression_for_suffix, open_for_write
from .parser import FLOAT_DTYPES, check_dtype, check_zero_based, parse_files, parse_libsvm_bytes

__all__ = ["dump_libsvm", "load_libsvm", "load_libsvm_files", "parse_libsvm_bytes"]

# Rows per formatting task in dump_libsvm.
DUMP_ROWS = 1 << 16


def _to_csr(indptr, indices, data, n_rows, n_features):
    return sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_features), copy=False)


def _check_n_features(path, n_features, natural):
    if n_features is not None and natural > n_features:
        raise DataError(
            f"{path} has feature index {natural} (with the index base applied: {natural} features), "
            f"more than n_features={n_features}"
        )


def load_libsvm_files(
    paths, n_features=None, dtype=np.float32, zero_based="auto", query_id=False,
    cache=True, cache_dir=None, threads=None,
):
    """Load several LIBSVM files with one feature count and one index base; return [(X, y[, qid]), ...].

    All matrices get ``n_features`` columns (default: the largest any file needs), so a train and a
    test file line up. ``zero_based="auto"`` reads all of them as zero-based if any has an index 0.
    See `load_libsvm` for the other arguments.
    """
    return _load_files(paths, n_features, dtype, zero_based, query_id, cache, cache_dir, threads)[0]


def _load_files(paths, n_features, dtype, zero_based, query_id, cache, cache_dir, threads):
    """(results, came_from_cache) for load_libsvm_files."""
    dtype = check_dtype(dtype)
    zero_based = check_zero_based(zero_based)
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataError("load_libsvm_files needs at least one file")
    for path in paths:
        if not path.exists():
            raise DataError(f"{path} does not exist")
    loaded = cache_module.lookup(paths, dtype, zero_based, query_id, cache_dir) if cache else None
    from_cache = loaded is not None
    if loaded is None:
        loaded = []
        for path, (indptr, indices, data, y, qid, natural, min_index, shift) in zip(
            paths, parse_files(paths, dtype, zero_based, query_id, threads)
        ):
            X = _to_csr(indptr, indices, data, len(y), natural)
            loaded.append((X, y, qid))
            if cache:
                cache_module.try_write(
                    X, y, path, cache_dir, qid=qid, dtype=dtype, index_shift=shift, raw_min_index=min_index,
                    query_id=query_id,
                )
    naturals = [X.shape[1] for X, _, _ in loaded]
    for path, natural in zip(paths, naturals):
        _check_n_features(path, n_features, natural)
    width = n_features if n_features is not None else max(naturals)
    result = []
    for X, y, qid in loaded:
        if X.shape[1] != width:
            X = _to_csr(X.indptr, X.indices, X.data, X.shape[0], width)
        result.append((X, y, qid) if query_id else (X, y))
    return result, from_cache


def load_libsvm(
    path, n_features=None, dtype=np.float32, zero_based="auto", query_id=False,
    cache=True, cache_dir=None, return_info=False, threads=None,
):
    """Load one LIBSVM file (plain, .gz, .bz2 or .xz; or a .hwcache folder); return (X, y) or (X, y, qid).

    X is a ``scipy.sparse.csr_matrix`` of ``dtype`` (int32 indices where they fit, int64 otherwise), y a
    float64 array, qid an int64 array (only with ``query_id=True``). ``n_features`` widens X (a file with a
    larger index raises `DataError`). ``cache=True`` memory-maps a valid binary cache of this file or
    writes one after parsing (in ``cache_dir``, default ``$HOGWILD_CACHE_DIR`` or ``~/.cache/hogwild``);
    an unwritable cache folder just means no cache. ``threads``: parse threads (default: all cores).
    ``return_info=True`` appends a dict: source, n_rows, n_features, nnz, zero_based, cached (bool).
    """
    path = Path(path)
    if cache_module.is_cache_path(path):
        cached = cache_module.open_cache_path(path)
        X, y, qid, header = cached
        _check_n_features(path, n_features, X.shape[1])
        if n_features is not None and n_features != X.shape[1]:
            X = _to_csr(X.indptr, X.indices, X.data, X.shape[0], n_features)
        if dtype is not None and np.dtype(dtype) != X.dtype:
            X = X.astype(dtype)
        info = {"source": header.get("source", {}).get("path") if header.get("source") else None,
                "cached": True, "zero_based": header["index_shift"] == 0}
        return _finish(X, y, qid if query_id else None, query_id, return_info, info)
    results, from_cache = _load_files([path], n_features, dtype, zero_based, query_id, cache, cache_dir, threads)
    result = results[0]
    if not return_info:
        return result
    X = result[0]
    info = {"source": str(path), "cached": from_cache}
    return _finish(X, result[1], result[2] if query_id else None, query_id, True, info)


def _finish(X, y, qid, query_id, return_info, info):
    out = (X, y, qid) if query_id else (X, y)
    if not return_info:
        return out
    info = dict(info, n_rows=X.shape[0], n_features=X.shape[1], nnz=int(X.nnz))
    return (*out, info)


# ----------------------------------------------------------------------------------------------- writing


def _repr_blob(values, mask):
    """(rank, blob, offsets): Python repr() text of values[mask], for the formatter to copy verbatim."""
    rank = np.full(len(values), -1, np.int64)
    chosen = np.flatnonzero(mask)
    rank[chosen] = np.arange(len(chosen))
    texts = [repr(float(v)).encode("ascii") for v in values[chosen]]
    offsets = np.zeros(len(texts) + 1, np.int64)
    offsets[1:] = np.cumsum([len(t) for t in texts])
    blob = np.frombuffer(b"".join(texts), np.uint8) if texts else np.zeros(0, np.uint8)
    return rank, blob, offsets


def dump_libsvm(X, y, path, zero_based=False, query_id=None, threads=None):
    """Write X (sparse or dense) and y as LIBSVM text at ``path`` (atomically; .gz/.bz2/.xz compress).

    Values are written in the shortest form that reads back to the same float32 (or float64, for float64
    X); integral labels are written as integers. scikit-learn's ``load_svmlight_file`` reads the file back
    identically. Explicitly stored zeros are written; duplicate or unsorted indices are summed and sorted
    first (a copy). ``query_id``: optional int array written as ``qid:N`` after each label.
    """
    X = sp.csr_matrix(X)
    if X.dtype not in FLOAT_DTYPES:
        X = X.astype(np.float64)
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    y = np.ascontiguousarray(np.asarray(y, dtype=np.float64).ravel())
    if len(y) != X.shape[0]:
        raise DataError(f"y has {len(y)} labels but X has {X.shape[0]} rows")
    if not np.all(np.isfinite(y)) or not np.all(np.isfinite(X.data)):
        raise DataError("dump_libsvm cannot write NaN or infinite labels or values (LIBSVM readers reject them)")
    qid = np.zeros(0, np.int64) if query_id is None else np.ascontiguousarray(np.asarray(query_id, np.int64))
    if query_id is not None and len(qid) != X.shape[0]:
        raise DataError(f"query_id has {len(qid)} entries but X has {X.shape[0]} rows")
    indptr = np.ascontiguousarray(X.indptr.astype(np.int64, copy=False))
    indices, data = X.indices, X.data
    is_float32 = X.dtype == np.float32
    empty_rank, empty_blob, empty_offsets = np.zeros(0, np.int64), np.zeros(0, np.uint8), np.zeros(1, np.int64)
    if is_float32:
        data_fallback = (empty_rank, empty_blob, empty_offsets)
    else:
        data_fallback = _repr_blob(data, K.float64_needs_repr(data))
        if not len(data_fallback[1]):
            data_fallback = (empty_rank, empty_blob, empty_offsets)
    y_mask = K.float64_needs_repr(y)
    y_fallback = _repr_blob(y, y_mask) if y_mask.any() else (empty_rank, empty_blob, empty_offsets)
    index_shift = 0 if zero_based else 1
    n_rows = X.shape[0]
    starts = list(range(0, n_rows, DUMP_ROWS)) + [n_rows]

    def format_chunk(i):
        lo, hi = starts[i], starts[i + 1]
        room = 64 * int(indptr[hi] - indptr[lo]) + 96 * (hi - lo)
        room += int(data_fallback[2][-1]) + int(y_fallback[2][-1])  # verbatim reprs can be longer
        out = np.empty(room, np.uint8)
        n = K.format_rows(
            indptr, indices, data, y, qid, lo, hi, index_shift, is_float32,
            *data_fallback, *y_fallback, out,
        )
        return out[:n]

    threads = max(1, min(int(threads or available_cores()), len(starts) - 1 or 1))
    compression = compression_for_suffix(path)
    with atomic_write(path, "wb") as handle:
        stream = open_for_write(handle, compression) or handle
        try:
            if threads == 1:
                chunks = map(format_chunk, range(len(starts) - 1))
                for chunk in chunks:
                    stream.write(chunk)
            else:
                with ThreadPoolExecutor(max_workers=threads) as pool:
                    # map keeps file order; at most a few chunks wait in memory at a time
                    pending = []
                    for i in range(len(starts) - 1):
                        pending.append(pool.submit(format_chunk, i))
                        if len(pending) > 2 * threads:
                            stream.write(pending.pop(0).result())
                    for future in pending:
                        stream.write(future.result())
        finally:
            if stream is not handle:
                stream.close()
    return Path(path)
