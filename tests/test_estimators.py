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
    # As a user constructs them: the scale-free default schedule (normalized) trains the checks' unscaled features
    # (mean 100); mode="auto" runs serially once the checks fix random_state, so refits reproduce.
    [hogwild.HogwildClassifier(), hogwild.HogwildRegressor(), hogwild.MLPClassifier(), hogwild.MLPRegressor(),
     # configurations the suite has always checked: deterministic modes and other schedules and losses
     hogwild.HogwildClassifier(mode="serial"),
     hogwild.HogwildRegressor(mode="serial", learning_rate="adagrad", eta0=0.1),
     hogwild.HogwildClassifier(mode="sync", n_threads=2, batch_size=4),
     hogwild.HogwildClassifier(mode="serial", loss="hinge"),
     # scikit-learn's average= (ASGD) and learning_rate="adaptive" (a global step: the regressor's squared loss
     # would diverge on the checks' unscaled features with it, as scikit-learn's SGDRegressor does)
     hogwild.HogwildRegressor(average=True),
     hogwild.HogwildClassifier(learning_rate="adaptive", eta0=0.01, average=10)],
    expected_failed_checks=lambda estimator: EXPECTED_FAILURES,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_tags_say_what_a_seed_does_not_fix():
    """non_deterministic: only lock-free or locked modes on several threads; auto with a seed runs serially."""
    from sklearn.utils import get_tags

    for estimator in (hogwild.HogwildClassifier(), hogwild.HogwildRegressor(), hogwild.MLPClassifier(),
                      hogwild.MLPRegressor(), hogwild.HogwildClassifier(mode="async", n_threads=1),
                      # average's workers write their own replicas (test_engine.py::test_average_matches_naive)
                      hogwild.HogwildRegressor(mode="average", n_threads=2)):
        assert not get_tags(estimator).non_deterministic, estimator
    for estimator in (hogwild.HogwildClassifier(mode="async"),
                      hogwild.HogwildClassifier(mode="locked"), hogwild.MLPClassifier(mode="async", n_threads=2)):
        assert get_tags(estimator).non_deterministic, estimator
    assert hogwild.HogwildClassifier(random_state=4)._config().mode == "serial"
    assert hogwild.HogwildClassifier()._config().mode == "auto"
    assert hogwild.HogwildClassifier(random_state=4, mode="async")._config().mode == "async"


def test_a_seeded_default_fit_reproduces_bit_for_bit():
    X, y = make_sparse_classification(400, 30, seed=5)
    first = hogwild.HogwildClassifier(random_state=7, n_threads=2).fit(X, y)
    second = hogwild.HogwildClassifier(random_state=7, n_threads=2).fit(X, y)
    np.testing.assert_array_equal(first.coef_, second.coef_)
    np.testing.assert_array_equal(first.intercept_, second.intercept_)


def test_column_vector_y_warns_with_scikit_learns_class():
    from sklearn.exceptions import DataConversionWarning

    X, y = make_sparse_classification(60, 8, seed=6)
    for estimator in (hogwild.HogwildClassifier(max_iter=2),
                      hogwild.MLPClassifier(max_iter=1, hidden_layer_sizes=(4,))):
        with pytest.warns(DataConversionWarning, match="column-vector y"):
            estimator.fit(X, y[:, None])
        with pytest.warns(hogwild.estimators.DataConversionWarning):
            estimator.fit(X, y[:, None])


def test_average_is_scikit_learns_asgd():
    """average=True/N: the model is the mean of the SGD iterates from row N on (mode="average" is replicas)."""
    X, y = make_sparse_classification(200, 12, seed=7)
    common = dict(mode="serial", max_iter=3, tol=None, learning_rate="constant", eta0=0.1)
    assert hogwild.HogwildClassifier(average=True)._config().average == 1
    assert hogwild.HogwildClassifier(average=50)._config().average == 50
    assert hogwild.HogwildClassifier(average=False)._config().average == 0
    for average, rows in ((True, 1), (250, 250)):
        clf = hogwild.HogwildClassifier(average=average, **common).fit(X, y)
        result = hogwild.train(X, y, mode="serial", epochs=3, schedule="constant", lr=0.1, l2=clf.alpha, average=rows)
        np.testing.assert_array_equal(clf.coef_, result.model.coef.T)
        last_iterate = hogwild.HogwildClassifier(**common).fit(X, y)
        assert not np.allclose(clf.coef_, last_iterate.coef_)
    with pytest.raises(hogwild.ConfigError, match="average"):
        hogwild.HogwildClassifier(average=-1)._config()


