"""CUDA kernels (numba.cuda) against the NumPy twins of tests/naive.py, and the GPU engine end to end.

Runs under the CUDA simulator in CI (``NUMBA_ENABLE_CUDASIM=1``, where every CUDA thread is a Python thread:
hence the tiny inputs) and unmodified on a real GPU. ``THREADS_PER_BLOCK`` is shrunk so that even these inputs
span several blocks. Exactness: with ``ROWS_PER_LAUNCH = 1`` every launch holds one row, so the async and
atomic kernels run the serial rule and must match `naive_epoch_serial` to 1e-10 in float64; ``sync`` is
deterministic up to the order of its atomic additions and must match `naive_epoch_sync` (one worker).
Concurrent async/atomic runs are held to accuracy thresholds.
"""

import numpy as np
import pytest
import scipy.sparse as sp

numba_cuda = pytest.importorskip("numba.cuda", reason="numba-cuda is not installed")

pytestmark = pytest.mark.cuda

if not numba_cuda.is_available():
    pytest.skip("no CUDA GPU and NUMBA_ENABLE_CUDASIM is not set", allow_module_level=True)

from hogwild.config import TrainConfig  # noqa: E402
from hogwild.kernels import config as kernel_config  # noqa: E402
from hogwild.kernels import gpu_linear  # noqa: E402
from hogwild.kernels.linear import kernel_params  # noqa: E402

from naive import (  # noqa: E402
    NaiveExtras,
    naive_epoch_serial,
    naive_epoch_sync,
    naive_feature_scales,
    naive_normalizer,
)

