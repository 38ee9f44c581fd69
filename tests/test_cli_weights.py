"""``train --sample-weight FILE`` and ``--class-weight``: the CLI trains what the Python API trains with the same
weights (linear and MLP, with and without a held-out split), and every bad input is one sentence."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import hogwild
from hogwild.cli.main import cli
from hogwild.cli.weights import parse_class_weight
from hogwild.model_io import load_model
from conftest import make_sparse_classification


@pytest.fixture
def files(tmp_path):
    from hogwild.datasets.libsvm import dump_libsvm, load_libsvm

    X, y = make_sparse_classification(300, 30, density=0.3, seed=11)
    dump_libsvm(X, y, tmp_path / "train.svm")
    X, y = load_libsvm(tmp_path / "train.svm", cache=False)  # as the CLI reads it (one-based, float32)
    weights = np.random.default_rng(0).uniform(0.0, 3.0, X.shape[0])
    (tmp_path / "w.txt").write_text("".join(f"{float(w)!r}\n" for w in weights))
    return tmp_path, X, y, weights


def _train(*args):
    return CliRunner().invoke(cli, ["train", *map(str, args)])


@pytest.mark.parametrize("model", ["linear", "mlp"])
@pytest.mark.parametrize("holdout", [False, True])
def test_cli_weights_train_what_the_api_trains(files, model, holdout):
    tmp_path, X, y, weights = files
    extra = ["--model", "mlp", "--hidden", "4"] if model == "mlp" else []
    split = ["--test-fraction", "0.25"] if holdout else []
    done = _train(tmp_path / "train.svm", "--sample-weight", tmp_path / "w.txt", "--class-weight", "1:3,-1:0.5",
                  "--mode", "serial", "--epochs", 2, "--no-cache", "--quiet", "--save", tmp_path / "m.npz",
                  "--metrics-json", tmp_path / "m.json", *extra, *split)
    assert done.exit_code == 0, done.output
    rows = np.arange(X.shape[0])
    if holdout:  # the CLI's split: a seeded permutation of DATA's rows (hogwild.cli.train._holdout)
        rows = np.sort(np.random.default_rng(0).permutation(X.shape[0])[int(round(X.shape[0] * 0.25)):])
    config = {"model": "mlp", "hidden": (4,)} if model == "mlp" else {}
    expected = hogwild.train(X[rows], y[rows], mode="serial", epochs=2, sample_weight=weights[rows],
                             class_weight={1: 3.0, -1: 0.5}, **config).model
    saved = load_model(tmp_path / "m.npz")
    for name, array in expected.arrays().items():
        np.testing.assert_allclose(saved.arrays()[name], array, rtol=1e-6, atol=1e-7, err_msg=name)
    report = json.loads((tmp_path / "m.json").read_text())
    assert report["dataset"]["sample_weight"] == str(tmp_path / "w.txt")
    assert report["dataset"]["class_weight"] == {"1": 3.0, "-1": 0.5}


def test_weights_change_the_model(files):
    tmp_path, X, y, _ = files
    plain = hogwild.train(X, y, mode="serial", epochs=2).model
    for args in (["--class-weight", "balanced"], ["--sample-weight", tmp_path / "w.txt"]):
        done = _train(tmp_path / "train.svm", *args, "--mode", "serial", "--epochs", 2, "--no-cache", "--quiet",
                      "--save", tmp_path / "m.npz")
        assert done.exit_code == 0, done.output
        assert not np.allclose(load_model(tmp_path / "m.npz").coef, plain.coef)


def test_class_weight_specs():
    assert parse_class_weight(None) is None and parse_class_weight(" balanced ") == "balanced"
    assert parse_class_weight("1:5,-1:0.5") == {1: 5.0, -1: 0.5}
    assert parse_class_weight("2.5:1") == {2.5: 1.0}


@pytest.mark.parametrize("content, message", [
    ("1\n2\nabc\n", ":3: the weight is not a number near 'abc'"),
    ("1\n\n2\n", ":2: the weight is empty"),
    ("1\n-2\n", ":2: the weight must be a finite number >= 0; got -2"),
    ("1\nnan\n", ":2: the weight must be a finite number >= 0; got nan"),
    ("1\n2\n", "has 2 weights but "),
])
def test_bad_weight_files_are_one_line_naming_file_and_line(files, content, message):
    tmp_path = files[0]
    (tmp_path / "bad.txt").write_text(content)
    done = _train(tmp_path / "train.svm", "--sample-weight", tmp_path / "bad.txt", "--no-cache", "--quiet")
    assert done.exit_code == 1
    assert message in str(done.exception) and str(tmp_path / "bad.txt") in str(done.exception)


@pytest.mark.parametrize("args, code, message", [
    (["--class-weight", "abc"], 2, "'abc' is not LABEL:WEIGHT"),
    (["--class-weight", "1:x"], 2, "'1:x' is not LABEL:WEIGHT"),
    (["--class-weight", "1:-1"], 2, "the weight of class 1 must be a finite number >= 0"),
    (["--class-weight", "1:1,1:2"], 2, "class 1 is given twice"),
    (["--class-weight", "balanced", "--loss", "squared_error"], 2, "applies only with a classification loss"),
    (["--class-weight", "7:2"], 1, "--class-weight names class 7, which is not among the labels of"),
    (["--sample-weight", "missing.txt"], 1, "--sample-weight missing.txt: no such file"),
])
def test_bad_weight_options_are_one_line(files, args, code, message):
    tmp_path = files[0]
    done = _train(tmp_path / "train.svm", *args, "--no-cache", "--quiet")
    assert done.exit_code == code
    shown = done.output if code == 2 else str(done.exception)
    assert message in shown, shown
