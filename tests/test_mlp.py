"""MLP kernels against finite differences and their NumPy twin; modes, state, model protocol, estimators."""

import numpy as np
import pytest
import scipy.sparse as sp

import naive_mlp
from hogwild.config import TrainConfig
from hogwild.errors import ConfigError, DataError, DivergenceError
import hogwild
from hogwild.estimators import MLPClassifier, MLPRegressor
from hogwild.loop import EarlyStopping, epoch_rate
from hogwild.order import epoch_order
from hogwild.models import MLPModel
from hogwild.models import init_mlp_params as init_params
from hogwild.runners.mlp_cpu import gradient


def train_mlp(X, y, config=None, **kwargs):
    """The front door with an MLP (this file's shorthand)."""
    return hogwild.train(X, y, config, model="mlp", **kwargs)

ACTIVATIONS = ["relu", "tanh", "sigmoid"]
OPTIMIZERS = ["sgd", "momentum", "adam", "rmsprop"]


def make_problem(n_rows=40, n_features=7, kind="softmax", sparse=False, seed=0):
    """Tiny inputs with labels for each output kind: softmax (3 classes), logistic (2), identity (2 targets)."""
    rng = np.random.default_rng(seed)
    if sparse:
        X = sp.random(n_rows, n_features, density=0.4, format="csr", random_state=seed) * 2.0
        X = sp.csr_matrix(X)
    else:
        X = rng.normal(size=(n_rows, n_features))
    dense = X.toarray() if sparse else X
    if kind == "softmax":
        y = np.argmax(dense[:, :3] + 0.1 * rng.normal(size=(n_rows, 3)), axis=1)
    elif kind == "logistic":
        y = np.where(dense[:, 0] - dense[:, 1] > 0, 7, 2)
    else:
        y = np.column_stack([dense[:, 0] * 2 - dense[:, 1], np.sin(dense[:, 2])])
    return X, y


def make_model(n_features, hidden, n_outputs, activation, output, classes, seed=0):
    dims = [n_features, *hidden, n_outputs]
    params = init_params(dims, activation, seed, np.float64)
    # non-zero biases, so that their gradients are exercised away from the symmetric start
    params += 0.05 * np.random.default_rng(seed + 1).normal(size=params.size)
    return MLPModel(params, dims, activation, output, classes)


OUTPUT_CASES = [("softmax", 3, np.arange(3)), ("logistic", 1, np.array([2, 7])), ("identity", 2, None)]


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("output, n_outputs, classes", OUTPUT_CASES, ids=[c[0] for c in OUTPUT_CASES])
def test_gradient_matches_central_differences(sparse, activation, output, n_outputs, classes):
    X, y = make_problem(12, 6, output, sparse)
    model = make_model(6, (5, 4), n_outputs, activation, output, classes)
    loss, grad = gradient(model, X, y)
    eps = 1e-6
    numeric = np.empty_like(grad)
    for index in range(model.params.size):
        saved = model.params[index]
        model.params[index] = saved + eps
        up, _ = gradient(model, X, y)
        model.params[index] = saved - eps
        down, _ = gradient(model, X, y)
        model.params[index] = saved
        numeric[index] = (up - down) / (2 * eps)
    error = np.max(np.abs(grad - numeric)) / max(1.0, np.max(np.abs(numeric)))
    assert error < 1e-6, f"backward vs central differences: max relative error {error:.2e} (threshold 1e-6)"
    # and the NumPy twin agrees to rounding
    layers = naive_mlp.unflatten(model.params, model.dims)
    Xd = X if sparse else X
    target = y if output == "identity" else np.searchsorted(classes, y)
    naive_loss, naive_grads = naive_mlp.batch_gradient(layers, Xd, target, activation, output)
    naive_flat = naive_mlp.flatten(naive_grads)
    assert abs(naive_loss / X.shape[0] - loss) < 1e-12
    np.testing.assert_allclose(grad, naive_flat, rtol=1e-11, atol=1e-13)


