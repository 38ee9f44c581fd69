"""The binary cache of a parsed LIBSVM file: ``.npy`` arrays plus a JSON header, memory-mapped on load.

A cache is a folder ``<file name>.<key>.hwcache/`` holding ``indptr.npy``, ``indices.npy``, ``data.npy``,
``y.npy`` (and ``qid.npy``) and ``header.json``. The header records the source (absolute path, size,
``mtime_ns`` and a BLAKE2b fingerprint of its first and last MiB), the load options that shaped the arrays
(dtype, index base, query ids), the shape, nnz, index dtype and every array file's size.

Where: ``cache_dir`` if given (pass the source's own folder to keep caches beside the data), else
``$HOGWILD_CACHE_DIR``, else ``$XDG_CACHE_HOME/hogwild``, else ``~/.cache/hogwild``. The key hashes the
absolute source path and the options, so two files called ``train`` never share a cache.

Trust: a cache whose source changed (size, mtime or fingerprint) is stale; one with a missing, truncated
or inconsistent file or a bad header is damaged. Either is never used: `load_libsvm` parses again and
rewrites it. Writes go to a temporary folder that is renamed into place once complete (header last), so a
crash leaves no half-written cache under the real name. An unwritable cache folder just means no cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from hogwild.errors import DataError

from ._compressed import TextBuffer, compression_of, decompress_to
from .parser import check_dtype, check_zero_based, count_file, iter_row_chunks, resolve_shift

FORMAT = "hogwild-libsvm-cache"
FORMAT_VERSION = 1
SUFFIX = ".hwcache"
HEADER = "header.json"
_ARRAYS = ("indptr", "indices", "data", "y")
_FINGERPRINT_BYTES = 1 << 20
# Text parsed and written at once by `convert`: memory holds one chunk's rows (CSR arrays about half the text's
# size for rcv1-like files), whatever the size of the file. Tests shrink it.
CHUNK_BYTES = 64 << 20


class CacheInvalid(DataError):
    """A cache that must not be used; ``kind`` is 'missing', 'stale' or 'damaged'."""

    def __init__(self, path, kind, detail):
        self.path, self.kind = Path(path), kind
        super().__init__(f"cache {path} is {kind}: {detail}")


class CachedData(NamedTuple):
    X: sp.csr_matrix
    y: np.ndarray
    qid: np.ndarray | None
    header: dict


def default_cache_dir() -> Path:
    """$HOGWILD_CACHE_DIR, else $XDG_CACHE_HOME/hogwild, else ~/.cache/hogwild."""
    explicit = os.environ.get("HOGWILD_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "hogwild"


def cache_path_for(source, cache_dir=None, *, dtype=np.float32, zero_based=False, query_id=False) -> Path:
    """The cache folder for ``source`` loaded with these options (``zero_based``: the resolved index base)."""
    source = Path(source).resolve()
    key = f"{source}|{np.dtype(dtype).name}|zero_based={bool(zero_based)}|qid={bool(query_id)}|v{FORMAT_VERSION}"
    digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return folder / f"{source.name}.{digest}{SUFFIX}"


def source_fingerprint(path) -> dict:
    """Size, mtime_ns and a BLAKE2b of the first and last MiB: cheap to compute, catches edits and swaps."""
    path = Path(path)
    stat = path.stat()
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        _hash_bytes(handle, digest, _FINGERPRINT_BYTES)
        if stat.st_size > _FINGERPRINT_BYTES:
            handle.seek(max(_FINGERPRINT_BYTES, stat.st_size - _FINGERPRINT_BYTES))
            _hash_bytes(handle, digest, _FINGERPRINT_BYTES)
    digest.update(str(stat.st_size).encode())
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "blake2b": digest.hexdigest()}


def _hash_bytes(handle, digest, n_bytes):
    """Feed the next n_bytes of handle to digest, 64 KiB at a time (the same digest as one read, less memory)."""
    while n_bytes > 0:
        piece = handle.read(min(n_bytes, 1 << 16))
        if not piece:
            return
        digest.update(piece)
        n_bytes -= len(piece)


def is_cache_path(path) -> bool:
    """True if ``path`` is a cache folder (or its header.json)."""
    path = Path(path)
    if path.name == HEADER and path.is_file():
        return True
    return path.is_dir() and (path / HEADER).is_file()


def _header(source, dtype, index_dtype, shape, nnz, index_shift, raw_min_index, query_id):
    """header.json of a cache (``files`` is filled in as the arrays are written)."""
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "source": source_fingerprint(source) if source is not None else None,
        "dtype": np.dtype(dtype).name,
        "index_dtype": np.dtype(index_dtype).name,
        "shape": [int(shape[0]), int(shape[1])],
        "n_features": int(shape[1]),
        "nnz": int(nnz),
        "index_shift": int(index_shift),
        "zero_based": index_shift == 0,
        "raw_min_index": None if raw_min_index is None else int(raw_min_index),
        "query_id": query_id,
        "files": {},
    }


def _write_folder(target, header, write_arrays):
    """Write a cache folder at ``target`` atomically: ``write_arrays(folder)`` writes the .npy files (and records
    their sizes in ``header["files"]``) into a temporary folder, header.json goes last, then a rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        write_arrays(tmp)
        with open(tmp / HEADER, "w") as handle:  # last: a folder without it is never read
            json.dump(header, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / "cache")
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / HEADER).exists():  # another writer did not win the race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def write_cache(X, y, path_or_dir, source=None, *, qid=None, dtype=None, index_shift=1, raw_min_index=None,
                query_id=None) -> Path:
    """Write X (CSR), y (and qid) as a cache folder; return its path.

    ``path_or_dir`` ending in ``.hwcache`` is the folder itself; anything else is the folder to put it in,
    named after ``source`` (required then). ``index_shift`` (1 = the file was one-based) and
    ``raw_min_index`` (the smallest index as written in the file) let 'auto' loads find the right cache.
    """
    X = sp.csr_matrix(X)
    dtype = np.dtype(dtype or X.dtype)
    query_id = qid is not None if query_id is None else bool(query_id)
    target = Path(path_or_dir)
    if target.suffix != SUFFIX:
        if source is None:
            raise DataError(f"write_cache needs a source file to name a cache inside {target}")
        target = cache_path_for(source, target, dtype=dtype, zero_based=index_shift == 0, query_id=query_id)
    arrays = {"indptr": X.indptr, "indices": X.indices, "data": X.data.astype(dtype, copy=False),
              "y": np.asarray(y, np.float64)}
    if query_id:
        arrays["qid"] = np.asarray(qid, np.int64)
    header = _header(source, dtype, X.indices.dtype, X.shape, X.nnz, index_shift, raw_min_index, query_id)

    def write_arrays(folder):
        for name, array in arrays.items():
            file = folder / f"{name}.npy"
            np.save(file, np.ascontiguousarray(array))
            header["files"][file.name] = file.stat().st_size

    return _write_folder(target, header, write_arrays)


