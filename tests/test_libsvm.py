"""LIBSVM reading and writing: identical to scikit-learn on real files, strict on malformed ones."""

import bz2
import gzip
import lzma

import numpy as np
import pytest
import scipy.sparse as sp

from conftest import shared_file
from hogwild.datasets import libsvm, parser
from hogwild.datasets.libsvm import dump_libsvm, load_libsvm, load_libsvm_files
from hogwild.errors import DataError, LibsvmFormatError
from hogwild.kernels import libsvm_parse as K

sklearn_datasets = pytest.importorskip("sklearn.datasets")
SHARED = ["a9a", "w8a", "heart_scale", "mushrooms", "rcv1_small", "news20.bz2"]


def assert_same(X, y, Xs, ys):
    assert X.shape == Xs.shape
    np.testing.assert_array_equal(X.indptr, Xs.indptr)
    np.testing.assert_array_equal(X.indices, Xs.indices)
    assert X.data.dtype == Xs.data.dtype
    np.testing.assert_array_equal(X.data, Xs.data)
    np.testing.assert_array_equal(y, ys)


def write(tmp_path, text, name="data.txt"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 64 bytes so that tiny files span many parallel blocks."""
    monkeypatch.setattr(parser, "BLOCK_BYTES", 64)


@pytest.mark.parametrize("name", SHARED)
def test_shared_files_match_sklearn(name):
    path = shared_file(name)
    X, y = load_libsvm(path, cache=False)
    Xs, ys = sklearn_datasets.load_svmlight_file(str(path), dtype=np.float32)
    assert_same(X, y, Xs, ys)
    assert X.indices.dtype == np.int32 and y.dtype == np.float64


def test_shared_file_float64_and_many_blocks(small_blocks):
    path = shared_file("heart_scale")
    X, y = load_libsvm(path, dtype=np.float64, cache=False, threads=2)
    Xs, ys = sklearn_datasets.load_svmlight_file(str(path), dtype=np.float64)
    assert_same(X, y, Xs, ys)


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress], ids=["gz", "bz2", "xz"])
def test_compressed_variants(tmp_path, compress):
    plain = shared_file("heart_scale").read_bytes()
    path = write(tmp_path, compress(plain), "heart.compressed")  # detected by magic bytes, not by name
    X, y = load_libsvm(path, cache=False)
    Xs, ys = sklearn_datasets.load_svmlight_file(str(shared_file("heart_scale")), dtype=np.float32)
    assert_same(X, y, Xs, ys)


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress], ids=["gz", "bz2", "xz"])
def test_truncated_compressed_stream_names_the_file(tmp_path, compress):
    blob = compress(b"1 1:0.5 2:1\n-1 3:2\n" * 200)
    path = write(tmp_path, blob[: len(blob) // 2], "cut.bin")
    with pytest.raises(LibsvmFormatError, match="cut.bin.*(truncated|corrupt)"):
        load_libsvm(path, cache=False)


ACCEPTED = (
    "# a header comment\n"
    "+1 1:0.5 3:-2e-3 # trailing comment\n"
    "\n"
    "-1\t2:1.5\t\t4:0\r\n"
    "   \n"
    "0 qid:7 1:1 5:.25\n"
    "2.5 10:3.\n"
    "3#comment right after the label\n"
    "1 1:1e5 2:-0 3:+4.5 4:1234567890123456789 5:1e-30 6:0.1000000000000000055511151231257827\n"
)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_accepts_what_real_files_contain(tmp_path, dtype, small_blocks):
    path = write(tmp_path, ACCEPTED)
    X, y = load_libsvm(path, dtype=dtype, cache=False, threads=2)
    Xs, ys = sklearn_datasets.load_svmlight_file(str(path), dtype=dtype)
    assert_same(X, y, Xs, ys)
    assert X.nnz == 13  # explicit zeros are kept, as scikit-learn keeps them
    _, _, qid = load_libsvm(path, cache=False, query_id=True)
    np.testing.assert_array_equal(qid, [0, 0, 7, 0, 0, 0])


def test_zero_based_auto_and_explicit(tmp_path):
    zero = write(tmp_path, "1 0:1 2:2\n-1 1:3\n", "zero.txt")
    one = write(tmp_path, "1 1:1 2:2\n-1 3:3\n", "one.txt")
    X, _ = load_libsvm(zero, cache=False)
    assert X.shape == (2, 3) and X.indices.tolist() == [0, 2, 1]
    X, _ = load_libsvm(one, cache=False)
    assert X.shape == (2, 3) and X.indices.tolist() == [0, 1, 2]
    X, _ = load_libsvm(one, cache=False, zero_based=True)
    assert X.shape == (2, 4) and X.indices.tolist() == [1, 2, 3]
    with pytest.raises(LibsvmFormatError, match="zero.txt:1.*'0:1'"):
        load_libsvm(zero, cache=False, zero_based=False)
    # files read together share one decision: one of them has index 0, so both are zero-based
    (Xa, _), (Xb, _) = load_libsvm_files([one, zero], cache=False)
    Sa, _, Sb, _ = sklearn_datasets.load_svmlight_files([str(one), str(zero)], dtype=np.float32)
    assert_same(Xa, _, Sa, _)
    assert_same(Xb, _, Sb, _)
    assert Xa.shape[1] == Xb.shape[1] == 4


def test_n_features(tmp_path):
    path = write(tmp_path, "1 1:1 7:2\n")
    X, _ = load_libsvm(path, n_features=10, cache=False)
    assert X.shape == (1, 10)
    with pytest.raises(DataError, match=r"data.txt.* 7 .*n_features=5"):
        load_libsvm(path, n_features=5, cache=False)


def test_empty_file_has_no_rows(tmp_path):
    for text in ["", "# only a comment\n\n  \n"]:
        with pytest.raises(DataError, match="has no rows"):
            load_libsvm(write(tmp_path, text), cache=False)


def test_large_indices_use_int64(tmp_path):
    path = write(tmp_path, "1 3:1 4000000000:2\n")
    X, _ = load_libsvm(path, cache=False)
    assert X.indices.dtype == np.int64 and X.shape == (1, 4000000000)
    assert X.indices.tolist() == [2, 3999999999]


# One malformed input per error kind: (text, line, token, reason fragment).
MALFORMED = [
    ("1 1:1\nabc 1:1\n", 2, "abc", "label is not a number"),
    ("1 1:1\n1,2 1:1\n", 2, "1,2", "multi-label"),
    ("nan 1:1\n", 1, "nan", "label is NaN"),
    ("1e999 1:1\n", 1, "1e999", "label is NaN"),
    ("1 1:1\n\n-1 2 3:1\n", 3, "2", "colon is missing"),
    ("1 x:1\n", 1, "x:1", "index is not"),
    ("1 :1\n", 1, ":1", "index is not"),
    ("1 -3:1\n", 1, "-3:1", "negative"),
    ("1 99999999999999999999:1\n", 1, "99999999999999999999:1", "64-bit"),
    ("1 3:1 2:1\n", 1, "2:1", "strictly ascending"),
    ("1 3:1 3:1\n", 1, "3:1", "strictly ascending"),
    ("1 1:abc\n", 1, "1:abc", "value is not a number"),
    ("1 1:\n", 1, "1:", "value is not a number"),
    ("1 1:2:3\n", 1, "1:2:3", "value is not a number"),
    ("1 1:1.5x\n", 1, "1:1.5x", "value is not a number"),
    ("1 1:1 junk\n", 1, "junk", "colon is missing"),
    ("1 1:nan\n", 1, "1:nan", "value is NaN"),
    ("1 1:-inf\n", 1, "1:-inf", "value is NaN"),
    ("1 1:1e999\n", 1, "1:1e999", "value is NaN"),
    ("1 1:1e39\n", 1, "1:1e39", "overflows"),
    ("1 1:1\n1 2:3\xe9\n", 2, "2:3\\xc3\\xa9", "not ASCII"),
    ("1 qid:x 1:1\n", 1, "qid:x", "qid"),
]


@pytest.mark.parametrize("text,line,token,reason", MALFORMED, ids=[m[3] + "-" + m[2] for m in MALFORMED])
@pytest.mark.parametrize("blocks", ["one", "many"])
def test_malformed_inputs_name_line_and_token(tmp_path, monkeypatch, text, line, token, reason, blocks):
    if blocks == "many":
        monkeypatch.setattr(parser, "BLOCK_BYTES", 16)
        text = "1 1:1\n" * 40 + text
        line += 40
    path = write(tmp_path, text, "bad.txt")
    with pytest.raises(LibsvmFormatError) as info:
        load_libsvm(path, cache=False, threads=2)
    err = info.value
    assert (err.line, err.token) == (line, token), str(err)
    assert reason in err.reason, str(err)
    assert str(err).startswith(f"{path}:{line}: ") and "\n" not in str(err)
    assert isinstance(err, ValueError)


def test_first_error_in_file_order_wins(tmp_path, monkeypatch):
    monkeypatch.setattr(parser, "BLOCK_BYTES", 16)
    text = "1 1:1\n" * 10 + "1 2:x\n" + "1 1:1\n" * 10 + "y 1:1\n"
    with pytest.raises(LibsvmFormatError) as info:
        load_libsvm(write(tmp_path, text), cache=False, threads=2)
    assert info.value.line == 11


def test_first_error_wins_across_the_two_passes(tmp_path, monkeypatch):
    """The count pass reads only indices: a bad index it meets must not hide an earlier bad value or label."""
    monkeypatch.setattr(parser, "BLOCK_BYTES", 16)
    for early in ["1 2:x\n", "y 1:1\n", "1 1:1e999\n"]:
        text = "1 1:1\n" * 10 + early + "1 1:1\n" * 10 + "1 0:1\n" + "1 1:1\n" * 3
        with pytest.raises(LibsvmFormatError) as info:
            load_libsvm(write(tmp_path, text), zero_based=False, cache=False, threads=2)
        assert info.value.line == 11, str(info.value)
    text = "1 1:1\n" * 10 + "1 0:1\n" + "1 2:x\n" * 3
    with pytest.raises(LibsvmFormatError, match="index 0") as info:
        load_libsvm(write(tmp_path, text), zero_based=False, cache=False, threads=2)
    assert info.value.line == 11


def test_valid_oddities_the_count_pass_leaves_to_the_full_parser(tmp_path, small_blocks):
    text = ("1 qid:3 0000000000000000000000000001:0.5 7:2\n"  # a 28-digit index that is 1
            "-1 999999999999999999:1.5e-3\n"  # 18 digits: the largest index read without the careful path
            "2 1000000000000000000:1\n")  # 19 digits
    path = write(tmp_path, text)
    X, y = load_libsvm(path, cache=False, zero_based=False, threads=2)
    assert X.indices.tolist() == [0, 6, 999999999999999998, 999999999999999999]
    assert X.data.tolist() == [0.5, 2.0, np.float32(1.5e-3), 1.0] and y.tolist() == [1.0, -1.0, 2.0]


# ------------------------------------------------------------------------------------------ NumPy twins


def naive_parse(text, zero_based):
    """Obvious reference parser for valid text: (indptr, indices, data, y) as float64."""
    indptr, indices, data, y = [0], [], [], []
    for line in text.split("\n"):
        tokens = line.split("#")[0].split()
        if not tokens:
            continue
        y.append(float(tokens[0]))
        for token in tokens[1:]:
            if token.startswith("qid:"):
                continue
            index, value = token.split(":")
            indices.append(int(index) - (0 if zero_based else 1))
            data.append(float(value))
        indptr.append(len(indices))
    return np.array(indptr), np.array(indices), np.array(data), np.array(y)


def test_parse_kernel_matches_naive_twin(tmp_path, small_blocks):
    rng = np.random.default_rng(3)
    lines = []
    for _ in range(200):
        idx = np.sort(rng.choice(np.arange(1, 300), size=rng.integers(0, 8), replace=False))
        values = rng.standard_normal(len(idx)) * 10.0 ** rng.integers(-30, 30, len(idx))
        feats = " ".join(f"{i}:{float(v)!r}" for i, v in zip(idx, values))
        lines.append(f"{rng.integers(-3, 4)} {feats}")
    text = "\n".join(lines) + "\n"
    X, y = load_libsvm(write(tmp_path, text), dtype=np.float64, zero_based=False, cache=False, threads=2)
    indptr, indices, data, labels = naive_parse(text, zero_based=False)
    np.testing.assert_array_equal(X.indptr, indptr)
    np.testing.assert_array_equal(X.indices, indices)
    np.testing.assert_array_equal(X.data, data)
    np.testing.assert_array_equal(y, labels)


def naive_format(x, is_float32):
    """The formatter's contract: some decimal that Python's float() reads back to exactly x."""
    return float(np.float32(x)) if is_float32 else float(x)


@pytest.mark.parametrize("is_float32", [True, False])
def test_format_float_round_trips(is_float32):
    rng = np.random.default_rng(1)
    values = rng.standard_normal(20000) * 10.0 ** rng.integers(-45 if is_float32 else -320, 38, 20000)
    specials = [0.1, 1 / 3, 1e-45, 3.4028235e38, -0.0, 0.0, 16777217.0, 123456.789, 1e16, 2.5e-5]
    values = np.concatenate([values, specials])
    if is_float32:
        values = values.astype(np.float32).astype(np.float64)
    out = np.empty(64, np.uint8)
    for x in values:
        n = K.format_float(out, 0, x, is_float32)
        if n < 0:
            assert not is_float32  # float64 values without a short exact form go to repr()
            continue
        text = bytes(out[:n]).decode()
        back = float(text)
        want = naive_format(x, is_float32)
        got = float(np.float32(back)) if is_float32 else back
        assert got == want and np.signbit(got) == np.signbit(want), (x, text)


# ------------------------------------------------------------------------------------------------- dump


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("zero_based", [False, True])
def test_dump_round_trip_and_sklearn_reads_it(tmp_path, dtype, zero_based):
    rng = np.random.default_rng(0)
    X = sp.random(300, 60, density=0.1, format="csr", random_state=1, dtype=np.float64)
    X.data = rng.standard_normal(X.nnz) * 10.0 ** rng.integers(-30, 30, X.nnz)
    X = X.astype(dtype)
    X[0, 0] = 0.1
    y = rng.integers(1, 4, 300).astype(float)
    y[:3] = [0.1, -1e300, 1 / 3]
    path = dump_libsvm(X, y, tmp_path / "out.txt", zero_based=zero_based)
    X2, y2 = load_libsvm(path, dtype=dtype, zero_based=zero_based, n_features=60, cache=False)
    assert_same(X2, y2, X.tocsr(), y)
    Xs, ys = sklearn_datasets.load_svmlight_file(str(path), dtype=dtype, zero_based=zero_based, n_features=60)
    assert_same(Xs, ys, X.tocsr(), y)
    assert path.read_text().splitlines()[3].split(" ")[0] in {"1", "2", "3"}  # integral labels as ints


def test_dump_qid_compressed_dense_and_unsorted(tmp_path):
    dense = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -3.25]], dtype=np.float32)
    path = dump_libsvm(dense, [1, -1], tmp_path / "q.txt.gz", query_id=[4, 5])
    assert gzip.decompress(path.read_bytes()) == b"1 qid:4 2:1.5\n-1 qid:5 1:2 3:-3.25\n"
    X, y, qid = load_libsvm(path, query_id=True, cache=False)
    np.testing.assert_array_equal(X.toarray(), dense)
    np.testing.assert_array_equal(qid, [4, 5])
    unsorted = sp.csr_matrix((np.array([1.0, 2.0], np.float32), np.array([2, 0]), np.array([0, 2])), shape=(1, 3))
    dump_libsvm(unsorted, [0], tmp_path / "u.txt")
    assert (tmp_path / "u.txt").read_text() == "0 1:2 3:1\n"
    with pytest.raises(DataError, match="NaN"):
        dump_libsvm(dense, [np.nan, 1], tmp_path / "n.txt")


def test_dump_many_chunks_in_parallel(tmp_path, monkeypatch):
    monkeypatch.setattr(libsvm, "DUMP_ROWS", 7)
    X = sp.random(100, 30, density=0.2, format="csr", random_state=2, dtype=np.float32)
    y = np.arange(100) % 3
    path = dump_libsvm(X, y, tmp_path / "c.txt", threads=2)
    X2, y2 = load_libsvm(path, n_features=30, zero_based=False, cache=False)
    assert_same(X2, y2, X, y)