def _naive_run(X, y, config, output, classes, n_outputs):
    dims = [X.shape[1], *config.hidden, n_outputs]
    params = init_params(dims, config.activation, config.seed, np.float64)
    orders = [epoch_order(X.shape[0], config.seed, e, config.shuffle, 0).expand() for e in range(config.epochs)]
    lrs = [epoch_rate(config, e) for e in range(config.epochs)]
    target = y if output == "identity" else np.searchsorted(classes, y)
    return naive_mlp.train_serial(
        params, dims, X, target, config.activation, output, orders, lrs, config.batch_size, config.optimizer,
        config.l2, momentum=config.momentum, beta1=config.beta1, beta2=config.beta2,
        epsilon=config.adam_epsilon, clip_norm=config.clip_norm,
    )


SERIAL_CASES = [
    ("softmax", "relu", False), ("softmax", "tanh", True), ("logistic", "sigmoid", True), ("identity", "relu", False)
]


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("output, activation, sparse", SERIAL_CASES, ids=[f"{c[0]}-{c[1]}-{'csr' if c[2] else 'dense'}" for c in SERIAL_CASES])
def test_serial_matches_numpy_twin(optimizer, output, activation, sparse):
    X, y = make_problem(45, 8, output, sparse, seed=3)
    n_outputs, classes = {"softmax": (3, np.arange(3)), "logistic": (1, np.array([2, 7])), "identity": (2, None)}[output]
    lr = {"sgd": 0.1, "momentum": 0.05, "adam": 0.01, "rmsprop": 0.01}[optimizer]
    config = TrainConfig(
        model="mlp", loss="squared_error" if output == "identity" else "log_loss", hidden=(6, 5), activation=activation,
        optimizer=optimizer, lr=lr, l2=1e-3, batch_size=7, epochs=3, mode="serial", dtype="float64", seed=5,
        schedule="decay", decay=0.8, clip_norm=1.5,
    ).validate()
    result = train_mlp(X, y, config)
    expected, losses = _naive_run(X, y, config, output, classes, n_outputs)
    np.testing.assert_allclose(result.model.params, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose([r["train_loss"] for r in result.history], losses, rtol=1e-10)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_sync_weighted_matches_full_batch_twin(sparse):
    """Two workers' slice gradients, weighted by rows, add up to the full mini-batch gradient."""
    X, y = make_problem(50, 9, "softmax", sparse, seed=4)
    config = TrainConfig(
        model="mlp", hidden=(6,), optimizer="adam", lr=0.01, l2=1e-4, batch_size=8, epochs=2, mode="sync",
        threads=2, aggregate="weighted", dtype="float64", seed=2, schedule="constant",
    ).validate()
    result = train_mlp(X, y, config)
    expected, _ = _naive_run(X, y, config, "softmax", np.arange(3), 3)
    np.testing.assert_allclose(result.model.params, expected, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_sync_is_reproducible_and_one_thread_equals_serial(sparse):
    X, y = make_problem(60, 8, "logistic", sparse, seed=6)
    base = dict(model="mlp", hidden=(5,), optimizer="momentum", lr=0.05, batch_size=6, epochs=2, dtype="float64")
    first = train_mlp(X, y, TrainConfig(mode="sync", threads=2, **base))
    second = train_mlp(X, y, TrainConfig(mode="sync", threads=2, **base))
    assert np.array_equal(first.model.params, second.model.params)
    one = train_mlp(X, y, TrainConfig(mode="sync", threads=1, **base))
    serial = train_mlp(X, y, TrainConfig(mode="serial", **base))
    assert np.array_equal(one.model.params, serial.model.params)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", ["async", "sync", "serial"])
def test_modes_learn_a_nonlinear_problem(sparse, dtype, mode):
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(600, 10))
    y = (dense[:, 0] * dense[:, 1] > 0).astype(int)  # XOR-like: no linear model gets far past 50%
    X = sp.csr_matrix(dense) if sparse else dense
    config = TrainConfig(
        model="mlp", hidden=(32,), optimizer="adam", lr=0.01, batch_size=16, epochs=15, mode=mode, threads=2,
        dtype=dtype, seed=1, chunk_rows=100,
    )
    result = train_mlp(X, y, config)
    accuracy = float(np.mean(result.model.predict(X) == y))
    threshold = 0.9
    assert accuracy >= threshold, f"{mode} {dtype}: train accuracy {accuracy:.3f} below threshold {threshold}"
    assert result.history[-1]["train_loss"] < 0.35, f"final loss {result.history[-1]['train_loss']:.3f} above 0.35"
    assert result.model.params.dtype == np.dtype(dtype)


def test_resuming_from_state_is_bitwise_identical():
    X, y = make_problem(40, 6, "softmax", True, seed=8)
    config = TrainConfig(model="mlp", hidden=(5,), optimizer="adam", lr=0.02, batch_size=4, epochs=4, mode="serial", dtype="float64")
    whole = train_mlp(X, y, config)
    first = train_mlp(X, y, config.replace(epochs=2))
    rest = train_mlp(X, y, config, init_state=first.state)  # epochs counts all epochs: two more
    assert np.array_equal(whole.model.params, rest.model.params)
    assert [r["epoch"] for r in rest.history] == [1, 2, 3, 4]


def test_linear_schedules_are_refused_and_auto_means_constant():
    X, y = make_problem(30, 5, "softmax", False)
    for schedule in ("optimal", "adagrad"):
        with pytest.raises(ConfigError, match="--schedule"):
            train_mlp(X, y, dict(schedule=schedule, lr=0.03, epochs=2, hidden=(4,)))
    result = train_mlp(X, y, dict(lr=0.03, epochs=2, hidden=(4,)))
    assert result.config.effective_schedule == "constant" and [r["lr"] for r in result.history] == [0.03, 0.03]
    import hogwild

    result = hogwild.train(X, y, model="mlp", hidden=(4,), epochs=1, mode="serial", lr=0.03)
    assert isinstance(result.model, MLPModel) and result.epochs_run == 1


def test_history_and_callback_events():
    X, y = make_problem(80, 6, "softmax", False)
    events = []
    result = train_mlp(
        X[:60], y[:60], TrainConfig(model="mlp", hidden=(8,), epochs=2, chunk_rows=16, threads=2, lr=0.05),
        X_val=X[60:], y_val=y[60:], X_test=X[60:], y_test=y[60:], callback=events.append,
    )
    from hogwild.results import HISTORY_KEYS

    for record in result.history:
        for key in HISTORY_KEYS + ("validation_accuracy", "validation_loss", "test_accuracy"):
            assert key in record, key
    kinds = [e["kind"] for e in events]
    assert kinds.count("epoch") == 2 and kinds.count("chunk") >= 4
    assert events[-1]["epoch"] == 2 and events[-1]["validation_accuracy"] == result.history[-1]["validation_accuracy"]


def test_divergence_raises_with_advice():
    X, y = make_problem(40, 6, "identity", False)
    with pytest.raises(DivergenceError, match="smaller --lr"):
        train_mlp(X, y * 1e6, TrainConfig(model="mlp", loss="squared_error", lr=10.0, optimizer="sgd", epochs=3, mode="serial"))


@pytest.mark.parametrize(
    "changes, option",
    [({"mode": "average"}, "mode"), ({"mode": "locked"}, "mode"), ({"loss": "hinge"}, "loss"),
     ({"hidden": (4, 4, 4, 4)}, "hidden")],
)
def test_options_an_mlp_cannot_honour(changes, option):
    X, y = make_problem(20, 4, "softmax", False)
    with pytest.raises(ConfigError) as info:
        train_mlp(X, y, dict(changes))
    assert info.value.option == option
    assert "--" + option.replace("_", "-") in str(info.value)


def test_bad_inputs_raise_data_error():
    X, y = make_problem(20, 4, "softmax", False)
    with pytest.raises(DataError, match="labels"):
        train_mlp(X, y[:10], dict(epochs=1))
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        train_mlp(bad, y, dict(epochs=1))
    with pytest.raises(DataError, match="two classes"):
        train_mlp(X, np.zeros(20), dict(epochs=1))
    model = train_mlp(X, y, dict(epochs=1, hidden=(3,))).model
    with pytest.raises(DataError, match="features"):
        model.predict(np.hstack([X, X]))
    wide = sp.csr_matrix(np.hstack([X, X]))
    np.testing.assert_array_equal(model.predict(wide, ignore_extra_features=True), model.predict(X))


@pytest.mark.parametrize("output, n_outputs, classes", OUTPUT_CASES, ids=[c[0] for c in OUTPUT_CASES])
def test_model_protocol_round_trip(output, n_outputs, classes):
    X, _ = make_problem(30, 6, output, True)
    model = make_model(6, (5,), n_outputs, "tanh", output, classes)
    dense_scores = model.decision_function(X.toarray())
    np.testing.assert_allclose(model.decision_function(X), dense_scores, rtol=1e-12)
    # the compiled batched forward equals the NumPy forward
    naive_scores = naive_mlp.forward(naive_mlp.unflatten(model.params, model.dims), X.toarray(), "tanh")[-1]
    np.testing.assert_allclose(dense_scores.reshape(30, -1), naive_scores, rtol=1e-12)
    import json

    meta = json.loads(json.dumps(model.meta()))
    again = MLPModel.from_arrays(model.arrays(), meta)
    np.testing.assert_array_equal(again.decision_function(X), model.decision_function(X))
    assert meta["kind"] == "mlp" and again.kind == "mlp"
    if classes is None:
        assert not model.has_proba
    else:
        proba = model.predict_proba(X)
        assert proba.shape == (30, len(classes))
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        assert np.array_equal(model.predict(X), classes[np.argmax(proba, axis=1)])


def test_from_arrays_rejects_wrong_shapes():
    model = make_model(6, (5,), 3, "relu", "softmax", np.arange(3))
    arrays = model.arrays()
    arrays["coef_1"] = arrays["coef_1"][:, :2]
    with pytest.raises(DataError, match="layer 1"):
        MLPModel.from_arrays(arrays, model.meta())


def test_save_and_load_model(tmp_path):
    model_io = pytest.importorskip("hogwild.model_io", reason="hogwild.model_io (the engine helper's) not built yet")
    model = make_model(6, (5, 4), 3, "relu", "softmax", np.array([1.0, 2.0, 3.0]))
    path = tmp_path / "mlp.npz"
    model.save(path)
    loaded = model_io.load_model(path)
    assert isinstance(loaded, MLPModel)
    X, _ = make_problem(10, 6, "softmax", False)
    np.testing.assert_array_equal(loaded.decision_function(X), model.decision_function(X))


def test_classifier_estimator_api():
    X, y = make_problem(200, 6, "softmax", False, seed=2)
    labels = np.array(["a", "b", "c"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=15, learning_rate_init=0.01, random_state=0, mode="serial")
    assert clf.fit(X, labels) is clf
    assert clf.score(X, labels) > 0.8, f"train accuracy {clf.score(X, labels):.3f} below 0.8"
    assert list(clf.classes_) == ["a", "b", "c"] and clf.n_features_in_ == 6
    assert [c.shape for c in clf.coefs_] == [(6, 16), (16, 3)] and [b.shape for b in clf.intercepts_] == [(16,), (3,)]
    assert len(clf.history_) == 15 and clf.predict_proba(X).shape == (200, 3)
    params = clf.get_params()
    assert params["hidden_layer_sizes"] == (16,) and params["solver"] == "adam"
    clone = MLPClassifier(**params)
    assert clone.fit(X, labels).predict(X).tolist() == clf.predict(X).tolist()  # serial, same seed
    clf.set_params(solver="momentum", learning_rate_init=0.02)
    assert clf.get_params()["solver"] == "momentum"
    with pytest.raises(ConfigError):
        clf.set_params(hidden_layers=3)


def test_partial_fit_continues_and_keeps_classes():
    X, y = make_problem(120, 6, "softmax", True, seed=3)
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=0.1, random_state=1, mode="serial")
    clf.partial_fit(X[:60], y[:60], classes=[0, 1, 2])
    first = clf.coefs_[0].copy()
    clf.partial_fit(X[60:], y[60:])
    assert clf.n_iter_ == 2 and not np.array_equal(first, clf.coefs_[0])
    with pytest.raises(DataError, match="labels"):
        clf.partial_fit(X[:10], np.full(10, 9))


def test_regressor_estimator():
    X, y = make_problem(300, 5, "identity", False, seed=1)
    reg = MLPRegressor(hidden_layer_sizes=(32,), max_iter=30, learning_rate_init=0.01, random_state=0, n_threads=2)
    reg.fit(X, y[:, 0])
    r2 = reg.score(X, y[:, 0])
    assert r2 > 0.9, f"train R^2 {r2:.3f} below 0.9"
    assert reg.predict(X).shape == (300,)
    reg2 = MLPRegressor(hidden_layer_sizes=(32,), max_iter=30, learning_rate_init=0.01, random_state=0, mode="serial").fit(X, y)
    assert reg2.predict(X).shape == (300, 2) and reg2.score(X, y) > 0.8


def test_clip_norm_bounds_the_step():
    """With sgd and a tiny clip_norm, no weight can move further than lr * clip_norm per micro-batch."""
    X, y = make_problem(16, 5, "softmax", False)
    config = dict(hidden=(4,), optimizer="sgd", lr=1.0, clip_norm=1e-3, l2=0.0, batch_size=16, epochs=1,
                  mode="serial", dtype="float64", shuffle=False)
    result = train_mlp(X, y, config)
    start = init_params([5, 4, 3], "relu", 0, np.float64)
    moved = np.linalg.norm(result.model.params - start)
    assert moved <= 1e-3 * (1 + 1e-9), f"step norm {moved:.3e} exceeds lr*clip_norm 1e-3"


def test_early_stopping_rule_waits_n_iter_no_change_epochs():
    stop = EarlyStopping(tol=0.01, patience=2)
    losses = [1.0, 0.5, 0.495, 0.494, 0.3]  # two epochs without a 0.01 improvement after 0.5
    decisions = [stop({"train_loss": loss}) for loss in losses[:4]]
    assert decisions == [False, False, False, True], decisions
    assert not EarlyStopping(tol=None, patience=2)({"train_loss": 1.0})  # tol=None: never stops


def test_early_stopping_ends_training(tmp_path):
    X, y = make_problem(60, 5, "softmax", False)
    result = train_mlp(X, y, dict(lr=1e-6, epochs=30, hidden=(4,), tol=1.0, n_iter_no_change=2, mode="serial"))
    assert result.stopped_early and result.epochs_run == 3, (result.stopped_early, result.epochs_run)


def test_dense_tiles_match_numpy_twin(monkeypatch):
    """The dense first layer's tiled loops (full tiles, partial tiles, skipped all-zero tiles) match the twin.

    Dense input trains on the GEMM kernels where BLAS threads can be limited (tests/test_mlp_dense.py); the
    loop kernels are what runs without threadpoolctl, so they are forced here.
    """
    from hogwild.kernels.config import MLP_TILE
    from hogwild.runners import mlp_cpu

    monkeypatch.setattr(mlp_cpu, "can_limit_blas", lambda: False)

    n_features, batch = 2 * MLP_TILE + 5, 2 * MLP_TILE + 3  # two full tiles plus a remainder, both ways
    X, y = make_problem(3 * batch, n_features, "softmax", False, seed=11)
    X[:, MLP_TILE:2 * MLP_TILE] = 0.0  # a whole tile of blank inputs (MNIST's border), skipped by the kernels
    X[: MLP_TILE + 2, 3] = 0.0  # scattered zeros inside a tile, added as exact zeros
    config = TrainConfig(
        model="mlp", hidden=(2 * MLP_TILE + 1,), activation="relu", optimizer="momentum", lr=0.05, l2=1e-3,
        batch_size=batch, epochs=2, mode="serial", dtype="float64", seed=2,
    ).validate()
    result = train_mlp(X, y, config)
    expected, losses = _naive_run(X, y, config, "softmax", np.arange(3), 3)
    np.testing.assert_allclose(result.model.params, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose([r["train_loss"] for r in result.history], losses, rtol=1e-10)
    # the blank tile's weights get only the L2 shrink and momentum of it, never a data gradient
    first = result.model.params[: n_features * (2 * MLP_TILE + 1)].reshape(n_features, -1)
    start = np.asarray(init_params([n_features, 2 * MLP_TILE + 1, 3], "relu", 2, np.float64))
    start = start[: n_features * (2 * MLP_TILE + 1)].reshape(n_features, -1)
    ratio = first[MLP_TILE:2 * MLP_TILE] / start[MLP_TILE:2 * MLP_TILE]
    assert np.allclose(ratio, ratio.flat[0]), f"blank-tile weights scaled unevenly: {ratio.min()}..{ratio.max()}"

