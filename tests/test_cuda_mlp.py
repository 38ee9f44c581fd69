"""CUDA MLP kernels (numba.cuda) against the NumPy twin and the CPU MLP engine; the GPU modes end to end.

Runs under the CUDA simulator in CI (``NUMBA_ENABLE_CUDASIM=1``: every CUDA thread is a Python thread, hence
the tiny inputs) and unmodified on a real GPU. ``MLP_THREADS_PER_BLOCK`` is shrunk to 4 so that hidden layers
of 5 units take two strides and every row's update spans several threads. Exactness: ``sync`` visits rows in
`hogwild.order.epoch_order` in mini-batches of ``batch_size``, as the CPU ``serial`` engine does, so the two
agree to the order of float additions (float64: 1e-9; float32: float32 rounding). ``async``/``atomic`` are
held to loss and accuracy thresholds.
"""

import numpy as np
import pytest
import scipy.sparse as sp

numba_cuda = pytest.importorskip("numba.cuda", reason="numba-cuda is not installed")

pytestmark = pytest.mark.cuda

if not numba_cuda.is_available():
    pytest.skip("no CUDA GPU and NUMBA_ENABLE_CUDASIM is not set", allow_module_level=True)

import naive_mlp  # noqa: E402
from hogwild.config import TrainConfig  # noqa: E402
from hogwild.errors import ConfigError  # noqa: E402
from hogwild.engine import train  # noqa: E402
from hogwild.kernels import config as kernel_config  # noqa: E402
from hogwild.kernels import gpu_mlp  # noqa: E402
from hogwild.models import MLPModel  # noqa: E402
from hogwild.models import init_mlp_params as init_params  # noqa: E402


def train_mlp(X, y, config=None, **kwargs):
    """The front door with an MLP on the CPU."""
    return train(X, y, config, model="mlp", device="cpu", **kwargs)


def train_mlp_gpu(X, y, config=None, gpu_mode=None, **kwargs):
    """The front door with an MLP on the GPU; ``gpu_mode`` sets the mode."""
    if gpu_mode is not None:
        kwargs["mode"] = gpu_mode
    return train(X, y, config, model="mlp", device="cuda", **kwargs)

