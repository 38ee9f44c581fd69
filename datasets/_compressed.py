"""The bytes of a text file for the parser: memory-mapped when plain, decompressed in blocks when .gz/.bz2/.xz.

Compression is recognised by the magic bytes at the start of the file (not the name), so a renamed file
still reads. A truncated or corrupt stream raises `LibsvmFormatError` naming the file; Python's own
decompressors would raise ``EOFError``/``OSError`` deep inside the read loop.

Streams (``-`` for stdin, pipes, ``/dev/stdin``, process substitution, devices) are opened once and read once,
in order: `open_input` sniffs the compression from the first bytes it keeps and hands them on, instead of
opening the path a second time (a pipe cannot be reopened: that lost the bytes read ahead). A stream's lines
are at most `MAX_LINE_BYTES` long, so ``/dev/zero`` or a binary file is refused after a bounded read with an
error naming the file and line.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import mmap
import os
import zlib
from pathlib import Path

import numpy as np

from hogwild._io import STDIO, is_stream  # noqa: F401 - is_stream is part of this module's interface
from hogwild.errors import DataError, LibsvmFormatError

_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
}
_OPENERS = {"gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open}
_SUFFIXES = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz", ".lzma": "xz"}
_READ_BLOCK = 16 << 20  # decompress 16 MiB at a time: bounded extra memory beyond the growing buffer
# The longest line a stream may hold. Real LIBSVM rows are far shorter (a dense 100,000-feature row is ~2 MB);
# without a bound, `/dev/zero` or a binary file would be buffered until memory runs out. Tests shrink it.
MAX_LINE_BYTES = 64 << 20
# A stream is read in blocks of this size; the complete lines of the first block are parsed at once, so a
# stream that is not LIBSVM text at all (/dev/urandom) fails at its first line instead of after the whole read.
_STREAM_BLOCK = 1 << 20
_SNIFF_BYTES = 6
STDIN = STDIO  # "-": stdin


def display_name(path):
    """How errors name an input: ``<stdin>`` for ``-``, otherwise the path as the user gave it."""
    return "<stdin>" if str(path) == STDIN else str(path)


def sniff(head):
    """'gzip', 'bzip2', 'xz' or None (plain text), from the first bytes of a file."""
    for magic, name in _MAGIC.items():
        if head.startswith(magic):
            return name
    return None


def compression_of(path) -> str | None:
    """'gzip', 'bzip2', 'xz' or None (plain text), from the file's first bytes."""
    with open(path, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    return sniff(head)


class _Prefixed(io.RawIOBase):
    """A raw stream that yields ``head`` and then the rest of ``source``: sniffing without a second open."""

    def __init__(self, head, source):
        self._head, self._source = head, source

    def readable(self):
        return True

    def readinto(self, buffer):
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        return self._source.readinto(buffer)

    def close(self):
        if not self.closed:
            self._source.close()
        super().close()


class InputStream:
    """The decompressed bytes of one input, read once from the start (``read``, ``readline``, iteration).

    ``compression`` says what was found; closing it closes the decompressor and the file (never stdin itself).
    """

    def __init__(self, path):
        self.name = display_name(path)
        if str(path) == STDIN:
            source = open(0, "rb", buffering=0, closefd=False)
        else:
            if os.path.isdir(path):
                raise DataError(f"{path}: is a directory, not a data file")
            source = open(path, "rb", buffering=0)
        try:
            head = b""
            while len(head) < _SNIFF_BYTES:  # a pipe may deliver the first bytes in several pieces
                piece = source.read(_SNIFF_BYTES - len(head))
                if not piece:
                    break
                head += piece
        except BaseException:
            source.close()
            raise
        self.compression = sniff(head)
        self._buffered = io.BufferedReader(_Prefixed(head, source), buffer_size=1 << 20)
        self._reader = self._buffered
        if self.compression == "gzip":
            self._reader = gzip.GzipFile(fileobj=self._buffered, mode="rb")
        elif self.compression == "bzip2":
            self._reader = bz2.BZ2File(self._buffered, mode="rb")
        elif self.compression == "xz":
            self._reader = lzma.LZMAFile(self._buffered, mode="rb")

    def read(self, size=-1):
        return self._reader.read(size)

    def readline(self, size=-1):
        return self._reader.readline(size)

    def __iter__(self):
        return iter(self._reader)

    def close(self):
        try:
            if self._reader is not self._buffered:
                self._reader.close()
        finally:
            self._buffered.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def open_input(path):
    """An `InputStream` over ``path`` (``-`` is stdin): opened once, compression sniffed from the bytes kept."""
    return InputStream(path)


def too_long(name, line):
    """The error for a line longer than `MAX_LINE_BYTES`."""
    return LibsvmFormatError(
        name, line, None,
        f"the line is longer than {MAX_LINE_BYTES:,} bytes (this does not look like LIBSVM text)",
    )


def read_stream(path, with_compression=False):
    """The whole decompressed text of ``path`` (a stream or a file), read once, as a bytearray.

    With ``with_compression``, ``(text, compression)`` (what the first bytes said: 'gzip', ... or None).
    Raises `LibsvmFormatError` naming the input and line for a line longer than `MAX_LINE_BYTES`, for a
    first block that is not LIBSVM text, and for a truncated or corrupt compressed stream.
    """
    name = display_name(path)
    out = bytearray()
    newlines, since_newline, checked = 0, 0, False
    with open_input(path) as stream:
        with decompression_errors(name, stream.compression):
            while True:
                block = stream.read(_STREAM_BLOCK)
                if not block:
                    break
                out += block
                ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
                if ends.size:
                    # content lengths of the lines that end in this block (the first one began before it)
                    lengths = np.diff(ends, prepend=-1) - 1
                    lengths[0] += since_newline
                    over = np.flatnonzero(lengths > MAX_LINE_BYTES)
                    if over.size:
                        raise too_long(name, newlines + int(over[0]) + 1)
                    newlines += int(ends.size)
                    since_newline = len(block) - int(ends[-1]) - 1
                else:
                    since_newline += len(block)
                if since_newline > MAX_LINE_BYTES:
                    raise too_long(name, newlines + 1)
                if not checked and newlines:
                    _check_first_lines(out, name)
                    checked = True
        compression = stream.compression
    return (out, compression) if with_compression else out


def _check_first_lines(text, name):
    """Parse the complete lines of the first block: garbage fails at its first line, not after the whole read."""
    from hogwild.datasets.libsvm import parse_libsvm_bytes

    end = text.rfind(b"\n") + 1
    try:
        parse_libsvm_bytes(bytes(text[:end]), dtype=np.float64, zero_based=True, name=name)
    except DataError as exc:
        if isinstance(exc, LibsvmFormatError):
            raise
        # no rows yet (only comments so far): the full parse decides


@contextlib.contextmanager
def decompression_errors(name, compression):
    """A truncated or corrupt compressed stream inside the block becomes one `LibsvmFormatError` naming ``name``."""
    try:
        yield
    except EOFError:
        if not compression:
            raise
        raise LibsvmFormatError(
            name, None, None, f"the {compression} stream is truncated (the file ends before the end-of-stream marker)"
        ) from None
    except (zlib.error, lzma.LZMAError, OSError) as exc:
        # an OSError with a file name is a real I/O error on the file: the CLI's funnel names it
        if not compression or (isinstance(exc, OSError) and exc.filename):
            raise
        raise LibsvmFormatError(name, None, None, f"the {compression} stream is corrupt ({exc})") from None


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
        self._map = None
        self._handle = None  # kept open for pread: see find_line_start
        if is_stream(path):
            # A pipe, device or stdin: read once into memory (it cannot be mapped, nor opened twice).
            self._raw, self.compression = read_stream(path, with_compression=True)
        elif (compression := compression_of(self.path)) is None:
            self.compression = None
            size = os.path.getsize(self.path)
            if size == 0:
                self._raw = b""
            else:
                self._handle = open(self.path, "rb")
                self._map = mmap.mmap(self._handle.fileno(), 0, access=mmap.ACCESS_READ)
                self._raw = self._map
        else:
            self.compression = compression
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


def _decompressed_blocks(path, compression):
    """The decompressed text of ``path`` in blocks of up to 16 MiB; LibsvmFormatError if the stream is bad."""
    try:
        with _OPENERS[compression](path, "rb") as stream:
            while True:
                block = stream.read(_READ_BLOCK)
                if not block:
                    return
                yield block
    except EOFError:
        raise LibsvmFormatError(
            path, None, None, f"the {compression} stream is truncated (the file ends before the end-of-stream marker)"
        ) from None
    except (OSError, zlib.error, lzma.LZMAError) as exc:
        raise LibsvmFormatError(path, None, None, f"the {compression} stream is corrupt ({exc})") from None


def _decompress(path, compression):
    """The whole decompressed text of ``path`` as a bytearray, read block by block."""
    out = bytearray()
    for block in _decompressed_blocks(path, compression):
        out += block
    return out


def decompress_to(path, compression, handle):
    """Write the decompressed text of ``path`` to the binary file ``handle``, one block in memory at a time."""
    for block in _decompressed_blocks(path, compression):
        handle.write(block)
