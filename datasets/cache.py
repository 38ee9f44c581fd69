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

from .parser import check_dtype, check_zero_based, parse_files

FORMAT = "hogwild-libsvm-cache"
FORMAT_VERSION = 1
SUFFIX = ".hwcache"
HEADER = "header.json"
_ARRAYS = ("indptr", "indices", "data", "y")
_FINGERPRINT_BYTES = 1 << 20


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
        digest.update(handle.read(_FINGERPRINT_BYTES))
        if stat.st_size > _FINGERPRINT_BYTES:
            handle.seek(max(_FINGERPRINT_BYTES, stat.st_size - _FINGERPRINT_BYTES))
            digest.update(handle.read(_FINGERPRINT_BYTES))
    digest.update(str(stat.st_size).encode())
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "blake2b": digest.hexdigest()}


def is_cache_path(path) -> bool:
    """True if ``path`` is a cache folder (or its header.json)."""
    path = Path(path)
    if path.name == HEADER and path.is_file():
        return True
    return path.is_dir() and (path / HEADER).is_file()


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
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "source": source_fingerprint(source) if source is not None else None,
        "dtype": dtype.name,
        "index_dtype": np.dtype(X.indices.dtype).name,
        "shape": [int(X.shape[0]), int(X.shape[1])],
        "n_features": int(X.shape[1]),
        "nnz": int(X.nnz),
        "index_shift": int(index_shift),
        "zero_based": index_shift == 0,
        "raw_min_index": None if raw_min_index is None else int(raw_min_index),
        "query_id": query_id,
        "files": {},
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        for name, array in arrays.items():
            file = tmp / f"{name}.npy"
            np.save(file, np.ascontiguousarray(array))
            header["files"][file.name] = file.stat().st_size
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
    dtype = np.dtype(header["dtype"])
    zero_based = header["index_shift"] == 0
    (indptr, indices, data, y, qid, natural, min_index, shift), = parse_files(
        [source], dtype, zero_based, header.get("query_id", False), None
    )
    X = sp.csr_matrix((data, indices, indptr), shape=(len(y), natural), copy=False)
    write_cache(X, y, folder, source, qid=qid, dtype=dtype, index_shift=shift, raw_min_index=min_index,
                query_id=header.get("query_id", False))


def convert(source, cache_dir=None, *, dtype=np.float32, zero_based="auto", query_id=False, threads=None) -> Path:
    """Parse ``source`` and write its cache (replacing a stale or damaged one); return the cache folder.

    Unlike a load, an unwritable cache folder is an error here: writing the cache is the whole point.
    """
    source = Path(source)
    if not source.exists():
        raise DataError(f"{source} does not exist")
    dtype = check_dtype(dtype)
    (indptr, indices, data, y, qid, natural, min_index, shift), = parse_files(
        [source], dtype, check_zero_based(zero_based), query_id, threads
    )
    X = sp.csr_matrix((data, indices, indptr), shape=(len(y), natural), copy=False)
    target = cache_path_for(source, cache_dir, dtype=dtype, zero_based=shift == 0, query_id=query_id)
    try:
        return write_cache(X, y, target, source, qid=qid, dtype=dtype, index_shift=shift,
                           raw_min_index=min_index, query_id=query_id)
    except OSError as exc:
        raise DataError(f"cannot write the cache for {source} in {target.parent}: {exc.strerror or exc}") from None
