"""The multi-threaded LIBSVM parser: text bytes in, CSR arrays out (the driver of `hogwild.kernels.libsvm_parse`).

A file is cut into blocks of about `BLOCK_BYTES` at line starts and read in two passes, each block on whichever
parse thread is free (the kernels release the GIL):

1. count (`count_file`): rows, nonzeros and the index range of every block, without converting a value. A block
   the light count finds suspect is validated in full, so errors are still reported at their first line.
2. fill (`fill_rows`): every block validated and parsed straight into exactly-sized arrays at the offsets the
   counts gave. A run of blocks can be filled at a time (`iter_row_chunks`), so a converter holds one run's
   rows in memory, not the file's.

The option checks (`check_dtype`, `check_zero_based`) and scikit-learn's rule for ``zero_based="auto"``
(`resolve_shift`) live here too: everything that turns text into arrays. Loading with a cache is
`hogwild.datasets.libsvm`; the cache files are `hogwild.datasets.cache`. Imports point that way only.
"""

from __future__ import annotations

import itertools
import math
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from hogwild._io import available_cores
from hogwild.errors import DataError, LibsvmFormatError
from hogwild.kernels import libsvm_parse as K

from ._compressed import TextBuffer

# Bytes of text per parse task: large enough that the call overhead is noise, small enough that the
# pages a task touches (and drops afterwards) stay a small share of memory. Tests shrink it.
BLOCK_BYTES = 2 << 20
# Slow tokens (numbers the kernel leaves to Python's float()) recorded per block before the block is parsed
# again with room for all of them. Real files have none; adversarial ones are parsed twice.
SLOW_PER_BLOCK = 64

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_dtype(dtype):
    """``dtype`` as a NumPy float32 or float64 dtype; DataError otherwise."""
    dtype = np.dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise DataError(f"dtype must be float32 or float64; got {dtype}")
    return dtype


def check_zero_based(zero_based):
    """``zero_based`` if it is True, False or 'auto'; DataError otherwise."""
    if zero_based not in (True, False, "auto"):
        raise DataError(f"zero_based must be True, False or 'auto'; got {zero_based!r}")
    return zero_based


def value_limit(dtype):
    """Magnitude from which a value overflows ``dtype`` (inf for float64: only inf itself is refused)."""
    return K.FLOAT32_OVERFLOW if dtype == np.float32 else np.inf


def run_tasks(task, n_tasks, threads):
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


class ParsedFile:
    """One file's text and the count pass over it: block bounds, per-block stats, totals."""

    def __init__(self, path, text, bounds, stats):
        self.path, self.text, self.bounds, self.stats = path, text, bounds, stats
        self.n_rows = int(stats[:, K.STAT_ROWS].sum())
        self.nnz = int(stats[:, K.STAT_NNZ].sum())
        self.max_index = int(stats[:, K.STAT_MAX_INDEX].max())
        mins = stats[:, K.STAT_MIN_INDEX]
        self.min_index = int(mins[mins >= 0].min()) if (mins >= 0).any() else None
        self.row0 = np.concatenate([[0], np.cumsum(stats[:, K.STAT_ROWS])])
        self.nnz0 = np.concatenate([[0], np.cumsum(stats[:, K.STAT_NNZ])])

    @property
    def n_blocks(self):
        return len(self.bounds) - 1

    def n_features(self, index_shift):
        """Columns the file needs under this index base (its largest index, shifted, plus one)."""
        return max(self.max_index - index_shift, 0) + 1

    def index_dtype(self, index_shift):
        """int32 where every index and offset fits, else int64."""
        return np.dtype(np.int32 if max(self.nnz, self.n_features(index_shift)) < 2**31 else np.int64)


class Rows(NamedTuple):
    """CSR arrays of a run of rows: ``indptr`` starts at 0; ``qid`` is None unless asked for."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    y: np.ndarray
    qid: np.ndarray | None


def block_bounds(text):
    """Block starts (line starts about `BLOCK_BYTES` apart) and the text's end, as an int64 array."""
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
    if code in (K.SUSPECT, K.COUNT_MISMATCH):  # not a user's error: the two passes disagree
        raise RuntimeError(f"hogwild's LIBSVM parser lost count in {path} near byte {offset} (error code {code})")
    raise_at(path, text, code, offset)


def raise_at(path, text, code, offset, reason=None):
    """Raise LibsvmFormatError for the token at byte ``offset`` of ``text``, with its 1-based line."""
    buf = text.array
    line = int(np.count_nonzero(buf[:offset] == 10)) + 1
    end = offset
    while end < len(buf) and end - offset < 40 and buf[end] not in (32, 9, 10, 13, 11, 12, 35):
        end += 1
    token = bytes(buf[offset:end]).decode("ascii", errors="backslashreplace")
    raise LibsvmFormatError(path, line, token, reason or K.ERROR_REASONS[code])


