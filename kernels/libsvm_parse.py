"""Compiled LIBSVM text kernels: a strict two-pass block parser and a row formatter.

The parser works on a ``uint8`` view of the text (a memory map or a decompressed buffer) cut into blocks
at line starts. `parse_block` runs twice over each block: in count mode it validates every token and
counts rows, nonzeros and the rare numbers it cannot convert exactly; in fill mode it writes them into
exactly-sized CSR arrays at the offsets the counts gave. Blocks are independent, so Python threads run
them in parallel (the kernels are ``nogil`` and ``parallel=False``: several threads call them at once).

Numbers are converted the way Python's ``float()`` does (correctly rounded to float64, then cast to the
target dtype, as scikit-learn does): decimal mantissas that fit in 2**53 with a
power-of-ten exponent of at most 22 in magnitude take Clinger's exact fast path (one IEEE multiply or
divide). Anything else (more digits, huge exponents) is recorded as a "slow token" (byte range and where
its value goes) and converted by Python afterwards, so every value is exact without a big-float in here.

Errors are not raised inside the kernel: it stops at the first bad token of its block and reports an
error code and the token's byte offset; `hogwild.datasets.libsvm` turns that into a line number.
"""

import numpy as np
from numba import njit

# Stats columns written by parse_block (one row per block).
STAT_ROWS, STAT_NNZ, STAT_MAX_INDEX, STAT_MIN_INDEX, STAT_SLOW, STAT_ERROR, STAT_ERROR_OFFSET = range(7)
N_STATS = 7

# Error codes (0 = no error). Python maps each to a sentence in ERROR_REASONS.
BAD_LABEL = 1
MULTILABEL = 2
NONFINITE_LABEL = 3
MISSING_COLON = 4
BAD_INDEX = 5
NEGATIVE_INDEX = 6
INDEX_OVERFLOW = 7
ZERO_INDEX = 8
NOT_ASCENDING = 9
BAD_VALUE = 10
NONFINITE_VALUE = 11
NON_ASCII = 12
BAD_QID = 13
VALUE_OVERFLOW = 14

ERROR_REASONS = {
    BAD_LABEL: "the label is not a number",
    MULTILABEL: "multi-label lines (comma-separated labels) are not supported; one label per line",
    NONFINITE_LABEL: "the label is NaN or infinite",
    MISSING_COLON: "a feature must be index:value but the colon is missing",
    BAD_INDEX: "the feature index is not a non-negative integer",
    NEGATIVE_INDEX: "the feature index is negative",
    INDEX_OVERFLOW: "the feature index does not fit in a 64-bit integer",
    ZERO_INDEX: "feature index 0 in a file read as one-based (pass zero_based=True or 'auto')",
    NOT_ASCENDING: "feature indices must be strictly ascending within a line",
    BAD_VALUE: "the feature value is not a number",
    NONFINITE_VALUE: "the feature value is NaN or infinite",
    NON_ASCII: "a token contains a byte that is not ASCII text",
    BAD_QID: "the qid is not an integer",
    VALUE_OVERFLOW: "the feature value overflows the requested dtype",
}

# Number parse results.
_NUM_OK = 0
_NUM_SLOW = 1
_NUM_BAD = 2
_NUM_NONFINITE = 3

_INDEX_LIMIT = (1 << 63) - 2  # so that n_features = max index + 1 still fits in int64
_EXACT_MANTISSA = 1 << 53
_POW10 = np.array([10.0**k for k in range(23)])  # exact doubles 1e0..1e22 (Clinger's fast path)
_POW10_WIDE = np.array([float(f"1e{k}") for k in range(-340, 341)])  # correctly rounded, for the formatter
# Largest |x| that rounds to a finite float32 (FLT_MAX plus just under half an ulp): 2**128 - 2**103.
FLOAT32_OVERFLOW = float(2**128 - 2**103)


@njit(nogil=True, cache=True, inline="always")
def _is_space(c):
    return c == 32 or c == 9 or c == 13 or c == 11 or c == 12


