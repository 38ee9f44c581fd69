"""The dense MLP path on BLAS (`hogwild.kernels.mlp_dense`) against the NumPy twin and the loop kernels, in
every mode; the BLAS held to one thread while the workers run; the loop kernels where threadpoolctl is missing.

A GEMM adds its products in its own order, so float64 results match the twin to ~1e-10, not bitwise; float32
runs are held to float32 rounding (they are compared with the float64 twin and with the float32 loop kernels).
"""

import numpy as np
import pytest
import scipy.sparse as sp

import naive_mlp
import hogwild
from hogwild._inputs import Features
from hogwild.config import TrainConfig
from hogwild.kernels import mlp as loop_kernels
from hogwild.kernels import mlp_dense
from hogwild.loop import epoch_rate
from hogwild.models import MLPModel, init_mlp_params
from hogwild.order import epoch_order
from hogwild.runners import mlp_cpu
from hogwild.runners.mlp_cpu import gradient

threadpoolctl = pytest.importorskip("threadpoolctl", reason="the GEMM path needs threadpoolctl to limit BLAS threads")

ACTIVATIONS = ["relu", "tanh", "sigmoid"]
DTYPES = ["float64", "float32"]
# (output, number of output units, classes)
OUTPUTS = [("softmax", 3, np.arange(3)), ("logistic", 1, np.array([2, 7])), ("identity", 2, None)]
OUTPUT_IDS = [case[0] for case in OUTPUTS]
# float32 against the float64 twin after 2 epochs of small steps (observed: under 1e-6)
FLOAT32_ATOL = 1e-5


