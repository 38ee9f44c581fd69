"""Read a LIBSVM file as a stream of small CSR chunks, so `hogwild predict` runs in bounded memory on any size.

The input (a file, ``-`` for stdin, a pipe, process substitution; plain, gzip, bzip2 or xz, recognised by its
magic bytes) is opened once and read once, in order (`hogwild.datasets._compressed.open_input`), ``chunk_rows``
lines (and at most `MAX_CHUNK_BYTES`) at a time; a line longer than ``MAX_LINE_BYTES`` is refused naming the
file and line. Each chunk is parsed by the data layer's compiled parser with the model's feature count, so every
chunk has the same columns. Labels are optional: a line whose first token is ``index:value`` gets a placeholder
label. `load_streamed` reads whole training inputs that are streams (they cannot be memory-mapped or cached).
"""

from __future__ import annotations

from hogwild.datasets import _compressed

DEFAULT_CHUNK_ROWS = 65_536
MAX_CHUNK_BYTES = 64 << 20  # a chunk also ends at this many bytes of text, whatever chunk_rows says


def open_binary(path):
    """The decompressed bytes of ``path`` (``-`` is stdin), opened once: gzip, bzip2 or xz by their magic bytes."""
    return _compressed.open_input(path)


class Chunk:
    """Rows ``first_line..`` of a file: CSR ``X`` with the model's columns, labels ``y`` (or None), line numbers."""

    def __init__(self, X, y, line_numbers, labelled):
        self.X, self.y, self.line_numbers, self.labelled = X, y, line_numbers, labelled


def iter_line_blocks(handle, chunk_rows, name=None):
    """Yield ``(line_numbers, lines)`` for up to ``chunk_rows`` data lines at a time (blank and # lines skipped).

    A block also ends once it holds `MAX_CHUNK_BYTES` of text; a line longer than
    ``_compressed.MAX_LINE_BYTES`` raises `LibsvmFormatError` naming ``name`` and the line.
    """
    limit = _compressed.MAX_LINE_BYTES
    lines, numbers, size = [], [], 0
    number = 0
    while True:
        line = handle.readline(limit + 1)
        if not line:
            break
        number += 1
        if len(line) > limit and not line.endswith(b"\n"):  # more than `limit` bytes before the line's end
            raise _compressed.too_long(name or getattr(handle, "name", "<input>"), number)
        stripped = line.strip()
        if not stripped or stripped.startswith(b"#"):
            continue
        lines.append(stripped)
        numbers.append(number)
        size += len(stripped)
        if len(lines) >= chunk_rows or size >= MAX_CHUNK_BYTES:
            yield numbers, lines
            lines, numbers, size = [], [], 0
    if lines:
        yield numbers, lines


def iter_chunks(path, n_features, *, chunk_rows=DEFAULT_CHUNK_ROWS, dtype=None, ignore_extra_features=False,
                require_labels=False, zero_based=False):
    """Yield a `Chunk` per block of ``chunk_rows`` rows of the LIBSVM file ``path``, each with ``n_features`` columns
    (None: as many as the block's largest index needs, for a model trained on hashed features).

    A feature index beyond the model's ``n_features`` raises `DataError` naming the file and line, unless
    ``ignore_extra_features`` (then those features are dropped, as Vowpal Wabbit does). With ``require_labels``
    a line without a label is a `LibsvmFormatError`. Indices are one-based (LIBSVM's convention) unless
    ``zero_based``: a stream cannot apply the loader's "auto" rule, which looks at the whole file first.
    """
    import numpy as np

    from hogwild.errors import LibsvmFormatError

    dtype = np.float32 if dtype is None else dtype
    name = _compressed.display_name(path)  # what errors call the input ("<stdin>" for -)
    with open_binary(path) as handle, _compressed.decompression_errors(name, handle.compression):
        for numbers, lines in iter_line_blocks(handle, chunk_rows, name):
            unlabelled = [_is_unlabelled(line) for line in lines]
            if require_labels and any(unlabelled):
                number = numbers[unlabelled.index(True)]
                raise LibsvmFormatError(name, number, None, "line has no label (evaluate needs labelled data)")
            if any(unlabelled):
                # a placeholder label keeps the parser's grammar; the caller knows these rows had none
                lines = [b"0 " + line if bare else line for line, bare in zip(lines, unlabelled)]
            X, y = parse_block(b"\n".join(lines) + b"\n", name, numbers, dtype, zero_based)
            X = fit_columns(X, n_features, name, numbers, ignore_extra_features, zero_based)
            yield Chunk(X, None if all(unlabelled) else np.asarray(y), numbers, not any(unlabelled))


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
    if n_features is None or X.shape[1] == n_features:  # None: any width (a model that hashes its input)
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


