"""Read a LIBSVM file as a stream of small CSR chunks, so `hogwild predict` runs in bounded memory on any size.

The file (plain, gzip, bzip2 or xz, recognised by its magic bytes) is read ``chunk_rows`` lines at a time as
bytes; each chunk is parsed by the data layer's compiled parser with the model's feature count, so every chunk
has the same columns. Labels are optional: a line whose first token is ``index:value`` gets a placeholder label.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os

DEFAULT_CHUNK_ROWS = 65_536

_MAGIC = ((b"\x1f\x8b", gzip.open), (b"BZh", bz2.open), (b"\xfd7zXZ\x00", lzma.open))


def open_binary(path):
    """A binary file object over ``path``, decompressing gzip, bzip2 or xz by their magic bytes."""
    if os.path.isdir(path):
        from hogwild.errors import DataError

        raise DataError(f"{path}: is a directory, not a data file")
    with open(path, "rb") as probe:
        head = probe.read(6)
    for magic, opener in _MAGIC:
        if head.startswith(magic):
            return opener(path, "rb")
    return open(path, "rb")


class Chunk:
    """Rows ``first_line..`` of a file: CSR ``X`` with the model's columns, labels ``y`` (or None), line numbers."""

    def __init__(self, X, y, line_numbers, labelled):
        self.X, self.y, self.line_numbers, self.labelled = X, y, line_numbers, labelled


def iter_line_blocks(handle, chunk_rows):
    """Yield ``(line_numbers, lines)`` for up to ``chunk_rows`` data lines at a time (blank and # lines skipped)."""
    lines, numbers = [], []
    for number, line in enumerate(handle, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(b"#"):
            continue
        lines.append(stripped)
        numbers.append(number)
        if len(lines) >= chunk_rows:
            yield numbers, lines
            lines, numbers = [], []
    if lines:
        yield numbers, lines


def iter_chunks(path, n_features, *, chunk_rows=DEFAULT_CHUNK_ROWS, dtype=None, ignore_extra_features=False,
                require_labels=False, zero_based=False):
    """Yield a `Chunk` per block of ``chunk_rows`` rows of the LIBSVM file ``path``, each with ``n_features`` columns.

    A feature index beyond the model's ``n_features`` raises `DataError` naming the file and line, unless
    ``ignore_extra_features`` (then those features are dropped, as Vowpal Wabbit does). With ``require_labels``
    a line without a label is a `LibsvmFormatError`. Indices are one-based (LIBSVM's convention) unless
    ``zero_based``: a stream cannot apply the loader's "auto" rule, which looks at the whole file first.
    """
    import numpy as np

    from hogwild.errors import LibsvmFormatError

    dtype = np.float32 if dtype is None else dtype
    with open_binary(path) as handle:
        for numbers, lines in _guard_decompression(path, iter_line_blocks(handle, chunk_rows)):
            unlabelled = [_is_unlabelled(line) for line in lines]
            if require_labels and any(unlabelled):
                number = numbers[unlabelled.index(True)]
                raise LibsvmFormatError(path, number, None, "line has no label (evaluate needs labelled data)")
            if any(unlabelled):
                # a placeholder label keeps the parser's grammar; the caller knows these rows had none
                lines = [b"0 " + line if bare else line for line, bare in zip(lines, unlabelled)]
            X, y = parse_block(b"\n".join(lines) + b"\n", path, numbers, dtype, zero_based)
            X = fit_columns(X, n_features, path, numbers, ignore_extra_features, zero_based)
            yield Chunk(X, None if all(unlabelled) else np.asarray(y), numbers, not any(unlabelled))


def _guard_decompression(path, blocks):
    """Re-raise a truncated or corrupt .gz/.bz2/.xz stream as one `LibsvmFormatError` naming the file."""
    import zlib

    from hogwild.errors import LibsvmFormatError

    try:
        yield from blocks
    except (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as exc:
        raise LibsvmFormatError(path, None, None, f"truncated or corrupt compressed stream ({exc})") from None
    except OSError as exc:
        if exc.filename:  # a real I/O error on the file: the CLI's funnel names it
            raise
        raise LibsvmFormatError(path, None, None, f"corrupt compressed stream ({exc})") from None


def _is_unlabelled(line):
    """True when the first token is ``index:value`` (a row without a label), not a label or ``qid:``."""
    first = line.split(None, 1)[0]
    return b":" in first and not first.startswith(b"qid:")


def parse_block(buffer, path, line_numbers, dtype, zero_based=False):
    """``(X, y)`` of a block of LIBSVM lines via the data layer's compiled parser; errors name the real file line.

    ``X`` has as many columns as the block's largest index needs; `fit_columns` gives it the model's count.
    """
    from hogwild.errors import LibsvmFormatError

    try:
        return _parse_bytes(buffer, dtype, zero_based)
    except LibsvmFormatError as exc:
        # the parser counts lines within this block; report the line of the file instead
        line = line_numbers[exc.line - 1] if exc.line and 0 < exc.line <= len(line_numbers) else exc.line
        raise LibsvmFormatError(path, line, exc.token, exc.reason) from None


def _parse_bytes(buffer, dtype, zero_based):
    """Parse LIBSVM text held in memory with the parser's compiled passes."""
    from hogwild.datasets.libsvm import parse_libsvm_bytes

    return parse_libsvm_bytes(buffer, dtype=dtype, zero_based=zero_based, name="<chunk>")


def fit_columns(X, n_features, path, line_numbers, ignore_extra_features, zero_based=False):
    """``X`` with exactly ``n_features`` columns: padded with empty ones, or extra ones refused (or dropped)."""
    import scipy.sparse as sp

    from hogwild.errors import DataError

    X = sp.csr_matrix(X)
    if X.shape[1] == n_features:
        return X
    if X.shape[1] < n_features:
        return sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], n_features))
    if ignore_extra_features:
        return X[:, :n_features].tocsr()
    first = first_extra_row(X, n_features)
    line = line_numbers[first] if line_numbers is not None else first + 1
    index = int(X.indices[X.indptr[first]:X.indptr[first + 1]].max()) + (0 if zero_based else 1)
    raise DataError(
        f"{path}:{line}: feature index {index} is beyond the model's {n_features} features; "
        "pass --ignore-extra-features to drop such features"
    )


def first_extra_row(X, n_features):
    """Index of the first row of CSR ``X`` with a column >= ``n_features``."""
    import numpy as np

    position = int(np.flatnonzero(X.indices >= n_features)[0])
    return int(np.searchsorted(X.indptr, position, side="right")) - 1