@njit(nogil=True, cache=True, inline="always")
def _is_token_end(c):
    # '#' ends a token too: scikit-learn cuts every line at its first '#'.
    return c == 32 or c == 9 or c == 13 or c == 11 or c == 12 or c == 10 or c == 35


@njit(nogil=True, cache=True)
def _lower(c):
    return c + 32 if 65 <= c <= 90 else c


@njit(nogil=True, cache=True)
def _is_nan_or_inf(buf, s, e):
    """True if buf[s:e] spells nan, inf or infinity (any case, optional sign), as Python's float() accepts."""
    if s < e and (buf[s] == 43 or buf[s] == 45):
        s += 1
    n = e - s
    if n == 3:
        a, b, c = _lower(buf[s]), _lower(buf[s + 1]), _lower(buf[s + 2])
        return (a == 110 and b == 97 and c == 110) or (a == 105 and b == 110 and c == 102)
    if n == 8:
        word = "infinity"
        for i in range(8):
            if _lower(buf[s + i]) != ord(word[i]):
                return False
        return True
    return False


@njit(nogil=True, cache=True)
def _parse_number(buf, s, e):
    """Parse buf[s:e] as a decimal float; return (status, value). Grammar: [+-](d+[.d*]|.d+)([eE][+-]d+)?"""
    i = s
    negative = False
    if i < e and (buf[i] == 43 or buf[i] == 45):
        negative = buf[i] == 45
        i += 1
    mantissa = 0
    n_significant = 0
    exp10 = 0
    n_digits = 0
    while i < e and 48 <= buf[i] <= 57:
        d = buf[i] - 48
        if mantissa > 0 or d > 0:
            n_significant += 1
            if n_significant <= 18:
                mantissa = mantissa * 10 + d
            else:
                exp10 += 1
        n_digits += 1
        i += 1
    if i < e and buf[i] == 46:
        i += 1
        while i < e and 48 <= buf[i] <= 57:
            d = buf[i] - 48
            if mantissa > 0 or d > 0:
                n_significant += 1
                if n_significant <= 18:
                    mantissa = mantissa * 10 + d
                    exp10 -= 1
            else:
                exp10 -= 1
            n_digits += 1
            i += 1
    if n_digits == 0:
        if _is_nan_or_inf(buf, s, e):
            return _NUM_NONFINITE, 0.0
        return _NUM_BAD, 0.0
    if i < e and (buf[i] == 101 or buf[i] == 69):
        i += 1
        exp_negative = False
        if i < e and (buf[i] == 43 or buf[i] == 45):
            exp_negative = buf[i] == 45
            i += 1
        if i >= e or not (48 <= buf[i] <= 57):
            return _NUM_BAD, 0.0
        exponent = 0
        while i < e and 48 <= buf[i] <= 57:
            if exponent < 100000:  # saturate: anything this large over/underflows anyway
                exponent = exponent * 10 + (buf[i] - 48)
            i += 1
        exp10 += -exponent if exp_negative else exponent
    if i != e:
        return _NUM_BAD, 0.0
    if mantissa == 0:
        return _NUM_OK, -0.0 if negative else 0.0
    if n_significant > 18 or mantissa > _EXACT_MANTISSA or exp10 > 22 or exp10 < -22:
        return _NUM_SLOW, 0.0
    # Clinger: both operands exact, so one correctly rounded IEEE operation gives the correctly rounded value.
    value = float(mantissa)
    if exp10 >= 0:
        value = value * _POW10[exp10]
    else:
        value = value / _POW10[-exp10]
    return _NUM_OK, -value if negative else value


