"""Dataset statistics against a brute-force NumPy twin: Omega, Delta, rho (exact and sampled), labels."""

import numpy as np
import pytest
import scipy.sparse as sp

from hogwild.datasets.stats import dataset_stats, label_stats
from hogwild.errors import DataError
from hogwild.kernels import stats as K


def naive_overlap_counts(X):
    """counts[e] = rows whose support meets row e's (itself included), from the dense 0/1 pattern."""
    pattern = (X.toarray() != 0).astype(np.int64)
    meets = (pattern @ pattern.T) > 0
    return meets.sum(axis=1)


def naive_stats(X):
    """Omega, Delta and rho straight from their definitions (Niu et al., 2011)."""
    pattern = X.toarray() != 0
    n = pattern.shape[0]
    omega = int(pattern.sum(axis=1).max())
    delta = pattern.sum(axis=0).max() / n if pattern.shape[1] else 0.0
    rho = naive_overlap_counts(X).max() / n
    return omega, delta, rho


def _hand_made():
    # rows: {0,1}, {1}, {2}, {3,4}, {} ; feature 1 is in 2 of 5 rows; row 0 meets rows 0,1 -> rho 2/5
    dense = np.array(
        [[1, 2, 0, 0, 0],
         [0, 3, 0, 0, 0],
         [0, 0, 4, 0, 0],
         [0, 0, 0, 5, 6],
         [0, 0, 0, 0, 0]], dtype=np.float64)
    return sp.csr_matrix(dense)


def test_hand_made_matrix():
    X = _hand_made()
    stats = dataset_stats(X, np.array([1, -1, 1, 1, -1.0]))
    assert stats["omega"] == 2 and stats["nnz_per_row_max"] == 2
    assert stats["delta"] == pytest.approx(2 / 5) and stats["delta_feature"] == 1
    assert stats["rho"] == pytest.approx(2 / 5) and stats["rho_exact"] and stats["rho_sample_rows"] == 5
    assert stats["rho_row"] in (0, 1)
    assert stats["rows"] == 5 and stats["features"] == 5 and stats["nnz"] == 6
    assert stats["density"] == pytest.approx(6 / 25)
    assert stats["nnz_per_row_min"] == 0 and stats["nnz_per_row_mean"] == pytest.approx(6 / 5)
    assert stats["empty_rows"] == 1 and stats["empty_features"] == 0
    assert stats["labels"] == {"-1": 2, "+1": 3} and stats["n_classes"] == 2


def test_a_shared_feature_links_every_row():
    X = sp.csr_matrix(np.array([[1, 0, 1], [1, 1, 0], [1, 0, 0]], dtype=np.float32))
    stats = dataset_stats(X)
    assert (stats["omega"], stats["delta"], stats["rho"]) == (2, 1.0, 1.0)
    assert "labels" not in stats


def test_disjoint_rows():
    X = sp.identity(7, format="csr")
    stats = dataset_stats(X)
    assert stats["omega"] == 1
    assert stats["delta"] == pytest.approx(1 / 7) and stats["rho"] == pytest.approx(1 / 7)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_random_matrices_match_the_twin(seed, index_dtype):
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(1, 60)), int(rng.integers(1, 40))
    X = sp.random(n, d, density=float(rng.uniform(0.01, 0.3)), format="csr", random_state=rng)
    X.indices = X.indices.astype(index_dtype)
    X.indptr = X.indptr.astype(index_dtype)
    stats = dataset_stats(X)
    omega, delta, rho = naive_stats(X)
    assert stats["omega"] == omega
    assert stats["delta"] == pytest.approx(delta)
    assert stats["rho"] == pytest.approx(rho), f"rho {stats['rho']} vs twin {rho}"
    if X.nnz:
        assert naive_overlap_counts(X)[stats["rho_row"]] == round(rho * n)


def test_sampled_rho_is_the_max_over_the_sampled_rows():
    rng = np.random.default_rng(7)
    X = sp.random(400, 300, density=0.01, format="csr", random_state=rng)
    counts = naive_overlap_counts(X)
    stats = dataset_stats(X, exact_max_rows=100, sample=50, seed=3)
    assert not stats["rho_exact"] and stats["rho_sample_rows"] == 50
    sampled = np.random.default_rng(3).choice(400, size=50, replace=False)
    assert stats["rho"] == pytest.approx(counts[sampled].max() / 400)
    assert stats["rho"] <= counts.max() / 400  # a lower bound of the true rho
    exact = dataset_stats(X, exact_max_rows=None)
    assert exact["rho_exact"] and exact["rho"] == pytest.approx(counts.max() / 400)


def test_overlap_kernel_counts_every_row_without_pruning():
    rng = np.random.default_rng(1)
    X = sp.random(30, 20, density=0.1, format="csr", random_state=rng)
    csc = X.tocsc()
    rows = np.arange(30, dtype=np.int64)
    big = np.full(30, 10**9, dtype=np.int64)  # bounds that never prune
    counts = np.empty(30, dtype=np.int64)
    best = K.overlap_counts(rows, big, X.indptr, X.indices, csc.indptr, csc.indices, 30, counts)
    twin = naive_overlap_counts(X)
    np.testing.assert_array_equal(counts[counts >= 0], twin[counts >= 0])
    assert best == twin.max()
    # It may stop early only once some row reaches every row.
    if best < 30:
        assert np.all(counts >= 0)


def test_feature_degrees_kernel_matches_bincount():
    rng = np.random.default_rng(2)
    X = sp.random(50, 33, density=0.2, format="csr", random_state=rng)
    degrees = np.empty(33, dtype=np.int64)
    K.feature_degrees(X.indices, 33, degrees)
    np.testing.assert_array_equal(degrees, np.bincount(X.indices, minlength=33))


def test_duplicates_and_dense_input_are_handled():
    # Duplicate entries of one (row, feature) count once.
    X = sp.csr_matrix((np.ones(4), np.array([2, 2, 0, 1]), np.array([0, 2, 4])), shape=(2, 3))
    stats = dataset_stats(X)
    assert stats["omega"] == 2 and stats["nnz"] == 3
    dense = dataset_stats(np.array([[0.0, 1.0], [2.0, 0.0]]))
    assert dense["rho"] == 0.5 and dense["delta"] == 0.5


def test_label_stats():
    assert label_stats(np.array([1, 2, 2, 3.0])) == {"labels": {"1": 1, "2": 2, "3": 1}, "n_classes": 3}
    real = label_stats(np.linspace(-1, 1, 101))
    assert real["labels"] is None and real["label_min"] == -1 and real["label_max"] == 1
    assert real["label_mean"] == pytest.approx(0.0)
    with pytest.raises(DataError, match="3 labels for 4 rows"):
        label_stats(np.zeros(3), n_rows=4)


def test_empty_dataset_is_an_error():
    with pytest.raises(DataError, match="no rows"):
        dataset_stats(sp.csr_matrix((0, 5)))


def test_synthetic_set_statistics_agree_with_its_shape():
    from hogwild.datasets.synth import make_synthetic

    X, y, _ = make_synthetic(like="kdda", n_rows=500, n_features=2_000, seed=0)
    stats = dataset_stats(X, y)
    assert stats["omega"] == np.diff(X.indptr).max()
    omega, delta, rho = naive_stats(X)
    assert stats["delta"] == pytest.approx(delta) and stats["rho"] == pytest.approx(rho)
    assert set(stats["labels"]) == {"-1", "+1"}
