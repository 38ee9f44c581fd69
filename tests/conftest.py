"""Shared fixtures: where the real LIBSVM sets are, and small synthetic problems."""

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

DATA_ENV = "HOGWILD_TEST_DATA"


def shared_data_dir():
    """The folder of real LIBSVM sets named by $HOGWILD_TEST_DATA, or None."""
    value = os.environ.get(DATA_ENV)
    if not value:
        return None
    path = Path(value)
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def data_dir():
    path = shared_data_dir()
    if path is None:
        pytest.skip(f"real LIBSVM data not available: set {DATA_ENV} to the shared data folder")
    return path


def shared_file(name):
    """Path of one shared data file, skipping the test cleanly when it is absent."""
    path = shared_data_dir()
    if path is None or not (path / name).exists():
        pytest.skip(f"{name} not available: set {DATA_ENV} to the shared data folder")
    return path / name


def make_sparse_classification(n_samples=300, n_features=40, density=0.2, seed=0, dtype=np.float64):
    """A small, linearly separable-ish sparse binary problem with labels in {-1, +1}."""
    rng = np.random.default_rng(seed)
    X = sp.random(n_samples, n_features, density=density, format="csr", random_state=rng, dtype=dtype)
    w = rng.normal(size=n_features)
    margin = X @ w
    y = np.where(margin + 0.1 * rng.normal(size=n_samples) > np.median(margin), 1.0, -1.0)
    return X, y


@pytest.fixture
def sparse_binary():
    return make_sparse_classification()
