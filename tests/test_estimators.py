"""The estimators pass scikit-learn's own check_estimator, and follow its conventions."""

import numpy as np
import pytest

import hogwild
from conftest import make_sparse_classification

sklearn = pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

# Checks that SGD cannot pass by construction; scikit-learn's own SGDClassifier/SGDRegressor are listed as
# expected failures for the same two (sklearn/utils/_test_common/instance_generator.py).
EXPECTED_FAILURES = {
    # A weight of 2 is not the same as repeating a row: SGD visits the repeated rows at different times.
    "check_sample_weight_equivalence_on_dense_data": "SGD: weighting is not repetition (as for sklearn's SGD)",
    "check_sample_weight_equivalence_on_sparse_data": "SGD: weighting is not repetition (as for sklearn's SGD)",
}


@parametrize_with_checks(
    # The regressor uses AdaGrad: the checks feed unscaled features (mean 100), on which any fixed step such as
    # the default invscaling eta0=0.01 diverges (and DivergenceError says so), as scikit-learn's SGD would.
    # Deterministic modes: check_estimator refits and compares predictions exactly, which Hogwild!'s races
    # (async/locked/average with several threads) cannot promise; those are tested in test_engine.py.
    [hogwild.HogwildClassifier(mode="serial"), hogwild.HogwildRegressor(mode="serial", learning_rate="adagrad", eta0=0.1),
     hogwild.HogwildClassifier(mode="sync", n_threads=2, batch_size=4), hogwild.HogwildClassifier(mode="serial", loss="hinge")],
    expected_failed_checks=lambda estimator: EXPECTED_FAILURES,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_parameter_mapping_and_attributes():
    X, y = make_sparse_classification(300, 20, seed=1)
    clf = hogwild.HogwildClassifier(penalty="elasticnet", alpha=1e-3, l1_ratio=0.25, learning_rate="constant",
                                    eta0=0.05, max_iter=4, tol=None, random_state=3, n_threads=1)
    config = clf._config()
    assert config.l2 == pytest.approx(7.5e-4) and config.l1 == pytest.approx(2.5e-4)
    assert config.schedule == "constant" and config.lr == 0.05 and config.epochs == 4 and config.seed == 3
    clf.fit(X, y)
    assert clf.coef_.shape == (1, 20) and clf.intercept_.shape == (1,)
    assert list(clf.classes_) == [-1.0, 1.0] and clf.n_features_in_ == 20 and len(clf.history_) == 4
    assert clf.score(X, y) > 0.8
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert not hasattr(hogwild.HogwildClassifier(loss="hinge"), "predict_proba")


def test_partial_fit_continues_the_step_counter():
    X, y = make_sparse_classification(200, 10, seed=2)
    clf = hogwild.HogwildClassifier(mode="serial", random_state=0)
    clf.partial_fit(X, y, classes=[-1.0, 1.0])
    t_first = clf.t_
    clf.partial_fit(X, y)
    assert clf.t_ == pytest.approx(2 * t_first)
    # two partial_fit calls equal two epochs of fit
    full = hogwild.HogwildClassifier(mode="serial", random_state=0, max_iter=2, tol=None).fit(X, y)
    np.testing.assert_array_equal(clf.coef_, full.coef_)


def test_multiclass_shapes_and_from_model(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    y = np.argmax(X[:, :3], axis=1)
    for multiclass in ("ovr", "softmax"):
        clf = hogwild.HogwildClassifier(multiclass=multiclass, max_iter=20, mode="serial").fit(X, y)
        assert clf.coef_.shape == (3, 6) and clf.decision_function(X).shape == (300, 3)
        assert clf.score(X, y) > 0.85, f"{multiclass}: {clf.score(X, y)}"
        path = tmp_path / f"{multiclass}.npz"
        clf.model_.save(path)
        again = hogwild.HogwildClassifier.from_model(hogwild.load_model(path))
        np.testing.assert_array_equal(again.predict(X), clf.predict(X))
