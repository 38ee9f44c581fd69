"""Compiled LIBSVM text kernels: a light counting pass, a strict filling parser, and a row formatter.

The parser works on a ``uint8`` view of the text (a memory map or a decompressed buffer) cut into blocks
at line starts. Each block is read twice. `count_block` finds what the CSR arrays need (rows, nonzeros, the
range of the indices) without converting a single value; `parse_block` then validates every token and writes
the block's rows into exactly-sized CSR arrays at the offsets the counts gave, reading each byte once. Blocks
are independent, so Python threads run them in parallel (the kernels are ``nogil`` and ``parallel=False``:
several threads call them at once).

Numbers are converted the way Python's ``float()`` does (correctly rounded to float64, then cast to the
target dtype, as scikit-learn does), with the methods of fast_float (Lemire, "Number Parsing at a Gigabyte
per Second", 2021): a decimal mantissa that fits in 2**53 with a power-of-ten exponent of at most 22 in
magnitude takes Clinger's exact fast path (one IEEE multiply or divide); any other mantissa of up to 19
significant digits goes through the Eisel-Lemire algorithm (one or two 64x128-bit products against a table of
powers of five), which gives the correctly rounded result or says it cannot decide. Longer mantissas are cut
to 19 digits; the cut value and the next one up give the same float except near a rounding boundary. What
stays undecided (essentially never in real files) is recorded as a "slow token" (byte range and where its
value goes) and converted by Python afterwards, so every value is exact without a big-float in here.

Errors are not raised inside the kernels: a block stops at its first bad token and reports an error code and
the token's byte offset; `hogwild.datasets.parser` turns that into a line number. `count_block` checks only
what it reads (the indices) and reports a suspect block, which the caller validates in full to find the
first real error.
"""

import sys

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils, config
from numba.extending import intrinsic

# Stats columns written by count_block and parse_block (one row per block).
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
# Not a user's error: count_block saw something off (validate the block in full to name it), or parse_block
# met more rows or nonzeros than the count gave (a bug).
SUSPECT = 15
COUNT_MISMATCH = 16

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
_SAFE_INDEX_DIGITS = 18  # any 18-digit index is below _INDEX_LIMIT: no overflow check needed
_EXACT_MANTISSA = 1 << 53
_POW10 = np.array([10.0**k for k in range(23)])  # exact doubles 1e0..1e22 (Clinger's fast path)
_POW10_WIDE = np.array([float(f"1e{k}") for k in range(-340, 341)])  # correctly rounded, for the formatter
# Largest |x| that rounds to a finite float32 (FLT_MAX plus just under half an ulp): 2**128 - 2**103.
FLOAT32_OVERFLOW = float(2**128 - 2**103)
# An exponent literal stops growing here: the digits of one token (< 2**40 of them) cannot move a value
# this far back into range, so saturating keeps 0 and inf right.
_EXPONENT_SATURATION = 1 << 40

# ------------------------------------------------------------------------------ correctly rounded conversion

_MAX_DIGITS = 19  # 10**19 - 1 < 2**64: a mantissa of this many digits fits in a uint64
_SMALLEST_POWER_OF_TEN = -342  # below: w * 10**q < 2**-1075 for every w < 2**64, which rounds to 0
_LARGEST_POWER_OF_TEN = 308  # above: w * 10**q >= 1e309, which rounds to inf
_MANTISSA_BITS = 52
_INFINITE_POWER = 0x7FF
_INF_BITS = 0x7FF << 52
# Ties to even can only be exact for these q (5**|q| must fit in 64 bits, Lemire 2021, section 6).
_MIN_EXPONENT_ROUND_TO_EVEN = -4
_MAX_EXPONENT_ROUND_TO_EVEN = 23
# A saturated low word is safe to ignore inside this range of q (Lemire 2021, section 5).
_SAFE_SATURATION_MIN, _SAFE_SATURATION_MAX = -27, 55
_U64_MAX = np.uint64(0xFFFFFFFFFFFFFFFF)
_ROUNDING_MASK = np.uint64(0xFFFFFFFFFFFFFFFF >> (_MANTISSA_BITS + 3))
_HIDDEN_BIT = np.uint64(1 << _MANTISSA_BITS)
_LITTLE_ENDIAN = sys.byteorder == "little"  # the eight-bytes-at-a-time tricks read bytes in memory order