@njit(nogil=True, cache=True)
def parse_block(
    buf, start, stop, fill, allow_zero, index_shift, value_limit,
    row0, nnz0, slow0, indptr, indices, data, y, qid, slow_spans, slow_targets, stats,
):
    """Validate (fill=False) or parse (fill=True) the lines in buf[start:stop] into CSR; fill stats[:].

    ``start`` is a line start and ``stop`` is a line start or len(buf). In fill mode row ``r`` of the block
    goes to global row ``row0 + r``, its nonzeros from ``nnz0`` on, its slow tokens from ``slow0`` on;
    ``index_shift`` (0 or 1) is subtracted from every index; ``qid`` is written only if it is non-empty.
    ``value_limit`` is the magnitude from which a value overflows the target dtype (inf for float64).
    Slow tokens: ``slow_spans[k] = (byte start, byte end)``, ``slow_targets[k]`` = data position, or
    ``-1 - row`` for a label. Stops at the first error (stats[STAT_ERROR] != 0).
    """
    n_rows = 0
    nnz = 0
    n_slow = 0
    max_index = -1
    min_index = -1
    error = 0
    error_offset = -1
    store_qid = fill and qid.shape[0] > 0
    pos = start
    while pos < stop:
        c = buf[pos]
        while pos < stop and _is_space(c):
            pos += 1
            c = buf[pos] if pos < stop else 10
        if pos >= stop:
            break
        if c == 10:
            pos += 1
            continue
        if c == 35:
            while pos < stop and buf[pos] != 10:
                pos += 1
            pos += 1
            continue
        # ---- label ----
        t = pos
        seen = 0
        while pos < stop and not _is_token_end(buf[pos]):
            seen |= buf[pos]
            pos += 1
        if seen >= 128:
            error, error_offset = NON_ASCII, t
            break
        status, label = _parse_number(buf, t, pos)
        if status == _NUM_BAD:
            error = BAD_LABEL
            for i in range(t, pos):
                if buf[i] == 44:
                    error = MULTILABEL
            error_offset = t
            break
        if status == _NUM_NONFINITE:
            error, error_offset = NONFINITE_LABEL, t
            break
        if status == _NUM_SLOW:
            if fill:
                slow_spans[slow0 + n_slow, 0] = t
                slow_spans[slow0 + n_slow, 1] = pos
                slow_targets[slow0 + n_slow] = -1 - (row0 + n_rows)
            n_slow += 1
        elif fill:
            y[row0 + n_rows] = label
        # ---- features ----
        prev_index = -1
        first = True
        while True:
            while pos < stop and _is_space(buf[pos]):
                pos += 1
            if pos >= stop or buf[pos] == 10 or buf[pos] == 35:
                break
            t = pos
            colon = -1
            seen = 0
            while pos < stop and not _is_token_end(buf[pos]):
                c = buf[pos]
                seen |= c
                if c == 58 and colon < 0:
                    colon = pos
                pos += 1
            if seen >= 128:
                error, error_offset = NON_ASCII, t
                break
            if first and pos - t >= 3 and buf[t] == 113 and buf[t + 1] == 105 and buf[t + 2] == 100:
                # qid:<int>, only right after the label (as in scikit-learn and SVMrank).
                first = False
                if colon != t + 3 or colon + 1 >= pos:
                    error, error_offset = BAD_QID, t
                    break
                i = colon + 1
                negative = buf[i] == 45
                if buf[i] == 45 or buf[i] == 43:
                    i += 1
                q = 0
                ok = i < pos
                while i < pos:
                    if not (48 <= buf[i] <= 57) or q > 92233720368547757:
                        ok = False
                        break
                    q = q * 10 + (buf[i] - 48)
                    i += 1
                if not ok:
                    error, error_offset = BAD_QID, t
                    break
                if store_qid:
                    qid[row0 + n_rows] = -q if negative else q
                continue
            first = False
            if colon < 0:
                error, error_offset = MISSING_COLON, t
                break
            if colon == t:
                error, error_offset = BAD_INDEX, t
                break
            if buf[t] == 45:
                error, error_offset = NEGATIVE_INDEX, t
                for i in range(t + 1, colon):
                    if not (48 <= buf[i] <= 57):
                        error = BAD_INDEX
                if colon == t + 1:
                    error = BAD_INDEX
                break
            index = 0
            for i in range(t, colon):
                d = buf[i] - 48
                if not (0 <= d <= 9):
                    error = BAD_INDEX
                    break
                if index > (_INDEX_LIMIT - d) // 10:
                    error = INDEX_OVERFLOW
                    break
                index = index * 10 + d
            if error:
                error_offset = t
                break
            if index == 0 and not allow_zero:
                error, error_offset = ZERO_INDEX, t
                break
            if index <= prev_index:
                error, error_offset = NOT_ASCENDING, t
                break
            prev_index = index
            status, value = _parse_number(buf, colon + 1, pos)
            if status == _NUM_BAD:
                error, error_offset = BAD_VALUE, t
                break
            if status == _NUM_NONFINITE:
                error, error_offset = NONFINITE_VALUE, t
                break
            if status == _NUM_OK and abs(value) >= value_limit:
                error, error_offset = VALUE_OVERFLOW, t
                break
            if index > max_index:
                max_index = index
            if min_index < 0 or index < min_index:
                min_index = index
            if fill:
                k = nnz0 + nnz
                indices[k] = index - index_shift
                if status == _NUM_SLOW:
                    slow_spans[slow0 + n_slow, 0] = colon + 1
                    slow_spans[slow0 + n_slow, 1] = pos
                    slow_targets[slow0 + n_slow] = k
                    data[k] = 0.0
                else:
                    data[k] = value
            if status == _NUM_SLOW:
                n_slow += 1
            nnz += 1
        if error:
            break
        n_rows += 1
        if fill:
            indptr[row0 + n_rows] = nnz0 + nnz
        # the line ends at '\n', at '#' (skip the comment) or at the end of the block
        while pos < stop and buf[pos] != 10:
            pos += 1
        pos += 1
    stats[STAT_ROWS] = n_rows
    stats[STAT_NNZ] = nnz
    stats[STAT_MAX_INDEX] = max_index
    stats[STAT_MIN_INDEX] = min_index
    stats[STAT_SLOW] = n_slow
    stats[STAT_ERROR] = error
    stats[STAT_ERROR_OFFSET] = error_offset


