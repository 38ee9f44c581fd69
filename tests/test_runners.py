"""The engine core: one front door, one loop, runners behind one protocol.

Every registered runner honours the `Runner` protocol and emits chunk events with the same keys; what a user
passes (sample_weight, class_weight, hooks) reaches every runner or is refused with one sentence.
"""

import numpy as np
import pytest
import scipy.sparse as sp

import hogwild
import hogwild.engine
from hogwild.errors import ConfigError, DataError
from hogwild.results import CHUNK_KEYS, HISTORY_KEYS
from hogwild.runners import RUNNERS, Runner, runner_class

from conftest import make_sparse_classification

try:
    from numba import cuda

    HAVE_CUDA = cuda.is_available()
except ImportError:  # numba-cuda not installed
    HAVE_CUDA = False

needs_cuda = pytest.mark.skipif(not HAVE_CUDA, reason="no CUDA GPU and NUMBA_ENABLE_CUDASIM is not set")

# (model, device) -> options small enough for the CUDA simulator
RUN_OPTIONS = {
    "linear": dict(epochs=2, chunk_rows=16),
    "mlp": dict(epochs=2, chunk_rows=16, batch_size=8, hidden=(4,), lr=0.05),
}


def _device_marks(device):
    return [needs_cuda, pytest.mark.cuda] if device == "cuda" else []


# the local runners (the cluster runner has tests of its own, on a local Ray cluster: tests/test_cluster.py)
KEYS = [pytest.param(model, device, marks=_device_marks(device), id=f"{model}-{device}")
        for model, device, backend in RUNNERS if backend == "local"]


@pytest.fixture
def small_launches(monkeypatch):
    """Several host check-ins per epoch on the GPU runners, so that chunk events come more than once."""
    from hogwild.kernels import config as kernel_config

    monkeypatch.setattr(kernel_config, "ROWS_PER_LAUNCH", 16)


@pytest.mark.parametrize("model, device", KEYS)
def test_every_runner_follows_the_protocol(model, device, small_launches):
    runner_type = runner_class(model, device)
    for name in ("modes", "order_block_shift", "multi_output", "check_config"):
        assert hasattr(runner_type, name), f"{runner_type.__name__} lacks {name}"
    X, y = make_sparse_classification(48, 10, density=0.4, seed=1)
    loop = hogwild.engine.prepare(X, y, model=model, device=device, mode="serial", **RUN_OPTIONS[model])
    try:
        assert isinstance(loop.runner, Runner)
        assert loop.runner.n_rows == 48 and loop.position() == 0
        names = set(loop.parameters())
        assert names, "parameters() names no array"
    finally:
        loop.runner.close()