N_ROWS, N_FEATURES = 24, 10


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Four threads per block: tiny inputs still span several blocks (and simulate fast)."""
    monkeypatch.setattr(kernel_config, "THREADS_PER_BLOCK", 4)


def _problem(task, n_classes=3, seed=0, n_rows=N_ROWS, n_features=N_FEATURES):
    """(X float64 CSR, targets as the kernels take them, sample weights)."""
    rng = np.random.default_rng(seed)
    X = sp.random(n_rows, n_features, density=0.35, format="csr", random_state=rng, dtype=np.float64)
    X.sort_indices()
    w = rng.normal(size=(n_features, n_classes))
    scores = X @ w
    if task == "binary":
        targets = np.where(scores[:, 0] > np.median(scores[:, 0]), 1.0, -1.0)
    elif task == "regression":
        targets = scores[:, 0] + 0.1 * rng.normal(size=n_rows)
    else:
        targets = np.argmax(scores, axis=1).astype(np.float64)
    weights = rng.uniform(0.5, 1.5, size=n_rows)
    return X, targets, weights


def _inv_freq(X):
    counts = np.bincount(X.indices, minlength=X.shape[1]).astype(np.float64)
    return np.divide(X.shape[0], counts, out=np.zeros_like(counts), where=counts > 0)


def _params(loss="log_loss", multiclass="binary", schedule="constant", l2=1e-2, l1=0.0, clip=None, average=0, X=None,
            weights=None):
    penalty = "elasticnet" if l1 and l2 else ("l1" if l1 else ("l2" if l2 else "none"))
    cfg = TrainConfig(loss=loss, schedule=schedule, lr=0.3, l2=l2, l1=l1, penalty=penalty, clip=clip,
                      power_t=0.5, decay=0.8, average=average).validate()
    normalizer = 1.0
    if schedule == "normalized":
        normalizer = naive_normalizer(X, naive_feature_scales(X), weights, True)
    # Sparse input: global-step schedules damp the intercept's step (0.01), so the kernels' use of it is checked.
    return kernel_params(cfg, 2, multiclass, cfg.effective_intercept_decay(sparse_input=True), normalizer=normalizer)


def _device_csr(X, dtype):
    return (
        numba_cuda.to_device(X.indptr.astype(np.int64)),
        numba_cuda.to_device(X.indices.astype(np.int32)),
        numba_cuda.to_device(X.data.astype(dtype)),
    )


def _run_gpu(X, targets, weights, order, params, W0, b0, *, mode, lanes=1, batch_size=None, epochs=1, dtype=np.float64):
    """Train on the device from (W0, b0); returns (W, b, loss_sum) on the host."""
    p = gpu_linear.KernelParams(params)
    schedule = params["schedule"]
    averaging = params["average_start"] > 0
    state = gpu_linear.DeviceState(
        W0.astype(dtype), b0.astype(dtype), _inv_freq(X), adagrad=schedule in ("adagrad", "normalized", "ftrl"),
        l1=params["l1"] > 0 and schedule != "ftrl", sync=mode == gpu_linear.ACCUMULATE, ftrl=schedule == "ftrl",
        average=averaging, scale=naive_feature_scales(X) if schedule == "normalized" else None,
    )
    csr = _device_csr(X, dtype)
    d_targets = numba_cuda.to_device(targets)
    d_weights = numba_cuda.to_device(weights)
    d_order = numba_cuda.to_device(order.astype(np.int64))
    row_loss = numba_cuda.device_array(len(order), dtype=np.float64)
    t = u = 0.0
    loss_sum = 0.0
    for _ in range(epochs):
        if batch_size is None:
            t, u = gpu_linear.sgd_rows(csr, d_targets, d_weights, d_order, 0, len(order), state, p, mode, lanes,
                                       t, u, row_loss)
        else:
            for first in range(0, len(order), batch_size):
                last = min(len(order), first + batch_size)
                gpu_linear.sgd_rows(csr, d_targets, d_weights, d_order, first, last, state, p, mode, lanes,
                                    t, u, row_loss)
                u = gpu_linear.apply_batch(state, p, last - first, t, u)
                t += 1.0
        loss_sum += float(row_loss.copy_to_host().sum())
    W, b = state.weights()
    count = t - params["average_start"] + 1
    if averaging and count >= 1:  # ASGD: the mean of the iterates from its sums (`_linear.averaged_weights`)
        W = W - state.avg_W.copy_to_host() / count
        b = b - state.avg_b.copy_to_host() / count
    return W, b, loss_sum


def _run_naive(X, targets, weights, order, params, W0, b0, *, batch_size=None, epochs=1):
    W, b = W0.copy(), b0.copy()
    acc_W, acc_b, q = np.zeros_like(W), np.zeros_like(b), np.zeros_like(W)
    extras = NaiveExtras(W, b, naive_feature_scales(X))
    inv_freq = _inv_freq(X)
    t = u = 0.0
    loss_sum = 0.0
    for _ in range(epochs):
        if batch_size is None:
            t, u, ls, _ = naive_epoch_serial(X, targets, weights, order, W, b, acc_W, acc_b, q, inv_freq, params, t, u,
                                             extras)
        else:
            t, u, ls, _ = naive_epoch_sync(X, targets, weights, order, W, b, acc_W, acc_b, q, inv_freq, params, t, u,
                                           batch_size, 1, "weighted", extras)
        loss_sum += ls
    if 0 < params["average_start"] <= t:
        return extras.avg_W, extras.avg_b, loss_sum
    return W, b, loss_sum


TASK_OF = {"log_loss": "binary", "hinge": "binary", "squared_hinge": "binary", "modified_huber": "binary",
           "perceptron": "binary", "squared_error": "regression", "huber": "regression",
           "epsilon_insensitive": "regression"}

# (loss, multiclass, schedule, l2, l1, clip): every loss, schedule and penalty at least once, kept few
# because the simulator is slow.
RULE_CASES = [
    ("log_loss", "binary", "constant", 1e-2, 0.0, None),
    ("hinge", "binary", "invscaling", 1e-2, 0.0, None),
    ("squared_hinge", "binary", "decay", 0.0, 0.0, 1.0),
    ("modified_huber", "binary", "optimal", 1e-1, 0.0, None),
    ("perceptron", "binary", "constant", 0.0, 0.0, None),
    ("squared_error", "binary", "adagrad", 1e-2, 0.0, None),
    ("huber", "binary", "constant", 1e-2, 1e-3, None),
    ("epsilon_insensitive", "binary", "invscaling", 0.0, 1e-3, None),
    ("log_loss", "ovr", "optimal", 1e-1, 1e-3, None),
    ("log_loss", "softmax", "constant", 1e-2, 0.0, 0.5),
    ("log_loss", "softmax", "adagrad", 1e-2, 1e-3, None),
    ("log_loss", "binary", "normalized", 1e-2, 0.0, None),
    ("squared_error", "binary", "ftrl", 1e-2, 1e-2, None),
    ("log_loss", "softmax", "ftrl", 1e-2, 1e-3, None),
    ("hinge", "ovr", "normalized", 0.0, 0.0, None, 5),  # ASGD from row 5 on
    ("log_loss", "binary", "constant", 1e-2, 1e-3, None, 1),
]


def _setup(loss, multiclass, schedule, l2, l1, clip, average=0, seed=0):
    task = "multiclass" if multiclass != "binary" else TASK_OF[loss]
    X, targets, weights = _problem(task, seed=seed)
    params = _params(loss, multiclass, schedule, l2, l1, clip, average, X, weights)
    K = 3 if multiclass != "binary" else 1
    rng = np.random.default_rng(seed + 1)
    W0 = 0.1 * rng.normal(size=(N_FEATURES, K))
    b0 = 0.1 * rng.normal(size=K)
    order = rng.permutation(N_ROWS)
    return X, targets, weights, params, W0, b0, order


@pytest.mark.parametrize("case", RULE_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def test_one_row_per_launch_is_the_serial_rule(monkeypatch, case):
    monkeypatch.setattr(kernel_config, "ROWS_PER_LAUNCH", 1)
    X, targets, weights, params, W0, b0, order = _setup(*case)
    W_ref, b_ref, loss_ref = _run_naive(X, targets, weights, order, params, W0, b0)
    W, b, loss = _run_gpu(X, targets, weights, order, params, W0, b0, mode=gpu_linear.ASYNC)
    np.testing.assert_allclose(W, W_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b, b_ref, rtol=1e-10, atol=1e-12)
    assert loss == pytest.approx(loss_ref, rel=1e-10)


@pytest.mark.parametrize("mode", [gpu_linear.ASYNC, gpu_linear.ATOMIC])
@pytest.mark.parametrize("lanes", [1, 4])
@pytest.mark.parametrize("case", [("log_loss", "ovr", "invscaling", 1e-2, 1e-3, None),
                                  ("log_loss", "binary", "ftrl", 1e-2, 1e-3, None, 3),
                                  ("squared_error", "binary", "normalized", 1e-2, 0.0, None, 3)],
                         ids=["invscaling-l1", "ftrl-asgd", "normalized-asgd"])
def test_modes_and_lanes_are_the_serial_rule_one_row_at_a_time(monkeypatch, mode, lanes, case):
    monkeypatch.setattr(kernel_config, "ROWS_PER_LAUNCH", 1)
    X, targets, weights, params, W0, b0, order = _setup(*case)
    W_ref, b_ref, _ = _run_naive(X, targets, weights, order, params, W0, b0)
    W, b, _ = _run_gpu(X, targets, weights, order, params, W0, b0, mode=mode, lanes=lanes)
    np.testing.assert_allclose(W, W_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b, b_ref, rtol=1e-10, atol=1e-12)


SYNC_CASES = [
    ("log_loss", "binary", "constant", 1e-2, 0.0, None),
    ("squared_error", "binary", "invscaling", 1e-2, 1e-3, None),
    ("hinge", "ovr", "adagrad", 1e-2, 0.0, None),
    ("log_loss", "softmax", "optimal", 1e-1, 1e-3, 0.5),
    ("log_loss", "binary", "normalized", 1e-2, 0.0, None, 2),
    ("modified_huber", "ovr", "ftrl", 1e-2, 1e-2, None, 3),
]


@pytest.mark.parametrize("case", SYNC_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sync_matches_naive_minibatch_rule(case, dtype):
    X, targets, weights, params, W0, b0, order = _setup(*case)
    W_ref, b_ref, loss_ref = _run_naive(X, targets, weights, order, params, W0, b0, batch_size=5, epochs=2)
    W, b, loss = _run_gpu(X, targets, weights, order, params, W0, b0, mode=gpu_linear.ACCUMULATE, batch_size=5,
                          epochs=2, dtype=dtype)
    # float64: only the order of the atomic additions differs; float32: float32 rounding of W and G
    rtol, atol = (1e-10, 1e-12) if dtype == np.float64 else (2e-4, 2e-5)
    np.testing.assert_allclose(W, W_ref, rtol=rtol, atol=atol)
    np.testing.assert_allclose(b, b_ref, rtol=rtol, atol=atol)
    assert loss == pytest.approx(loss_ref, rel=rtol)


def test_sync_with_warp_per_row_matches_naive():
    X, targets, weights, params, W0, b0, order = _setup("log_loss", "softmax", "constant", 1e-2, 0.0, None)
    W_ref, b_ref, _ = _run_naive(X, targets, weights, order, params, W0, b0, batch_size=6)
    W, b, _ = _run_gpu(X, targets, weights, order, params, W0, b0, mode=gpu_linear.ACCUMULATE, lanes=2, batch_size=6)
    np.testing.assert_allclose(W, W_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b, b_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", [gpu_linear.ASYNC, gpu_linear.ATOMIC])
@pytest.mark.parametrize("lanes", [1, 2])
def test_concurrent_rows_still_learn(mode, lanes):
    """Many rows per launch (real Hogwild! races under the GPU; interleaved threads under the simulator)."""
    X, targets, weights = _problem("binary", n_rows=48, seed=3)
    params = _params("log_loss", "binary", "constant", 1e-3)
    order = np.random.default_rng(0).permutation(48)
    W, b, _ = _run_gpu(X, targets, weights, order, params, np.zeros((N_FEATURES, 1)), np.zeros(1), mode=mode,
                       lanes=lanes, epochs=8, dtype=np.float32)
    accuracy = float(np.mean(np.where(X @ W[:, 0] + b[0] > 0, 1.0, -1.0) == targets))
    threshold = 0.8
    assert accuracy >= threshold, f"accuracy {accuracy:.3f} below threshold {threshold}"


def test_launch_shape_shrinks_blocks_for_many_classes(monkeypatch):
    monkeypatch.setattr(kernel_config, "THREADS_PER_BLOCK", 256)
    blocks, tpb, shared = gpu_linear._launch_shape(1000, 1, 100)
    assert shared <= gpu_linear.SHARED_BYTES_LIMIT and tpb < 256 and blocks * tpb >= 1000


def test_choose_lanes_follows_mean_row_length(monkeypatch):
    monkeypatch.setattr(kernel_config, "WARP_PER_ROW_NNZ", 10)
    monkeypatch.setattr(kernel_config, "THREADS_PER_BLOCK", 256)
    assert gpu_linear.choose_lanes(n_nonzeros=50, n_rows=10) == 1
    assert gpu_linear.choose_lanes(n_nonzeros=500, n_rows=10) == 32


# ------------------------------------------------------------------------------------------------------
# the GPU engine end to end, against the CPU engine
# ------------------------------------------------------------------------------------------------------
from conftest import make_sparse_classification  # noqa: E402

from hogwild.engine import train  # noqa: E402


def train_linear_gpu(X, y=None, config=None, *, gpu_mode=None, **kwargs):
    """The front door on the GPU; ``gpu_mode`` sets the mode."""
    if gpu_mode is not None:
        kwargs["mode"] = gpu_mode
    return train(X, y, config, device="cuda", **kwargs)


from hogwild.models import LinearModel  # noqa: E402

ENGINE_BASE = dict(threads=1, batch_size=6, epochs=3, lr=0.3, l2=1e-3, seed=3)


def _multiclass_problem(seed=0):
    X, _, _ = _problem("multiclass", seed=seed, n_rows=36)
    rng = np.random.default_rng(seed)
    y = np.argmax(X @ rng.normal(size=(N_FEATURES, 3)), axis=1) + 1  # labels 1..3, as LIBSVM files have them
    return X, y


ENGINE_CASES = [
    ("binary", dict(schedule="constant")),
    ("binary", dict(schedule="optimal", loss="hinge", l1=1e-3, penalty="elasticnet")),
    ("regression", dict(schedule="invscaling", loss="squared_error", lr=0.05)),
    # AdaGrad's first step is lr * sign(gradient): float32 rounding of a gradient that cancels to ~0 flips whole
    # steps, so this case is compared in float64 (where CPU and GPU agree exactly).
    ("softmax", dict(schedule="adagrad", multiclass="softmax", dtype="float64")),
    ("softmax", dict(schedule="constant", multiclass="softmax")),
    ("ovr", dict(schedule="decay", loss="modified_huber", class_weight="balanced")),
    ("binary", dict(schedule="normalized", average=5, dtype="float64")),
    ("ovr", dict(schedule="ftrl", l1=1e-3, penalty="elasticnet", dtype="float64")),
    ("regression", dict(schedule="constant", loss="squared_error", lr=0.05, average=1)),
]


def _engine_problem(task):
    if task in ("softmax", "ovr"):
        return _multiclass_problem()
    if task == "regression":
        X, targets, _ = _problem("regression", n_rows=36)
        return X, targets
    return make_sparse_classification(36, N_FEATURES, seed=1)


@pytest.mark.parametrize("mode", ["sync", "serial"])
@pytest.mark.parametrize("case", ENGINE_CASES, ids=lambda c: c[0] + "-" + c[1]["schedule"] + "-" + c[1].get("dtype", "float32"))
def test_gpu_engine_matches_cpu_engine(mode, case):
    task, extra = case
    X, y = _engine_problem(task)
    config = {**ENGINE_BASE, "dtype": "float32", **extra, "mode": mode}
    cpu = train(X, y, **config)
    gpu = train_linear_gpu(X, y, **config)
    assert isinstance(gpu.model, LinearModel)
    np.testing.assert_allclose(gpu.model.coef, cpu.model.coef, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gpu.model.intercept, cpu.model.intercept, rtol=1e-4, atol=1e-5)
    gpu_losses = [record["train_loss"] for record in gpu.history]
    cpu_losses = [record["train_loss"] for record in cpu.history]
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-4)
    if task == "regression":
        np.testing.assert_allclose(gpu.model.predict(X), cpu.model.predict(X), rtol=1e-4, atol=1e-5)
    else:
        np.testing.assert_array_equal(gpu.model.predict(X), cpu.model.predict(X))


@pytest.mark.parametrize("gpu_mode", ["async", "atomic"])
def test_gpu_lock_free_modes_reach_accuracy(gpu_mode):
    X, y = make_sparse_classification(64, 16, density=0.3, seed=2)
    result = train_linear_gpu(X, y, epochs=10, lr=0.5, l2=1e-4, schedule="constant", gpu_mode=gpu_mode,
                              X_val=X, y_val=y)
    accuracy = result.history[-1]["validation_accuracy"]
    threshold = 0.85
    assert accuracy >= threshold, f"{gpu_mode}: accuracy {accuracy:.3f} below threshold {threshold}"
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_train_dispatches_to_the_gpu_and_reports_progress(monkeypatch):
    monkeypatch.setattr(kernel_config, "ROWS_PER_LAUNCH", 12)
    X, y = make_sparse_classification(30, N_FEATURES, seed=4)
    events = []
    result = train(X, y, device="cuda", mode="sync", batch_size=5, epochs=2, callback=events.append)
    chunks = [e for e in events if e["kind"] == "chunk"]
    # 30 rows in segments of 10 (ROWS_PER_LAUNCH rounded down to whole batches): 3 per epoch
    assert [c["rows_done"] for c in chunks] == [10, 20, 30, 10, 20, 30]
    assert [e["epoch"] for e in events if e["kind"] == "epoch"] == [1, 2]
    assert result.model.coef.dtype == np.float32


def test_gpu_checkpoint_mid_epoch_and_resume_match_an_uninterrupted_run(monkeypatch, tmp_path):
    """Ctrl-C between two launches writes a checkpoint (weights read back from the device); resuming uploads it."""
    import os
    import signal

    from hogwild.checkpoint import read_checkpoint
    from hogwild.errors import TrainingInterrupted

    monkeypatch.setattr(kernel_config, "ROWS_PER_LAUNCH", 12)
    X, y = make_sparse_classification(30, N_FEATURES, seed=4)
    config = dict(device="cuda", mode="sync", batch_size=5, epochs=3, dtype="float64", schedule="adagrad")
    clean = train(X, y, **config)
    ckpt = str(tmp_path / "ckpt")

    def interrupt(event):
        if event["kind"] == "chunk" and event["epoch"] == 2 and event["rows_done"] == 20:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted) as caught:
        train(X, y, **config, checkpoint_dir=ckpt, callback=interrupt)
    state, meta = read_checkpoint(caught.value.checkpoint)
    assert (meta["epoch"], meta["position"]) == (1, 20)
    assert np.any(state["engine"]["W"] != 0) and np.any(state["engine"]["acc_W"] != 0)
    with pytest.warns(UserWarning, match="resuming from"):
        resumed = train(X, y, **config, checkpoint_dir=ckpt, resume=True)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    np.testing.assert_allclose(resumed.model.coef, clean.model.coef, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(resumed.model.intercept, clean.model.intercept, rtol=1e-12, atol=1e-14)


def test_gpu_refuses_cpu_only_modes():
    from hogwild.errors import ConfigError

    X, y = make_sparse_classification(20, N_FEATURES, seed=5)
    for mode in ("average", "locked"):
        with pytest.raises(ConfigError, match="not available for --model linear on --device cuda; use one of"):
            train_linear_gpu(X, y, mode=mode, epochs=1)


def test_warp_per_row_engine(monkeypatch):
    monkeypatch.setattr(kernel_config, "WARP_PER_ROW_NNZ", 1)  # every row counts as long: lanes = 4
    X, y = make_sparse_classification(24, N_FEATURES, density=0.4, seed=6)
    config = dict(ENGINE_BASE, mode="sync", dtype="float64", schedule="constant")
    cpu = train(X, y, **config)
    gpu = train_linear_gpu(X, y, **config)
    np.testing.assert_allclose(gpu.model.coef, cpu.model.coef, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------------------------
# device resolution
# ------------------------------------------------------------------------------------------------------
def test_resolve_device(monkeypatch):
    from hogwild import device
    from hogwild.errors import NoCudaError

    assert device.resolve_device("cpu") == "cpu"
    assert device.resolve_device("cuda") == "cuda"
    assert device.resolve_device("auto") == "cuda"
    assert device.gpu_name()
    monkeypatch.setattr(device, "_cuda_status", lambda: (False, "numba.cuda found no usable GPU or driver"))
    with pytest.raises(NoCudaError, match="no CUDA GPU was found.*--device cpu"):
        device.resolve_device("cuda")
    with pytest.warns(device.CudaFallbackWarning, match="training on the CPU"):
        assert device.resolve_device("auto") == "cpu"
    assert device.gpu_name() is None
