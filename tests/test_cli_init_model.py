"""``train --init-model MODEL``: continuing a saved model (linear and MLP), what it takes from MODEL, and the one
sentence for every mismatch (kind, layers, hashing: exit 2; features, classes, a damaged file: exit 1)."""

import numpy as np
import pytest
from click.testing import CliRunner

import hogwild
from hogwild.cli.main import cli
from hogwild.model_io import load_model
from conftest import make_sparse_classification


@pytest.fixture
def data(tmp_path):
    from hogwild.datasets.libsvm import dump_libsvm, load_libsvm

    X, y = make_sparse_classification(300, 30, density=0.3, seed=12)
    dump_libsvm(X, y, tmp_path / "train.svm")
    dump_libsvm(X[:, :20], y, tmp_path / "narrow.svm")
    dump_libsvm(np.hstack([X.toarray(), np.ones((300, 5))]), y, tmp_path / "wide.svm")
    dump_libsvm(X, np.where(y > 0, 3.0, -1.0), tmp_path / "relabelled.svm")
    X, y = load_libsvm(tmp_path / "train.svm", cache=False)
    return tmp_path, X, y


def _train(*args):
    return CliRunner().invoke(cli, ["train", *map(str, args), "--no-cache", "--quiet"])


@pytest.mark.parametrize("model", [[], ["--model", "mlp", "--hidden", "6"]])
def test_init_model_continues_as_the_api_does(data, model):
    tmp_path, X, y = data
    first = _train(tmp_path / "train.svm", "--mode", "serial", "--epochs", 1, "--save", tmp_path / "one.npz", *model)
    assert first.exit_code == 0, first.output
    # the model's kind and layers come from the file: no --model or --hidden needed to continue it
    again = _train(tmp_path / "train.svm", "--mode", "serial", "--epochs", 1, "--init-model", tmp_path / "one.npz",
                   "--save", tmp_path / "two.npz")
    assert again.exit_code == 0, again.output
    start = load_model(tmp_path / "one.npz")
    expected = hogwild.train(X, y, start.config if hasattr(start, "config") else None, mode="serial", epochs=1,
                             init_model=start, **({"model": "mlp", "hidden": (6,)} if model else {})).model
    continued = load_model(tmp_path / "two.npz")
    assert continued.kind == start.kind
    for name, array in expected.arrays().items():
        np.testing.assert_allclose(continued.arrays()[name], array, rtol=1e-6, atol=1e-7, err_msg=name)
    fresh = hogwild.train(X, y, mode="serial", epochs=1, **({"model": "mlp", "hidden": (6,)} if model else {}))
    assert not np.allclose(continued.arrays()["coef" if not model else "coef_0"],
                           fresh.model.arrays()["coef" if not model else "coef_0"])


def test_init_model_on_data_with_fewer_features_and_a_hashed_model(data):
    tmp_path, X, y = data
    assert _train(tmp_path / "train.svm", "--epochs", 1, "--save", tmp_path / "m.npz").exit_code == 0
    done = _train(tmp_path / "narrow.svm", "--epochs", 1, "--init-model", tmp_path / "m.npz", "--save",
                  tmp_path / "n.npz")
    assert done.exit_code == 0, done.output
    assert load_model(tmp_path / "n.npz").n_features == X.shape[1]
    assert _train(tmp_path / "train.svm", "--epochs", 1, "--hash-bits", 6, "--save", tmp_path / "h.npz").exit_code == 0
    done = _train(tmp_path / "wide.svm", "--epochs", 1, "--init-model", tmp_path / "h.npz", "--save",
                  tmp_path / "h2.npz")
    assert done.exit_code == 0, done.output
    assert load_model(tmp_path / "h2.npz").hash_bits == 6


@pytest.mark.parametrize("saved, args, code, message", [
    (["--model", "mlp", "--hidden", "4"], ["--model", "linear"], 2, "is an MLP (--hidden 4"),
    ([], ["--model", "mlp"], 2, "is a linear model with --model linear; this run has --model mlp"),
    (["--model", "mlp", "--hidden", "4"], ["--hidden", "8"], 2, "this run has --hidden 8"),
    (["--model", "mlp", "--hidden", "4"], ["--activation", "tanh"], 2, "this run has --activation tanh"),
    ([], ["--hash-bits", "6"], 2, "with --hash-bits no hashing; this run has --hash-bits 6"),
    (["--hash-bits", "6"], ["--hash-bits", "7"], 2, "with --hash-bits 6; this run has --hash-bits 7"),
])
def test_options_that_disagree_with_the_model_are_one_line_exit_2(data, saved, args, code, message):
    tmp_path = data[0]
    assert _train(tmp_path / "train.svm", "--epochs", 1, "--save", tmp_path / "m.npz", *saved).exit_code == 0
    done = _train(tmp_path / "train.svm", "--epochs", 1, "--init-model", tmp_path / "m.npz", *args)
    assert done.exit_code == code
    assert message in done.output, done.output


def test_data_that_disagrees_with_the_model_is_one_line_exit_1(data):
    tmp_path = data[0]
    assert _train(tmp_path / "train.svm", "--epochs", 1, "--save", tmp_path / "m.npz").exit_code == 0
    wide = _train(tmp_path / "wide.svm", "--epochs", 1, "--init-model", tmp_path / "m.npz")
    assert wide.exit_code == 1 and "has 35 features but --init-model" in str(wide.exception)
    labels = _train(tmp_path / "relabelled.svm", "--epochs", 1, "--init-model", tmp_path / "m.npz")
    assert labels.exit_code == 1 and "labels 3 are not among the classes of --init-model" in str(labels.exception)
    (tmp_path / "junk.npz").write_bytes(b"not a model")
    junk = _train(tmp_path / "train.svm", "--init-model", tmp_path / "junk.npz")
    assert junk.exit_code == 1 and "junk.npz" in str(junk.exception)
    missing = _train(tmp_path / "train.svm", "--init-model", tmp_path / "missing.npz")
    assert missing.exit_code == 1 and "model file not found" in str(missing.exception)
