"""Faults during training through the Python API: a worker that raises, Ctrl-C/SIGTERM, divergence, resume.

Faults are injected by wrapping `WorkerPool.run`'s task (the engine's per-chunk unit of work), so the engine
itself is untouched: a task can raise (a worker fault) or send this process a signal (Ctrl-C mid-epoch).
"""

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from hogwild._workers import WorkerPool
from hogwild.checkpoint import read_checkpoint
from hogwild.errors import CheckpointError, DivergenceError, TrainingInterrupted, WorkerError

from conftest import make_sparse_classification


N_ROWS = 400


@pytest.fixture(scope="module")
def problem():
    return make_sparse_classification(n_samples=N_ROWS, n_features=30, density=0.2, seed=5)


def fit(problem, **config):
    import hogwild

    X, y = problem
    options = dict(epochs=4, seed=0, chunk_rows=50, dtype="float64", schedule="adagrad", lr=0.1)
    options.update(config)
    return hogwild.train(X, y, **options)


def weights(result):
    return np.concatenate([np.ravel(result.model.coef), np.ravel(result.model.intercept)])


class Inject:
    """Wrap every worker task: ``action(w)`` runs before worker ``worker``'s chunk when ``when()`` is true."""

    def __init__(self, monkeypatch, action, worker=0, when=lambda: True, times=1):
        self.fired = 0
        real_run = WorkerPool.run

        def run(pool, task, workers=None, row_range=None, **kwargs):
            def wrapped(w):
                if w == worker and self.fired < times and when():
                    self.fired += 1
                    action(w)
                return task(w)

            return real_run(pool, wrapped, workers, row_range, **kwargs)

        monkeypatch.setattr(WorkerPool, "run", run)


def fail(w):
    raise RuntimeError("injected fault")


def has_checkpoint(directory):
    return lambda: any(Path(directory).glob("checkpoint-*.npz"))


def newest(directory):
    return sorted(Path(directory).glob("checkpoint-*.npz"))[-1]


# --- worker faults --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_worker_fault_aborts_naming_worker_and_rows_and_keeps_the_checkpoint(problem, tmp_path, monkeypatch, mode):
    ckpt = tmp_path / "ckpt"
    injected = Inject(monkeypatch, fail, worker=1, when=has_checkpoint(ckpt))
    with pytest.raises(WorkerError) as caught:
        fit(problem, mode=mode, threads=2, checkpoint_dir=str(ckpt))
    error = caught.value
    assert injected.fired == 1
    assert error.worker == 1 and "worker 1" in str(error) and "injected fault" in str(error)
    assert 0 <= error.row_start < error.row_stop <= N_ROWS, (error.row_start, error.row_stop)
    state, meta = read_checkpoint(newest(ckpt))
    assert meta["epoch"] >= 1 and np.all(np.isfinite(state["engine"]["W"]))


@pytest.mark.parametrize("with_checkpoints", [True, False])
def test_worker_fault_restart_rolls_back_and_ends_like_a_clean_run(problem, tmp_path, monkeypatch, with_checkpoints):
    clean = fit(problem, mode="serial")
    rows_seen = []
    Inject(monkeypatch, fail, when=lambda: rows_seen.append(1) or len(rows_seen) == 20)  # mid-epoch 3
    extra = {"checkpoint_dir": str(tmp_path / "ckpt")} if with_checkpoints else {}
    with pytest.warns(UserWarning, match="worker 0 failed on rows .*restarting from"):
        restarted = fit(problem, mode="serial", on_worker_error="restart", **extra)
    assert len(restarted.history) == 4
    assert np.array_equal(weights(restarted), weights(clean)), "rolling back must leave no trace of the failed chunk"


def test_sync_worker_fault_restart_ends_like_a_clean_run(problem, monkeypatch):
    # Worker 1 fails as a chunk starts while worker 0 waits at the batch's barrier with its slice's sums half
    # made; the runner keeps sync's buffers across epochs, so the restart must not inherit those sums (or the
    # aborted barrier).
    clean = fit(problem, mode="sync", threads=2)
    chunks = []
    Inject(monkeypatch, fail, worker=1, when=lambda: chunks.append(1) or len(chunks) == 5)  # epoch 3
    with pytest.warns(UserWarning, match="worker 1 failed on rows .*restarting from"):
        restarted = fit(problem, mode="sync", threads=2, on_worker_error="restart")
    assert len(restarted.history) == 4
    assert np.array_equal(weights(restarted), weights(clean)), "the failed batch must leave no trace"


def test_a_worker_that_always_fails_is_not_restarted_forever(problem, monkeypatch):
    Inject(monkeypatch, fail, times=10**6)
    with pytest.warns(UserWarning):
        with pytest.raises(WorkerError):
            fit(problem, mode="serial", on_worker_error="restart")