def _powers_of_five_128():
    """5**q for q in [-342, 308] as 128 bits with the top bit set: rows of (high word, low word), uint64.

    q >= 0: 5**q shifted into 128 bits, truncated. -27 <= q < 0: 2**k / 5**-q rounded up (its inverse must be
    exact enough to decide ties). q < -27: a wider quotient, then truncated to 128 bits. This is the table the
    Eisel-Lemire error analysis is done for; tests check it against Python integers.
    """
    rows = []
    for q in range(_SMALLEST_POWER_OF_TEN, _LARGEST_POWER_OF_TEN + 1):
        if q >= 0:
            power = 5**q
            bits = power.bit_length()
            value = power << (128 - bits) if bits <= 128 else power >> (bits - 128)
        else:
            power = 5**-q
            bits = power.bit_length()
            if q >= _SAFE_SATURATION_MIN:
                value = (1 << (bits + 127)) // power + 1
            else:
                wide = (1 << (2 * bits + 128)) // power + 1
                value = wide >> (wide.bit_length() - 128)
        assert value.bit_length() == 128
        rows.append((value >> 64, value & 0xFFFFFFFFFFFFFFFF))
    return np.array(rows, dtype=np.uint64)


POWERS_OF_FIVE_128 = _powers_of_five_128()


@intrinsic
def _multiply_full(typingctx, a, b):
    """(low, high) 64-bit words of the 128-bit product of two unsigned 64-bit integers (one mul instruction)."""
    if not (isinstance(a, types.Integer) and isinstance(b, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        x = context.cast(builder, args[0], signature.args[0], types.uint64)
        y = context.cast(builder, args[1], signature.args[1], types.uint64)
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(x, wide), builder.zext(y, wide))
        low = builder.trunc(product, ir.IntType(64))
        high = builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))
        return context.make_tuple(builder, signature.return_type, (low, high))

    return types.UniTuple(types.uint64, 2)(a, b), codegen


