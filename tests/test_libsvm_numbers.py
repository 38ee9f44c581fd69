"""Decimal -> float conversion in the LIBSVM parser: bit-identical to Python's float() (and so to scikit-learn).

The parser converts with Clinger's fast path and the Eisel-Lemire algorithm (`hogwild.kernels.libsvm_parse`),
and leaves the few tokens neither can decide to Python. These tests feed it the hard cases: exact halfway
points between two doubles, 17-19 digit mantissas, longer ones, subnormals, the overflow edge, long exponents.
"""

import struct
from decimal import Decimal, localcontext

import numpy as np
import pytest

from hogwild.datasets import parser
from hogwild.datasets.libsvm import load_libsvm
from hogwild.errors import LibsvmFormatError
from hogwild.kernels import libsvm_parse as K

hypothesis = pytest.importorskip("hypothesis")
sklearn_datasets = pytest.importorskip("sklearn.datasets")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def float_bits(values):
    return np.asarray(values, np.float64).view(np.uint64)


def parse_values(tmp_path, texts, dtype=np.float64, monkeypatch=None, block_bytes=None):
    """Load ``texts`` as the values (and, for each line's first, the label) of a LIBSVM file; return (data, y)."""
    if block_bytes and monkeypatch:
        monkeypatch.setattr(parser, "BLOCK_BYTES", block_bytes)
    lines = [f"{texts[r]} " + " ".join(f"{j + 1}:{v}" for j, v in enumerate(texts[r:r + 5]))
             for r in range(0, len(texts), 5)]
    path = tmp_path / "numbers.svm"
    path.write_text("\n".join(lines) + "\n")
    X, y = load_libsvm(path, dtype=dtype, zero_based=False, cache=False, threads=2)
    return X.data, y


def expected(texts, dtype=np.float64):
    """What scikit-learn stores: Python's float(), then a cast to dtype."""
    return np.array([float(t) for t in texts]).astype(dtype)


def assert_identical(tmp_path, texts, dtype=np.float64, **kwargs):
    data, y = parse_values(tmp_path, texts, dtype, **kwargs)
    want = expected(texts, dtype)
    bits = f"u{np.dtype(dtype).itemsize}"
    bad = np.flatnonzero(data.view(bits) != want.view(bits))
    assert not len(bad), (f"{len(bad)} values differ from float(), e.g. {texts[bad[0]]!r}: "
                          f"{data[bad[0]]!r} != {want[bad[0]]!r}")
    labels = expected(texts[::5])
    assert np.array_equal(float_bits(y), float_bits(labels)), "labels differ from float()"


# ------------------------------------------------------------------------------------------- strategies

finite_doubles = st.floats(allow_nan=False, allow_infinity=False, width=64)
positive_bits = st.integers(1, 0x7FEFFFFFFFFFFFFE)  # a positive double with a finite neighbour above, by its bits


def bits_to_float(bits):
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def exact_midpoint(low, high):
    """The exact decimal halfway between two doubles (a subnormal's needs ~770 digits)."""
    with localcontext() as context:
        context.prec = 1200
        return (Decimal(low) + Decimal(high)) / 2


@st.composite
def halfway(draw):
    """The exact decimal midpoint of two neighbouring doubles (ties to even decide), or a near miss of it."""
    bits = draw(positive_bits)
    mid = exact_midpoint(bits_to_float(bits), bits_to_float(bits + 1))
    digits, exponent = mid.as_tuple().digits, mid.as_tuple().exponent
    text = "".join(map(str, digits))
    cut = draw(st.sampled_from([len(text), 17, 18, 19, 20, 25, 40]))
    nudge = draw(st.sampled_from(["", "", "1", "9", "0000001"]))
    shift = len(text) - min(cut, len(text))
    mantissa = text[:cut] + nudge
    return f"{mantissa}e{exponent + shift - len(nudge)}"


@st.composite
def long_mantissa(draw):
    """17 to 40 significant digits, a decimal point anywhere, an exponent across the whole range."""
    n = draw(st.integers(17, 40))
    digits = draw(st.text("0123456789", min_size=n, max_size=n).filter(lambda s: s.strip("0")))
    point = draw(st.integers(0, n))
    exponent = draw(st.integers(-345, 330))
    text = f"{digits[:point]}.{digits[point:]}" if point < n else digits
    return f"{text}e{exponent}"


@st.composite
def exponent_forms(draw):
    """Odd but valid exponents: leading zeros, signs, upper case, far out of range (-> 0 or inf)."""
    mantissa = draw(st.sampled_from(["1", "9.99", "0.0001", "123456789012345678901", ".5", "7."]))
    sign = draw(st.sampled_from(["", "+", "-"]))
    zeros = "0" * draw(st.integers(0, 25))
    exponent = draw(st.one_of(st.integers(0, 400), st.integers(10**6, 10**20)))
    return f"{mantissa}{draw(st.sampled_from('eE'))}{sign}{zeros}{exponent}"