_NO_INT = np.zeros(0, np.int64)
_NO_SPANS = np.zeros((0, 2), np.int64)


def _validate_block(text, bounds, b, dtype, allow_zero, stats_row):
    """Run the full validating parser over block b without writing anything; its stats go to stats_row."""
    no_index = np.zeros(0, np.int32)  # the types of the usual fill call: one compiled variant serves both
    K.parse_block(
        text.array, bounds[b], bounds[b + 1], False, allow_zero, 0, value_limit(dtype),
        0, 0, 0, 0, no_index, no_index, np.zeros(0, dtype), np.zeros(0, np.float64), _NO_INT,
        _NO_SPANS, _NO_INT, 0, 0, stats_row,
    )
    text.release(bounds[b], bounds[b + 1])


def count_file(path, text, dtype, allow_zero, threads):
    """Count pass over ``text``; return a `ParsedFile`. Raises LibsvmFormatError at the first bad line."""
    bounds = block_bounds(text)
    n_blocks = len(bounds) - 1
    stats = np.zeros((n_blocks, K.N_STATS), np.int64)

    def count(b):
        K.count_block(text.array, bounds[b], bounds[b + 1], allow_zero, stats[b])
        text.release(bounds[b], bounds[b + 1])

    run_tasks(count, n_blocks, threads)
    suspect = np.flatnonzero(stats[:, K.STAT_ERROR] == K.SUSPECT)
    if len(suspect):
        # The light count stops at anything unusual (an error, or a valid oddity such as a 19-digit index):
        # the full parser decides. An error there may have an earlier one (a label, a value: things the
        # count does not read) in a block before it, so those are validated too before raising.
        run_tasks(lambda i: _validate_block(text, bounds, suspect[i], dtype, allow_zero, stats[suspect[i]]),
                  len(suspect), threads)
        failing = np.flatnonzero(stats[:, K.STAT_ERROR])
        if len(failing):
            validated = set(suspect.tolist())
            earlier = [b for b in range(failing[0]) if b not in validated]
            run_tasks(lambda i: _validate_block(text, bounds, earlier[i], dtype, allow_zero, stats[earlier[i]]),
                      len(earlier), threads)
            _raise_first_error(path, text, stats)
    parsed = ParsedFile(path, text, bounds, stats)
    if parsed.n_rows == 0:
        raise DataError(f"{path} has no rows (it is empty or holds only comments and blank lines)")
    return parsed


def iter_row_chunks(parsed, dtype, allow_zero, index_shift, query_id, threads, chunk_bytes):
    """Fill pass in runs of whole blocks of about ``chunk_bytes`` of text; yield one `Rows` per run, in order.

    Every run's arrays use the whole file's index dtype. Errors are raised when their run is reached, so the
    first one raised is the first in the file.
    """
    sizes = np.diff(parsed.bounds)
    first = 0
    while first < parsed.n_blocks:
        stop, total = first, 0
        while stop < parsed.n_blocks and (stop == first or total + sizes[stop] <= chunk_bytes):
            total += sizes[stop]
            stop += 1
        yield fill_rows(parsed, first, stop, dtype, allow_zero, index_shift, query_id, threads)
        first = stop


