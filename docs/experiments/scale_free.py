"""Defaults that need no feature scaling (issue 18): the default estimators on a9a and w8a with every column
multiplied by a fixed log-uniform factor in [1, 1000], and news20 softmax with the defaults, against LIBLINEAR.

    python docs/experiments/scale_free.py [--data $HOGWILD_TEST_DATA]

Splits as ``tests/test_accuracy_real.py``: scikit-learn's ``load_svmlight_file``, 75/25, stratified,
``random_state=0``. LIBLINEAR is ``-s 0 -c 1`` (L2-regularized logistic regression; one-vs-rest on news20) on the
UNSCALED data. Scaling factors: ``exp(U(0, log 1000))`` per column, ``numpy.random.default_rng(0)``, the same for
both splits. The hogwild rows are the estimators and ``hogwild.train`` exactly as a user constructs them (nothing
but the data passed), and, for contrast, the defaults before issue 18 (AdaGrad at 0.1 for the classifier;
scikit-learn's invscaling at eta0=0.01 for the regressor; AdaGrad at 0.1 for softmax). Needs the test extra
(scikit-learn, liblinear-official). Prints a markdown table and the machine it ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import scipy.sparse as sp


def split(path):
    from sklearn.datasets import load_svmlight_file
    from sklearn.model_selection import train_test_split

    X, y = load_svmlight_file(str(path))
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def scaled(X_train, X_test, seed=0):
    factors = sp.diags(np.exp(np.random.default_rng(seed).uniform(0.0, np.log(1000.0), size=X_train.shape[1])))
    return (X_train @ factors).tocsr(), (X_test @ factors).tocsr()


def liblinear_accuracy(X_train, y_train, X_test, y_test):
    from liblinear import liblinearutil

    model = liblinearutil.train(y_train, X_train, "-s 0 -c 1 -q")
    _, (accuracy, *_), _ = liblinearutil.predict(y_test, X_test, model, "-q")
    return accuracy / 100.0


def timed(fit):
    started = time.perf_counter()
    try:
        value = fit()
    except Exception as exc:  # a diverged run is a result here, not a failure of the script
        return f"{type(exc).__name__}", time.perf_counter() - started
    return value, time.perf_counter() - started


def cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def shown(value, percent=True):
    if isinstance(value, str):
        return value
    return f"{100 * value:.2f}%" if percent else f"{value:.4f}"


def main():
    import hogwild

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("HOGWILD_TEST_DATA", "data"))
    args = parser.parse_args()
    rows = []
    for name in ("a9a", "w8a"):
        X_train, X_test, y_train, y_test = split(os.path.join(args.data, name))
        reference = liblinear_accuracy(X_train, y_train, X_test, y_test)
        S_train, S_test = scaled(X_train, X_test)
        cases = [
            ("HogwildClassifier()", "unscaled", hogwild.HogwildClassifier(), False),
            ("HogwildClassifier()", "scaled", hogwild.HogwildClassifier(), True),
            ("HogwildClassifier(learning_rate='adagrad', eta0=0.1) (the old default)", "scaled",
             hogwild.HogwildClassifier(learning_rate="adagrad", eta0=0.1), True),
            ("HogwildRegressor(): R^2", "scaled", hogwild.HogwildRegressor(), True),
            ("HogwildRegressor(learning_rate='invscaling', eta0=0.01) (the old default): R^2", "scaled",
             hogwild.HogwildRegressor(learning_rate="invscaling", eta0=0.01), True),
        ]
        for system, data, estimator, on_scaled in cases:
            train, test = (S_train, S_test) if on_scaled else (X_train, X_test)
            percent = isinstance(estimator, hogwild.HogwildClassifier)
            value, seconds = timed(lambda: estimator.fit(train, y_train).score(test, y_test))
            rows.append((name, system, data, shown(value, percent), shown(reference) if percent else "-",
                         f"{seconds:.1f}"))
    X_train, X_test, y_train, y_test = split(os.path.join(args.data, "news20.bz2"))
    reference = liblinear_accuracy(X_train, y_train, X_test, y_test)
    cases = [
        ("train(multiclass='softmax')", {}),
        ("train(multiclass='softmax', schedule='adagrad', lr=0.1) (the old default)",
         {"schedule": "adagrad", "lr": 0.1}),
        ("train(multiclass='softmax', schedule='normalized')", {"schedule": "normalized"}),
        ("train() (one-vs-rest)", {"multiclass": "ovr"}),
    ]
    for system, extra in cases:
        options = {"multiclass": "softmax", **extra}
        value, seconds = timed(lambda: hogwild.train(X_train, y_train, X_test=X_test, y_test=y_test,
                                                     **options).history[-1]["test_accuracy"])
        rows.append(("news20", system, "unscaled", shown(value), shown(reference), f"{seconds:.1f}"))
    print("| set | hogwild, defaults unless shown | features | held-out accuracy (R^2) | LIBLINEAR -s 0 -c 1, "
          "unscaled | fit s |")
    print("|---|---|---|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Machine: {cpu_model()}, {os.cpu_count()} cores, load average {load:.1f} at the end; "
          f"hogwild {hogwild.__version__}, numpy {np.__version__}.")


if __name__ == "__main__":
    main()
