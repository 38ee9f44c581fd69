"""The one pass training makes over the rows before its first epoch (`hogwild.runners._setup.scan_features`):
row frequencies, scales and the normalized schedule's rate factor from one read of the non-zeros, the checks of
canonical form, range and finiteness on the way, and the same bits whatever the cores."""

import numpy as np
import pytest
import scipy.sparse as sp

import hogwild
from hogwild._inputs import CSR, as_csr
from hogwild.errors import DataError
from hogwild.runners._setup import scan_features

from naive import naive_feature_scales, naive_normalizer


def _matrix(n_rows=3000, n_features=400, density=0.05, seed=0):
    X = sp.random(n_rows, n_features, density=density, format="csr", dtype=np.float64, random_state=seed)
    X.data = (X.data - 0.3) * 7.0  # negative values too: the scale is the largest magnitude
    return X


@pytest.mark.parametrize("weighted", [False, True])
def test_scan_matches_the_naive_statistics(weighted):
    X = _matrix()
    weights = np.random.default_rng(1).uniform(0.5, 2.0, X.shape[0]) if weighted else np.ones(1)
    stats = scan_features(as_csr(X, np.float64), weights)
    counts = np.bincount(X.indices, minlength=X.shape[1])
    expected_inv = np.where(counts > 0, X.shape[0] / np.maximum(counts, 1), 0.0)
    np.testing.assert_array_equal(stats.inverse_row_frequency(), expected_inv)
    scales = stats.scales(np.float64)
    np.testing.assert_array_equal(scales, naive_feature_scales(X))
    for fit_intercept in (False, True):
        assert stats.rate_normalizer(scales, fit_intercept) == pytest.approx(
            naive_normalizer(X, scales, weights if weighted else 1.0, fit_intercept), rel=1e-12)


def test_scan_gives_the_same_bits_on_one_or_two_threads():
    X = _matrix(n_rows=60_000, n_features=300, density=0.15)  # > 2**21 non-zeros: two slices
    csr, weights = as_csr(X, np.float32), np.ones(1)
    assert csr.nnz >= 2 * 2**20
    one, two = scan_features(csr, weights, n_threads=1), scan_features(csr, weights, n_threads=2)
    np.testing.assert_array_equal(one.inverse_row_frequency(), two.inverse_row_frequency())
    np.testing.assert_array_equal(one.sq_sums, two.sq_sums)
    scales = one.scales(np.float32)
    assert one.rate_normalizer(scales, True) == two.rate_normalizer(scales, True)


def test_scan_finds_rows_that_are_not_canonical():
    X = sp.csr_matrix((np.array([1.0, 2.0, 3.0]), np.array([2, 1, 0], dtype=np.int32),
                       np.array([0, 2, 3], dtype=np.int32)), shape=(2, 3))
    assert scan_features(as_csr(X, np.float64, check_canonical=False), np.ones(1)) is None