def test_learning_rate_adaptive_divides_by_five_when_the_loss_stalls():
    """scikit-learn's rule: each time n_iter_no_change epochs fail to improve by tol, the rate is divided by 5;
    once it is at most 1e-6, the next stall stops the run."""
    X, y = make_sparse_classification(100, 8, seed=8)
    for estimator in (hogwild.HogwildClassifier(learning_rate="adaptive", eta0=0.1),
                      hogwild.MLPClassifier(solver="sgd", learning_rate="adaptive", learning_rate_init=0.1,
                                            hidden_layer_sizes=(4,))):
        # a tol no epoch can meet: every n_iter_no_change epochs the rate falls
        estimator.set_params(tol=10.0, n_iter_no_change=2, max_iter=200, random_state=0).fit(X, y)
        rates = [record["lr"] for record in estimator.history_]
        distinct = sorted(set(rates), reverse=True)
        assert distinct[0] == pytest.approx(0.1)
        np.testing.assert_allclose(np.array(distinct[:-1]) / np.array(distinct[1:]), 5.0, rtol=1e-12)
        assert distinct[-1] <= 1e-6 < distinct[-2], distinct
        assert len(rates) < 200  # stopped by the rule, not by max_iter
    constant = hogwild.HogwildClassifier(learning_rate="constant", eta0=0.1, tol=10.0, n_iter_no_change=2,
                                         random_state=0).fit(X, y)
    assert len(constant.history_) == 3


def test_mlp_estimators_check_their_inputs():
    X, y = make_sparse_classification(60, 8, seed=9)
    clf = hogwild.MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="X has 5 features, but MLPClassifier is expecting 8"):
        clf.predict(X[:, :5])
    with pytest.raises(ValueError, match="X has 5 features"):
        clf.partial_fit(X[:, :5], y)
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        hogwild.MLPClassifier(max_iter=1).fit(X, y + 0.5)
    with pytest.raises(ValueError, match="requires y to be passed"):
        hogwild.MLPRegressor(max_iter=1).fit(X, None)
    assert hogwild.MLPRegressor(hidden_layer_sizes=(4,), max_iter=1).fit(X, y).predict(X).dtype == np.float64


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


@pytest.mark.parametrize("labels", [
    np.array([1.0, -1.0] * 50), np.array([3, 3, 7] * 40), np.array([5] * 80), np.array([0, 1, 2, 1] * 30),
    np.array([2.5, -1.0, 2.5] * 30), np.array([1, 0], dtype=np.uint8).repeat(70), np.array(["b", "a"] * 40),
])
def test_the_classes_found_are_numpy_unique(labels):
    # two-valued numeric labels take a compiled shortcut (minimum, maximum, count of others); any other set the
    # chunked np.unique; both must agree with np.unique, dtype included
    from hogwild.problem import _unique

    found = _unique(labels)
    np.testing.assert_array_equal(found, np.unique(labels))
    assert found.dtype == labels.dtype


@pytest.mark.parametrize("bad, message", [(np.nan, "NaN or infinity"), (np.inf, "NaN or infinity"),
                                          (0.5, "Unknown label type: continuous")])
def test_a_classifier_refuses_non_finite_or_continuous_float_labels(bad, message):
    X, y = make_sparse_classification(100, 8, seed=2)
    y = y.astype(np.float64)
    y[57] = bad
    with pytest.raises(ValueError, match=message):
        hogwild.HogwildClassifier(max_iter=1).fit(X, y)