N_ROWS, N_FEATURES = 16, 6


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Four threads per block: layers of 5 units take two strides (and the simulator stays fast)."""
    monkeypatch.setattr(kernel_config, "MLP_THREADS_PER_BLOCK", 4)


def make_problem(kind="softmax", sparse=False, seed=0, n_rows=N_ROWS, n_features=N_FEATURES):
    """Tiny inputs: softmax (3 classes), logistic (labels 2 and 7) or identity (2 regression targets)."""
    rng = np.random.default_rng(seed)
    if sparse:
        X = sp.csr_matrix(sp.random(n_rows, n_features, density=0.4, format="csr", random_state=seed) * 2.0)
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


# ------------------------------------------------------------------------------------------------------
# kernels against the NumPy twin
# ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("activation, output, kind, n_outputs, classes", [
    ("relu", "softmax", "softmax", 3, np.arange(3)),
    ("tanh", "logistic", "logistic", 1, np.array([2, 7])),
    ("sigmoid", "identity", "identity", 2, None),
])
def test_accumulated_gradient_and_scores_match_numpy_twin(sparse, activation, output, kind, n_outputs, classes):
    """One ACCUMULATE launch over every row = the mean gradient of `naive_mlp.batch_gradient`; `_scores` = forward."""
    X, y = make_problem(kind, sparse)
    dims = np.array([N_FEATURES, 5, 3, n_outputs], dtype=np.int64)
    params = init_params(dims, activation, 1, np.float64) + 0.05 * np.random.default_rng(2).normal(size=1)
    model = MLPModel(params, dims, activation, output, classes)
    csr = sp.csr_matrix(X)
    dense_X = np.ascontiguousarray(X if not sparse else np.zeros((1, 1)))
    inputs = (not sparse, numba_cuda.to_device(dense_X), numba_cuda.to_device(csr.indptr.astype(np.int64)),
              numba_cuda.to_device(csr.indices.astype(np.int32)), numba_cuda.to_device(csr.data.astype(np.float64)))
    if classes is None:
        y_index, y_value = np.zeros(1, np.int64), np.ascontiguousarray(y, dtype=np.float64)
    else:
        y_index, y_value = np.searchsorted(classes, y).astype(np.int64), np.zeros((1, 1))
    net = gpu_mlp.DeviceNetwork(params, np.zeros_like(params), np.zeros_like(params), dims, dense=not sparse,
                                max_touched=N_FEATURES, sync=True)
    row_loss = numba_cuda.device_array(N_ROWS, dtype=np.float64)
    hyper = gpu_mlp.Hyper(0.1, 0.0, "sgd", 0.9, 0.9, 0.999, 1e-8, None, N_ROWS)
    order = numba_cuda.to_device(np.arange(N_ROWS, dtype=np.int64))
    gpu_mlp.train_rows(inputs, (numba_cuda.to_device(y_index), numba_cuda.to_device(y_value)), order, 0, N_ROWS,
                       net, hyper, output, activation, gpu_mlp.ACCUMULATE, 0, row_loss, 1.0 / N_ROWS)
    grad = net.grad.copy_to_host()
    layers = naive_mlp.unflatten(params, dims)
    targets = y_value if classes is None else y_index
    loss, grads = naive_mlp.batch_gradient(layers, csr if sparse else X, targets, activation, output)
    expected = naive_mlp.flatten(grads)
    np.testing.assert_allclose(grad, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(row_loss.copy_to_host().sum(), loss, rtol=1e-10)
    if sparse:
        touched = np.sort(net.touched.copy_to_host()[: net.counters.copy_to_host()[0]])
        np.testing.assert_array_equal(touched, np.unique(csr.indices))
    scores = gpu_mlp.scores(inputs, net, activation, N_ROWS).copy_to_host()
    np.testing.assert_allclose(scores.reshape(N_ROWS, -1), model.decision_function(X).reshape(N_ROWS, -1), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------------------------
# the GPU engine against the CPU engine
# ------------------------------------------------------------------------------------------------------
SYNC_CASES = [
    # (kind, sparse, dtype, changes)
    ("softmax", True, "float64", dict(optimizer="adam", activation="relu", lr=0.05)),
    ("logistic", False, "float64", dict(optimizer="momentum", activation="tanh", hidden=(5, 3), l2=1e-2)),
    ("identity", True, "float32", dict(optimizer="rmsprop", activation="sigmoid", lr=0.02, clip_norm=0.5)),
    ("softmax", False, "float32", dict(optimizer="sgd", activation="relu", lr=0.3, clip_norm=1.0, l2=1e-3)),
]


@pytest.mark.parametrize("kind, sparse, dtype, changes", SYNC_CASES,
                         ids=[f"{c[0]}-{'csr' if c[1] else 'dense'}-{c[2]}-{c[3]['optimizer']}" for c in SYNC_CASES])
def test_sync_matches_cpu_serial(kind, sparse, dtype, changes):
    """Same seed, same rows in the same mini-batches: GPU sync equals CPU serial to the order of additions."""
    X, y = make_problem(kind, sparse, seed=3)
    base = {**dict(model="mlp", loss="squared_error" if kind == "identity" else "log_loss", hidden=(5,), epochs=2,
                   batch_size=5, seed=4, dtype=dtype), **changes}
    cpu = train_mlp(X, y, TrainConfig(mode="serial", **base))
    gpu = train_mlp_gpu(X, y, TrainConfig(mode="sync", **base))
    tolerance = dict(rtol=1e-9, atol=1e-11) if dtype == "float64" else dict(rtol=2e-4, atol=2e-5)
    assert gpu.model.params.dtype == np.dtype(dtype)
    np.testing.assert_allclose(gpu.model.params, cpu.model.params, **tolerance)
    gpu_state, cpu_state = gpu.state["engine"], cpu.state["engine"]
    np.testing.assert_allclose(gpu_state["state1"], cpu_state["state1"], **tolerance)
    np.testing.assert_allclose(gpu_state["state2"], cpu_state["state2"], **tolerance)
    assert gpu_state["step"] == cpu_state["step"]
    for g, c in zip(gpu.history, cpu.history):
        np.testing.assert_allclose(g["train_loss"], c["train_loss"], rtol=1e-4 if dtype == "float32" else 1e-10)
    assert gpu.config.device == "cuda" and gpu.config.mode == "sync"


def test_serial_is_sync_and_resuming_continues_exactly():
    """GPU serial is the sync rule; two runs of one epoch from the exported state equal one run of two."""
    X, y = make_problem("softmax", True, seed=5)
    config = TrainConfig(model="mlp", hidden=(5,), epochs=2, batch_size=4, seed=1, dtype="float64", optimizer="adam", lr=0.05)
    whole = train_mlp_gpu(X, y, config, gpu_mode="serial")
    first = train_mlp_gpu(X, y, config.replace(epochs=1), gpu_mode="sync")
    rest = train_mlp_gpu(X, y, config, gpu_mode="sync", init_state=first.state)
    np.testing.assert_allclose(rest.model.params, whole.model.params, rtol=1e-12, atol=1e-14)
    assert rest.state["loop"]["epoch"] == 2 and rest.state["engine"]["step"] == whole.state["engine"]["step"]


@pytest.mark.parametrize("mode", ["async", "atomic"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_lock_free_modes_learn(mode, sparse):
    """Hogwild! rows on the device: the training loss falls and the training accuracy passes a threshold."""
    X, y = make_problem("logistic", sparse, seed=7, n_rows=16)
    result = train_mlp_gpu(X, y, dict(hidden=(6,), epochs=5, batch_size=4, lr=0.05, optimizer="adam", seed=2,
                                      clip_norm=5.0), gpu_mode=mode, X_val=X, y_val=y)
    first, last = result.history[0]["train_loss"], result.history[-1]["train_loss"]
    accuracy = result.history[-1]["validation_accuracy"]
    assert last < 0.5 * first, f"{mode}: train loss {last:.4f} should fall below 0.5 x {first:.4f}"
    assert accuracy >= 0.9, f"{mode}: training accuracy {accuracy:.3f} should be >= 0.9"
    assert np.mean(result.model.predict(X) == y) == pytest.approx(accuracy)


def test_progress_callback_and_cpu_only_modes(monkeypatch):
    """Chunk events every ROWS_PER_LAUNCH rows (rounded to batches), epoch events; average/locked refused."""
    monkeypatch.setattr(kernel_config, "ROWS_PER_LAUNCH", 8)
    X, y = make_problem("softmax", False, seed=8)
    events = []
    train_mlp_gpu(X, y, dict(hidden=(3,), epochs=1, batch_size=3, mode="sync"), callback=events.append)
    chunks = [e["rows_done"] for e in events if e["kind"] == "chunk"]
    assert chunks == [6, 12, 16], chunks
    assert events[-1]["kind"] == "epoch" and events[-1]["epoch"] == 1
    for mode in ("average", "locked"):
        with pytest.raises(ConfigError, match="--mode"):
            train_mlp_gpu(X, y, dict(hidden=(3,), epochs=1), gpu_mode=mode)
    with pytest.raises(ConfigError, match="--hidden"):  # 2 x 3 x 2048 float64 activations/deltas > 48 KiB
        train_mlp_gpu(X, y, dict(hidden=(2048, 2048, 2048), epochs=1))


def test_checkpoint_mid_epoch_and_resume_match_an_uninterrupted_run(monkeypatch, tmp_path):
    """Ctrl-C between two launches: the checkpoint holds the device's weights and the row position; the
    resumed run uploads them and ends where an uninterrupted run ends."""
    import os
    import signal

    from hogwild.checkpoint import read_checkpoint
    from hogwild.errors import TrainingInterrupted

    monkeypatch.setattr(kernel_config, "ROWS_PER_LAUNCH", 8)
    X, y = make_problem("softmax", True, seed=5)
    config = dict(model="mlp", hidden=(5,), epochs=3, batch_size=4, seed=1, dtype="float64", optimizer="adam",
                  lr=0.05, mode="sync")
    clean = train_mlp_gpu(X, y, config)
    ckpt = str(tmp_path / "ckpt")

    def interrupt(event):
        if event["kind"] == "chunk" and event["epoch"] == 2 and event["rows_done"] == 8:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted) as caught:
        train_mlp_gpu(X, y, dict(config, checkpoint_dir=ckpt), callback=interrupt)
    state, meta = read_checkpoint(caught.value.checkpoint)
    assert (meta["epoch"], meta["position"]) == (1, 8)
    assert not np.array_equal(state["engine"]["params"], init_params([N_FEATURES, 5, 3], "relu", 1, np.float64))
    with pytest.warns(UserWarning, match="resuming from"):
        resumed = train_mlp_gpu(X, y, dict(config, checkpoint_dir=ckpt, resume=True))
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    np.testing.assert_allclose(resumed.model.params, clean.model.params, rtol=1e-12, atol=1e-14)
