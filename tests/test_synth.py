"""The synthetic generator: a slow Python twin of its kernels, shape and texture, determinism, learnability."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from hogwild.datasets.synth import PRESETS, make_synthetic
from hogwild.errors import ConfigError
from hogwild.kernels import synth as K

MASK = (1 << 64) - 1


# ----------------------------------------------------------------------------- slow twin of the kernels


def _mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


class TwinStream:
    """splitmix64 seeded from (seed, block, stream), exactly as `hogwild.kernels.synth` does it."""

    def __init__(self, seed, block, stream):
        golden = 0x9E3779B97F4A7C15
        z = _mix64((seed + golden) & MASK)
        z = _mix64(z ^ ((block * golden) & MASK))
        self.state = _mix64(z ^ ((stream * 0xD1B54A32D192ED03) & MASK))

    def uniform(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        return ((_mix64(self.state) >> 11) + 0.5) * 2.0**-53

    def normal(self):
        u1, u2 = self.uniform(), self.uniform()
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)

    def zipf_rank(self, n_features, exponent, shift=0.0):
        u = self.uniform()
        if exponent == 1.0:
            x = (1.0 + shift) * math.exp(u * math.log((n_features + 1.0 + shift) / (1.0 + shift))) - shift
        else:
            low = (1.0 + shift) ** (1.0 - exponent)
            scale = (n_features + 1.0 + shift) ** (1.0 - exponent) - low
            x = (low + u * scale) ** (1.0 / (1.0 - exponent)) - shift
        return min(max(int(x) - 1, 0), n_features - 1)


def twin_rows(seed, n_rows, n_features, mean_nnz, spread, max_nnz, exponent, permutation, idf, kind, shift=0.0):
    """Rows as lists of (ids, values), drawn one by one in Python."""
    lengths = []
    for block in range(-(-n_rows // K.BLOCK_ROWS)):
        stream = TwinStream(seed, block, 1)
        for _ in range(block * K.BLOCK_ROWS, min(n_rows, (block + 1) * K.BLOCK_ROWS)):
            k = round(mean_nnz * math.exp(spread * stream.normal() - 0.5 * spread**2)) if spread > 0 else round(mean_nnz)
            lengths.append(max(1, min(k, max_nnz)))
    rows = []
    for block in range(-(-n_rows // K.BLOCK_ROWS)):
        stream = TwinStream(seed, block, 2)
        for row in range(block * K.BLOCK_ROWS, min(n_rows, (block + 1) * K.BLOCK_ROWS)):
            k = lengths[row]
            if k == n_features:
                ids = list(range(k))
            else:
                chosen, draws = [], 0
                while len(chosen) < k:
                    draws += 1
                    j = (int(permutation[stream.zipf_rank(n_features, exponent, shift)]) if draws <= 64 * k
                         else int(stream.uniform() * n_features))
                    if j not in chosen:
                        chosen.append(j)
                ids = sorted(chosen)
            if kind == K.VALUES_TFIDF:
                raw = [(1.0 + math.log(1.0 - math.log(stream.uniform()))) * idf[j] for j in ids]
                norm = math.sqrt(sum(v * v for v in raw))
                values = [v / norm for v in raw]
            elif kind == K.VALUES_BINARYISH:
                values = []
                for _ in ids:
                    u = stream.uniform()
                    values.append(1.0 if u < 0.9 else stream.uniform())
            elif kind == K.VALUES_BINARY:
                values = [1.0] * k
            else:
                values = [stream.normal() for _ in ids]
            rows.append((ids, values))
    return rows


@pytest.mark.parametrize("kind", [K.VALUES_TFIDF, K.VALUES_BINARYISH, K.VALUES_BINARY, K.VALUES_GAUSSIAN])
@pytest.mark.parametrize("exponent, shift", [(1.1, 0.0), (1.0, 0.0), (1.1, 7.5), (1.0, 7.5)])
def test_kernels_match_the_python_twin(kind, exponent, shift):
    seed, n_rows, n_features = 11, K.BLOCK_ROWS + 37, 60  # two blocks, the second one short
    mean_nnz, spread = (n_features, 0.0) if kind == K.VALUES_GAUSSIAN else (6.0, 0.7)
    max_nnz = n_features
    permutation = np.random.default_rng(3).permutation(n_features).astype(np.int32)
    idf = 1.0 + np.random.default_rng(4).random(n_features)
    lengths = np.empty(n_rows, np.int64)
    n_blocks = -(-n_rows // K.BLOCK_ROWS)
    K.row_lengths(seed, 0, n_blocks, n_rows, mean_nnz, spread, max_nnz, lengths)
    indptr = np.zeros(n_rows + 1, np.int32)
    indptr[1:] = np.cumsum(lengths)
    indices = np.empty(indptr[-1], np.int32)
    data = np.empty(indptr[-1], np.float64)
    # Blocks in reverse order and one at a time: the result must not depend on who makes which block.
    for block in reversed(range(n_blocks)):
        K.fill_rows(seed, block, block + 1, n_rows, n_features, exponent, shift, permutation, idf, kind,
                    indptr, indices, data)
    twin = twin_rows(seed, n_rows, n_features, mean_nnz, spread, max_nnz, exponent, permutation, idf, kind, shift)
    for row in range(0, n_rows, 7):  # every 7th row keeps the Python twin quick
        ids, values = twin[row]
        got = slice(indptr[row], indptr[row + 1])
        assert indices[got].tolist() == ids, f"row {row}"
        np.testing.assert_allclose(data[got], values, rtol=1e-12, atol=0, err_msg=f"row {row}")


def test_scores_kernel_matches_numpy():
    rng = np.random.default_rng(0)
    X = sp.random(50, 30, density=0.2, format="csr", random_state=rng, dtype=np.float32)
    coef = rng.standard_normal((30, 3))
    scores = np.empty((50, 3))
    K.csr_scores(0, 50, X.indptr, X.indices, X.data, coef, scores)
    np.testing.assert_allclose(scores, X.toarray().astype(np.float64) @ coef, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------- shape and texture


def _assert_canonical(X):
    for i in range(X.shape[0]):
        row = X.indices[X.indptr[i]:X.indptr[i + 1]]
        assert np.all(np.diff(row) > 0), f"row {i} indices not strictly ascending: {row}"


@pytest.mark.parametrize("like", ["rcv1", "url", "kdda", "dense"])
def test_presets_have_their_texture(like):
    n_features = 50 if like == "dense" else 5_000
    X, y, info = make_synthetic(like=like, n_rows=3_000, n_features=n_features, seed=1)
    assert sp.isspmatrix_csr(X) and X.shape == (3_000, n_features)
    assert X.dtype == np.float32 and X.indices.dtype == np.int32
    _assert_canonical(X)
    row_nnz = np.diff(X.indptr)
    assert row_nnz.min() >= 1
    if like == "dense":
        assert np.all(row_nnz == n_features)
    else:
        target = PRESETS[like]["nnz_per_row"]
        assert abs(row_nnz.mean() - target) < 0.1 * target, f"mean nnz/row {row_nnz.mean()} vs {target}"
    if like == "rcv1":
        assert np.all(X.data > 0)
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    if like == "kdda":
        assert np.all(X.data == 1.0)
    if like == "url":
        assert np.all((X.data > 0) & (X.data <= 1))
        ones = np.mean(X.data == 1.0)
        assert 0.85 < ones < 0.95, f"fraction of 1.0 values {ones}"
    assert set(np.unique(y)) == {-1.0, 1.0}
    assert info["nnz"] == X.nnz and info["like"] == like


def test_popularity_is_zipf_like_and_scattered():
    X, _, _ = make_synthetic(like="kdda", n_rows=20_000, n_features=10_000, seed=2)
    degrees = np.bincount(X.indices, minlength=X.shape[1])
    top = np.argsort(-degrees)[:20]
    # A heavy head: the top 1% of features hold a large share of all entries ...
    share = degrees[np.argsort(-degrees)[:100]].sum() / X.nnz
    assert share > 0.3, f"top-100 share {share}"
    # ... and most features are rare.
    assert np.median(degrees) < 0.01 * X.shape[0]
    # Popular features are spread over the id range, not packed at the low ids.
    assert top.max() > X.shape[1] // 2, f"top ids {sorted(top)}"


def test_overrides_and_defaults():
    X, _, info = make_synthetic(like="url", n_rows=500, n_features=2_000, nnz_per_row=10, seed=0)
    assert X.shape == (500, 2_000) and abs(np.diff(X.indptr).mean() - 10) < 1.5
    X, _, _ = make_synthetic(like="dense", n_rows=10, seed=0)
    assert X.shape == (10, PRESETS["dense"]["features"])
    X, _, _ = make_synthetic(like="rcv1", n_rows=20, n_features=8, nnz_per_row=50, seed=0)
    assert np.diff(X.indptr).max() <= 8  # rows cannot hold more features than there are
    _assert_canonical(X)


def test_float64_output():
    X, _, info = make_synthetic(n_rows=100, n_features=500, dtype=np.float64, seed=0)
    X32, _, _ = make_synthetic(n_rows=100, n_features=500, dtype=np.float32, seed=0)
    assert X.dtype == np.float64 and info["dtype"] == "float64"
    assert np.array_equal(X.indices, X32.indices)
    np.testing.assert_allclose(X.data, X32.data, rtol=1e-6)


# --------------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_same_seed_same_arrays_whatever_the_thread_count(task):
    n_rows = 2 * K.BLOCK_ROWS + 100
    one = make_synthetic(n_rows=n_rows, n_features=3_000, seed=5, task=task, n_threads=1)
    two = make_synthetic(n_rows=n_rows, n_features=3_000, seed=5, task=task, n_threads=2)
    three = make_synthetic(n_rows=n_rows, n_features=3_000, seed=5, task=task, n_threads=3)
    for other in (two, three):
        assert np.array_equal(one[0].indptr, other[0].indptr)
        assert np.array_equal(one[0].indices, other[0].indices)
        assert one[0].data.tobytes() == other[0].data.tobytes()
        assert one[1].tobytes() == other[1].tobytes()
    different = make_synthetic(n_rows=n_rows, n_features=3_000, seed=6, task=task)
    assert not np.array_equal(one[0].indices[:1000], different[0].indices[:1000])


# ------------------------------------------------------------------------------------ labels, learning


def test_binary_labels_are_learnable_but_noisy():
    from sklearn.linear_model import LogisticRegression

    X, y, info = make_synthetic(n_rows=8_000, n_features=1_000, seed=3)
    balance = np.mean(y == 1)
    assert 0.45 < balance < 0.55, f"positive fraction {balance}"
    assert 0.85 < info["planted_accuracy"] < 0.97, f"planted accuracy {info['planted_accuracy']}"
    model = LogisticRegression(C=10.0, max_iter=2_000).fit(X[:6_000], y[:6_000])
    accuracy = model.score(X[6_000:], y[6_000:])
    print(f"held-out accuracy {accuracy:.3f} (threshold 0.80)")
    assert accuracy > 0.80, f"held-out accuracy {accuracy:.3f} <= 0.80"


def test_label_noise_is_the_flipped_fraction():
    _, _, clean = make_synthetic(n_rows=5_000, n_features=1_000, seed=4, label_noise=0.0, margin_noise=0.0)
    assert clean["planted_accuracy"] == 1.0
    _, _, noisy = make_synthetic(n_rows=5_000, n_features=1_000, seed=4, label_noise=0.2, margin_noise=0.0)
    assert abs(noisy["planted_accuracy"] - 0.8) < 0.03, noisy["planted_accuracy"]


def test_multiclass_labels_are_learnable():
    from sklearn.linear_model import LogisticRegression

    X, y, info = make_synthetic(like="dense", n_rows=4_000, n_features=40, seed=2, task="multiclass", n_classes=5)
    assert set(np.unique(y)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    counts = np.bincount(y.astype(int))[1:]
    assert counts.min() > 0.5 * len(y) / 5, f"class counts {counts}"
    assert info["coef"].shape == (40, 5) and info["n_classes"] == 5
    model = LogisticRegression(max_iter=2_000).fit(X[:3_000], y[:3_000])
    accuracy = model.score(X[3_000:], y[3_000:])
    print(f"multiclass held-out accuracy {accuracy:.3f} (threshold 0.70, chance 0.2)")
    assert accuracy > 0.70, f"held-out accuracy {accuracy:.3f} <= 0.70"


def test_regression_targets_follow_the_planted_model():
    X, y, info = make_synthetic(like="dense", n_rows=2_000, n_features=20, seed=1, task="regression",
                                label_noise=0.1)
    Xd = X.toarray().astype(np.float64)
    coef, *_ = np.linalg.lstsq(Xd, y, rcond=None)
    r2 = 1 - np.sum((y - Xd @ coef) ** 2) / np.sum((y - y.mean()) ** 2)
    print(f"least-squares R^2 {r2:.3f} (threshold 0.95)")
    assert r2 > 0.95
    assert np.corrcoef(coef, info["coef"])[0, 1] > 0.99


def test_text_output_reads_back_with_scikit_learn(tmp_path):
    from sklearn.datasets import load_svmlight_file

    from hogwild.datasets.libsvm import dump_libsvm

    X, y, _ = make_synthetic(n_rows=300, n_features=400, seed=8)
    dump_libsvm(X, y, tmp_path / "s.svm")
    X2, y2 = load_svmlight_file(str(tmp_path / "s.svm"), n_features=400, dtype=np.float32)
    assert np.array_equal(y, y2)
    assert np.array_equal(X.indptr, X2.indptr) and np.array_equal(X.indices, X2.indices)
    assert np.array_equal(X.data, X2.data)


@pytest.mark.parametrize(
    "kwargs, option",
    [
        ({"like": "news"}, "like"),
        ({"task": "ranking"}, "task"),
        ({"n_rows": 0}, "n_rows"),
        ({"n_features": 0}, "n_features"),
        ({"nnz_per_row": 0}, "nnz_per_row"),
        ({"label_noise": 1.5}, "label_noise"),
        ({"task": "multiclass", "n_classes": 1}, "n_classes"),
        ({"seed": -1}, "seed"),
        ({"dtype": np.int32}, "dtype"),
        ({"like": "dense", "nnz_per_row": 3}, "nnz_per_row"),
    ],
)
def test_bad_arguments_raise_config_errors(kwargs, option):
    args = {"n_rows": 10, "n_features": 20, **kwargs}
    with pytest.raises(ConfigError) as info:
        make_synthetic(**args)
    assert info.value.option == option