def make_problem(n_rows, n_features, output, seed=0):
    """Dense rows with MNIST-like blanks (about half the inputs exactly zero) and labels for ``output``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features))
    X[rng.random(size=X.shape) < 0.5] = 0.0
    if output == "softmax":
        y = np.argmax(X[:, :3] + 0.1 * rng.normal(size=(n_rows, 3)), axis=1)
    elif output == "logistic":
        y = np.where(X[:, 0] - X[:, 1] > 0, 7, 2)
    else:
        y = np.column_stack([X[:, 0] * 2 - X[:, 1], np.sin(X[:, 2])])
    return X, y


def twin_target(y, output, classes):
    return y if output == "identity" else np.searchsorted(classes, y)


def make_config(output, activation, dtype, **changes):
    options = dict(
        model="mlp", loss="squared_error" if output == "identity" else "log_loss", hidden=(6, 5),
        activation=activation, optimizer="adam", lr=0.01, l2=1e-3, batch_size=7, epochs=2, mode="serial",
        dtype=dtype, seed=5, schedule="decay", decay=0.8,
    )
    options.update(changes)
    return TrainConfig(**options).validate()


def naive_run(X, y, config, output, classes, n_outputs, sample_weight=None):
    """The float64 twin of a ``serial`` run of ``config`` (same initial weights, row orders and step sizes)."""
    dims = [X.shape[1], *config.hidden, n_outputs]
    params = init_mlp_params(dims, config.activation, config.seed, np.float64)
    orders = [epoch_order(X.shape[0], config.seed, e, config.shuffle, 0).expand() for e in range(config.epochs)]
    lrs = [epoch_rate(config, e) for e in range(config.epochs)]
    return naive_mlp.train_serial(
        params, dims, X, twin_target(y, output, classes), config.activation, output, orders, lrs,
        config.batch_size, config.optimizer, config.l2, sample_weight=sample_weight, momentum=config.momentum,
        beta1=config.beta1, beta2=config.beta2, epsilon=config.adam_epsilon, clip_norm=config.clip_norm,
    )


def assert_matches_twin(params, expected, dtype, what):
    if dtype == "float64":
        np.testing.assert_allclose(params, expected, rtol=1e-10, atol=1e-12, err_msg=what)
    else:
        error = float(np.max(np.abs(params.astype(np.float64) - expected)))
        assert error < FLOAT32_ATOL, (
            f"{what}: float32 weights differ from the twin by {error:.2e} (threshold {FLOAT32_ATOL})"
        )


def test_dense_input_trains_on_the_gemm_kernels():
    X, _ = make_problem(10, 4, "softmax")
    assert mlp_cpu.uses_gemm(Features(X, np.float64))
    assert not mlp_cpu.uses_gemm(Features(sp.csr_matrix(X), np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("output, n_outputs, classes", OUTPUTS, ids=OUTPUT_IDS)
def test_gemm_gradient_matches_twin_and_loop_kernels(dtype, activation, output, n_outputs, classes):
    X, y = make_problem(19, 11, output, seed=1)
    dims = [11, 9, 5, n_outputs]
    params = init_mlp_params(dims, activation, 0, np.float64)
    params += 0.05 * np.random.default_rng(2).normal(size=params.size)  # non-zero biases
    model = MLPModel(params.astype(dtype), dims, activation, output, classes)
    loss, grad = gradient(model, X, y, gemm=True)
    loop_loss, loop_grad = gradient(model, X, y, gemm=False)
    layers = naive_mlp.unflatten(model.params, model.dims)
    naive_loss, naive_grads = naive_mlp.batch_gradient(layers, X.astype(dtype).astype(np.float64),
                                                       twin_target(y, output, classes), activation, output)
    naive_flat = naive_mlp.flatten(naive_grads)
    rtol, atol = (1e-11, 1e-13) if dtype == "float64" else (2e-5, 2e-6)
    np.testing.assert_allclose(grad, naive_flat, rtol=rtol, atol=atol, err_msg="GEMM kernel vs twin")
    np.testing.assert_allclose(grad, loop_grad, rtol=rtol, atol=atol, err_msg="GEMM kernel vs loop kernel")
    np.testing.assert_allclose(loss, naive_loss / X.shape[0], rtol=rtol)
    np.testing.assert_allclose(loss, loop_loss, rtol=rtol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output, n_outputs, classes", OUTPUTS, ids=OUTPUT_IDS)
def test_gemm_kernel_scales_rows_by_their_weights(dtype, output, n_outputs, classes):
    """`dense_batch_gradient` with one weight per row, against the weighted twin and the loop kernel."""
    X, y = make_problem(23, 10, output, seed=3)
    X = X.astype(dtype)
    dims = np.array([10, 8, n_outputs], dtype=np.int64)
    params = init_mlp_params(dims, "tanh", 1, np.dtype(dtype))
    weights = np.random.default_rng(4).uniform(0.0, 3.0, size=23).astype(dtype)
    rows = np.array([5, 0, 17, 3, 22, 9, 11, 14, 1], dtype=np.int64)  # a micro-batch, not in storage order
    y_index, y_value, kind = mlp_cpu.encode_targets(np.asarray(y), classes, np.dtype(dtype))
    assert kind == output
    w_off, b_off, n_params = loop_kernels.layout(dims)
    n_first = 10 * 8
    codes = (loop_kernels.OUTPUTS[output], loop_kernels.ACTIVATIONS["tanh"])

    def buffers():
        act_off, size = loop_kernels.activation_offsets(dims, rows.size)
        return (act_off, np.zeros(size, dtype), np.zeros(size, dtype), np.zeros(n_first, dtype),
                np.zeros(n_params - n_first, dtype))

    act_off, acts, deltas, grad_rows, grad_rest = buffers()
    loss, n_touched = mlp_dense.dense_batch_gradient(
        X, y_index, y_value, weights, *codes, rows, params, dims, w_off, b_off, act_off, acts, deltas,
        np.zeros(rows.size * 10, dtype), grad_rows, grad_rest,
    )
    assert n_touched == 10
    grad = np.concatenate([grad_rows, grad_rest])

    act_off, acts, deltas, loop_rows, loop_rest = buffers()
    loop_loss, _ = loop_kernels.batch_gradient(
        True, X, np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, dtype), y_index, y_value, weights,
        *codes, rows, params, dims, w_off, b_off, act_off, acts, deltas, loop_rows, np.arange(10, dtype=np.int64),
        np.full(10, -1, np.int64), loop_rest,
    )
    naive_loss, naive_grads = naive_mlp.batch_gradient(
        naive_mlp.unflatten(params, dims), X[rows].astype(np.float64),
        twin_target(np.asarray(y)[rows], output, classes), "tanh", output, weights[rows],
    )
    rtol, atol = (1e-11, 1e-13) if dtype == "float64" else (2e-5, 2e-6)
    np.testing.assert_allclose(grad, naive_mlp.flatten(naive_grads), rtol=rtol, atol=atol)
    np.testing.assert_allclose(grad, np.concatenate([loop_rows, loop_rest]), rtol=rtol, atol=atol)
    np.testing.assert_allclose([loss, loop_loss], [naive_loss, naive_loss], rtol=rtol)


# (mode, threads): the deterministic ones equal the twin; async and auto with 2 threads are held to its loss
MODES = [("serial", 1), ("async", 1), ("auto", 1), ("sync", 2), ("async", 2), ("auto", 2)]


@pytest.mark.parametrize("mode, threads", MODES, ids=[f"{m}x{t}" for m, t in MODES])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("output, n_outputs, classes", OUTPUTS, ids=OUTPUT_IDS)
def test_every_mode_matches_twin(mode, threads, dtype, activation, output, n_outputs, classes):
    X, y = make_problem(84, 9, output, seed=6)
    # sync: the weighted mean of the slices' gradients is the mini-batch's, so sync equals the serial twin
    config = make_config(output, activation, dtype, mode=mode, threads=threads, aggregate="weighted",
                         chunk_rows=21)  # several chunks (and auto rounds) per epoch, each a multiple of 7 rows
    sample_weight = np.random.default_rng(7).uniform(0.5, 2.0, size=X.shape[0])
    result = hogwild.train(X, y, config, sample_weight=sample_weight)
    expected, losses = naive_run(X, y, config, output, classes, n_outputs, sample_weight)
    what = f"{mode} x{threads} {dtype} {activation} {output}"
    if threads == 1 or mode == "sync":
        assert_matches_twin(result.model.params, expected, dtype, what)
        rtol = 1e-10 if dtype == "float64" else 1e-5
        np.testing.assert_allclose([r["train_loss"] for r in result.history], losses, rtol=rtol, err_msg=what)
    else:
        # Hogwild!: two shards race on the weights; the loss must stay near the serial twin's
        final, twin_final = result.history[-1]["train_loss"], losses[-1]
        threshold = 1.3 * twin_final + 0.05
        assert final <= threshold, f"{what}: final train loss {final:.4f} above {threshold:.4f} (twin {twin_final:.4f})"
        assert np.all(np.isfinite(result.model.params))


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "rmsprop"])
def test_serial_matches_twin_with_every_optimizer_and_clipping(optimizer):
    X, y = make_problem(45, 8, "softmax", seed=3)
    lr = {"sgd": 0.1, "momentum": 0.05, "adam": 0.01, "rmsprop": 0.01}[optimizer]
    config = make_config("softmax", "relu", "float64", optimizer=optimizer, lr=lr, epochs=3, clip_norm=1.5)
    result = hogwild.train(X, y, config)
    expected, losses = naive_run(X, y, config, "softmax", np.arange(3), 3)
    assert_matches_twin(result.model.params, expected, "float64", optimizer)
    np.testing.assert_allclose([r["train_loss"] for r in result.history], losses, rtol=1e-10)


def test_blas_holds_one_thread_during_training_and_is_restored():
    """Every chunk event runs inside an epoch: there each BLAS reports one thread; after training, what it had."""
    X, y = make_problem(200, 6, "softmax")
    before = [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]
    seen = []

    def callback(event):
        if event["kind"] == "chunk":
            seen.append([info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"])

    hogwild.train(X, y, model="mlp", hidden=(4,), epochs=2, chunk_rows=50, threads=2, mode="async",
                  callback=callback)
    assert seen and all(counts and set(counts) == {1} for counts in seen), seen
    after = [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]
    assert after[: len(before)] == before, (before, after)


@pytest.mark.parametrize("mode, threads", [("serial", 1), ("sync", 2)])
def test_without_threadpoolctl_dense_input_keeps_the_loop_kernels(monkeypatch, mode, threads):
    """No way to limit BLAS threads: the loop kernels (no BLAS) train, and still match the twin."""
    monkeypatch.setattr(mlp_cpu, "can_limit_blas", lambda: False)
    called = []
    monkeypatch.setattr(mlp_cpu, "_dense_kernels", lambda: called.append(1))
    X, y = make_problem(60, 8, "softmax", seed=9)
    config = make_config("softmax", "tanh", "float64", mode=mode, threads=threads, aggregate="weighted")
    result = hogwild.train(X, y, config)
    expected, _ = naive_run(X, y, config, "softmax", np.arange(3), 3)
    assert_matches_twin(result.model.params, expected, "float64", f"loop kernels, {mode}")
    assert not called
