"""The CPU engine: serial and sync match tests/naive.py; every mode trains; errors, history, early stopping."""

import numpy as np
import pytest
import scipy.sparse as sp

import hogwild
from hogwild.order import epoch_order
from hogwild.errors import ConfigError, DataError, DivergenceError
from hogwild.kernels.linear import kernel_params

from conftest import make_sparse_classification
from naive import (NaiveExtras, naive_epoch_average, naive_epoch_serial, naive_epoch_sync, naive_feature_scales,
                   naive_normalizer)

MODES = ("serial", "async", "sync", "average", "locked")


def _problem(kind, n=120, d=15, seed=0):
    X, y = make_sparse_classification(n, d, density=0.3, seed=seed)
    if kind == "regression":
        rng = np.random.default_rng(seed)
        y = np.asarray(X @ rng.normal(size=d)).ravel() + 0.1 * rng.normal(size=n)
    elif kind == "multiclass":
        rng = np.random.default_rng(seed)
        y = np.asarray(np.argmax(X @ rng.normal(size=(d, 3)), axis=1)).ravel() + 1
    return X, y


def _naive_run(X, y, config_values, epochs, sync=None, average=None):
    """Replay the engine's epochs with the naive twin; returns (W, b) (with ASGD: the averaged iterate)."""
    config = hogwild.TrainConfig(**config_values).validate()
    decay = config.effective_intercept_decay(sparse_input=sp.issparse(X))
    X = sp.csr_matrix(X, dtype=np.float64)
    if config.is_regression:
        classes, targets, multiclass, K = None, np.asarray(y, float), "binary", 1
    else:
        classes = np.unique(y)
        index = np.searchsorted(classes, y)
        if classes.size == 2:
            targets, multiclass, K = np.where(index == 1, 1.0, -1.0), "binary", 1
        else:
            targets, multiclass, K = index.astype(float), config.multiclass, classes.size
    d = X.shape[1]
    W, b = np.zeros((d, K)), np.zeros(K)
    acc_W, acc_b, q = np.zeros((d, K)), np.zeros(K), np.zeros((d, K))
    counts = np.diff(X.tocsc().indptr)
    inv_freq = np.where(counts > 0, X.shape[0] / np.maximum(counts, 1), 0.0)
    sw = np.ones(X.shape[0])
    scale = naive_feature_scales(X)
    normalizer = 1.0
    if config.effective_schedule == "normalized":
        normalizer = naive_normalizer(X, scale, sw, config.fit_intercept)
    extras = NaiveExtras(W, b, scale)
    t = u = 0.0
    for epoch in range(epochs):
        params = kernel_params(config, epoch, multiclass, decay, normalizer=normalizer, n_outputs=K)
        order = epoch_order(X.shape[0], config.seed, epoch, config.shuffle).expand()
        if average is not None:
            bounds = [(len(order) * w) // average for w in range(average + 1)]
            quota = max(1, min(config.chunk_rows_for(), config.average_every // average))
            t = naive_epoch_average(X, targets, sw, order, W, b, acc_W, acc_b, inv_freq, params, t, bounds, quota,
                                    config.average_every, extras)
        elif sync is None:
            t, u, _, _ = naive_epoch_serial(X, targets, sw, order, W, b, acc_W, acc_b, q, inv_freq, params, t, u,
                                            extras)
        else:
            t, u, _, _ = naive_epoch_sync(
                X, targets, sw, order, W, b, acc_W, acc_b, q, inv_freq, params, t, u, config.batch_size, sync,
                config.aggregate, extras,
            )
    if params["average_start"] > 0 and t >= params["average_start"]:
        return extras.avg_W, extras.avg_b
    return W, b


CASES = [
    ("binary", {"loss": "log_loss"}),
    ("binary", {"loss": "hinge", "schedule": "constant", "lr": 0.05}),
    ("binary", {"loss": "squared_hinge", "schedule": "invscaling", "lr": 0.05}),
    ("binary", {"loss": "modified_huber", "schedule": "decay", "lr": 0.05, "decay": 0.8}),
    ("binary", {"loss": "perceptron", "schedule": "adagrad", "lr": 0.1}),
    ("binary", {"loss": "log_loss", "l1": 1e-3, "l2": 1e-3, "schedule": "constant", "lr": 0.1}),
    ("binary", {"loss": "log_loss", "penalty": "l1", "l1": 1e-3, "l2": 0.0, "schedule": "invscaling", "lr": 0.2}),
    ("binary", {"loss": "log_loss", "penalty": "none", "schedule": "constant", "lr": 0.1, "clip": 0.3}),
    ("regression", {"loss": "squared_error", "schedule": "invscaling", "lr": 0.02}),
    ("regression", {"loss": "huber", "schedule": "constant", "lr": 0.02, "epsilon": 0.5}),
    ("regression", {"loss": "epsilon_insensitive", "schedule": "adagrad", "lr": 0.1}),
    ("multiclass", {"loss": "log_loss", "multiclass": "softmax", "l2": 1e-3}),
    ("multiclass", {"loss": "hinge", "multiclass": "ovr", "schedule": "constant", "lr": 0.05}),
    # the per-coordinate schedules beyond adagrad: normalized (the linear default) and FTRL-Proximal
    ("binary", {"loss": "log_loss", "schedule": "normalized"}),
    ("binary", {"loss": "hinge", "schedule": "normalized", "lr": 0.3, "l2": 1e-3}),
    ("regression", {"loss": "squared_error", "schedule": "normalized"}),
    ("multiclass", {"loss": "log_loss", "multiclass": "ovr", "schedule": "normalized"}),
    ("binary", {"loss": "log_loss", "schedule": "ftrl", "l1": 1e-3, "l2": 1e-3}),
    ("regression", {"loss": "huber", "schedule": "ftrl", "penalty": "l1", "l1": 1e-3, "l2": 0.0, "epsilon": 0.5}),
    ("multiclass", {"loss": "log_loss", "multiclass": "softmax", "schedule": "ftrl", "l1": 1e-3}),
    ("binary", {"loss": "log_loss", "schedule": "adaptive", "lr": 0.05}),
    # ASGD (scikit-learn's average=): the model is the mean of the iterates from row `average` on
    ("binary", {"loss": "log_loss", "schedule": "constant", "lr": 0.1, "average": 1}),
    ("binary", {"loss": "hinge", "schedule": "invscaling", "lr": 0.05, "average": 150}),
    ("binary", {"loss": "log_loss", "l1": 1e-3, "schedule": "constant", "lr": 0.1, "average": 5}),
    ("binary", {"loss": "log_loss", "average": 1}),
    ("regression", {"loss": "squared_error", "schedule": "ftrl", "l1": 1e-3, "average": 10}),
    ("multiclass", {"loss": "log_loss", "multiclass": "softmax", "average": 30}),
    ("multiclass", {"loss": "log_loss", "multiclass": "ovr", "schedule": "adagrad", "average": 100}),
]


@pytest.mark.parametrize("kind, values", CASES, ids=[f"{k}-{'-'.join(map(str, v.values()))}" for k, v in CASES])
def test_serial_matches_naive(kind, values):
    X, y = _problem(kind)
    values = {"dtype": "float64", "mode": "serial", "epochs": 3, "seed": 3, **values}
    result = hogwild.train(X, y, **values)
    W, b = _naive_run(X, y, values, 3)
    np.testing.assert_allclose(result.model.coef, W, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(result.model.intercept, b, rtol=1e-12, atol=1e-12)
    assert np.abs(W).max() > 0  # the comparison is not between two zero vectors


SYNC_CASES = {
    "log": CASES[0], "enet": CASES[5], "adagrad": CASES[10], "softmax": CASES[11],
    "normalized": ("binary", {"loss": "log_loss", "schedule": "normalized", "l2": 1e-3}),
    "ftrl": ("multiclass", {"loss": "log_loss", "multiclass": "ovr", "schedule": "ftrl", "l1": 1e-3}),
    "asgd": ("binary", {"loss": "log_loss", "schedule": "constant", "lr": 0.1, "average": 20}),
    # one output without the cumulative L1 or ASGD: `sync_batches_single` ("log", "adagrad" and "normalized" too)
    "hinge": CASES[1], "ftrl_l1": CASES[17], "invscaling_regression": CASES[8],
}


@pytest.mark.parametrize("threads, aggregate", [(1, "mean"), (2, "mean"), (2, "weighted"), (3, "mean")])
@pytest.mark.parametrize("kind, values", list(SYNC_CASES.values()), ids=list(SYNC_CASES))
def test_sync_matches_naive(kind, values, threads, aggregate):
    X, y = _problem(kind, n=101)  # 101 rows: the last mini-batch is short and unevenly split
    values = {"dtype": "float64", "mode": "sync", "epochs": 2, "seed": 1, "threads": threads, "batch_size": 7,
              "aggregate": aggregate, "chunk_rows": 20, **values}
    result = hogwild.train(X, y, **values)
    W, b = _naive_run(X, y, values, 2, sync=threads)
    np.testing.assert_allclose(result.model.coef, W, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(result.model.intercept, b, rtol=1e-12, atol=1e-12)


AVERAGE_CASES = {
    "log": CASES[0], "hinge": CASES[1], "optimal": ("binary", {"loss": "hinge", "schedule": "optimal", "l2": 1e-2}),
    "adagrad": CASES[10], "softmax": CASES[11], "normalized": CASES[13], "normalized_ovr": CASES[16],
    "ftrl_l1": CASES[17], "ftrl_softmax": CASES[19],
}


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("kind, values", list(AVERAGE_CASES.values()), ids=list(AVERAGE_CASES))
def test_average_matches_naive(kind, values, threads):
    """average mode's replicas (steps scaled by the replica count, FTRL's sums added up) against the twin:
    deterministic, since each worker writes only its own replica; merges mid-epoch and at the epoch's end."""
    X, y = _problem(kind, n=101)
    values = {"dtype": "float64", "mode": "average", "epochs": 2, "seed": 4, "threads": threads, "chunk_rows": 9,
              "average_every": 40, **values}
    result = hogwild.train(X, y, **values)
    W, b = _naive_run(X, y, values, 2, average=threads)
    np.testing.assert_allclose(result.model.coef, W, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(result.model.intercept, b, rtol=1e-12, atol=1e-12)
    assert np.abs(W).max() > 0


@pytest.mark.parametrize("mode", ["serial", "async", "average", "auto", "locked"])
def test_every_mode_owes_the_same_cumulative_l1_penalty(mode):
    """Tsuruoka's cumulative L1 total u is l1 times the sum of the steps taken, whichever mode took them: with a
    constant step, l1 * lr * rows * epochs. Workers add their own rows' share (times average's gain) and the
    runner pools the shares after every round; auto mixes rounds of one worker and of two."""
    X, y = make_sparse_classification(3000, 40, density=0.2, seed=3)
    result = hogwild.train(X, y, mode=mode, threads=2, epochs=2, schedule="constant", lr=0.1, l1=1e-4,
                           chunk_rows=256, average_every=1000)
    np.testing.assert_allclose(result.state["engine"]["u"], 1e-4 * 0.1 * 3000 * 2, rtol=1e-9)


@pytest.mark.parametrize("aggregate", ["mean", "weighted"])
@pytest.mark.parametrize("case", ["log", "hinge", "softmax", "enet"])
def test_sync_with_empty_slices_matches_naive(case, aggregate):
    # batches of 2 rows over 3 workers: every batch leaves one worker without rows (and the exchange between
    # workers with groups that are empty)
    kind, values = SYNC_CASES[case]
    X, y = _problem(kind, n=45)
    values = {"dtype": "float64", "mode": "sync", "epochs": 2, "seed": 2, "threads": 3, "batch_size": 2,
              "aggregate": aggregate, "chunk_rows": 10, **values}
    result = hogwild.train(X, y, **values)
    W, b = _naive_run(X, y, values, 2, sync=3)
    np.testing.assert_allclose(result.model.coef, W, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(result.model.intercept, b, rtol=1e-12, atol=1e-12)


def test_sync_one_output_takes_the_single_kernel(monkeypatch):
    """One output without the cumulative L1 or ASGD runs `sync_batches_single`; the rest `sync_batches`."""
    import hogwild.kernels.linear_sync as linear_sync

    calls = []
    for name in ("sync_batches", "sync_batches_single"):
        kernel = getattr(linear_sync, name)
        monkeypatch.setattr(linear_sync, name, lambda *args, kernel=kernel, name=name: calls.append(name) or kernel(*args))
    for kind, values, expected in [("binary", {}, "sync_batches_single"),
                                   ("binary", {"schedule": "ftrl", "l1": 1e-3}, "sync_batches_single"),
                                   ("regression", {"loss": "squared_error"}, "sync_batches_single"),
                                   ("binary", {"schedule": "constant", "lr": 0.1, "l1": 1e-3}, "sync_batches"),
                                   ("binary", {"average": 5}, "sync_batches"),
                                   ("multiclass", {}, "sync_batches")]:
        calls.clear()
        hogwild.train(*_problem(kind), mode="sync", threads=2, epochs=1, **values)
        assert calls and set(calls) == {expected}, (kind, values, set(calls))


def test_sync_batch_one_is_serial():
    X, y = _problem("binary")
    serial = hogwild.train(X, y, mode="serial", dtype="float64", epochs=2)
    sync = hogwild.train(X, y, mode="sync", threads=1, batch_size=1, dtype="float64", epochs=2)
    np.testing.assert_allclose(sync.model.coef, serial.model.coef, rtol=1e-12, atol=1e-13)


def test_intercept_decay_follows_input_kind_and_schedule():
    """Sparse input with a global-step schedule damps the intercept's step (0.01, as scikit-learn's SGD does);
    dense input and adagrad do not; an explicit intercept_decay overrides the default."""
    X, y = _problem("binary", n=200)
    run = dict(mode="serial", dtype="float64", epochs=2, schedule="constant", lr=0.05)
    sparse = hogwild.train(X, y, **run)
    dense = hogwild.train(X.toarray(), y, **run)
    sparse_undamped = hogwild.train(X, y, intercept_decay=1.0, **run)
    # The same CSR reaches the kernels either way, so with the same multiplier the runs are identical.
    assert np.array_equal(sparse_undamped.model.intercept, dense.model.intercept)
    assert np.array_equal(sparse_undamped.model.coef, dense.model.coef)
    assert abs(sparse.model.intercept[0]) < 0.2 * abs(dense.model.intercept[0])
    W, b = _naive_run(X, y, {**run, "seed": 0}, 2)
    np.testing.assert_allclose(sparse.model.intercept, b, rtol=1e-12, atol=1e-12)
    adagrad = dict(run, schedule="adagrad")
    assert np.array_equal(hogwild.train(X, y, **adagrad).model.intercept,
                          hogwild.train(X.toarray(), y, **adagrad).model.intercept)


@pytest.mark.parametrize("mode", ["serial", "sync"])
def test_bitwise_reproducible(mode):
    X, y = _problem("binary", n=300)
    runs = [hogwild.train(X, y, mode=mode, threads=2, epochs=2, seed=5, batch_size=16, chunk_rows=64) for _ in range(2)]
    assert np.array_equal(runs[0].model.coef, runs[1].model.coef)
    assert np.array_equal(runs[0].model.intercept, runs[1].model.intercept)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_mode_learns(mode, dense, dtype):
    X, y = make_sparse_classification(600, 30, density=0.3, seed=2)
    Xin = X.toarray() if dense else X
    result = hogwild.train(Xin, y, mode=mode, threads=2, epochs=8, dtype=dtype, batch_size=8, chunk_rows=64,
                           average_every=100, X_test=X, y_test=y)
    accuracy = result.history[-1]["test_accuracy"]
    threshold = 0.85
    assert accuracy >= threshold, f"{mode}: training accuracy {accuracy:.3f} below {threshold}"
    assert result.model.coef.dtype == np.dtype(dtype)


SCHEDULE_RUNS = {
    "normalized": dict(schedule="normalized"),
    "ftrl-l1": dict(schedule="ftrl", l1=3e-3),
    "asgd-normalized": dict(average=50),
    "asgd-ovr-constant": dict(schedule="constant", lr=0.1, average=1, classes=3),
    "adaptive": dict(schedule="adaptive", lr=0.1, tol=1e-3, n_iter_no_change=2),
}


@pytest.mark.parametrize("mode", MODES + ("auto",))
@pytest.mark.parametrize("name", list(SCHEDULE_RUNS))
def test_new_schedules_and_asgd_learn_in_every_mode(mode, name):
    """The normalized and ftrl schedules, ASGD and the adaptive rate in every CPU mode (two threads where the
    mode has threads): held to accuracy, since the parallel modes race by design."""
    options = dict(SCHEDULE_RUNS[name])
    classes = options.pop("classes", 2)
    if classes == 2:
        X, y = make_sparse_classification(600, 30, density=0.3, seed=2)
    else:
        X, y = _problem("multiclass", n=600, d=30)
    result = hogwild.train(X, y, mode=mode, threads=2, epochs=8, batch_size=8, chunk_rows=64, average_every=100,
                           X_test=X, y_test=y, **options)
    accuracy = result.history[-1]["test_accuracy"]
    threshold = 0.85 if classes == 2 else 0.7
    assert accuracy >= threshold, f"{name} {mode}: training accuracy {accuracy:.3f} below {threshold}"
    if name == "ftrl-l1":
        assert np.any(result.model.coef == 0.0), "FTRL with L1 keeps exact zeros"


def test_history_records_and_callback():
    X, y = _problem("binary", n=200)
    events = []
    result = hogwild.train(X, y, epochs=3, chunk_rows=32, threads=2, X_val=X, y_val=y, X_test=X, y_test=y,
                           callback=events.append)
    assert len(result.history) == 3
    for record in result.history:
        for key in hogwild.results.HISTORY_KEYS if hasattr(hogwild, "results") else ():
            assert key in record
        for key in ("epoch", "seconds", "train_loss", "rows_per_s", "nnz_per_s", "lr", "validation_accuracy",
                    "validation_loss", "validation_auc", "test_accuracy", "test_loss", "test_auc"):
            assert key in record, key
    kinds = [event["kind"] for event in events]
    assert kinds.count("epoch") == 3 and kinds.count("chunk") >= 3 * 3
    chunk = next(event for event in events if event["kind"] == "chunk")
    assert set(chunk) == {"kind", "epoch", "rows_done", "rows_total", "loss"}


def test_early_stopping_on_validation_fraction():
    X, y = _problem("binary", n=400)
    result = hogwild.train(X, y, epochs=200, tol=1e-1, n_iter_no_change=2, validation_fraction=0.25)
    assert result.stopped_early and result.epochs_run < 200
    assert "validation_loss" in result.history[-1]


def test_divergence_raises_with_advice():
    X, y = _problem("regression")
    Xbig = X * 1e6
    with pytest.raises(DivergenceError, match="smaller --lr"):
        hogwild.train(Xbig, y * 1e6, loss="squared_error", schedule="constant", lr=10.0, penalty="none", epochs=3)


def test_bad_inputs_raise_clear_errors():
    X, y = _problem("binary")
    with pytest.raises(DataError, match="one label per row"):
        hogwild.train(X, y[:-1])
    with pytest.raises(DataError, match="two classes"):
        hogwild.train(X, np.ones(X.shape[0]))
    with pytest.raises(ConfigError):
        hogwild.train(X, y, mode="turbo")
    with pytest.raises(ConfigError, match="softmax"):
        hogwild.train(*_problem("multiclass"), multiclass="softmax", loss="hinge")
    bad = X.toarray()
    bad[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        hogwild.train(bad, y)


def test_int64_indices_csc_coo_and_string_labels():
    X, y = _problem("binary")
    X64 = sp.csr_matrix(X)
    X64.indices = X64.indices.astype(np.int64)
    X64.indptr = X64.indptr.astype(np.int64)
    labels = np.where(y > 0, "spam", "ham")
    reference = hogwild.train(X, labels, mode="serial", epochs=2).model.coef
    for variant in (X64, X.tocsc(), X.tocoo()):
        coef = hogwild.train(variant, labels, mode="serial", epochs=2).model.coef
        np.testing.assert_array_equal(coef, reference)
    model = hogwild.train(X, labels, mode="serial", epochs=2).model
    assert set(model.predict(X)) <= {"spam", "ham"}


RESUME_CASES = {
    "adagrad": dict(schedule="adagrad", lr=0.1),
    "normalized": dict(schedule="normalized"),
    "ftrl": dict(schedule="ftrl", l1=1e-3),
    "asgd": dict(schedule="constant", lr=0.1, average=50),
    "sync-normalized-asgd": dict(mode="sync", threads=2, batch_size=8, schedule="normalized", average=3),
}


@pytest.mark.parametrize("values", list(RESUME_CASES.values()), ids=list(RESUME_CASES))
def test_state_export_restore_continues_exactly(values):
    X, y = _problem("binary", n=200)
    values = {"mode": "serial", "dtype": "float64", **values}
    full = hogwild.train(X, y, epochs=4, **values)
    half = hogwild.train(X, y, epochs=2, **values)
    resumed = hogwild.train(X, y, epochs=4, init_state=half.state, **values)
    assert np.array_equal(resumed.model.coef, full.model.coef)
    assert np.array_equal(resumed.model.intercept, full.model.intercept)


def test_a_continued_normalized_run_takes_larger_values_by_raising_its_scales():
    """partial_fit on data with larger values: the feature's scale grows and its weight shrinks by old/new (the
    online rule of Ross et al.), so the model's scores on the old units are kept."""
    X, y = _problem("binary", n=200)
    first = hogwild.train(X, y, mode="serial", epochs=1, dtype="float64")
    scale = first.state["engine"]["scale"].copy()
    grown = sp.csr_matrix(X, dtype=np.float64, copy=True)
    grown.data[grown.indices == 0] *= 10.0
    runner_state = hogwild.engine.prepare(grown, y, mode="serial", epochs=2, dtype="float64", init_state=first.state)
    try:
        after = runner_state.runner.state
        assert after.scale[0] == pytest.approx(10.0 * scale[0]) and np.array_equal(after.scale[1:], scale[1:])
        assert after.W[0, 0] == pytest.approx(first.state["engine"]["W"][0, 0] / 10.0)
        assert runner_state.runner.data.normalizer > 0
    finally:
        runner_state.runner.close()


def test_row_order_is_a_block_permutation():
    order = epoch_order(1000, seed=1, epoch=2).expand()
    assert np.array_equal(np.sort(order), np.arange(1000))
    assert not np.array_equal(order, np.arange(1000))
    assert not np.array_equal(order, epoch_order(1000, seed=1, epoch=3).expand())
    assert np.array_equal(order, epoch_order(1000, seed=1, epoch=2).expand())


@pytest.mark.parametrize("n_rows", [1, 31, 32, 33, 95, 96, 1000])
@pytest.mark.parametrize("shuffle", [True, False])
def test_kernels_read_the_block_order_as_its_expansion(n_rows, shuffle):
    from hogwild.kernels.linear import row_at

    for epoch in range(3):
        order = epoch_order(n_rows, seed=5, epoch=epoch, shuffle=shuffle)
        expanded = order.expand()
        assert np.array_equal(np.sort(expanded), np.arange(n_rows))
        # rows come in runs of consecutive indices, one per block: the cache-friendly part of the design
        assert np.count_nonzero(np.diff(expanded) != 1) <= order.blocks.size - 1
        assert order.blocks.nbytes <= 8 * (n_rows // 32 + 1)
        compiled = [row_at(*order.kernel_args(), r) for r in range(n_rows)]
        assert compiled == expanded.tolist()


def test_int32_and_int64_indptr_train_alike():
    X, y = _problem("binary")
    X32 = sp.csr_matrix(X, dtype=np.float64)
    X32.indptr = X32.indptr.astype(np.int32)
    X64 = X32.copy()
    X64.indptr = X64.indptr.astype(np.int64)
    runs = [hogwild.train(M, y, mode="serial", epochs=3, dtype="float64") for M in (X32, X64)]
    assert np.array_equal(runs[0].model.coef, runs[1].model.coef)


def test_no_sample_weight_means_one_shared_weight():
    from hogwild.problem import prepare_problem
    from hogwild.runners._linear import LinearData

    X, y = _problem("multiclass")
    config = hogwild.TrainConfig(mode="serial", epochs=3, dtype="float64", multiclass="softmax")
    assert LinearData(prepare_problem(X, y, config), config).sample_weight.shape == (1,)
    plain = hogwild.train(X, y, config)
    ones = hogwild.train(X, y, config, sample_weight=np.ones(X.shape[0]))
    assert np.array_equal(plain.model.coef, ones.model.coef)
    weighted = hogwild.train(X, y, config, sample_weight=np.linspace(0.5, 2.0, X.shape[0]))
    assert not np.allclose(weighted.model.coef, plain.model.coef)


@pytest.mark.parametrize("kind,extra", [
    ("binary", {}), ("binary", {"schedule": "optimal"}), ("multiclass", {"multiclass": "ovr"}),
    ("multiclass", {"multiclass": "softmax"}), ("multiclass", {"multiclass": "ovr", "schedule": "constant", "l1": 1e-3}),
])
def test_float32_kernels_track_float64(kind, extra):
    """The kernels compute in the weights' type: float32 runs stay close to float64 runs (0.1% of the largest
    weight: `optimal`'s first steps are huge on 300 rows and amplify rounding; the others agree to ~1e-5)."""
    X, y = _problem(kind, n=300)
    runs = {dtype: hogwild.train(X, y, mode="serial", epochs=5, dtype=dtype, **extra) for dtype in ("float32", "float64")}
    coef32, coef64 = runs["float32"].model.coef, runs["float64"].model.coef
    assert coef32.dtype == np.float32
    scale = np.abs(coef64).max()
    assert np.abs(coef32.astype(np.float64) - coef64).max() <= 1e-3 * scale
    assert not np.array_equal(coef32.astype(np.float64), coef64)  # float32 arithmetic, not a float64 copy