# --- whole inputs (training) ------------------------------------------------------------------------------

# The most features a set may have: the engine's kernels index features with int32.
MAX_FEATURES = 2**31 - 1


def load_streamed(paths, dtype):
    """``[(X, y), ...]`` of whole LIBSVM inputs that are streams (``-``, pipes), each read once, in order.

    A stream can be neither memory-mapped nor cached, so each is read into memory once
    (`hogwild.datasets._compressed.read_stream`) and parsed by the data layer's `parse_libsvm_bytes`. The
    index base follows the loader's ``"auto"`` rule over all inputs (one-based unless one of them uses index 0
    or has no features at all) and every matrix gets the widest feature count, as `load_libsvm_files` does.
    A set wider than `MAX_FEATURES` is refused naming the input and line.
    """
    import scipy.sparse as sp

    from hogwild.datasets.libsvm import parse_libsvm_bytes

    parsed = []
    for path in paths:
        name = _compressed.display_name(path)
        text = _compressed.read_stream(path)
        X, y = parse_libsvm_bytes(text, dtype=dtype, zero_based=True, name=name)
        # the text is kept only to name the line of an index too large (an error path)
        parsed.append((name, text if X.shape[1] > MAX_FEATURES else None, X, y))
        del text
    one_based = all(X.nnz and int(X.indices.min()) > 0 for _, _, X, _ in parsed)
    if one_based:
        parsed = [
            (name, text, sp.csr_matrix((X.data, X.indices - 1, X.indptr), shape=(X.shape[0], X.shape[1] - 1)), y)
            for name, text, X, y in parsed
        ]
    width = max(X.shape[1] for _, _, X, _ in parsed)
    out = []
    for name, text, X, y in parsed:
        check_width(X, name, text)
        if X.shape[1] != width:
            X = sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], width))
        out.append((X, y))
    return out


TEXT_BLOCK_BYTES = 8 << 20  # text parsed at once by `spill_streamed` (its peak memory is a few times this)


def iter_text_blocks(handle, name, block_bytes=TEXT_BLOCK_BYTES):
    """Yield ``(first_line_number, text)``: about ``block_bytes`` of whole lines at a time, as one bytes object.

    Reading big blocks, not lines, keeps a stream of millions of rows from becoming millions of small Python
    objects (whose freed memory the allocator keeps). Blocks holding only blank and comment lines are skipped;
    a line longer than ``_compressed.MAX_LINE_BYTES`` raises `LibsvmFormatError` naming ``name`` and the line.
    """
    import re

    data_line = re.compile(rb"(?m)^[ \t\r]*[^#\s]")
    carry, line = b"", 1
    while True:
        piece = handle.read(block_bytes)
        text = carry + piece if carry else piece
        if not piece:
            if text and data_line.search(text):
                yield line, text if text.endswith(b"\n") else text + b"\n"
            return
        end = text.rfind(b"\n") + 1
        if end == 0:
            if len(text) > _compressed.MAX_LINE_BYTES:
                raise _compressed.too_long(name, line)
            carry = text
            continue
        block, carry = text[:end], text[end:]
        del text
        if len(carry) > _compressed.MAX_LINE_BYTES:
            raise _compressed.too_long(name, line + block.count(b"\n"))
        if data_line.search(block):
            yield line, block
        line += block.count(b"\n")