subnormal = st.integers(1, (1 << 52) - 1).map(lambda bits: repr(bits_to_float(bits)))
number_text = st.one_of(
    finite_doubles.map(repr),
    finite_doubles.map(lambda v: f"{v:.17g}"),
    finite_doubles.map(lambda v: f"{v:.19e}"),
    halfway(),
    long_mantissa(),
    exponent_forms(),
    subnormal,
    st.integers(-(10**25), 10**25).map(str),
)


def finite_texts(texts):
    return [t for t in texts if abs(float(t)) != float("inf")]


# ------------------------------------------------------------------------------------------- the table


PUBLISHED = {  # (high, low) words as fast_float prints them
    -342: (0xEEF453D6923BD65A, 0x113FAA2906A13B3F),
    -28: (0xFD87B5F28300CA0D, 0x8BCA9D6E188853FC),
    -27: (0x9E74D1B791E07E48, 0x775EA264CF55347E),
    -1: (0xCCCCCCCCCCCCCCCC, 0xCCCCCCCCCCCCCCCD),
    0: (0x8000000000000000, 0x0),
    28: (0x813F3978F8940984, 0x4000000000000000),
    308: (0x8E679C2F5E44FF8F, 0x570F09EAA7EA7648),
}


def test_powers_of_five_table_against_python_integers():
    table = K.POWERS_OF_FIVE_128
    assert table.shape == (308 + 342 + 1, 2) and table.dtype == np.uint64
    for q, words in PUBLISHED.items():
        assert tuple(int(w) for w in table[q + 342]) == words, q
    for q in range(-342, 309):
        value = (int(table[q + 342, 0]) << 64) | int(table[q + 342, 1])
        assert value >> 127 == 1, q

        def scaled(k):  # floor and remainder of 5**q * 2**k
            num, den = (5**q, 1) if q >= 0 else (1, 5**-q)
            return divmod(num << k, den) if k >= 0 else divmod(num, den << -k)

        k = 127 - q * 2  # any start: walk to the k that puts 5**q * 2**k in [2**127, 2**128)
        while scaled(k)[0] >= 1 << 128:
            k -= 1
        while scaled(k)[0] < 1 << 127:
            k += 1
        floor, remainder = scaled(k)
        if q >= 0:  # truncated
            assert value == floor, q
        elif q >= -27:  # rounded up: ties of these exponents are decided from it
            assert remainder and value == floor + 1, q
        else:  # a wider quotient truncated: within one unit of the last place
            assert value in (floor, floor + 1), q


@SETTINGS
@given(w=st.integers(1, 2**64 - 1), q=st.integers(-360, 330))
def test_decimal_to_float64_is_correctly_rounded(w, q):
    decided, value = K.decimal_to_float64(np.uint64(w), q, False)
    if decided:  # undecided happens only where 128 bits cannot tell, and Python converts those
        assert float_bits([value]) == float_bits([float(f"{w}e{q}")])


# ------------------------------------------------------------------------------------------- the parser


@SETTINGS
@given(texts=st.lists(number_text, min_size=1, max_size=60).map(finite_texts).filter(bool))
def test_values_are_bit_identical_to_float(tmp_path, texts):
    assert_identical(tmp_path, texts, np.float64)


@SETTINGS
@given(texts=st.lists(number_text, min_size=1, max_size=60).map(finite_texts).filter(bool))
def test_float32_is_float_then_cast_as_sklearn_stores_it(tmp_path, texts):
    texts = [t for t in texts if abs(float(t)) < K.FLOAT32_OVERFLOW]
    if not texts:
        return
    assert_identical(tmp_path, texts, np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hard_cases_match_sklearn(tmp_path, dtype):
    texts = [
        "0.08129808306694031", "9007199254740993", "9007199254740992.5", "2.2250738585072011e-308",
        "2.2250738585072014e-308", "4.9406564584124654e-324", "2.4703282292062328e-324", "1e-400", "-0.0",
        "1.7976931348623157e308", "0.1000000000000000055511151231257827", "1e23", "8.98846567431158e307",
        "1.00000000000000011102230246251565404236316680908203125", "123456789012345678901234567890e-10",
        "3.4028235677973366e38", "1E+0000000000000000000000000001", "7.", ".5", "+1.5", "0.000000000000000000000000001",
    ]
    if dtype == np.float32:
        texts = [t for t in texts if abs(float(t)) < K.FLOAT32_OVERFLOW]
    path = tmp_path / "hard.svm"
    path.write_text("".join(f"{t} 1:{t}\n" for t in texts))
    X, y = load_libsvm(path, dtype=dtype, zero_based=False, cache=False)
    Xs, ys = sklearn_datasets.load_svmlight_file(str(path), dtype=dtype, zero_based=False)
    assert X.data.tobytes() == Xs.data.tobytes()
    assert float_bits(y).tolist() == float_bits(ys).tolist()


def test_many_values_across_tiny_blocks(tmp_path, monkeypatch):
    """Numbers cut near block ends (where the eight-bytes-at-a-time paths step back to single bytes)."""
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.standard_normal(3000) * 10.0 ** rng.integers(-300, 300, 3000),
                             rng.random(3000).astype(np.float32).astype(np.float64)])
    texts = [f"{v:.17g}" for v in values] + [repr(float(v)) for v in values] + [f"{v:.8g}" for v in values]
    assert_identical(tmp_path, texts, np.float64, monkeypatch=monkeypatch, block_bytes=97)


