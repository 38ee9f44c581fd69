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

import itertools
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from hogwild._io import atomic_write, available_cores
from hogwild.errors import DataError, LibsvmFormatError
from hogwild.kernels import libsvm_parse as K

from ._compressed import TextBuffer, compression_for_suffix, open_for_write

# Bytes of text per parse task: large enough that the call overhead is noise, small enough that the
# pages a task touches (and drops afterwards) stay a small share of memory. Tests shrink it.
BLOCK_BYTES = 2 << 20
# Rows per formatting task in dump_libsvm.
DUMP_ROWS = 1 << 16

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in _FLOAT_DTYPES:
        raise DataError(f"dtype must be float32 or float64; got {dtype}")
    return dtype


def _check_zero_based(zero_based):
    if zero_based not in (True, False, "auto"):
        raise DataError(f"zero_based must be True, False or 'auto'; got {zero_based!r}")
    return zero_based


def _run_tasks(task, n_tasks, threads):
    """Call task(i) for i in range(n_tasks) on up to ``threads`` threads (nogil kernels), in any order."""
    threads = max(1, min(int(threads or available_cores()), n_tasks))
    if threads == 1:
        for i in range(n_tasks):
            task(i)
        return
    counter = itertools.count()  # next() on itertools.count is atomic under the GIL

    def worker(_):
        while True:
            i = next(counter)
            if i >= n_tasks:
                return
            task(i)

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hogwild-parse") as pool:
        for future in [pool.submit(worker, w) for w in range(threads)]:
            future.result()


class _ParsedFile:
    """One file's text and the count pass over it: block bounds, per-block stats, totals."""

    def __init__(self, path, text, bounds, stats):
        self.path, self.text, self.bounds, self.stats = path, text, bounds, stats
        self.n_rows = int(stats[:, K.STAT_ROWS].sum())
        self.nnz = int(stats[:, K.STAT_NNZ].sum())
        self.n_slow = int(stats[:, K.STAT_SLOW].sum())
        self.max_index = int(stats[:, K.STAT_MAX_INDEX].max())
        mins = stats[:, K.STAT_MIN_INDEX]
        self.min_index = int(mins[mins >= 0].min()) if (mins >= 0).any() else None


