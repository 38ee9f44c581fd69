"""Default settings reach LIBLINEAR's accuracy on the shared LIBSVM sets (split here with a fixed seed).

Data is read with scikit-learn's load_svmlight_file for now (a test dependency); hogwild's own parser is
tested in the data layer's tests.
"""

import pytest

import hogwild
from conftest import shared_file

pytest.importorskip("sklearn")
liblinear = pytest.importorskip("liblinear.liblinearutil")


def _split(name):
    from sklearn.datasets import load_svmlight_file
    from sklearn.model_selection import train_test_split

    X, y = load_svmlight_file(str(shared_file(name)))
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def _liblinear_accuracy(X_train, y_train, X_test, y_test, solver):
    model = liblinear.train(y_train, X_train, f"-s {solver} -c 1 -q")
    _, (accuracy, *_), _ = liblinear.predict(y_test, X_test, model, "-q")
    return accuracy / 100.0


@pytest.mark.parametrize("name", ["a9a", "w8a", "rcv1_small"])
def test_defaults_reach_liblinear_logistic(name):
    X_train, X_test, y_train, y_test = _split(name)
    reference = _liblinear_accuracy(X_train, y_train, X_test, y_test, solver=0)  # L2-regularized logistic
    result = hogwild.train(X_train, y_train, X_test=X_test, y_test=y_test)
    accuracy = result.history[-1]["test_accuracy"]
    threshold = reference - 0.003
    assert accuracy >= threshold, f"{name}: test accuracy {accuracy:.4f} < LIBLINEAR {reference:.4f} - 0.003"


def test_news20_softmax_beats_liblinear_one_vs_rest():
    X_train, X_test, y_train, y_test = _split("news20.bz2")
    reference = _liblinear_accuracy(X_train, y_train, X_test, y_test, solver=0)  # one-vs-rest logistic
    # Not the defaults: news20's 20 classes share each row's gradient, so a smaller AdaGrad rate and L2 do better.
    result = hogwild.train(X_train, y_train, multiclass="softmax", lr=0.05, l2=1e-6, X_test=X_test, y_test=y_test)
    accuracy = result.history[-1]["test_accuracy"]
    assert accuracy >= reference, f"news20 softmax accuracy {accuracy:.4f} < LIBLINEAR one-vs-rest {reference:.4f}"