def exact_midpoints(n, seed):
    """Exact decimal midpoints of neighbouring doubles: 40-770 digits, which 128 bits cannot decide."""
    rng = np.random.default_rng(seed)
    out = []
    for bits in rng.integers(1 << 52, 0x7FE0000000000000, n):
        out.append(str(exact_midpoint(bits_to_float(int(bits)), bits_to_float(int(bits) + 1))))
    return out


def test_undecided_tokens_go_to_python_even_more_than_a_block_keeps(tmp_path, monkeypatch):
    monkeypatch.setattr(parser, "SLOW_PER_BLOCK", 3)
    texts = exact_midpoints(40, seed=1)
    data, y = parse_values(tmp_path, texts)
    assert np.array_equal(float_bits(data), float_bits(expected(texts)))
    assert np.array_equal(float_bits(y), float_bits(expected(texts[::5])))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("text,reason", [
    ("1 1:1e400\n", "NaN or infinite"),
    ("1 1:-1e400\n", "NaN or infinite"),
    ("1 1:1" + "0" * 400 + "\n", "NaN or infinite"),
    ("1e400 1:1\n", "label is NaN"),
    ("1 1:1.7976931348623159e308\n", "NaN or infinite"),
    # the exact midpoint of the largest double and 2**1024 rounds to even: inf
    (f"1 1:{exact_midpoint(1.7976931348623157e308, 2**1024):f}\n", "NaN or infinite"),
])
def test_values_that_round_to_inf_are_refused(tmp_path, dtype, text, reason):
    path = tmp_path / "inf.svm"
    path.write_text(text)
    with pytest.raises(LibsvmFormatError, match=reason):
        load_libsvm(path, dtype=dtype, cache=False)


def test_float32_overflow_edge(tmp_path):
    edge = K.FLOAT32_OVERFLOW  # 2**128 - 2**103: the smallest magnitude that rounds to float32 inf
    below = float(np.nextafter(edge, 0))
    path = tmp_path / "edge.svm"
    path.write_text(f"1 1:{below!r}\n")
    X, _ = load_libsvm(path, dtype=np.float32, cache=False)
    assert X.data[0] == np.finfo(np.float32).max
    path.write_text(f"1 1:{edge!r}\n")
    with pytest.raises(LibsvmFormatError, match="overflows"):
        load_libsvm(path, dtype=np.float32, cache=False)


# ------------------------------------------------------------------------------- eight bytes at a time


def naive_digit_run(raw):
    """Obvious twin of `_digit_run` and `_digits_value`: (count of leading digits, their integer value)."""
    k = 0
    while k < len(raw) and 48 <= raw[k] <= 57:
        k += 1
    return k, int(raw[:k]) if k else 0


@SETTINGS
@given(raw=st.binary(min_size=8, max_size=8) | st.text("0123456789: .e-", min_size=8, max_size=8).map(str.encode))
def test_word_at_a_time_digit_helpers_match_their_twin(raw):
    chunk = np.frombuffer(raw, dtype="<u8")[0]
    k, value = naive_digit_run(raw)
    assert K._digit_run(chunk) == k
    assert int(K._digits_value(chunk, k)) == value
    assert bool(K._is_eight_digits(chunk)) == (k == 8)
    if k == 8:
        assert int(K._eight_digits_value(chunk)) == value
    below = [i for i, byte in enumerate(raw) if byte < 36]
    mask = int(K._has_byte_below_36(chunk))
    assert (mask != 0) == bool(below) and (not below or ((mask & -mask).bit_length() - 1) // 8 == below[0])