def _block_bounds(text):
    n = len(text)
    n_blocks = max(1, math.ceil(n / BLOCK_BYTES))
    starts = sorted({text.find_line_start(b * n // n_blocks) for b in range(n_blocks)})
    return np.array(starts + [n], dtype=np.int64)


def _raise_first_error(path, text, stats):
    """Raise LibsvmFormatError for the earliest failing block's error (blocks are in file order)."""
    failing = np.flatnonzero(stats[:, K.STAT_ERROR])
    if not len(failing):
        return
    code, offset = (int(v) for v in stats[failing[0], [K.STAT_ERROR, K.STAT_ERROR_OFFSET]])
    _raise_at(path, text, code, offset)


def _raise_at(path, text, code, offset, reason=None):
    buf = text.array
    line = int(np.count_nonzero(buf[:offset] == 10)) + 1
    end = offset
    while end < len(buf) and end - offset < 40 and buf[end] not in (32, 9, 10, 13, 11, 12, 35):
        end += 1
    token = bytes(buf[offset:end]).decode("ascii", errors="backslashreplace")
    raise LibsvmFormatError(path, line, token, reason or K.ERROR_REASONS[code])


def _count(path, text, dtype, allow_zero, threads):
    bounds = _block_bounds(text)
    n_blocks = len(bounds) - 1
    stats = np.zeros((n_blocks, K.N_STATS), np.int64)
    limit = K.FLOAT32_OVERFLOW if dtype == np.float32 else np.inf
    i64, f64 = np.zeros(0, np.int64), np.zeros(0, np.float64)
    dummy_data = np.zeros(0, dtype)
    spans = np.zeros((0, 2), np.int64)

    def task(b):
        K.parse_block(
            text.array, bounds[b], bounds[b + 1], False, allow_zero, 0, limit,
            0, 0, 0, i64, np.zeros(0, np.int32), dummy_data, f64, i64, spans, i64, stats[b],
        )
        text.release(bounds[b], bounds[b + 1])

    _run_tasks(task, n_blocks, threads)
    _raise_first_error(path, text, stats)
    parsed = _ParsedFile(path, text, bounds, stats)
    if parsed.n_rows == 0:
        raise DataError(f"{path} has no rows (it is empty or holds only comments and blank lines)")
    return parsed


def _fill(parsed, dtype, allow_zero, index_shift, query_id, threads):
    """Second pass: parse every block straight into exactly-sized CSR arrays; return (indptr, indices, data, y, qid)."""
    n_rows, nnz, stats = parsed.n_rows, parsed.nnz, parsed.stats
    n_features = max(parsed.max_index - index_shift, 0) + 1
    index_dtype = np.int32 if max(nnz, n_features) < 2**31 else np.int64
    indptr = np.empty(n_rows + 1, index_dtype)
    indptr[0] = 0
    indices = np.empty(nnz, index_dtype)
    data = np.empty(nnz, dtype)
    y = np.empty(n_rows, np.float64)
    qid = np.zeros(n_rows if query_id else 0, np.int64)
    spans = np.empty((parsed.n_slow, 2), np.int64)
    targets = np.empty(parsed.n_slow, np.int64)
    row0 = np.concatenate([[0], np.cumsum(stats[:, K.STAT_ROWS])])
    nnz0 = np.concatenate([[0], np.cumsum(stats[:, K.STAT_NNZ])])
    slow0 = np.concatenate([[0], np.cumsum(stats[:, K.STAT_SLOW])])
    limit = K.FLOAT32_OVERFLOW if dtype == np.float32 else np.inf
    text, bounds = parsed.text, parsed.bounds
    fill_stats = np.zeros_like(stats)

    def task(b):
        K.parse_block(
            text.array, bounds[b], bounds[b + 1], True, allow_zero, index_shift, limit,
            row0[b], nnz0[b], slow0[b], indptr, indices, data, y, qid, spans, targets, fill_stats[b],
        )
        text.release(bounds[b], bounds[b + 1])

    _run_tasks(task, len(bounds) - 1, threads)
    _raise_first_error(parsed.path, text, fill_stats)  # cannot happen after a clean count pass; kept as a guard
    if parsed.n_slow:
        _convert_slow_tokens(parsed, spans, targets, data, y, limit)
    return indptr, indices, data, y, (qid if query_id else None)


def _convert_slow_tokens(parsed, spans, targets, data, y, limit):
    """Convert the numbers the kernel left to Python's float() (long mantissas, huge exponents)."""
    raw = parsed.text.array
    for (start, stop), target in zip(spans.tolist(), targets.tolist()):
        value = float(bytes(raw[start:stop]))
        if target < 0:
            if not math.isfinite(value):
                _raise_at(parsed.path, parsed.text, K.NONFINITE_LABEL, start)
            y[-1 - target] = value
        else:
            if not abs(value) < limit:
                code = K.VALUE_OVERFLOW if math.isfinite(value) else K.NONFINITE_VALUE
                while start > 0 and raw[start - 1] not in (32, 9, 11, 12, 13, 10):
                    start -= 1  # report the whole index:value token
                _raise_at(parsed.path, parsed.text, code, start)
            data[target] = value


def _resolve_shift(parsed_files, zero_based):
    """Index shift (0 or 1) for files read together; 'auto' follows scikit-learn's rule."""
    if zero_based is True:
        return 0
    if zero_based is False:
        return 1
    # One-based only if every file has nonzeros and none uses index 0.
    return 1 if all(p.min_index is not None and p.min_index > 0 for p in parsed_files) else 0


def _parse_files(paths, dtype, zero_based, query_id, threads):
    """Parse several files with one zero-based decision; return [(indptr, indices, data, y, qid, natural, min)]."""
    allow_zero = zero_based is not False
    parsed_files, texts = [], []
    try:
        for path in paths:
            text = TextBuffer(path)
            texts.append(text)
            parsed_files.append(_count(path, text, dtype, allow_zero, threads))
        shift = _resolve_shift(parsed_files, zero_based)
        out = []
        for parsed in parsed_files:
            arrays = _fill(parsed, dtype, allow_zero, shift, query_id, threads)
            natural = max(parsed.max_index - shift, 0) + 1
            out.append((*arrays, natural, parsed.min_index, shift))
            parsed.text.close()
        return out
    finally:
        for text in texts:
            text.close()


def _to_csr(indptr, indices, data, n_rows, n_features):
    return sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_features), copy=False)


def _check_n_features(path, n_features, natural):
    if n_features is not None and natural > n_features:
        raise DataError(
            f"{path} has feature index {natural} (with the index base applied: {natural} features), "
            f"more than n_features={n_features}"
        )


class _BytesText:
    """The interface of `hogwild.datasets._compressed.TextBuffer` over bytes already in memory."""

    def __init__(self, buffer):
        self._raw = bytes(buffer)
        self.array = np.frombuffer(self._raw, dtype=np.uint8)

    def __len__(self):
        return len(self._raw)

    def find_line_start(self, pos):
        if pos <= 0:
            return 0
        newline = self._raw.find(b"\n", pos - 1)
        return len(self._raw) if newline < 0 else newline + 1

    def release(self, start, stop):
        pass

    def close(self):
        pass


def parse_libsvm_bytes(buffer, dtype=np.float32, zero_based=False, name="<bytes>"):
    """Parse LIBSVM text already in memory (a chunk of a stream) into ``(X, y)``; one thread, no cache.

    ``zero_based`` must be decided by the caller (a chunk cannot apply the "auto" rule to a whole file);
    errors name ``name`` and the line number within ``buffer``.
    """
    dtype = _check_dtype(dtype)
    text = _BytesText(buffer)
    parsed = _count(name, text, dtype, bool(zero_based), 1)
    shift = 0 if zero_based else 1
    indptr, indices, data, y, _ = _fill(parsed, dtype, bool(zero_based), shift, False, 1)
    n_features = max(parsed.max_index - shift, 0) + 1
    return _to_csr(indptr, indices, data, len(y), n_features), y


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
    dtype = _check_dtype(dtype)
    zero_based = _check_zero_based(zero_based)
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataError("load_libsvm_files needs at least one file")
    for path in paths:
        if not path.exists():
            raise DataError(f"{path} does not exist")
    loaded = _load_cached(paths, dtype, zero_based, query_id, cache_dir) if cache else None
    from_cache = loaded is not None
    if loaded is None:
        loaded = []
        for path, (indptr, indices, data, y, qid, natural, min_index, shift) in zip(
            paths, _parse_files(paths, dtype, zero_based, query_id, threads)
        ):
            X = _to_csr(indptr, indices, data, len(y), natural)
            loaded.append((X, y, qid))
            if cache:
                from . import cache as cache_module

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


def _load_cached(paths, dtype, zero_based, query_id, cache_dir):
    """[(X, y, qid)] from valid caches of every file under the same index base, or None."""
    from . import cache as cache_module

    return cache_module.lookup(paths, dtype, zero_based, query_id, cache_dir)


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
    from . import cache as cache_module

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
    if X.dtype not in _FLOAT_DTYPES:
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