class _NpyWriter:
    """A 1-D ``.npy`` file written in pieces: the header for its final length first, then the data as it comes.

    The bytes are those ``np.save`` writes for the whole array (same header version and padding).
    """

    def __init__(self, path, dtype, length):
        self.path, self.dtype, self.length, self.written = Path(path), np.dtype(dtype), int(length), 0
        self.handle = open(self.path, "wb")
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (self.length,)}
        try:
            np.lib.format.write_array_header_1_0(self.handle, header)  # np.save's first choice
        except ValueError:  # a header too long for format 1.0: np.save moves to 2.0 too
            np.lib.format.write_array_header_2_0(self.handle, header)

    def write(self, array):
        array = np.ascontiguousarray(array, dtype=self.dtype)
        self.handle.write(memoryview(array).cast("B"))
        self.written += len(array)

    def close(self):
        self.handle.close()

    def check_complete(self):
        if self.written != self.length:
            raise RuntimeError(f"{self.path}: {self.written} elements written, the header says {self.length}")


def try_write(X, y, source, cache_dir, *, qid, dtype, index_shift, raw_min_index, query_id):
    """write_cache for load_libsvm: returns the path, or None when the cache folder is not writable."""
    target = cache_path_for(source, cache_dir, dtype=dtype, zero_based=index_shift == 0, query_id=query_id)
    try:
        return write_cache(X, y, target, source, qid=qid, dtype=dtype, index_shift=index_shift,
                           raw_min_index=raw_min_index, query_id=query_id)
    except OSError:
        return None


