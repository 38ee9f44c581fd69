"""Property tests: any bytes either parse or raise LibsvmFormatError/DataError; valid text parses as sklearn does."""

import numpy as np
import pytest

from hogwild.datasets import parser
from hogwild.datasets.libsvm import load_libsvm
from hogwild.errors import DataError, LibsvmFormatError

hypothesis = pytest.importorskip("hypothesis")
sklearn_datasets = pytest.importorskip("sklearn.datasets")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ALPHABET = b"0123456789 :\t\n\r#.-+eEqid,naxf\xe9"


def load_or_reject(tmp_path, raw, **kwargs):
    path = tmp_path / "fuzz.txt"
    path.write_bytes(raw)
    try:
        return load_libsvm(path, cache=False, threads=2, **kwargs)
    except (LibsvmFormatError, DataError) as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
        return None


def check_well_formed(result):
    X, y = result
    assert X.shape[0] == len(y) >= 1
    assert np.all(np.diff(X.indptr) >= 0) and X.indptr[-1] == X.nnz
    assert np.all(np.isfinite(X.data)) and np.all(np.isfinite(y))
    for r in range(X.shape[0]):
        row = X.indices[X.indptr[r]:X.indptr[r + 1]]
        assert np.all(np.diff(row) > 0) and np.all(row >= 0) and np.all(row < X.shape[1])


@SETTINGS
@given(raw=st.binary(max_size=300))
def test_random_bytes_parse_or_raise(tmp_path, raw):
    result = load_or_reject(tmp_path, raw)
    if result is not None:
        check_well_formed(result)


@SETTINGS
@given(raw=st.lists(st.sampled_from([bytes([c]) for c in ALPHABET]), max_size=200).map(b"".join))
def test_libsvm_like_bytes_parse_or_raise(tmp_path, raw, monkeypatch):
    monkeypatch.setattr(parser, "BLOCK_BYTES", 32)
    result = load_or_reject(tmp_path, raw)
    if result is not None:
        check_well_formed(result)


number = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
    st.floats(-1e6, 1e6, allow_nan=False, width=32).map(lambda v: f"{v:.6g}"),
    st.from_regex(r"\A[+-]?([0-9]{1,25}\.?[0-9]{0,25}|\.[0-9]{1,20})([eE][+-]?[0-9]{1,3})?\Z"),
)


@st.composite
def valid_lines(draw):
    lines = []
    for _ in range(draw(st.integers(1, 12))):
        label = draw(number)
        indices = sorted(draw(st.sets(st.integers(1, 2000), max_size=6)))
        values = [draw(number) for _ in indices]
        sep = draw(st.sampled_from([" ", "\t", "  "]))
        feats = sep.join(f"{i}:{v}" for i, v in zip(indices, values))
        comment = draw(st.sampled_from(["", " # note", "#x"]))
        end = draw(st.sampled_from(["\n", "\r\n"]))
        lines.append(f"{label}{sep}{feats}{comment}{end}")
        if draw(st.booleans()):
            lines.append(draw(st.sampled_from(["\n", "# comment\n", "  \t\n"])))
    return "".join(lines).encode()


@SETTINGS
@given(raw=valid_lines(), dtype=st.sampled_from([np.float32, np.float64]))
def test_valid_text_matches_sklearn(tmp_path, raw, dtype, monkeypatch):
    monkeypatch.setattr(parser, "BLOCK_BYTES", 48)
    path = tmp_path / "valid.txt"
    path.write_bytes(raw)
    try:
        Xs, ys = sklearn_datasets.load_svmlight_file(str(path), dtype=dtype)
        sklearn_ok = np.all(np.isfinite(Xs.data)) and np.all(np.isfinite(ys))
    except ValueError:
        sklearn_ok = False
    try:
        X, y = load_libsvm(path, dtype=dtype, cache=False, threads=2)
    except LibsvmFormatError as exc:
        # only the values scikit-learn would let through as inf (overflow) are ours to reject
        assert not sklearn_ok and ("overflow" in exc.reason or "NaN" in exc.reason), str(exc)
        return
    assert sklearn_ok
    assert X.shape == Xs.shape
    np.testing.assert_array_equal(X.indptr, Xs.indptr)
    np.testing.assert_array_equal(X.indices, Xs.indices)
    np.testing.assert_array_equal(X.data, Xs.data)
    np.testing.assert_array_equal(y, ys)


@SETTINGS
@given(raw=valid_lines(), data=st.data())
def test_mutated_valid_text_parses_or_raises(tmp_path, raw, data, monkeypatch):
    monkeypatch.setattr(parser, "BLOCK_BYTES", 40)
    position = data.draw(st.integers(0, len(raw) - 1))
    replacement = data.draw(st.binary(min_size=0, max_size=3))
    mutated = raw[:position] + replacement + raw[position + 1:]
    result = load_or_reject(tmp_path, mutated)
    if result is not None:
        check_well_formed(result)