def fill_rows(parsed, first, stop, dtype, allow_zero, index_shift, query_id, threads):
    """Fill pass over blocks [first, stop): parse them into exactly-sized arrays; return `Rows`."""
    stats = parsed.stats
    index_dtype = parsed.index_dtype(index_shift)
    row0 = parsed.row0[first:stop + 1] - parsed.row0[first]
    nnz0 = parsed.nnz0[first:stop + 1] - parsed.nnz0[first]
    n_rows, nnz = int(row0[-1]), int(nnz0[-1])
    indptr = np.empty(n_rows + 1, index_dtype)
    indptr[0] = 0
    indices = np.empty(nnz, index_dtype)
    data = np.empty(nnz, dtype)
    y = np.empty(n_rows, np.float64)
    qid = np.zeros(n_rows if query_id else 0, np.int64)
    n_blocks = stop - first
    spans = np.empty((n_blocks * SLOW_PER_BLOCK, 2), np.int64)
    targets = np.empty(n_blocks * SLOW_PER_BLOCK, np.int64)
    fill_stats = np.zeros((n_blocks, K.N_STATS), np.int64)
    limit = value_limit(dtype)
    text, bounds = parsed.text, parsed.bounds

    def fill(i, block_spans=spans, block_targets=targets, slow0=None, capacity=SLOW_PER_BLOCK):
        b = first + i
        K.parse_block(
            text.array, bounds[b], bounds[b + 1], True, allow_zero, index_shift, limit,
            row0[i], nnz0[i], row0[i + 1], nnz0[i + 1], indptr, indices, data, y, qid,
            block_spans, block_targets, i * SLOW_PER_BLOCK if slow0 is None else slow0, capacity, fill_stats[i],
        )
        text.release(bounds[b], bounds[b + 1])

    run_tasks(fill, n_blocks, threads)
    # Slow tokens first, in file order, up to the first failing block (a block stops at its first error,
    # so the ones it recorded come before it): a slow token that turns out infinite may be the earlier error.
    failing = np.flatnonzero(fill_stats[:, K.STAT_ERROR])
    for i in np.flatnonzero(fill_stats[:, K.STAT_SLOW]):
        if len(failing) and i > failing[0]:
            break
        n_slow = int(fill_stats[i, K.STAT_SLOW])
        if n_slow <= SLOW_PER_BLOCK:
            start = i * SLOW_PER_BLOCK
            block_spans, block_targets = spans[start:start + n_slow], targets[start:start + n_slow]
        else:  # more than the room kept for it: parse this block again, recording them all
            block_spans, block_targets = np.empty((n_slow, 2), np.int64), np.empty(n_slow, np.int64)
            fill(i, block_spans, block_targets, 0, n_slow)
        _convert_slow_tokens(parsed, block_spans, block_targets, data, y, limit)
    _raise_first_error(parsed.path, text, fill_stats)
    if (fill_stats[:, :K.STAT_SLOW] != stats[first:stop, :K.STAT_SLOW]).any():
        raise RuntimeError(f"hogwild's LIBSVM parser counted {parsed.path} differently in its two passes")
    return Rows(indptr, indices, data, y, qid if query_id else None)


def _convert_slow_tokens(parsed, spans, targets, data, y, limit):
    """Convert the numbers the kernel could not decide with Python's float() (near-ties of long mantissas)."""
    raw = parsed.text.array
    for (start, stop), target in zip(spans.tolist(), targets.tolist()):
        value = float(bytes(raw[start:stop]))
        if target < 0:
            if not math.isfinite(value):
                raise_at(parsed.path, parsed.text, K.NONFINITE_LABEL, start)
            y[-1 - target] = value
        else:
            if not abs(value) < limit:
                code = K.VALUE_OVERFLOW if math.isfinite(value) else K.NONFINITE_VALUE
                while start > 0 and raw[start - 1] not in (32, 9, 11, 12, 13, 10):
                    start -= 1  # report the whole index:value token
                raise_at(parsed.path, parsed.text, code, start)
            data[target] = value


def resolve_shift(parsed_files, zero_based):
    """Index shift (0 or 1) for files read together; 'auto' follows scikit-learn's rule."""
    if zero_based is True:
        return 0
    if zero_based is False:
        return 1
    # One-based only if every file has nonzeros and none uses index 0.
    return 1 if all(p.min_index is not None and p.min_index > 0 for p in parsed_files) else 0


def parse_files(paths, dtype, zero_based, query_id, threads):
    """Parse several files with one index base; return [(indptr, indices, data, y, qid, n_features, min, shift)]."""
    allow_zero = zero_based is not False
    parsed_files, texts = [], []
    try:
        for path in paths:
            text = TextBuffer(path)
            texts.append(text)
            parsed_files.append(count_file(path, text, dtype, allow_zero, threads))
        shift = resolve_shift(parsed_files, zero_based)
        out = []
        for parsed in parsed_files:
            rows = fill_rows(parsed, 0, parsed.n_blocks, dtype, allow_zero, shift, query_id, threads)
            out.append((*rows, parsed.n_features(shift), parsed.min_index, shift))
            parsed.text.close()
        return out
    finally:
        for text in texts:
            text.close()


class BytesText:
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
    dtype = check_dtype(dtype)
    text = BytesText(buffer)
    parsed = count_file(name, text, dtype, bool(zero_based), 1)
    shift = 0 if zero_based else 1
    rows = fill_rows(parsed, 0, parsed.n_blocks, dtype, bool(zero_based), shift, False, 1)
    X = sp.csr_matrix((rows.data, rows.indices, rows.indptr), shape=(len(rows.y), parsed.n_features(shift)),
                      copy=False)
    return X, rows.y