def read_header(path) -> dict:
    """The parsed header.json of a cache folder; CacheInvalid('missing'/'damaged') if absent or malformed."""
    path = Path(path)
    folder = path.parent if path.name == HEADER else path
    try:
        with open(folder / HEADER) as handle:
            header = json.load(handle)
    except FileNotFoundError:
        raise CacheInvalid(folder, "missing", "no header.json") from None
    except (OSError, ValueError) as exc:
        raise CacheInvalid(folder, "damaged", f"header.json is unreadable ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CacheInvalid(folder, "damaged", "header.json is not a hogwild cache header")
    if header.get("version") != FORMAT_VERSION:
        raise CacheInvalid(folder, "stale", f"format version {header.get('version')} (this hogwild reads {FORMAT_VERSION})")
    return header


def check_source(header, folder, source=None):
    """Raise CacheInvalid('stale') if the source file the header records has changed since the cache was written."""
    recorded = header.get("source")
    if recorded is None:
        return
    given = source
    source = Path(source) if source is not None else Path(recorded["path"])
    if not source.exists():
        if given is not None and str(source.resolve()) != recorded["path"]:
            raise CacheInvalid(folder, "stale", f"it was made from {recorded['path']}, not {source}")
        return  # the source is gone: the cache is all there is
    now = source_fingerprint(source)
    for field in ("size", "mtime_ns", "blake2b"):
        if now[field] != recorded.get(field):
            raise CacheInvalid(folder, "stale", f"its source {source} changed ({field})")


def read_cache(path, source=None, mmap=True, check=True) -> CachedData:
    """Open a cache folder; return CachedData(X, y, qid, header) with memory-mapped arrays.

    Raises `CacheInvalid` (a `DataError`) if the cache is missing, damaged, or (``check=True``) stale
    with respect to ``source`` (default: the source path recorded in the header).
    """
    path = Path(path)
    folder = path.parent if path.name == HEADER else path
    header = read_header(folder)
    if check:
        check_source(header, folder, source)
    try:
        n_rows, n_features = (int(v) for v in header["shape"])
        nnz = int(header["nnz"])
        names = list(_ARRAYS) + (["qid"] if header.get("query_id") else [])
        arrays = {}
        for name in names:
            file = folder / f"{name}.npy"
            expected = header["files"].get(file.name)
            if not file.is_file() or file.stat().st_size != expected:
                raise CacheInvalid(folder, "damaged", f"{file.name} is missing or has the wrong size")
            arrays[name] = np.load(file, mmap_mode="r" if mmap else None, allow_pickle=False)
    except CacheInvalid:
        raise
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise CacheInvalid(folder, "damaged", f"{type(exc).__name__}: {exc}") from None
    indptr, indices, data, y = (arrays[n] for n in _ARRAYS)
    problems = [
        (indptr.shape != (n_rows + 1,), "indptr length"),
        (indices.shape != (nnz,) or data.shape != (nnz,), "indices/data length"),
        (y.shape != (n_rows,), "y length"),
        (data.dtype.name != header["dtype"] or indices.dtype != indptr.dtype
         or indices.dtype.name != header["index_dtype"], "dtypes"),
        (n_rows > 0 and (int(indptr[0]) != 0 or int(indptr[-1]) != nnz), "indptr ends"),
        ("qid" in arrays and arrays["qid"].shape != (n_rows,), "qid length"),
    ]
    for bad, what in problems:
        if bad:
            raise CacheInvalid(folder, "damaged", f"{what} disagrees with the header")
    X = sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_features), copy=False)
    return CachedData(X, y, arrays.get("qid"), header)


def lookup(paths, dtype, zero_based, query_id, cache_dir):
    """[(X, y, qid)] from fresh caches of all ``paths`` under one index base, or None (then parse)."""
    headers = []
    for path in paths:
        found = {}
        for shift in (1, 0):
            folder = cache_path_for(path, cache_dir, dtype=dtype, zero_based=shift == 0, query_id=query_id)
            with contextlib.suppress(CacheInvalid, OSError):
                header = read_header(folder)
                check_source(header, folder, path)
                found[shift] = (folder, header)
        headers.append(found)
    if zero_based is True:
        shift = 0
    elif zero_based is False:
        shift = 1
    else:
        if not all(headers):
            return None
        raw_mins = [next(iter(found.values()))[1].get("raw_min_index") for found in headers]
        shift = 1 if all(m is not None and m > 0 for m in raw_mins) else 0
    out = []
    for path, found in zip(paths, headers):
        if shift not in found:
            return None
        folder, _ = found[shift]
        try:
            X, y, qid, _ = read_cache(folder, source=path, check=False)
        except (CacheInvalid, OSError):
            return None
        out.append((X, y, qid))
    return out