def test_training_on_unsorted_duplicated_rows_equals_training_on_their_canonical_form():
    X = _matrix(n_rows=500, n_features=60, density=0.2)
    y = np.where(np.asarray(X[:, :30].sum(axis=1)).ravel() > 0, 1, -1)
    # the same matrix with every row reversed and its last entry split into two duplicates
    reversed_indices, reversed_data, indptr = [], [], [0]
    for i in range(X.shape[0]):
        lo, hi = X.indptr[i], X.indptr[i + 1]
        idx, val = X.indices[lo:hi][::-1].tolist(), X.data[lo:hi][::-1].tolist()
        if idx:
            idx, val = idx + [idx[-1]], val[:-1] + [val[-1] / 2, val[-1] / 2]
        reversed_indices += idx
        reversed_data += val
        indptr.append(len(reversed_indices))
    messy = sp.csr_matrix((np.array(reversed_data), np.array(reversed_indices, dtype=np.int32),
                           np.array(indptr, dtype=np.int32)), shape=X.shape)
    assert not messy.has_canonical_format
    clean = hogwild.train(X, y, epochs=2, mode="serial", dtype="float64", seed=3)
    from_messy = hogwild.train(messy, y, epochs=2, mode="serial", dtype="float64", seed=3)
    np.testing.assert_allclose(from_messy.model.coef, clean.model.coef, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_value_is_refused_naming_its_row(bad):
    X = _matrix(n_rows=200, n_features=30, density=0.3)
    X.data[X.indptr[117] + 0] = bad  # row 117's first stored value
    y = np.arange(200) % 2
    with pytest.raises(DataError, match="row 117"):
        hogwild.train(X, y, epochs=1, mode="serial")
    with pytest.raises(DataError, match="row 117"):
        hogwild.HogwildClassifier(max_iter=1, tol=None, mode="serial").fit(X, y)


def test_an_index_outside_the_features_is_refused():
    csr = CSR(np.array([0, 2, 3], dtype=np.int32), np.array([0, 5, 1], dtype=np.int32),
              np.array([1.0, 2.0, 3.0]), n_features=4)
    with pytest.raises(DataError, match=r"row 0 holds feature index 5, outside \[0, 4\)"):
        scan_features(csr, np.ones(1))


def test_rows_are_named_as_the_user_numbered_them_after_a_hold_out_split():
    X = _matrix(n_rows=400, n_features=30, density=0.3)
    y = np.arange(400) % 2
    config = dict(epochs=1, mode="serial", validation_fraction=0.25, seed=0)
    from hogwild.problem import split_rows

    train_rows, held_out = split_rows(400, 0.25, 0)
    bad_train, bad_held = int(train_rows[100]), int(held_out[10])
    X_train_bad = X.copy()
    X_train_bad.data[X_train_bad.indptr[bad_train]] = np.nan
    with pytest.raises(DataError, match=f"row {bad_train}\\b"):
        hogwild.train(X_train_bad, y, **config)
    X_held_bad = X.copy()
    X_held_bad.data[X_held_bad.indptr[bad_held]] = np.inf
    # a held-out row is checked before training starts, not at the first epoch's end
    with pytest.raises(DataError, match="held out for validation"):
        hogwild.train(X_held_bad, y, **config)


@pytest.mark.parametrize("magnitude", [1e200, 1e-200])
def test_the_rate_factor_survives_values_whose_squares_overflow_or_underflow(magnitude):
    X = _matrix(n_rows=300, n_features=40, density=0.2)
    X.data *= magnitude
    stats = scan_features(as_csr(X, np.float64), np.ones(1))
    assert not stats.squares_in_range
    scales = stats.scales(np.float64)
    assert stats.rate_normalizer(scales, True) == pytest.approx(naive_normalizer(X, scales, 1.0, True), rel=1e-12)


def test_a_weighted_sum_of_squares_that_overflows_is_no_error_and_the_rate_factor_holds():
    # every |x| in range (squares fine), but the row weights push the sums past float64: the pass must tell this
    # from a non-finite value (no error) and read the rows again for the rate factor
    X = _matrix(n_rows=300, n_features=40, density=0.2)
    X.data *= 1e149
    weights = np.full(X.shape[0], 1e12)
    stats = scan_features(as_csr(X, np.float64), weights)
    assert not stats.squares_in_range
    scales = stats.scales(np.float64)
    assert stats.rate_normalizer(scales, False) == pytest.approx(naive_normalizer(X, scales, weights, False),
                                                                 rel=1e-12)


@pytest.mark.parametrize("nan_first", [True, False])
def test_the_first_problem_in_the_rows_is_the_one_named(nan_first):
    # the pass checks indices as it goes and values from its sums afterwards; the error still names whichever
    # problem comes first in the rows
    X = _matrix(n_rows=200, n_features=30, density=0.3)
    csr = as_csr(X, np.float64)
    nan_row, index_row = (50, 120) if nan_first else (120, 50)
    csr.data[csr.indptr[nan_row]] = np.nan
    csr.indices[csr.indptr[index_row + 1] - 1] = 99
    match = r"NaN or infinite values \(row 50\)" if nan_first else "row 50 holds feature index 99"
    with pytest.raises(DataError, match=match):
        scan_features(csr, np.ones(1))


def test_the_setup_pass_is_the_same_on_two_slices_with_weights():
    X = _matrix(n_rows=60_000, n_features=300, density=0.15)
    csr = as_csr(X, np.float64)
    weights = np.random.default_rng(2).uniform(0.5, 2.0, X.shape[0])
    one, two = scan_features(csr, weights, n_threads=1), scan_features(csr, weights, n_threads=2)
    np.testing.assert_array_equal(one.sq_sums, two.sq_sums)
    expected = np.asarray(X.multiply(X).T @ weights).ravel()
    np.testing.assert_allclose(two.sq_sums, expected, rtol=1e-12)
    counts = np.bincount(X.indices, minlength=X.shape[1])
    expected_inv = np.where(counts > 0, X.shape[0] / np.maximum(counts, 1), 0)
    np.testing.assert_array_equal(two.inverse_row_frequency(), expected_inv)