@pytest.mark.parametrize("model, device", KEYS)
def test_progress_events_carry_the_same_keys(model, device, small_launches):
    """One chunk-event schema for every runner: the progress bar, checkpoints and signals read these keys."""
    X, y = make_sparse_classification(48, 10, density=0.4, seed=1)
    events = []
    hogwild.train(X, y, model=model, device=device, mode="serial", callback=events.append, **RUN_OPTIONS[model])
    chunks = [e for e in events if e["kind"] == "chunk"]
    epochs = [e for e in events if e["kind"] == "epoch"]
    assert len(chunks) >= 2 * 2, f"{model}/{device}: {len(chunks)} chunk events for 2 epochs of 3 chunks"
    for event in chunks:
        assert set(event) == set(CHUNK_KEYS), (model, device, sorted(event))
        assert 0 < event["rows_done"] <= event["rows_total"] == 48
    assert [e["epoch"] for e in epochs] == [1, 2]
    for event in epochs:
        assert set(HISTORY_KEYS) <= set(event)
    assert chunks[-1]["rows_done"] == 48  # the bar reaches 100%


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_mlp_sample_weight_and_class_weight_change_the_fit(sparse):
    """Zero weight on every positive row: the network must learn to predict (almost) no positives."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    y = (X[:, 0] + 0.3 * rng.normal(size=400) > 0).astype(int)
    X = sp.csr_matrix(X) if sparse else X
    options = dict(model="mlp", hidden=(8,), epochs=8, lr=0.05, optimizer="adam", mode="serial", seed=1)
    plain = hogwild.train(X, y, **options)
    weights = np.where(y == 1, 0.0, 1.0)
    weighted = hogwild.train(X, y, sample_weight=weights, **options)
    share_plain = float(np.mean(plain.model.predict(X) == 1))
    share_weighted = float(np.mean(weighted.model.predict(X) == 1))
    assert share_plain > 0.3, f"unweighted MLP predicts {share_plain:.2f} positives; expected about half"
    assert share_weighted < 0.1, f"zero-weight positives: MLP still predicts {share_weighted:.2f} positives (>= 0.1)"
    by_class = hogwild.train(X, y, class_weight={0: 1.0, 1: 0.0}, **options)
    assert np.array_equal(by_class.model.params, weighted.model.params)  # one weight per row, however it is given
    ones = hogwild.train(X, y, sample_weight=np.ones(400), **options)
    assert np.array_equal(ones.model.params, plain.model.params)  # weight 1 leaves every product exact


def test_mlp_balanced_class_weight_lifts_the_minority_class():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(600, 4))
    y = (X[:, 0] > 1.2).astype(int)  # ~12% positives
    options = dict(model="mlp", hidden=(6,), epochs=5, lr=0.02, optimizer="adam", mode="serial", seed=0)
    plain = hogwild.train(X, y, **options).model.predict(X)
    balanced = hogwild.train(X, y, class_weight="balanced", **options).model.predict(X)
    assert np.mean(balanced == 1) > np.mean(plain == 1), (np.mean(balanced == 1), np.mean(plain == 1))


@needs_cuda
@pytest.mark.cuda
def test_cuda_mlp_refuses_row_weights_in_one_sentence():
    X, y = make_sparse_classification(24, 6, seed=0)
    with pytest.raises(ConfigError, match="sample_weight and class_weight are not supported") as caught:
        hogwild.train(X, y, model="mlp", device="cuda", hidden=(3,), epochs=1, sample_weight=np.ones(24))
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="not supported"):
        hogwild.train(X, y, model="mlp", device="cuda", hidden=(3,), epochs=1, class_weight="balanced")


@needs_cuda
@pytest.mark.cuda
def test_cuda_linear_honours_row_weights(small_launches):
    X, y = make_sparse_classification(40, 8, density=0.4, seed=3)
    options = dict(device="cuda", mode="sync", epochs=3, batch_size=8, lr=0.3, schedule="constant", dtype="float64")
    weights = np.linspace(0.2, 2.0, 40)
    gpu = hogwild.train(X, y, sample_weight=weights, **options)
    cpu = hogwild.train(X, y, sample_weight=weights, **dict(options, device="cpu", threads=1))
    np.testing.assert_allclose(gpu.model.coef, cpu.model.coef, rtol=1e-9, atol=1e-12)
    plain = hogwild.train(X, y, **options)
    assert not np.allclose(plain.model.coef, gpu.model.coef)


def test_hooks_reach_the_mlp_runner_and_may_edit_parameters():
    """A chunk hook sees the loop (epoch, position, live parameters): the point where a cluster node syncs."""
    X, y = make_sparse_classification(64, 8, seed=4)
    seen = []

    def hook(loop):
        seen.append((loop.epoch, loop.position()))
        loop.parameters()["params"][:] = 0.0  # a (silly) pull that overwrites the shared weights in place

    result = hogwild.train(X, y, model="mlp", hidden=(3,), epochs=2, chunk_rows=16, mode="serial", hooks=[hook])
    assert seen[0] == (0, 16) and len(seen) == 8, seen
    assert np.all(result.model.params == 0.0)


def test_one_early_stopping_rule_for_both_models():
    X, y = make_sparse_classification(120, 10, seed=5)
    for model in ("linear", "mlp"):
        result = hogwild.train(X, y, model=model, lr=1e-9, schedule="constant", epochs=30, tol=1.0,
                               n_iter_no_change=2, mode="serial")
        assert result.stopped_early and result.epochs_run == 3, (model, result.epochs_run)


def test_one_mode_list_per_runner_and_one_sentence_refusals():
    X, y = make_sparse_classification(30, 6, seed=0)
    with pytest.raises(ConfigError, match="--mode average is not available for --model mlp on --device cpu"):
        hogwild.train(X, y, model="mlp", mode="average", epochs=1)
    with pytest.raises(ConfigError, match="--mode atomic is not available for --model linear on --device cpu"):
        hogwild.train(X, y, mode="atomic", epochs=1)
    with pytest.raises(ConfigError, match="--schedule adagrad is for linear models"):
        hogwild.train(X, y, model="mlp", schedule="adagrad", epochs=1)
    with pytest.raises(ConfigError, match="--class-weight balanced applies only with a classification loss"):
        hogwild.train(X, np.linspace(0, 1, 30), loss="squared_error", class_weight="balanced", epochs=1)
    with pytest.raises(DataError, match="sample_weight must hold 30"):
        hogwild.train(X, y, sample_weight=np.ones(29), epochs=1)


def test_a_restored_state_from_another_runner_is_refused():
    from hogwild.errors import CheckpointError

    X, y = make_sparse_classification(40, 6, seed=0)
    linear = hogwild.train(X, y, mode="serial", epochs=1)
    with pytest.raises(CheckpointError, match="incomplete"):
        hogwild.train(X, y, model="mlp", mode="serial", epochs=2, init_state=linear.state)
    with pytest.raises(CheckpointError, match="incomplete"):
        hogwild.train(X, y, mode="serial", epochs=2, init_state={"engine": {}})