def open_cache_path(path) -> CachedData:
    """Read a cache folder named directly (``hogwild train data.hwcache``); rebuild it first if stale."""
    path = Path(path)
    folder = path.parent if path.name == HEADER else path
    try:
        return read_cache(folder)
    except CacheInvalid as exc:
        header = None
        with contextlib.suppress(CacheInvalid):
            header = read_header(folder)
        source = header and header.get("source") and Path(header["source"]["path"])
        if exc.kind != "stale" or not source or not source.exists():
            raise
        _rebuild(source, folder, header)
        return read_cache(folder)


def _rebuild(source, folder, header):
    zero_based = header["index_shift"] == 0
    _convert_into(source, lambda shift: folder, np.dtype(header["dtype"]), zero_based, header.get("query_id", False),
                  None)


def convert(source, cache_dir=None, *, dtype=np.float32, zero_based="auto", query_id=False, threads=None) -> Path:
    """Parse ``source`` and write its cache (replacing a stale or damaged one); return the cache folder.

    The rows are parsed and written a chunk of about `CHUNK_BYTES` of text at a time, so memory holds one
    chunk's arrays whatever the size of the file (a compressed source is first decompressed to a temporary
    file beside the cache). The cache is the one `load_libsvm` would write. Unlike a load, an unwritable
    cache folder is an error here: writing the cache is the whole point.
    """
    source = Path(source)
    if not source.exists():
        raise DataError(f"{source} does not exist")
    dtype = check_dtype(dtype)
    zero_based = check_zero_based(zero_based)

    def target_for(shift):
        return cache_path_for(source, cache_dir, dtype=dtype, zero_based=shift == 0, query_id=query_id)

    return _convert_into(source, target_for, dtype, zero_based, query_id, threads)


@contextlib.contextmanager
def _plain_text(source, scratch_dir):
    """A `TextBuffer` over the source's text: the file itself, or its decompressed copy in scratch_dir."""
    compression = compression_of(source)
    if compression is None:
        with TextBuffer(source) as text:
            yield text
        return
    handle = tempfile.NamedTemporaryFile(prefix=f".{source.name}.text-", dir=scratch_dir, delete=False)
    try:
        with handle:
            decompress_to(source, compression, handle)
        with TextBuffer(handle.name) as text:
            yield text
    finally:
        os.unlink(handle.name)


def _convert_into(source, target_for, dtype, zero_based, query_id, threads):
    """Count ``source``, then fill and write its arrays chunk by chunk into the folder ``target_for(shift)``."""
    scratch_dir = target_for(1).parent
    try:
        scratch_dir.mkdir(parents=True, exist_ok=True)
        with _plain_text(source, scratch_dir) as text:
            allow_zero = zero_based is not False
            parsed = count_file(source, text, dtype, allow_zero, threads)
            shift = resolve_shift([parsed], zero_based)
            target = target_for(shift)
            index_dtype = parsed.index_dtype(shift)
            shape = (parsed.n_rows, parsed.n_features(shift))
            header = _header(source, dtype, index_dtype, shape, parsed.nnz, shift, parsed.min_index, query_id)
            lengths = {"indptr": (index_dtype, parsed.n_rows + 1), "indices": (index_dtype, parsed.nnz),
                       "data": (dtype, parsed.nnz), "y": (np.float64, parsed.n_rows)}
            if query_id:
                lengths["qid"] = (np.int64, parsed.n_rows)

            def write_arrays(folder):
                writers = {}
                with contextlib.ExitStack() as stack:
                    for name, (array_dtype, length) in lengths.items():
                        writers[name] = _NpyWriter(folder / f"{name}.npy", array_dtype, length)
                        stack.callback(writers[name].close)  # closes only: a parse error must stay the error
                    writers["indptr"].write(np.zeros(1, index_dtype))
                    nnz_before = 0
                    for rows in iter_row_chunks(parsed, dtype, allow_zero, shift, query_id, threads, CHUNK_BYTES):
                        writers["indptr"].write(rows.indptr[1:] + nnz_before)  # chunk offsets -> file offsets
                        writers["indices"].write(rows.indices)
                        writers["data"].write(rows.data)
                        writers["y"].write(rows.y)
                        if query_id:
                            writers["qid"].write(rows.qid)
                        nnz_before += len(rows.indices)
                        del rows  # before the next chunk is parsed: one chunk's arrays alive at a time, not two
                for name, writer in writers.items():
                    writer.check_complete()
                    header["files"][writer.path.name] = writer.path.stat().st_size

            return _write_folder(target, header, write_arrays)
    except OSError as exc:
        raise DataError(f"cannot write the cache for {source} in {scratch_dir}: {exc.strerror or exc}") from None
