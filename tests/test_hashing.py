"""Feature hashing: MurmurHash3 against scikit-learn's, hashed rows against a NumPy twin, collision counts, the
model header (format 3) and predict/evaluate hashing raw input, the estimators' parameter, and news20 at 2^18."""

import json

import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

import hogwild
from hogwild.cli.main import cli
from hogwild.errors import ConfigError, ModelFormatError
from hogwild.hashing import collisions, hash_features
from hogwild.kernels.hashing import hash_columns, murmurhash3_32
from hogwild.model_io import load_model, save_model
from conftest import make_sparse_classification, shared_file

sklearn_utils = pytest.importorskip("sklearn.utils")


def _reference_hash(columns, bits):
    return np.array([sklearn_utils.murmurhash3_32(np.int32(c), seed=0, positive=True) % (1 << bits) for c in columns],
                    dtype=np.int64)


def naive_hash(X, bits):
    """The NumPy twin of `hash_features`: each column to sklearn's murmurhash3_32 mod 2^bits, duplicates summed."""
    coo = sp.csr_matrix(X).tocoo()
    columns = _reference_hash(coo.col, bits)
    out = sp.csr_matrix((coo.data.astype(np.float64), (coo.row, columns)), shape=(X.shape[0], 1 << bits))
    out.sum_duplicates()
    return out


def test_murmurhash3_matches_scikit_learn_exactly():
    rng = np.random.default_rng(0)
    keys = np.concatenate([np.arange(2000), rng.integers(0, 2**31 - 1, 20_000), [2**31 - 1, 2**30, 2**16]])
    expected = np.array([sklearn_utils.murmurhash3_32(np.int32(k), seed=0, positive=True) for k in keys])
    assert all(murmurhash3_32(int(k)) == e for k, e in zip(keys[:500], expected[:500]))
    hashed = np.empty(keys.size, dtype=np.int32)
    hash_columns(keys.astype(np.int32), (1 << 30) - 1, hashed)
    np.testing.assert_array_equal(hashed, expected % (1 << 30))


@pytest.mark.parametrize("bits", [1, 4, 10, 18])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_hashed_rows_match_the_numpy_twin(bits, dtype, index_dtype):
    X = sp.random(300, 5000, density=0.01, format="csr", random_state=1, dtype=dtype)
    X.indices, X.indptr = X.indices.astype(index_dtype), X.indptr.astype(index_dtype)
    hashed = hash_features(X, bits)
    assert hashed.shape == (300, 1 << bits) and hashed.has_canonical_format
    assert hashed.data.dtype == dtype
    reference = naive_hash(X, bits)
    assert hashed.nnz == reference.nnz
    np.testing.assert_allclose(hashed.toarray(), reference.toarray(), rtol=1e-6)


def test_hashing_a_mapped_set_is_mapped_and_the_same(tmp_path):
    from hogwild.datasets.cache import read_cache, write_cache
    from hogwild.memory import csr_is_mapped

    X = sp.random(2000, 3000, density=0.02, format="csr", random_state=2, dtype=np.float32)
    folder = write_cache(X, np.ones(2000), tmp_path / "x.hwcache", index_shift=1, raw_min_index=1)
    mapped = read_cache(folder).X
    hashed = hash_features(mapped, 9)
    assert csr_is_mapped(hashed)
    assert (hashed != hash_features(X, 9)).nnz == 0


def test_dense_input_and_bad_bits():
    dense = np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]])
    np.testing.assert_allclose(hash_features(dense, 3).toarray(), naive_hash(sp.csr_matrix(dense), 3).toarray())
    for bad in (0, 31, 2.5, True, "8"):
        with pytest.raises(ConfigError, match="--hash-bits must be an integer from 1 to 30"):
            hash_features(dense, bad)