def spill_streamed(paths, dtype, folder=None):
    """`load_streamed`'s result, with each input's rows written to a temporary binary cache as they are parsed.

    For ``hogwild train -`` on a stream larger than memory: the text is read once, a block of `TEXT_BLOCK_BYTES`
    at a time (`iter_text_blocks`), and each block's rows go to temporary files (`hogwild.memory.
    MappedCSRWriter`, in ``folder`` or the cache folder) that training then reads memory-mapped in every epoch;
    the files are removed at once and their space comes back when the process ends. Memory holds one block
    and 8 bytes a row. The index base follows the same "auto" rule as `load_streamed`.
    """
    import numpy as np
    import scipy.sparse as sp

    from hogwild.errors import DataError, LibsvmFormatError
    from hogwild.memory import MappedCSRWriter

    parsed = []  # [name, writer, labels, raw width, smallest raw index (None: no features yet)] per input
    try:
        for path in paths:
            name = _compressed.display_name(path)
            entry = [name, MappedCSRWriter(dtype, folder), [], 0, None]
            parsed.append(entry)
            with open_binary(path) as handle, _compressed.decompression_errors(name, handle.compression):
                for first_line, text in iter_text_blocks(handle, name):
                    try:
                        X, y = _parse_bytes(text, dtype, True)
                    except LibsvmFormatError as exc:  # the parser counts lines within the block
                        raise LibsvmFormatError(name, first_line + exc.line - 1 if exc.line else None, exc.token,
                                                exc.reason) from None
                    del text
                    X = sp.csr_matrix(X)
                    if X.nnz:
                        smallest = int(X.indices.min())
                        entry[4] = smallest if entry[4] is None else min(entry[4], smallest)
                    shift = 1 if entry[4] else 0  # one-based so far (the width a one-based file would have)
                    if X.shape[1] - shift > MAX_FEATURES:
                        row = first_extra_row(X, MAX_FEATURES + shift)
                        raise DataError(
                            f"{name}: a feature index in data row {row + 1} of the block from line {first_line} "
                            f"makes the set {X.shape[1] - shift:,} features wide; at most {MAX_FEATURES:,} are "
                            "supported"
                        )
                    entry[1].append(np.diff(X.indptr), X.indices, X.data)
                    entry[2].append(np.asarray(y))
                    entry[3] = max(entry[3], X.shape[1])
            if not entry[2]:
                raise DataError(f"{name} has no rows (it is empty or holds only comments and blank lines)")
    except BaseException:
        for entry in parsed:
            entry[1].abandon()
        raise
    # load_streamed's rule: one-based unless an input uses index 0 or has no features at all
    one_based = all(entry[4] is not None and entry[4] > 0 for entry in parsed)
    width = max(entry[3] for entry in parsed) - (1 if one_based else 0)
    return [(writer.finish(width, index_offset=-1 if one_based else 0), np.concatenate(labels))
            for _, writer, labels, _, _ in parsed]


def check_width(X, name, source=None):
    """Raise `DataError` naming ``name`` and the line that makes ``X`` wider than `MAX_FEATURES`.

    ``source`` is the input's text (bytes) or a path to read it from again; without one the line is not named.
    """
    from hogwild.errors import DataError

    if X.shape[1] <= MAX_FEATURES:
        return
    row = first_extra_row(X, MAX_FEATURES)
    line = line_of_row(source, row) if source is not None else None
    where = f"{name}:{line}" if line else name
    raise DataError(
        f"{where}: a feature index there makes the set {X.shape[1]:,} features wide; at most {MAX_FEATURES:,} "
        "are supported"
    )


def line_of_row(source, row):
    """The 1-based line number of data row ``row`` (0-based; blank and comment lines are not rows) of
    ``source`` (LIBSVM text as bytes, or a path), or None when it cannot be read again."""
    import io

    try:
        handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else open_binary(source)
    except (OSError, ValueError):
        return None
    with handle:
        seen = -1
        for number, line in enumerate(iter(lambda: handle.readline(_compressed.MAX_LINE_BYTES + 1), b""), 1):
            stripped = line.strip()
            if stripped and not stripped.startswith(b"#"):
                seen += 1
                if seen == row:
                    return number
    return None


def check_feature_memory(X, source, bytes_per_feature, what, needed=None):
    """Raise `DataError` naming the line of the largest feature index when per-feature arrays would not fit.

    A two-line file with feature index 2^30 is 2^30 features wide; ``what`` (e.g. "describing it") needs
    ``bytes_per_feature`` per feature (or ``needed`` bytes in all). Refused when that exceeds half the memory
    available, where the allocation would otherwise end as "out of memory" or in the kernel's OOM killer.
    """
    from hogwild.errors import DataError

    needed = X.shape[1] * bytes_per_feature if needed is None else needed
    available = available_memory()
    if available is None or needed <= available // 2:
        return
    raise DataError(
        f"{where_widest(X, source)}: a feature index there makes the set {X.shape[1]:,} features wide; {what} "
        f"needs about {needed / 2**30:.1f} GiB for per-feature arrays and {available / 2**30:.1f} GiB are available"
    )


def where_widest(X, source):
    """``file:line`` of the row holding X's largest feature index (``file`` alone when the line is unknown)."""
    name = _compressed.display_name(source)
    if not X.nnz or _compressed.is_stream(source):
        return name
    line = line_of_row(source, first_extra_row(X, int(X.indices.max())))
    return f"{name}:{line}" if line else name


def available_memory():
    """Bytes of memory available to new allocations (Linux MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
