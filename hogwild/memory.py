"""What the process holds in memory: its resident size and peak, and the pages of memory-mapped data it can drop.

A binary cache (`hogwild.datasets.cache`) is opened as memory-mapped ``.npy`` files. Reading a mapped page makes
it part of this process's resident set (Linux counts file pages in VmRSS and in the peak, VmHWM) until the kernel
needs the memory back, so one pass over a cache larger than memory would report (and, under pressure, evict)
the whole file. Streaming code therefore drops the pages of each piece it has finished with
(``madvise(MADV_DONTNEED)``): on a read-only shared mapping that only unmaps them from this process; the page
cache keeps them, and a later read of the same rows maps them again from there (or from disk).

`resident_bytes` and `peak_resident_bytes` read ``/proc/self/status`` (VmRSS, VmHWM); they are None where that
file does not exist (not Linux).
"""

from __future__ import annotations

import mmap

import numpy as np

# Elements handled at once by the streaming passes here (a finite check, a maximum, a canonical-order check,
# a row copy): 256K elements are 1-2 MB of a mapped array, and their pages are dropped before the next piece.
STREAM_ELEMENTS = 1 << 18
# Reading a mapped page also maps cached pages around it (Linux's fault-around, 64 KiB, and the rest of the page
# cache's large folio holding it, up to 2 MiB), so a release drops this much beyond both ends of its range:
# otherwise every piece boundary would leave pages of the piece before it mapped.
FAULT_AROUND_BYTES = 2 << 20


def _status_bytes(key):
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def resident_bytes():
    """This process's resident set size now (VmRSS), in bytes; None where unknown."""
    return _status_bytes("VmRSS")


def peak_resident_bytes():
    """The largest resident set size this process has had (VmHWM), in bytes; None where unknown."""
    return _status_bytes("VmHWM")


def _mapping(array):
    """``(mmap object, byte offset of array[0] in it)`` when ``array`` lies in a file mapping, else None."""
    if not isinstance(array, np.ndarray) or array.size == 0:
        return None
    base = array
    while isinstance(base, np.ndarray):
        mapped = getattr(base, "_mmap", None)
        if isinstance(mapped, mmap.mmap):
            base = mapped
            break
        base = base.base
    if not isinstance(base, mmap.mmap) or base.closed:
        return None
    try:
        start = np.frombuffer(base, dtype=np.uint8).__array_interface__["data"][0]
    except (ValueError, TypeError):
        return None
    offset = array.__array_interface__["data"][0] - start
    if not 0 <= offset < len(base):
        return None
    return base, offset


def is_memory_mapped(array):
    """Whether ``array`` is (a view of) a memory-mapped file: its pages can be dropped and read again."""
    return _mapping(array) is not None