# ------------------------------------------------------------------------------------------------ formatter


@njit(nogil=True, cache=True)
def _write_uint(out, pos, value):
    """Write the decimal digits of a non-negative int64 at out[pos:]; return the new position."""
    if value == 0:
        out[pos] = 48
        return pos + 1
    n = 0
    v = value
    while v > 0:
        n += 1
        v //= 10
    end = pos + n
    v = value
    for i in range(n):
        out[end - 1 - i] = 48 + v % 10
        v //= 10
    return end


@njit(nogil=True, cache=True)
def _pow10(k):
    return _POW10_WIDE[k + 340]


@njit(nogil=True, cache=True)
def _exact_scale(mantissa, exp10):
    """m * 10**exp10 correctly rounded to float64, or NaN where Clinger's exact path does not apply."""
    if mantissa > _EXACT_MANTISSA or exp10 > 22 or exp10 < -22:
        return np.nan
    if exp10 >= 0:
        return float(mantissa) * _POW10[exp10]
    return float(mantissa) / _POW10[-exp10]


@njit(nogil=True, cache=True)
def _digits(a, n_digits):
    """(m, k): a ~= m * 10**(k - n_digits + 1) with m an n_digits-digit integer, k the decimal exponent."""
    k = int(np.floor(np.log10(a)))
    for _ in range(3):
        m = int(np.round(a * _pow10(n_digits - 1 - k))) if n_digits - 1 - k <= 340 else 0
        if m >= int(_POW10[n_digits]):
            k += 1
        elif m < int(_POW10[n_digits - 1]):
            k -= 1
        else:
            break
    return m, k