@intrinsic
def _leading_zeros(typingctx, a):
    """Number of leading zero bits of a 64-bit integer (64 for zero)."""
    if not isinstance(a, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        x = context.cast(builder, args[0], signature.args[0], types.uint64)
        return builder.ctlz(x, ir.Constant(ir.IntType(1), 0))

    return types.int64(a), codegen


@intrinsic
def _trailing_zeros(typingctx, a):
    """Number of trailing zero bits of a 64-bit integer (64 for zero)."""
    if not isinstance(a, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        x = context.cast(builder, args[0], signature.args[0], types.uint64)
        return builder.cttz(x, ir.Constant(ir.IntType(1), 0))

    return types.int64(a), codegen


@intrinsic
def _float64_from_bits(typingctx, a):
    """The float64 whose IEEE bits are the 64-bit integer a."""
    if not isinstance(a, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        x = context.cast(builder, args[0], signature.args[0], types.uint64)
        return builder.bitcast(x, ir.DoubleType())

    return types.float64(a), codegen


@intrinsic
def _load_eight_bytes(typingctx, array, index):
    """array[index:index + 8] of a uint8 array as one uint64 (unaligned load); the caller checks the bounds."""
    if not (isinstance(array, types.Array) and array.dtype == types.uint8 and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        array_struct = context.make_array(signature.args[0])(context, builder, args[0])
        position = context.cast(builder, args[1], signature.args[1], types.intp)
        if config.BOUNDSCHECK:  # NUMBA_BOUNDSCHECK=1 (tests/test_boundscheck.py): check all eight bytes
            length = cgutils.unpack_tuple(builder, array_struct.shape, 1)[0]
            cgutils.do_boundscheck(context, builder, position, length)
            cgutils.do_boundscheck(context, builder, builder.add(position, position.type(7)), length)
        pointer = cgutils.get_item_pointer(context, builder, signature.args[0], array_struct, [position],
                                           wraparound=False)
        return builder.load(builder.bitcast(pointer, ir.IntType(64).as_pointer()), align=1)

    return types.uint64(array, index), codegen


@njit(nogil=True, cache=True, inline="always")
def _is_eight_digits(chunk):
    """True if all eight bytes of chunk are ASCII digits (no byte borrows or carries into another when so)."""
    return ((chunk + np.uint64(0x4646464646464646)) | (chunk - np.uint64(0x3030303030303030))) \
        & np.uint64(0x8080808080808080) == np.uint64(0)


@njit(nogil=True, cache=True, inline="always")
def _eight_digits_value(chunk):
    """The integer spelled by eight ASCII digits loaded little-endian (first digit in the lowest byte).

    Pairs, then quads, then the octet are combined inside the word: three multiplies instead of eight.
    """
    chunk = chunk - np.uint64(0x3030303030303030)
    chunk = (chunk * np.uint64(10) + (chunk >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    chunk = (chunk * np.uint64(100) + (chunk >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    return (chunk * np.uint64(10000) + (chunk >> np.uint64(32))) & np.uint64(0xFFFFFFFF)


@njit(nogil=True, cache=True, inline="always")
def _digit_run(chunk):
    """How many of the eight bytes of chunk, from the first, are ASCII digits (0..8)."""
    mask = ((chunk + np.uint64(0x4646464646464646)) | (chunk - np.uint64(0x3030303030303030))) \
        & np.uint64(0x8080808080808080)
    return _trailing_zeros(mask) >> 3  # the first non-digit byte is always flagged right; 64 >> 3 when none


@njit(nogil=True, cache=True, inline="always")
def _digits_value(chunk, k):
    """The integer spelled by the first k (0..8) bytes of chunk, ASCII digits: no branch on k.

    The k digits are shifted to the top of the word (the bytes after them fall off), which leaves 8 - k
    leading zeros, then the eight are combined as in `_eight_digits_value`.
    """
    shift = np.uint64(8 * (8 - k))
    half = shift >> np.uint64(1)
    digits = ((chunk - np.uint64(0x3030303030303030)) << half) << (shift - half)  # two shifts: 64 is not allowed
    digits = (digits * np.uint64(10) + (digits >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    digits = (digits * np.uint64(100) + (digits >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    return (digits * np.uint64(10000) + (digits >> np.uint64(32))) & np.uint64(0xFFFFFFFF)


@njit(nogil=True, cache=True, inline="always")
def _has_byte_below_36(chunk):
    """Nonzero if some byte of chunk is below 36 (every token end is); its lowest set bit marks the first one.

    Bytes >= 128 are never flagged (they are not token ends either). Bits above the first flagged byte can be
    wrong (a borrow), the lowest one never is.
    """
    return (chunk - np.uint64(0x2424242424242424)) & ~chunk & np.uint64(0x8080808080808080)




@njit(nogil=True, cache=True)
def _eisel_lemire(w, q):
    """IEEE bits of the float64 nearest to w * 10**q (0 < w < 2**64), or -1 where 128 bits cannot decide.

    Lemire, "Number Parsing at a Gigabyte per Second" (2021), sections 5-6: normalize w, take the high 128
    bits of w * 5**q from the table (the second word only when the first leaves the rounding bits unclear),
    read 54 bits, round to even (exact ties are only possible for small |q|), and assemble the float.
    """
    if q < _SMALLEST_POWER_OF_TEN:
        return 0
    if q > _LARGEST_POWER_OF_TEN:
        return _INF_BITS
    zeros = _leading_zeros(w)
    w = w << zeros
    row = q - _SMALLEST_POWER_OF_TEN
    low, high = _multiply_full(w, POWERS_OF_FIVE_128[row, 0])
    if (high & _ROUNDING_MASK) == _ROUNDING_MASK:
        _, second_high = _multiply_full(w, POWERS_OF_FIVE_128[row, 1])
        low += second_high
        if second_high > low:
            high += np.uint64(1)
    if low == _U64_MAX and (q < _SAFE_SATURATION_MIN or q > _SAFE_SATURATION_MAX):
        return -1
    upper_bit = np.int64(high >> np.uint64(63))
    shift = np.uint64(upper_bit + 64 - _MANTISSA_BITS - 3)
    mantissa = high >> shift
    # floor(q * log2(10)) + 63 via 217706 / 2**16 (exact over the table's range), minus the exponent bias
    power2 = ((q * 217706) >> 16) + 63 + upper_bit - zeros + 1023
    if power2 <= 0:  # subnormal (or zero)
        if -power2 + 1 >= 64:
            return 0
        mantissa >>= np.uint64(-power2 + 1)
        mantissa += mantissa & np.uint64(1)
        mantissa >>= np.uint64(1)
        # rounding up can carry into the smallest normal number: the OR below then sets exponent 1
        return np.int64(mantissa)
    if (low <= np.uint64(1) and _MIN_EXPONENT_ROUND_TO_EVEN <= q <= _MAX_EXPONENT_ROUND_TO_EVEN
            and (mantissa & np.uint64(3)) == np.uint64(1) and (mantissa << shift) == high):
        mantissa &= ~np.uint64(1)  # exactly halfway with an even result below: do not round up
    mantissa += mantissa & np.uint64(1)
    mantissa >>= np.uint64(1)
    if mantissa >= (_HIDDEN_BIT << np.uint64(1)):
        mantissa = _HIDDEN_BIT
        power2 += 1
    mantissa &= ~_HIDDEN_BIT
    if power2 >= _INFINITE_POWER:
        return _INF_BITS
    return np.int64(mantissa) | (power2 << _MANTISSA_BITS)


@njit(nogil=True, cache=True)
def decimal_to_float64(w, q, truncated):
    """(decided, value): the float64 nearest to w * 10**q (w a uint64 of at most 19 digits).

    ``truncated`` says that nonzero digits were dropped after w: the value is then w * 10**q plus something
    below 10**q, decided only if w and w + 1 round to the same float. Not decided: ``(False, 0.0)``.
    """
    if w == np.uint64(0):
        return True, 0.0
    if not truncated and w <= np.uint64(_EXACT_MANTISSA) and -22 <= q <= 22:
        # Clinger: both operands exact, so one correctly rounded IEEE operation gives the correctly rounded value.
        if q >= 0:
            return True, float(w) * _POW10[q]
        return True, float(w) / _POW10[-q]
    bits = _eisel_lemire(w, q)
    if bits < 0:
        return False, 0.0
    if truncated and _eisel_lemire(w + np.uint64(1), q) != bits:
        return False, 0.0
    return True, _float64_from_bits(bits)


@njit(nogil=True, cache=True)
def _significant_prefix(buf, int_start, int_stop, frac_start, frac_stop):
    """(w, extra, truncated) for a mantissa of more than 19 digits: its first 19 significant digits as w,
    the count of significant integer digits dropped after them (powers of ten to add), and whether any
    dropped digit is nonzero."""
    w = np.uint64(0)
    n_significant = 0
    extra = 0
    truncated = False
    for i in range(int_start, int_stop):
        d = np.uint64(buf[i] - 48)
        if n_significant == 0 and d == np.uint64(0):
            continue
        if n_significant < _MAX_DIGITS:
            w = w * np.uint64(10) + d
        else:
            extra += 1
            truncated |= d != np.uint64(0)
        n_significant += 1
    for i in range(frac_start, frac_stop):
        d = np.uint64(buf[i] - 48)
        if n_significant == 0 and d == np.uint64(0):
            extra -= 1
            continue
        if n_significant < _MAX_DIGITS:
            w = w * np.uint64(10) + d
            extra -= 1
        else:
            truncated |= d != np.uint64(0)
        n_significant += 1
    return w, extra, truncated


@njit(nogil=True, cache=True)
def _parse_number(buf, s, stop):
    """Parse the decimal number that starts at buf[s] (reading at most up to stop); return (status, value, end).

    Grammar: ``[+-](d+[.d*]|.d+)([eE][+-]d+)?``. ``end`` is just past the last byte that belongs to the
    number; the caller checks that a token ends there. nan/inf spellings are not recognised here (status
    _NUM_BAD: see `_parse_token`). A value that rounds to inf has status _NUM_NONFINITE.
    """
    i = s
    negative = False
    if i < stop and (buf[i] == 43 or buf[i] == 45):
        negative = buf[i] == 45
        i += 1
    w = np.uint64(0)
    int_start = i
    while i < stop and 48 <= buf[i] <= 57:
        w = w * np.uint64(10) + np.uint64(buf[i] - 48)
        i += 1
    int_stop = i
    frac_start = i
    frac_stop = i
    if i < stop and buf[i] == 46:
        i += 1
        frac_start = i
        if _LITTLE_ENDIAN:
            # fractions are long (0.08129808306694031): take eight digits per step while there are eight
            while i + 8 <= stop:
                chunk = _load_eight_bytes(buf, i)
                if not _is_eight_digits(chunk):
                    break
                w = w * np.uint64(100000000) + _eight_digits_value(chunk)
                i += 8
        while i < stop and 48 <= buf[i] <= 57:
            w = w * np.uint64(10) + np.uint64(buf[i] - 48)
            i += 1
        frac_stop = i
    n_digits = (int_stop - int_start) + (frac_stop - frac_start)
    if n_digits == 0:
        return _NUM_BAD, 0.0, i
    exp10 = frac_start - frac_stop
    if i < stop and (buf[i] == 101 or buf[i] == 69):
        i += 1
        exp_negative = False
        if i < stop and (buf[i] == 43 or buf[i] == 45):
            exp_negative = buf[i] == 45
            i += 1
        if i >= stop or not (48 <= buf[i] <= 57):
            return _NUM_BAD, 0.0, i
        exponent = 0
        while i < stop and 48 <= buf[i] <= 57:
            if exponent < _EXPONENT_SATURATION:
                exponent = exponent * 10 + (buf[i] - 48)
            i += 1
        exp10 += -exponent if exp_negative else exponent
    truncated = False
    if n_digits > _MAX_DIGITS:  # w wrapped around: start again from the significant digits (rare)
        w, extra, truncated = _significant_prefix(buf, int_start, int_stop, frac_start, frac_stop)
        exp10 = exp10 + (frac_stop - frac_start) + extra
    decided, value = decimal_to_float64(w, exp10, truncated)
    if not decided:
        return _NUM_SLOW, 0.0, i
    if value == np.inf:
        return _NUM_NONFINITE, 0.0, i
    return _NUM_OK, -value if negative else value, i


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
def _parse_token(buf, s, e):
    """Parse the whole token buf[s:e] as a number; return (status, value)."""
    status, value, end = _parse_number(buf, s, e)
    if status == _NUM_BAD or end != e:
        if _is_nan_or_inf(buf, s, e):
            return _NUM_NONFINITE, 0.0
        return _NUM_BAD, 0.0
    return status, value


@njit(nogil=True, cache=True)
def count_block(buf, start, stop, allow_zero, stats):
    """Count the rows and nonzeros of buf[start:stop] and the range of their indices; fill stats[:].

    Values and labels are skipped, not converted (`parse_block` validates them). The indices are read, as
    the CSR arrays' index type and the index base depend on them. Anything that is not a plain
    ``index:value`` token where one is expected (apart from a ``qid:`` token right after the label) stops
    the count with STAT_ERROR = SUSPECT at that token: the caller validates the block in full to name the
    first real error, which is never later than that token.

    The loop calls no helper that takes ``buf``: passing an array to a Numba function, inlined or not, costs
    a pair of atomic reference-count updates, more than the work on a token.
    """
    n_rows = 0
    nnz = 0
    max_index = -1
    min_index = -1
    error = 0
    error_offset = -1
    pos = start
    while pos < stop:
        c = buf[pos]
        if _is_space(c) or c == 10:
            pos += 1
            continue
        if c == 35:
            while pos < stop and buf[pos] != 10:
                pos += 1
            continue
        prev_index = -1
        first = True
        is_label = True
        while True:
            if not is_label:
                while pos < stop and _is_space(buf[pos]):
                    pos += 1
                if pos >= stop or buf[pos] == 10 or buf[pos] == 35:
                    break
                t = pos
                index = 0
                while pos < stop and 48 <= buf[pos] <= 57:
                    index = index * 10 + (buf[pos] - 48)
                    pos += 1
                if (pos < stop and buf[pos] == 58 and 0 < pos - t <= _SAFE_INDEX_DIGITS
                        and (index > 0 or allow_zero) and index > prev_index):
                    prev_index = index
                    max_index = max(max_index, index)
                    min_index = index if min_index < 0 else min(min_index, index)
                    nnz += 1
                    pos += 1
                elif first and stop - t >= 3 and buf[t] == 113 and buf[t + 1] == 105 and buf[t + 2] == 100:
                    pass  # qid:N right after the label
                else:
                    error, error_offset = SUSPECT, t
                    break
                first = False
            is_label = False
            # skip the rest of the token (the label, a value, a qid): eight bytes at a time while none can end it
            if _LITTLE_ENDIAN:
                while pos + 8 <= stop:
                    mask = _has_byte_below_36(_load_eight_bytes(buf, pos))
                    if mask != np.uint64(0):
                        pos += _trailing_zeros(mask) >> 3
                        break
                    pos += 8
            while pos < stop and not _is_token_end(buf[pos]):
                pos += 1
        if error:
            break
        n_rows += 1
        while pos < stop and buf[pos] != 10:
            pos += 1
    stats[STAT_ROWS] = n_rows
    stats[STAT_NNZ] = nnz
    stats[STAT_MAX_INDEX] = max_index
    stats[STAT_MIN_INDEX] = min_index
    stats[STAT_SLOW] = 0
    stats[STAT_ERROR] = error
    stats[STAT_ERROR_OFFSET] = error_offset


@njit(nogil=True, cache=True)
def _feature_token(buf, t, stop, first):
    """Validate the token at buf[t:]: return (error, index, status, value, value_start, end, is_qid, qid).

    The token-by-token reference for everything unusual (the fast path in `parse_block` handles plain
    ``digits:number`` tokens): checks in the order the error codes are reported.
    """
    pos = t
    colon = -1
    seen = 0
    while pos < stop and not _is_token_end(buf[pos]):
        c = buf[pos]
        seen |= c
        if c == 58 and colon < 0:
            colon = pos
        pos += 1
    if seen >= 128:
        return NON_ASCII, 0, 0, 0.0, 0, pos, False, 0
    if first and pos - t >= 3 and buf[t] == 113 and buf[t + 1] == 105 and buf[t + 2] == 100:
        # qid:<int>, only right after the label (as in scikit-learn and SVMrank).
        if colon != t + 3 or colon + 1 >= pos:
            return BAD_QID, 0, 0, 0.0, 0, pos, True, 0
        i = colon + 1
        negative = buf[i] == 45
        if buf[i] == 45 or buf[i] == 43:
            i += 1
        q = 0
        if i >= pos:
            return BAD_QID, 0, 0, 0.0, 0, pos, True, 0
        while i < pos:
            if not (48 <= buf[i] <= 57) or q > 92233720368547757:
                return BAD_QID, 0, 0, 0.0, 0, pos, True, 0
            q = q * 10 + (buf[i] - 48)
            i += 1
        return 0, 0, 0, 0.0, 0, pos, True, -q if negative else q
    if colon < 0:
        return MISSING_COLON, 0, 0, 0.0, 0, pos, False, 0
    if colon == t:
        return BAD_INDEX, 0, 0, 0.0, 0, pos, False, 0
    if buf[t] == 45:
        error = NEGATIVE_INDEX
        for i in range(t + 1, colon):
            if not (48 <= buf[i] <= 57):
                error = BAD_INDEX
        if colon == t + 1:
            error = BAD_INDEX
        return error, 0, 0, 0.0, 0, pos, False, 0
    index = 0
    for i in range(t, colon):
        d = buf[i] - 48
        if not (0 <= d <= 9):
            return BAD_INDEX, 0, 0, 0.0, 0, pos, False, 0
        if index > (_INDEX_LIMIT - d) // 10:
            return INDEX_OVERFLOW, 0, 0, 0.0, 0, pos, False, 0
        index = index * 10 + d
    status, value = _parse_token(buf, colon + 1, pos)
    return 0, index, status, value, colon + 1, pos, False, 0


@njit(nogil=True, cache=True)
def _label_token(buf, t, stop):
    """The careful path for a label at buf[t:]: return (error, status, value, end)."""
    end = t
    seen = 0
    while end < stop and not _is_token_end(buf[end]):
        seen |= buf[end]
        end += 1
    if seen >= 128:
        return NON_ASCII, _NUM_BAD, 0.0, end
    status, value = _parse_token(buf, t, end)
    if status == _NUM_BAD:
        for i in range(t, end):
            if buf[i] == 44:
                return MULTILABEL, status, value, end
        return BAD_LABEL, status, value, end
    return 0, status, value, end


@njit(nogil=True, cache=True)
def parse_block(
    buf, start, stop, fill, allow_zero, index_shift, value_limit, row0, nnz0, row_stop, nnz_stop,
    indptr, indices, data, y, qid, slow_spans, slow_targets, slow0, slow_capacity, stats,
):
    """Validate (fill=False) or parse (fill=True) the lines in buf[start:stop] into CSR; fill stats[:].

    ``start`` is a line start and ``stop`` is a line start or len(buf). In fill mode row ``r`` of the block
    goes to row ``row0 + r`` of the arrays and its nonzeros from ``nnz0`` on; a row at ``row_stop`` or a
    nonzero at ``nnz_stop`` (more than the count gave) stops the block with COUNT_MISMATCH. ``index_shift``
    (0 or 1) is subtracted from every index; ``qid`` is written only if it is non-empty. ``value_limit`` is
    the magnitude from which a value overflows the target dtype (inf for float64). Slow tokens: the first
    ``slow_capacity`` of the block go to ``slow_spans[slow0 + k] = (byte start, byte end)`` and
    ``slow_targets[slow0 + k]`` = data position, or ``-1 - row`` for a label; STAT_SLOW counts them all (a
    caller that sees more than the capacity runs the block again with room for them). Stops at the first
    error (stats[STAT_ERROR] != 0).

    Labels and values go through one hand-written fast path (``[+-]digits[.digits]``, the fraction eight
    digits at a time) inside the loop: a helper taking ``buf`` would cost two atomic reference-count
    updates per call, more than the parse. Exponents, mantissas of more than 19 digits and anything
    malformed take the careful helpers (`_parse_number`, `_label_token`, `_feature_token`).
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
        if _is_space(c) or c == 10:
            pos += 1
            continue
        if c == 35:
            while pos < stop and buf[pos] != 10:
                pos += 1
            continue
        if fill and row0 + n_rows >= row_stop:
            error, error_offset = COUNT_MISMATCH, pos
            break
        prev_index = -1
        first = True
        is_label = True
        while True:
            # ---- where the number starts: the label's first byte, or just past "digits:" ----
            index = 0
            t = pos
            if not is_label:
                while pos < stop and _is_space(buf[pos]):
                    pos += 1
                if pos >= stop or buf[pos] == 10 or buf[pos] == 35:
                    break
                t = pos
                k = 0
                if _LITTLE_ENDIAN and pos + 8 <= stop:  # an index of up to 7 digits and its colon in one load
                    chunk = _load_eight_bytes(buf, pos)
                    k = _digit_run(chunk)
                    if k < 8 and buf[pos + k] == 58:
                        index = np.int64(_digits_value(chunk, k))
                        pos += k
                    else:
                        k = 0
                if k == 0:
                    while pos < stop and 48 <= buf[pos] <= 57:
                        index = index * 10 + (buf[pos] - 48)
                        pos += 1
                if pos < stop and buf[pos] == 58 and 0 < pos - t <= _SAFE_INDEX_DIGITS:
                    pos += 1
                else:
                    pos = -1  # not a plain index:value token: the careful path below
            # ---- the fast path: [+-]digits[.digits] followed by a token end ----
            status = _NUM_BAD
            value = 0.0
            value_start = pos
            end = pos
            if pos >= 0:
                i = pos
                negative = False
                if i < stop and (buf[i] == 43 or buf[i] == 45):
                    negative = buf[i] == 45
                    i += 1
                w = np.uint64(0)
                digits_start = i
                while i < stop and 48 <= buf[i] <= 57:
                    w = w * np.uint64(10) + np.uint64(buf[i] - 48)
                    i += 1
                n_digits = i - digits_start
                exp10 = 0
                if i < stop and buf[i] == 46:
                    i += 1
                    fraction_start = i
                    if _LITTLE_ENDIAN:
                        while i + 8 <= stop:
                            chunk = _load_eight_bytes(buf, i)
                            if not _is_eight_digits(chunk):
                                break
                            w = w * np.uint64(100000000) + _eight_digits_value(chunk)
                            i += 8
                    while i < stop and 48 <= buf[i] <= 57:
                        w = w * np.uint64(10) + np.uint64(buf[i] - 48)
                        i += 1
                    exp10 = fraction_start - i
                    n_digits += i - fraction_start
                end = i
                if (i < stop and (buf[i] == 101 or buf[i] == 69)) or n_digits > _MAX_DIGITS:
                    status, value, end = _parse_number(buf, pos, stop)
                elif n_digits > 0:
                    decided, value = decimal_to_float64(w, exp10, False)
                    if not decided:
                        status = _NUM_SLOW
                    else:
                        status = _NUM_OK
                        if negative:
                            value = -value
                if status != _NUM_BAD and end < stop and not _is_token_end(buf[end]):
                    status = _NUM_BAD
            # ---- the label ----
            if is_label:
                if status == _NUM_BAD:
                    token_error, status, value, end = _label_token(buf, t, stop)
                    if token_error:
                        error, error_offset = token_error, t
                        break
                pos = end
                is_label = False
                if status == _NUM_NONFINITE:
                    error, error_offset = NONFINITE_LABEL, t
                    break
                if status == _NUM_SLOW:
                    if fill and n_slow < slow_capacity:
                        slow_spans[slow0 + n_slow, 0] = t
                        slow_spans[slow0 + n_slow, 1] = pos
                        slow_targets[slow0 + n_slow] = -1 - (row0 + n_rows)
                    n_slow += 1
                elif fill:
                    y[row0 + n_rows] = value
                continue
            # ---- a feature (or a qid) ----
            if status == _NUM_BAD:
                token_error, index, status, value, value_start, end, is_qid, q = _feature_token(buf, t, stop, first)
                if token_error:
                    error, error_offset = token_error, t
                    break
                if is_qid:
                    first = False
                    if store_qid:
                        qid[row0 + n_rows] = q
                    pos = end
                    continue
            first = False
            pos = end
            if index == 0 and not allow_zero:
                error, error_offset = ZERO_INDEX, t
                break
            if index <= prev_index:
                error, error_offset = NOT_ASCENDING, t
                break
            prev_index = index
            if status == _NUM_BAD:
                error, error_offset = BAD_VALUE, t
                break
            if status == _NUM_NONFINITE:
                error, error_offset = NONFINITE_VALUE, t
                break
            if status == _NUM_OK and abs(value) >= value_limit:
                error, error_offset = VALUE_OVERFLOW, t
                break
            max_index = max(max_index, index)
            min_index = index if min_index < 0 else min(min_index, index)
            if fill:
                k = nnz0 + nnz
                if k >= nnz_stop:
                    error, error_offset = COUNT_MISMATCH, t
                    break
                indices[k] = index - index_shift
                if status == _NUM_SLOW:
                    if n_slow < slow_capacity:
                        slow_spans[slow0 + n_slow, 0] = value_start
                        slow_spans[slow0 + n_slow, 1] = end
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