def test_collision_counts_match_a_direct_count():
    X = sp.random(400, 6000, density=0.01, format="csr", random_state=3)
    report = collisions(X, 10)
    used = np.unique(X.indices)
    buckets, counts = np.unique(_reference_hash(used, 10), return_counts=True)
    assert report["features_used"] == used.size and report["buckets_used"] == buckets.size
    assert report["features_colliding"] == counts[counts > 1].sum()
    assert report["nnz"] == X.nnz and report["nnz_hashed"] == naive_hash(X, 10).nnz
    assert report["row_collisions"] == X.nnz - report["nnz_hashed"]


@pytest.mark.parametrize("model", ["linear", "mlp"])
def test_a_hashed_model_hashes_what_it_scores_and_keeps_it_in_its_file(tmp_path, model):
    X, y = make_sparse_classification(400, 300, density=0.05, seed=4)
    extra = {"hidden": (8,)} if model == "mlp" else {}
    result = hogwild.train(X, y, model=model, mode="serial", epochs=3, hash_bits=7, X_test=X, y_test=y, **extra)
    trained = result.model
    assert trained.hash_bits == 7 and trained.n_features == 128
    # the loop's evaluation scored the raw test rows through the model's hashing
    assert result.history[-1]["test_accuracy"] == pytest.approx((trained.predict(X) == y).mean())
    direct = trained.decision_function(X)
    trained.hash_bits = None
    np.testing.assert_allclose(trained.decision_function(hash_features(X, 7)), direct)
    trained.hash_bits = 7
    path = tmp_path / "hashed.npz"
    save_model(trained, path)
    again = load_model(path)
    assert again.hash_bits == 7
    np.testing.assert_array_equal(again.predict(X), trained.predict(X))
    wider = sp.hstack([X, sp.random(400, 5000, density=0.001, random_state=5)]).tocsr()
    assert again.predict(wider).shape == (400,)  # any width: every index hashes somewhere
    with np.load(path) as archive:
        header = json.loads(archive["__header__"].tobytes())
    assert header["format_version"] == 3 and header["hash_bits"] == 7