def release(array, start=0, stop=None, margin=FAULT_AROUND_BYTES):
    """Drop this process's resident pages of ``array[start:stop]`` (1-D, contiguous) when it is memory-mapped.

    Pages that straddle the range's ends are dropped too: on a read-only file mapping a dropped page is only
    mapped again on its next read, so releasing a neighbour's page costs a page-cache lookup, never data.
    ``margin`` bytes on either side are dropped too (`FAULT_AROUND_BYTES`). Does nothing for ordinary arrays.
    """
    found = _mapping(array)
    if found is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    mapped, offset = found
    stop = array.shape[0] if stop is None else min(int(stop), array.shape[0])
    start = max(int(start), 0)
    if stop <= start:
        return
    itemsize = array.itemsize
    page = mmap.PAGESIZE
    first = max(0, (offset + start * itemsize - margin) // page * page)
    last = min(len(mapped), -(-(offset + stop * itemsize + margin) // page) * page)
    if last > first:
        try:
            mapped.madvise(mmap.MADV_DONTNEED, first, last - first)
        except (OSError, ValueError):
            pass


def csr_is_mapped(X):
    """Whether a CSR matrix (scipy, or anything with ``indices`` and ``data``) keeps its non-zeros in a file map."""
    return is_memory_mapped(getattr(X, "indices", None)) or is_memory_mapped(getattr(X, "data", None))


def release_rows(X, first_row, stop_row, margin=FAULT_AROUND_BYTES):
    """Drop the resident pages of rows ``[first_row, stop_row)`` of a memory-mapped CSR matrix (and ``margin``
    bytes beyond either end of its non-zeros)."""
    indptr = X.indptr
    lo, hi = int(indptr[first_row]), int(indptr[stop_row])
    release(X.indices, lo, hi, margin)
    release(X.data, lo, hi, margin)


def worker_rows(n_workers, length, dtype, fill=0):
    """A per-worker array, ``(n_workers, length + 128 bytes)`` filled with ``fill`` (None: left uninitialized),
    whose rows the workers write on every row of data: the padding keeps each worker's row a cache line and more
    from the next one's, so that two workers never write one line (false sharing). Slice ``[:, :length]`` where
    the exact length matters."""
    padded = (n_workers, length + 128 // np.dtype(dtype).itemsize)
    if fill is None:
        return np.empty(padded, dtype=dtype)
    # np.zeros, not np.full(0): filling a structured dtype (the setup pass's records) took 1.4 ms for 1.5 MB
    return np.zeros(padded, dtype=dtype) if fill == 0 else np.full(padded, fill, dtype=dtype)


def pieces(n, size=STREAM_ELEMENTS):
    """``(start, stop)`` of consecutive pieces of ``range(n)``, ``size`` elements each (the last may be shorter)."""
    return [(start, min(n, start + size)) for start in range(0, n, size)]


def row_pieces(indptr, n_rows, size=STREAM_ELEMENTS, first=0):
    """``(first_row, stop_row)`` pieces of a CSR's rows ``[first, n_rows)`` holding about ``size`` non-zeros each
    (at least one row)."""
    start, nnz = int(indptr[first]), int(indptr[n_rows])
    targets = np.arange(start + size, nnz, size, dtype=np.int64)
    cuts = np.unique(np.concatenate([[first], np.searchsorted(np.asarray(indptr[: n_rows + 1]), targets,
                                                              side="right"), [n_rows]]))
    return [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def streamed_all_finite(values):
    """Whether every value of a 1-D float array is finite, a piece at a time, dropping a mapped array's pages."""
    for start, stop in pieces(values.shape[0]):
        piece = values[start:stop]
        # a finite sum settles it in one buffered pass; only a sum that overflows needs the element-wise check
        ok = np.isfinite(np.sum(piece, dtype=np.float64)) or bool(np.isfinite(piece).all())
        release(values, start, stop)
        if not ok:
            return False
    return True


def streamed_max(values):
    """The largest element of a non-empty 1-D array, a piece at a time, dropping a mapped array's pages."""
    best = None
    for start, stop in pieces(values.shape[0]):
        top = values[start:stop].max()
        release(values, start, stop)
        best = top if best is None or top > best else best
    return best


def streamed_canonical(indptr, indices, n_rows):
    """Whether every row's indices are strictly increasing (sorted, no duplicates): scipy's canonical CSR.

    scipy's own check reads the whole ``indices`` array in one call, which would make a mapped file resident;
    this one reads a piece of rows at a time and drops its pages.
    """
    for first, stop in row_pieces(indptr, n_rows):
        lo, hi = int(indptr[first]), int(indptr[stop])
        segment = np.asarray(indices[lo:hi])
        if segment.size > 1:
            increasing = segment[1:] > segment[:-1]
            # the step from one row's last index to the next row's first may go down
            starts = np.asarray(indptr[first + 1 : stop], dtype=np.int64) - lo
            starts = starts[(starts > 0) & (starts < segment.size)]
            increasing[starts - 1] = True
            ok = bool(increasing.all())
        else:
            ok = True
        release(indices, lo, hi)
        if not ok:
            return False
    return True


class WindowReleaser:
    """Drops the pages of a mapped CSR's rows window by window as an epoch over a windowed `RowOrder` finishes
    them (`hogwild.order`), so the resident part of the data is the windows being read, not the whole file.

    ``finished(lo, hi)``: positions ``[lo, hi)`` of the epoch are done; every window wholly inside is released
    once, with `FAULT_AROUND_BYTES` beyond its ends: reading a page maps its cached neighbours too (Linux's
    fault-around), so reading one window maps pages of the windows beside it, which may have been released
    already. A page still in use that a release drops is mapped again from the page cache on its next
    read, which costs a little time and nothing else.
    """


    def __init__(self, X):
        self.X = X
        self.order = None
        self.released = None

    def start(self, order):
        self.order = order
        count = 0 if order.window_starts is None else order.window_starts.shape[0] - 1
        self.released = np.zeros(count, dtype=bool)

    def finished(self, lo, hi):
        if self.order is None or self.released.size == 0:
            return
        for window in self.order.windows_within(int(lo), int(hi)):
            if not self.released[window]:
                self.released[window] = True
                release_rows(self.X, *self.order.window_rows(window))


def window_rows_for(X, chunk_rows, block_rows=1):
    """The rows per window of a windowed epoch order for ``X`` (a chunk of whole blocks) when ``X`` is a
    memory-mapped CSR, else None (data in memory keeps the whole-epoch block permutation)."""
    if not csr_is_mapped(X):
        return None
    return max(block_rows, -(-int(chunk_rows) // block_rows) * block_rows)


class MappedCSRWriter:
    """Build a CSR matrix a piece of rows at a time in temporary files, and get it back memory-mapped.

    What training needs when it must copy data larger than memory (a hold-out split, a dtype conversion, rows
    read from a pipe): the non-zeros go to two files in a fresh temporary folder (``folder``, default the
    system's), written with plain writes so that nothing stays resident; the row lengths stay in memory (8
    bytes a row). `finish` maps the files read-only and removes them from the folder at once: the mapping keeps
    them alive, and the disk space comes back when the matrix is garbage-collected or the process ends, however
    it ends.
    """

    def __init__(self, data_dtype, folder=None):
        import tempfile

        self.dtype = np.dtype(data_dtype)
        self.folder = tempfile.mkdtemp(prefix=".hogwild-rows-", dir=spill_folder(folder))
        self._files = {name: open(f"{self.folder}/{name}", "wb") for name in ("indices", "data")}
        self._lengths = []
        self.nnz = 0

    def append(self, row_lengths, indices, data):
        """Add rows: their lengths, and their column indices and values one after another."""
        self._lengths.append(np.asarray(row_lengths, dtype=np.int64))
        np.ascontiguousarray(indices, dtype=np.int32).tofile(self._files["indices"])
        np.ascontiguousarray(data, dtype=self.dtype).tofile(self._files["data"])
        self.nnz += int(np.asarray(indices).shape[0])

    def append_rows(self, X, first, stop, rows=None):
        """Add rows ``first..stop`` of CSR ``X`` (or ``X``'s rows ``rows``), dropping the source's pages after."""
        indptr = X.indptr
        if rows is None:
            lo, hi = int(indptr[first]), int(indptr[stop])
            self.append(np.diff(np.asarray(indptr[first : stop + 1], dtype=np.int64)), X.indices[lo:hi],
                        X.data[lo:hi])
            release_rows(X, first, stop)
            return
        rows = np.asarray(rows, dtype=np.int64)
        starts = indptr[rows].astype(np.int64)
        lengths = indptr[rows + 1].astype(np.int64) - starts
        total = int(lengths.sum())
        # the positions of the chosen rows' non-zeros: each row's start, then +1 for every next element
        offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        offsets += np.arange(total, dtype=np.int64)
        self.append(lengths, X.indices[offsets], X.data[offsets])
        if rows.size:
            release_rows(X, int(rows[0]), int(rows[-1]) + 1)

    def finish(self, n_features, index_offset=0):
        """The CSR matrix written so far (scipy), its non-zeros memory-mapped; the writer is spent.

        ``index_offset`` is added to every column index first (-1: the rows were one-based, which a stream
        tells only at its end), in place, a piece at a time.
        """
        import os
        import shutil

        import scipy.sparse as sp

        for handle in self._files.values():
            handle.close()
        if index_offset and self.nnz:
            indices = np.memmap(os.path.join(self.folder, "indices"), dtype=np.int32, mode="r+", shape=(self.nnz,))
            for start, stop in pieces(self.nnz):
                indices[start:stop] += np.int32(index_offset)
                release(indices, start, stop)  # a shared mapping: the page cache keeps the change
            indices.flush()
            del indices
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, np.int64)
        indptr = np.zeros(lengths.shape[0] + 1, dtype=np.int32 if self.nnz <= np.iinfo(np.int32).max else np.int64)
        np.cumsum(lengths, out=indptr[1:])
        try:
            if self.nnz:
                indices = np.memmap(os.path.join(self.folder, "indices"), dtype=np.int32, mode="r", shape=(self.nnz,))
                data = np.memmap(os.path.join(self.folder, "data"), dtype=self.dtype, mode="r", shape=(self.nnz,))
            else:
                indices, data = np.zeros(0, np.int32), np.zeros(0, self.dtype)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
        return sp.csr_matrix((data, indices, indptr), shape=(lengths.shape[0], int(n_features)), copy=False)

    def abandon(self):
        """Remove the temporary files (after an error)."""
        import shutil

        for handle in self._files.values():
            handle.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def spill_folder(folder=None):
    """Where temporary mapped copies go: ``folder``, else the binary caches' folder ($HOGWILD_CACHE_DIR, else
    ~/.cache/hogwild: on disk, where the data already is), else the system's temporary folder."""
    import os
    import tempfile

    if folder is None:
        from hogwild.datasets.cache import default_cache_dir

        folder = default_cache_dir()
    try:
        os.makedirs(folder, exist_ok=True)
        if os.access(folder, os.W_OK | os.X_OK):
            return str(folder)
    except OSError:
        pass
    return tempfile.gettempdir()


def mapped_rows(X, rows=None, dtype=None, folder=None):
    """A copy of a memory-mapped CSR matrix's rows (all, or the sorted array ``rows``), data in ``dtype``,
    itself memory-mapped from temporary files (`MappedCSRWriter`): resident memory stays a piece's worth."""
    dtype = np.dtype(dtype or X.data.dtype)
    writer = MappedCSRWriter(dtype, folder)
    try:
        if rows is None:
            for first, stop in row_pieces(X.indptr, X.shape[0]):
                writer.append_rows(X, first, stop)
        else:
            rows = np.asarray(rows, dtype=np.int64)
            lengths = np.asarray(X.indptr, dtype=np.int64)
            lengths = lengths[rows + 1] - lengths[rows]
            cuts = np.searchsorted(np.cumsum(lengths), np.arange(STREAM_ELEMENTS, int(lengths.sum()),
                                                                 STREAM_ELEMENTS), side="right")
            for first, stop in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [rows.size]])):
                if stop > first:
                    writer.append_rows(X, None, None, rows[first:stop])
    except BaseException:
        writer.abandon()
        raise
    return writer.finish(X.shape[1])


__all__ = [
    "MappedCSRWriter", "mapped_rows", "spill_folder",
    "WindowReleaser", "window_rows_for",
    "resident_bytes", "peak_resident_bytes", "is_memory_mapped", "csr_is_mapped", "release", "release_rows",
    "pieces", "row_pieces", "streamed_all_finite", "streamed_max", "streamed_canonical", "STREAM_ELEMENTS",
]
