"""serial, sync and async reach the exact optimum of the L2-regularized objective (scipy L-BFGS) on small problems."""

import numpy as np
import pytest
import scipy.optimize

import hogwild
from conftest import make_sparse_classification
from naive import naive_objective

L2 = 1e-2


def _exact_optimum(X, targets, l2):
    """min over (w, b) of mean log-loss + l2/2 ||w||^2, by L-BFGS with an analytic gradient."""
    d = X.shape[1]

    def objective(theta):
        w, b = theta[:d], theta[d]
        z = targets * (X @ w + b)
        loss = np.logaddexp(0.0, -z).mean() + 0.5 * l2 * w @ w
        coefficient = -targets / (1.0 + np.exp(z)) / X.shape[0]
        return loss, np.append(X.T @ coefficient + l2 * w, coefficient.sum())

    found = scipy.optimize.minimize(objective, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                                    options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10_000})
    return found.fun


@pytest.fixture(scope="module")
def problem():
    X, y = make_sparse_classification(200, 12, density=0.5, seed=4)
    return X, y, _exact_optimum(X, y, L2)


def _relative_gap(result, X, y, best):
    params = {"loss": "log_loss", "multiclass": "binary", "epsilon": 0.1, "l2": L2, "l1": 0.0}
    value = naive_objective(X, y, np.ones(X.shape[0]), result.model.coef.astype(np.float64),
                            result.model.intercept.astype(np.float64), params)
    return (value - best) / best


@pytest.mark.parametrize(
    "mode, extra, tolerance",
    [
        ("serial", {}, 1e-3),
        ("sync", {"threads": 2, "batch_size": 4}, 1e-3),
        # Hogwild!: 2 threads race on a 12-feature model (every row collides); a looser bound.
        ("async", {"threads": 2}, 1e-2),
        ("average", {"threads": 2, "average_every": 50}, 1e-2),
    ],
)
def test_reaches_exact_optimum(problem, mode, extra, tolerance):
    X, y, best = problem
    # intercept_decay=1: the sparse-input default (0.01, scikit-learn's damping) slows the intercept so much on
    # 200 rows that 60 epochs stop short of the optimum; this test is about the update rule's fixed point.
    result = hogwild.train(X, y, mode=mode, l2=L2, schedule="optimal", epochs=60, dtype="float64",
                           intercept_decay=1.0, **extra)
    gap = _relative_gap(result, X, y, best)
    assert gap >= -1e-9, f"objective below the exact optimum ({gap}): the objectives differ"
    assert gap <= tolerance, f"{mode}: relative gap to the L-BFGS optimum {gap:.2e} > {tolerance:.0e}"