def _resigned(path, target, edit):
    from hogwild.model_io import _header_checksum

    with np.load(path, allow_pickle=False) as archive:
        members = {name: archive[name] for name in archive.files}
    header = json.loads(members["__header__"].tobytes())
    edit(header)
    header["header_sha256"] = _header_checksum(header)
    members["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(target, "wb") as handle:
        np.savez(handle, **members)


@pytest.mark.parametrize("edit, message", [
    (lambda h: h.update(hash_bits=31), "hash_bits 31 is not an integer from 1 to 30"),
    (lambda h: h.update(hash_bits=6), "hashed to 6 bits has 64 features; the header says 128"),
    (lambda h: h.update(hash_bits="7"), "hash_bits '7' is not an integer"),
    (lambda h: h.pop("hash_bits"), "says nothing of hash_bits"),
    (lambda h: h.update(format_version=2), "written in format 3, not 2"),
])
def test_damaged_hash_bits_are_refused_in_one_sentence(tmp_path, edit, message):
    X, y = make_sparse_classification(100, 50, seed=6)
    path = tmp_path / "m.npz"
    save_model(hogwild.train(X, y, mode="serial", epochs=1, hash_bits=7).model, path)
    _resigned(path, tmp_path / "edited.npz", edit)
    with pytest.raises(ModelFormatError, match=message) as info:
        load_model(tmp_path / "edited.npz")
    assert str(info.value).startswith(str(tmp_path / "edited.npz"))


def _write_libsvm(path, X, y):
    from hogwild.datasets.libsvm import dump_libsvm

    dump_libsvm(X, y, path)
    return path


def test_cli_train_predict_evaluate_and_info_with_hash_bits(tmp_path):
    X, y = make_sparse_classification(300, 400, density=0.05, seed=7)
    train = _write_libsvm(tmp_path / "train.svm", X, y)
    runner = CliRunner()
    done = runner.invoke(cli, ["train", str(train), "--hash-bits", "8", "--save", str(tmp_path / "m.npz"),
                               "--epochs", "2", "--quiet", "--no-cache"])
    assert done.exit_code == 0, done.output
    model = load_model(tmp_path / "m.npz")
    assert model.hash_bits == 8
    predicted = runner.invoke(cli, ["predict", str(tmp_path / "m.npz"), str(train)])
    assert predicted.exit_code == 0, predicted.output
    assert predicted.output.split() == [str(int(v)) for v in model.predict(X)]
    evaluated = runner.invoke(cli, ["evaluate", str(tmp_path / "m.npz"), str(train), "--json"])
    assert json.loads(evaluated.output)["accuracy"] == pytest.approx((model.predict(X) == y).mean())
    refused = runner.invoke(cli, ["predict", str(tmp_path / "m.npz"), str(train), "--ignore-extra-features"])
    assert refused.exit_code == 2 and "no feature is extra" in refused.output
    info = runner.invoke(cli, ["data", "info", str(train), "--hash-bits", "8", "--json", "--no-cache"])
    assert json.loads(info.output)["hashing"] == collisions(X, 8)
    text = runner.invoke(cli, ["data", "info", str(train), "--hash-bits", "8", "--no-cache"])
    assert "colliding features" in text.output


@pytest.mark.parametrize("value", ["0", "31", "-3"])
def test_hash_bits_out_of_range_is_one_line_exit_2(tmp_path, value):
    X, y = make_sparse_classification(50, 20, seed=8)
    train = _write_libsvm(tmp_path / "train.svm", X, y)
    for command in (["train", str(train), "--quiet", "--no-cache"], ["data", "info", str(train), "--no-cache"]):
        done = CliRunner().invoke(cli, [*command, "--hash-bits", value])
        assert done.exit_code == 2
        assert "--hash-bits must be an integer from 1 to 30" in done.output


def test_estimators_take_hash_bits():
    X, y = make_sparse_classification(300, 200, density=0.05, seed=9)
    classifier = hogwild.HogwildClassifier(hash_bits=9, max_iter=3, tol=None, random_state=0).fit(X, y)
    assert classifier.model_.n_features == 512 and classifier.score(X, y) > 0.7
    mlp = hogwild.MLPClassifier(hidden_layer_sizes=(4,), hash_bits=9, max_iter=2, random_state=0).fit(X, y)
    assert mlp.model_.hash_bits == 9 and mlp.predict(X).shape == (300,)


def test_news20_hashed_to_18_bits_loses_at_most_a_point():
    from hogwild.datasets.libsvm import load_libsvm
    from hogwild.problem import split_rows

    X, y = load_libsvm(shared_file("news20.bz2"))
    train_rows, test_rows = split_rows(X.shape[0], 0.2, 0)
    accuracy = {}
    for bits in (None, 18):
        result = hogwild.train(X[train_rows], y[train_rows], epochs=5, hash_bits=bits, multiclass="softmax",
                               lr=0.05, mode="serial", X_test=X[test_rows], y_test=y[test_rows])
        accuracy[bits] = result.history[-1]["test_accuracy"]
    assert accuracy[18] >= accuracy[None] - 0.01, f"hashed {accuracy[18]:.4f} vs unhashed {accuracy[None]:.4f}"


def test_hash_bits_too_wide_for_memory_is_refused_before_training(tmp_path, monkeypatch):
    X, y = make_sparse_classification(50, 20, seed=21)
    train = _write_libsvm(tmp_path / "train.svm", X, y)
    monkeypatch.setattr("hogwild.cli.stream.available_memory", lambda: 1 << 30)
    done = CliRunner().invoke(cli, ["train", str(train), "--hash-bits", "28", "--quiet", "--no-cache"])
    assert done.exit_code == 2 and "--hash-bits 28 needs about" in done.output and "GiB are available" in done.output
    assert hogwild.hash_features is hash_features
