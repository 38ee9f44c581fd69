"""``hogwild model show``, ``predict --raw`` and ``hogwild model export --format liblinear`` (read back by
LIBLINEAR's own ``load_model``/``predict`` from liblinear-official)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import hogwild
from hogwild.cli.main import cli
from hogwild.model_io import load_model
from conftest import make_sparse_classification, shared_file


def _run(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def _trained(tmp_path, X, y, name="m.npz", **config):
    model = hogwild.train(X, y, mode="serial", epochs=3, **config).model
    model.save(tmp_path / name)
    return model


def test_show_lists_the_header_the_largest_weights_and_sparsity(tmp_path):
    X, y = make_sparse_classification(300, 40, density=0.3, seed=13)
    model = _trained(tmp_path, X, y, l1=0.02, penalty="l1")
    done = _run("model", "show", tmp_path / "m.npz", "--top", 4, "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["kind"] == "linear" and report["loss"] == "log_loss" and report["n_features"] == 40
    assert report["classes"] == [-1, 1] and report["format_version"] == 2 and report["hash_bits"] is None
    coef = model.coef[:, 0].astype(np.float64)
    expected = np.argsort(-np.abs(coef), kind="stable")[:4]
    assert [j for j, _ in report["outputs"][0]["top"]] == list(expected + 1)  # LIBSVM's 1-based numbering
    np.testing.assert_allclose([w for _, w in report["outputs"][0]["top"]], coef[expected], rtol=1e-6)
    assert report["sparsity"]["zero_weights"] == int((model.coef == 0).sum()) > 0
    zero_based = json.loads(_run("model", "show", tmp_path / "m.npz", "--top", 4, "--json", "--zero-based").output)
    assert [j for j, _ in zero_based["outputs"][0]["top"]] == list(expected)
    text = _run("model", "show", tmp_path / "m.npz").output
    assert "sparsity" in text and "intercept" in text and "feature" in text


def test_show_a_multiclass_a_hashed_and_an_mlp_model(tmp_path):
    X, y = make_sparse_classification(300, 40, density=0.3, seed=14)
    y3 = np.asarray(np.argmax(X[:, :3].toarray(), axis=1)) + 1
    _trained(tmp_path, X, y3, "multi.npz", multiclass="softmax")
    report = json.loads(_run("model", "show", tmp_path / "multi.npz", "--json").output)
    assert [o["output"] for o in report["outputs"]] == ["class 1", "class 2", "class 3"]
    _trained(tmp_path, X, y, "hashed.npz", hash_bits=5)
    report = json.loads(_run("model", "show", tmp_path / "hashed.npz", "--json").output)
    assert report["hash_bits"] == 5 and report["index"] == {"name": "bucket", "first": 0}
    mlp = _trained(tmp_path, X, y, "mlp.npz", model="mlp", hidden=(3,))
    report = json.loads(_run("model", "show", tmp_path / "mlp.npz", "--json", "--top", 2).output)
    norms = np.sqrt((mlp.coefs[0].astype(np.float64) ** 2).sum(axis=1))
    assert report["hidden"] == [3] and report["outputs"][0]["top"][0][1] == pytest.approx(norms.max(), rel=1e-6)


def test_predict_raw_writes_the_decision_values(tmp_path):
    from hogwild.datasets.libsvm import dump_libsvm

    X, y = make_sparse_classification(200, 30, density=0.3, seed=15)
    dump_libsvm(X, y, tmp_path / "d.svm")
    y3 = np.asarray(np.argmax(X[:, :3].toarray(), axis=1))
    for name, labels, extra in (("bin.npz", y, {}), ("multi.npz", y3, {"multiclass": "ovr"})):
        model = _trained(tmp_path, X, labels, name, **extra)
        done = _run("predict", tmp_path / name, tmp_path / "d.svm", "--raw")
        assert done.exit_code == 0, done.output
        values = np.loadtxt(done.output.splitlines())
        np.testing.assert_allclose(values, model.decision_function(X), rtol=1e-6, atol=1e-6)
    both = _run("predict", tmp_path / "bin.npz", tmp_path / "d.svm", "--raw", "--proba")
    assert both.exit_code == 2 and "give --proba or --raw, not both" in both.output


liblinearutil = pytest.importorskip("liblinear.liblinearutil")


def _liblinear_labels(model_file, data_file):
    y, x = liblinearutil.svm_read_problem(str(data_file))
    labels, _, values = liblinearutil.predict(y, x, liblinearutil.load_model(str(model_file)), "-q")
    return np.asarray(labels), np.asarray(values)


def _hogwild_labels(model_file, data_file, *extra):
    done = _run("predict", model_file, data_file, *extra)
    assert done.exit_code == 0, done.output
    return np.array([float(v) for v in done.output.split()])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_liblinear_predicts_the_labels_hogwild_predicts_on_a9a(tmp_path, dtype):
    a9a = shared_file("a9a")
    done = _run("train", a9a, "--epochs", 3, "--dtype", dtype, "--save", tmp_path / "a9a.npz", "--quiet")
    assert done.exit_code == 0, done.output
    exported = _run("model", "export", tmp_path / "a9a.npz", "--format", "liblinear", "-o", tmp_path / "a9a.ll")
    assert exported.exit_code == 0, exported.output
    theirs, values = _liblinear_labels(tmp_path / "a9a.ll", a9a)
    ours = _hogwild_labels(tmp_path / "a9a.npz", a9a)
    assert ours.size == 32_561
    assert np.array_equal(theirs, ours), f"{int((theirs != ours).sum())} of {ours.size} labels differ"
    np.testing.assert_allclose(values[:, 0], _hogwild_labels(tmp_path / "a9a.npz", a9a, "--raw"), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("multiclass", ["ovr", "softmax"])
def test_liblinear_agrees_on_a_multiclass_model(tmp_path, multiclass):
    from hogwild.datasets.libsvm import dump_libsvm

    X, y = make_sparse_classification(400, 50, density=0.2, seed=16)
    y4 = np.asarray(np.argmax(X[:, :4].toarray(), axis=1)) * 2 + 1  # labels 1, 3, 5, 7
    dump_libsvm(X, y4, tmp_path / "d.svm")
    _trained(tmp_path, X, y4, "m.npz", multiclass=multiclass)
    assert _run("model", "export", tmp_path / "m.npz", "--format", "liblinear", "-o", tmp_path / "m.ll").exit_code == 0
    theirs, _ = _liblinear_labels(tmp_path / "m.ll", tmp_path / "d.svm")
    assert np.array_equal(theirs, _hogwild_labels(tmp_path / "m.npz", tmp_path / "d.svm"))


def test_liblinear_regression_values_match(tmp_path):
    from hogwild.datasets.libsvm import dump_libsvm

    X, _ = make_sparse_classification(300, 20, density=0.4, seed=17)
    target = np.asarray(X @ np.arange(20.0)).ravel()
    dump_libsvm(X, target, tmp_path / "d.svm")
    _trained(tmp_path, X, target, "r.npz", loss="squared_error", dtype="float64")
    assert _run("model", "export", tmp_path / "r.npz", "--format", "liblinear", "-o", tmp_path / "r.ll").exit_code == 0
    theirs, _ = _liblinear_labels(tmp_path / "r.ll", tmp_path / "d.svm")
    np.testing.assert_allclose(theirs, _hogwild_labels(tmp_path / "r.npz", tmp_path / "d.svm"), rtol=1e-6, atol=1e-6)


def test_models_without_a_liblinear_form_are_refused_in_one_line(tmp_path):
    X, y = make_sparse_classification(100, 10, seed=18)
    _trained(tmp_path, X, y, "mlp.npz", model="mlp", hidden=(2,))
    _trained(tmp_path, X, y, "hashed.npz", hash_bits=4)
    _trained(tmp_path, X, np.where(y > 0, "yes", "no"), "strings.npz")
    for name, message in (("mlp.npz", "is an MLP"), ("hashed.npz", "hashes its features"),
                          ("strings.npz", "not integers")):
        done = _run("model", "export", tmp_path / name, "--format", "liblinear", "-o", tmp_path / "x.ll")
        assert done.exit_code == 1 and message in str(done.exception), done.output
        assert not (tmp_path / "x.ll").exists()
    onto = _run("model", "export", tmp_path / "mlp.npz", "--format", "liblinear", "-o", tmp_path / "mlp.npz")
    assert onto.exit_code == 1 and "is also the input MODEL" in str(onto.exception)
    assert load_model(tmp_path / "mlp.npz").kind == "mlp"