# --- signals --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("mode, threads", [("serial", 1), ("sync", 2)])
def test_signal_checkpoints_mid_epoch_and_resume_is_bitwise_identical(problem, tmp_path, monkeypatch, signum, mode, threads):
    clean = fit(problem, mode=mode, threads=threads)
    ckpt = str(tmp_path / "ckpt")
    # The signal arrives during the first chunk after epoch 1's checkpoint: the stop is mid-epoch 2.
    Inject(monkeypatch, lambda w: os.kill(os.getpid(), signum), when=has_checkpoint(ckpt))
    with pytest.raises(TrainingInterrupted) as caught:
        fit(problem, mode=mode, threads=threads, checkpoint_dir=ckpt)
    stopped = caught.value
    assert stopped.signum == signum
    assert stopped.checkpoint and Path(stopped.checkpoint).exists(), stopped.checkpoint
    assert str(stopped.checkpoint) in str(stopped)
    _, meta = read_checkpoint(stopped.checkpoint)
    assert meta["epoch"] == 1 and 0 < meta["position"], meta
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="resuming from"):
        resumed = fit(problem, mode=mode, threads=threads, checkpoint_dir=ckpt, resume=True)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert np.array_equal(weights(resumed), weights(clean)), f"{mode}: resumed run differs from the uninterrupted one"


def test_signal_without_checkpoint_dir_still_stops_cleanly(problem, monkeypatch):
    Inject(monkeypatch, lambda w: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(TrainingInterrupted, match="no checkpoint was configured") as caught:
        fit(problem, mode="serial")
    assert caught.value.model is not None
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# --- resume ---------------------------------------------------------------------------------------------


def test_resume_after_the_newest_checkpoint_is_damaged(problem, tmp_path):
    ckpt = str(tmp_path / "ckpt")
    clean = fit(problem, mode="serial", epochs=5)
    fit(problem, mode="serial", epochs=3, checkpoint_dir=ckpt)
    damaged = newest(ckpt)
    damaged.write_bytes(damaged.read_bytes()[:-100])
    with pytest.warns(UserWarning, match=f"skipping damaged checkpoint {damaged}"):
        resumed = fit(problem, mode="serial", epochs=5, checkpoint_dir=ckpt, resume=True)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4, 5]
    assert np.array_equal(weights(resumed), weights(clean))


def test_resume_refuses_another_config_or_dataset(problem, tmp_path):
    ckpt = str(tmp_path / "ckpt")
    fit(problem, mode="serial", epochs=1, checkpoint_dir=ckpt)
    with pytest.raises(CheckpointError, match=r"another configuration \(lr: 0.1 there, 0.2 here\)"):
        fit(problem, mode="serial", epochs=2, lr=0.2, checkpoint_dir=ckpt, resume=True)
    other = make_sparse_classification(n_samples=N_ROWS, n_features=30, density=0.2, seed=6)
    with pytest.raises(CheckpointError, match="another dataset"):
        fit(other, mode="serial", epochs=2, checkpoint_dir=ckpt, resume=True)


def test_resume_with_an_empty_folder_starts_from_scratch(problem, tmp_path):
    with pytest.warns(UserWarning, match="no checkpoint in .* yet"):
        result = fit(problem, mode="serial", epochs=2, checkpoint_dir=str(tmp_path / "new"), resume=True)
    assert np.array_equal(weights(result), weights(fit(problem, mode="serial", epochs=2)))
    assert result.checkpoint and Path(result.checkpoint).name == "checkpoint-000002.npz"


# --- divergence -----------------------------------------------------------------------------------------


def test_divergence_stops_and_keeps_only_finite_checkpoints(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)) * 1e3
    y = X @ rng.normal(size=5)
    import hogwild

    ckpt = tmp_path / "ckpt"
    with pytest.raises(DivergenceError, match="smaller --lr"):
        hogwild.train(X, y, loss="squared_error", schedule="constant", lr=10.0, epochs=50, mode="serial",
                      chunk_rows=20, dtype="float64", checkpoint_dir=str(ckpt), checkpoint_seconds=1e-9)
    for path in ckpt.glob("checkpoint-*.npz"):
        state, _ = read_checkpoint(path)
        assert np.all(np.isfinite(state["engine"]["W"])), f"{path} holds non-finite weights"


def test_early_stopping_counters_survive_a_resume(problem, tmp_path):
    ckpt = str(tmp_path / "ckpt")
    options = dict(mode="serial", epochs=30, tol=10.0, n_iter_no_change=3)
    clean = fit(problem, **options)
    assert clean.stopped_early and len(clean.history) == 4  # epoch 1 sets the best; 2-4 fail to beat it by 10
    fit(problem, **dict(options, epochs=2), checkpoint_dir=ckpt)
    with pytest.warns(UserWarning, match="resuming from"):
        resumed = fit(problem, **options, checkpoint_dir=ckpt, resume=True)
    assert resumed.stopped_early and len(resumed.history) == 4
