"""The bytes of a text file for the parser: memory-mapped when plain, decompressed in blocks when .gz/.bz2/.xz.

Compression is recognised by the magic bytes at the start of the file (not the name), so a renamed file
still reads. A truncated or corrupt stream raises `LibsvmFormatError` naming the file; Python's own
decompressors would raise ``EOFError``/``OSError`` deep inside the read loop.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import mmap
import os
import zlib
from pathlib import Path

import numpy as np

from hogwild.errors import LibsvmFormatError

_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
}
_OPENERS = {"gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open}
_SUFFIXES = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz", ".lzma": "xz"}
_READ_BLOCK = 16 << 20  # decompress 16 MiB at a time: bounded extra memory beyond the growing buffer


def compression_of(path) -> str | None:
    """'gzip', 'bzip2', 'xz' or None (plain text), from the file's first bytes."""
    with open(path, "rb") as handle:
        head = handle.read(6)
    for magic, name in _MAGIC.items():
        if head.startswith(magic):
            return name
    return None


def compression_for_suffix(path) -> str | None:
    """The compression a file name asks for when writing ('file.gz' -> 'gzip'), or None."""
    return _SUFFIXES.get(Path(path).suffix.lower())


def open_for_write(handle, compression):
    """Wrap a binary file object so that what is written to it is compressed (or not)."""
    if compression == "gzip":
        return gzip.GzipFile(fileobj=handle, mode="wb", compresslevel=6, mtime=0)
    if compression == "bzip2":
        return bz2.BZ2File(handle, mode="wb")
    if compression == "xz":
        return lzma.LZMAFile(handle, mode="wb")
    return None


class TextBuffer:
    """A ``uint8`` view (``.array``) of a file's text plus ``find`` and ``release`` helpers.

    Plain files are memory-mapped; `release(start, stop)` tells the kernel the pages of a parsed block are
    no longer needed, so a multi-gigabyte file never sits in the process's resident memory all at once.
    Use as a context manager: the map is closed on exit.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.compression = compression_of(self.path)
        self._map = None
        self._handle = None  # kept open for pread: see find_line_start
        if self.compression is None:
            size = os.path.getsize(self.path)
            if size == 0:
                self._raw = b""
            else:
                self._handle = open(self.path, "rb")
                self._map = mmap.mmap(self._handle.fileno(), 0, access=mmap.ACCESS_READ)
                self._raw = self._map
        else:
            self._raw = _decompress(self.path, self.compression)
        self.array = np.frombuffer(self._raw, dtype=np.uint8) if len(self._raw) else np.zeros(0, np.uint8)
        # Always read-only, whatever the source: Numba compiles a separate kernel for writable arrays.
        self.array.flags.writeable = False

    def __len__(self):
        return len(self._raw)

    def find_line_start(self, pos):
        """The first line start at or after ``pos`` (just past a newline), or len(self)."""
        if pos <= 0:
            return 0
        # Read a bounded window at a time with pread, not through the memory map: touching the map maps whole
        # large folios of the file into this process (Linux), and finding ~one boundary per 2 MiB block then
        # made most of the file resident at once (measured: peak RSS +45 MB for a 100 MB file).
        size = len(self._raw)
        start, window = pos - 1, 1 << 16
        while start < size:
            if self._handle is not None:
                chunk = os.pread(self._handle.fileno(), min(window, size - start), start)
                found = chunk.find(b"\n")
                newline = start + found if found >= 0 else -1
            else:
                newline = self._raw.find(b"\n", start, min(size, start + window))
            if newline >= 0:
                return newline + 1
            start += window
        return size

    def release(self, start, stop):
        """Drop the resident pages of buf[start:stop] (they stay in the page cache; a re-read is cheap)."""
        if self._map is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        page = mmap.PAGESIZE
        first = (start + page - 1) // page * page  # only whole pages inside the range
        last = stop // page * page if stop < len(self._raw) else len(self._raw)
        if last > first:
            try:
                self._map.madvise(mmap.MADV_DONTNEED, first, last - first)
            except (OSError, ValueError):
                pass

    def close(self):
        self.array = None
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # a caller still holds a view (only on error paths); let GC close it
                pass
            self._map = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _decompress(path, compression):
    """The whole decompressed text of ``path`` as a bytearray, read block by block."""
    out = bytearray()
    try:
        with _OPENERS[compression](path, "rb") as stream:
            while True:
                block = stream.read(_READ_BLOCK)
                if not block:
                    break
                out += block
    except EOFError:
        raise LibsvmFormatError(
            path, None, None, f"the {compression} stream is truncated (the file ends before the end-of-stream marker)"
        ) from None
    except (OSError, zlib.error, lzma.LZMAError) as exc:
        raise LibsvmFormatError(path, None, None, f"the {compression} stream is corrupt ({exc})") from None
    return out