@njit(nogil=True, cache=True)
def format_float(out, pos, x, is_float32):
    """Write the shortest decimal that parses back to x (at float32 or float64); return the new pos or -1.

    float32: tries 1..8 significant digits, verified by an exact parse-back, else 9 digits, which always
    round-trip for float32. float64: tries 1..15 digits the same way; -1 means "no exact short form found",
    and the caller writes Python's repr() instead.
    """
    if x == 0.0:
        if np.signbit(x):
            out[pos] = 45
            pos += 1
        out[pos] = 48
        return pos + 1
    a = abs(x)
    if a == np.floor(a) and a < 9007199254740992.0:
        if x < 0:
            out[pos] = 45
            pos += 1
        return _write_uint(out, pos, np.int64(a))
    max_digits = 9 if is_float32 else 15
    m = 0
    k = 0
    n = 0
    found = False
    for n in range(1, max_digits + 1):
        m, k = _digits(a, n)
        back = _exact_scale(m, k - n + 1)
        if is_float32:
            if np.float32(back) == np.float32(a):
                found = True
                break
        elif back == a:
            found = True
            break
    if not found:
        if not is_float32:
            return -1
        n = 9
        m, k = _digits(a, 9)
    while n > 1 and m % 10 == 0:
        m //= 10
        n -= 1
    if x < 0:
        out[pos] = 45
        pos += 1
    if -5 <= k < 0:
        out[pos] = 48
        out[pos + 1] = 46
        pos += 2
        for _ in range(-k - 1):
            out[pos] = 48
            pos += 1
        return _write_uint(out, pos, m)
    if 0 <= k < 16:
        end = _write_uint(out, pos, m)
        if k >= n - 1:  # an integer: pad with zeros
            for _ in range(k - n + 1):
                out[end] = 48
                end += 1
            return end
        # open a gap for the decimal point after the k + 1 integer digits
        for i in range(end, pos + k + 1, -1):
            out[i] = out[i - 1]
        out[pos + k + 1] = 46
        return end + 1
    end = _write_uint(out, pos + 1, m)
    out[pos] = out[pos + 1]
    if n > 1:
        out[pos + 1] = 46
    else:
        end = pos + 1
    out[end] = 101
    end += 1
    if k < 0:
        out[end] = 45
        end += 1
    return _write_uint(out, end, abs(k))


@njit(nogil=True, cache=True)
def float64_needs_repr(values):
    """Mask of float64 values that `format_float` cannot write exactly (Python's repr() writes those)."""
    scratch = np.empty(64, np.uint8)
    mask = np.zeros(values.shape[0], np.bool_)
    for i in range(values.shape[0]):
        mask[i] = format_float(scratch, 0, values[i], False) < 0
    return mask


@njit(nogil=True, cache=True)
def _copy_text(out, pos, blob, blob_offsets, r):
    for j in range(blob_offsets[r], blob_offsets[r + 1]):
        out[pos] = blob[j]
        pos += 1
    return pos


@njit(nogil=True, cache=True)
def format_rows(
    indptr, indices, data, y, qid, row_start, row_stop, index_shift, is_float32,
    data_rank, data_blob, data_blob_offsets, y_rank, y_blob, y_blob_offsets, out,
):
    """Write rows [row_start, row_stop) as LIBSVM lines into out; return the number of bytes written.

    ``*_rank[i] >= 0`` says value i is written from its blob (Python's repr, for float64 values the
    compiled writer cannot do exactly); empty rank arrays mean "never". ``out`` must hold
    `max_line_bytes`-style room (the caller sizes it: 64 bytes per nonzero plus 96 per row).
    """
    pos = 0
    has_qid = qid.shape[0] > 0
    for r in range(row_start, row_stop):
        if y_rank.shape[0] > 0 and y_rank[r] >= 0:
            pos = _copy_text(out, pos, y_blob, y_blob_offsets, y_rank[r])
        else:
            pos = format_float(out, pos, y[r], False)
        if has_qid:
            out[pos] = 32
            out[pos + 1] = 113
            out[pos + 2] = 105
            out[pos + 3] = 100
            out[pos + 4] = 58
            pos += 5
            q = qid[r]
            if q < 0:
                out[pos] = 45
                pos += 1
                q = -q
            pos = _write_uint(out, pos, q)
        for k in range(indptr[r], indptr[r + 1]):
            out[pos] = 32
            pos = _write_uint(out, pos + 1, np.int64(indices[k]) + index_shift)
            out[pos] = 58
            pos += 1
            if data_rank.shape[0] > 0 and data_rank[k] >= 0:
                pos = _copy_text(out, pos, data_blob, data_blob_offsets, data_rank[k])
            else:
                pos = format_float(out, pos, np.float64(data[k]), is_float32)
        out[pos] = 10
        pos += 1
    return pos
