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


def _scaled(X_train, X_test, seed=0):
    """Every column multiplied by a fixed factor drawn log-uniformly from [1, 1000] (the same for both splits)."""
    import numpy as np
    import scipy.sparse as sp

    factors = sp.diags(np.exp(np.random.default_rng(seed).uniform(0.0, np.log(1000.0), size=X_train.shape[1])))
    return (X_train @ factors).tocsr(), (X_test @ factors).tocsr()


@pytest.mark.parametrize("name", ["a9a", "w8a"])
def test_default_estimators_need_no_feature_scaling(name):
    """Columns scaled by up to 1000x: the default classifier stays within a point of LIBLINEAR on the unscaled
    data, and the default regressor (squared error on the -1/+1 labels) trains without diverging."""
    X_train, X_test, y_train, y_test = _split(name)
    reference = _liblinear_accuracy(X_train, y_train, X_test, y_test, solver=0)
    X_train, X_test = _scaled(X_train, X_test)
    accuracy = hogwild.HogwildClassifier().fit(X_train, y_train).score(X_test, y_test)
    threshold = reference - 0.01
    assert accuracy >= threshold, f"{name} scaled: accuracy {accuracy:.4f} < unscaled LIBLINEAR {reference:.4f} - 0.01"
    r2 = hogwild.HogwildRegressor().fit(X_train, y_train).score(X_test, y_test)
    assert r2 > 0.2, f"{name} scaled: regressor R^2 {r2:.4f} <= 0.2"


def test_news20_softmax_defaults_reach_liblinear_one_vs_rest():
    """Softmax with the defaults (adagrad at 0.1/sqrt(20): `TrainConfig.rate`), no hand-tuned rate."""
    X_train, X_test, y_train, y_test = _split("news20.bz2")
    reference = _liblinear_accuracy(X_train, y_train, X_test, y_test, solver=0)  # one-vs-rest logistic
    result = hogwild.train(X_train, y_train, multiclass="softmax", X_test=X_test, y_test=y_test)
    accuracy = result.history[-1]["test_accuracy"]
    threshold = reference - 0.005
    assert accuracy >= threshold, \
        f"news20 softmax accuracy {accuracy:.4f} < LIBLINEAR one-vs-rest {reference:.4f} - 0.005"
