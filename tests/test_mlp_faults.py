"""Checkpoints, resume, signals, worker faults and divergence for the MLP trainer (the linear engine's are in
test_faults.py). Faults are injected by wrapping `WorkerPool.run`'s task, as there."""

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from hogwild._workers import WorkerPool
from hogwild.checkpoint import read_checkpoint
from hogwild.errors import CheckpointError, DivergenceError, TrainingInterrupted, WorkerError
from hogwild.engine import train

N_ROWS = 360


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(N_ROWS, 6))
    y = np.argmax(X[:, :3] + 0.3 * rng.normal(size=(N_ROWS, 3)), axis=1)
    return X, y


def fit(problem, **config):
    X, y = problem
    options = dict(hidden=(8,), epochs=4, seed=0, chunk_rows=40, batch_size=8, dtype="float64", optimizer="adam",
                   lr=0.01)
    options.update(config)
    return train(X, y, options, model="mlp")


def params(result):
    return result.model.params


class Inject:
    """Run ``action(w)`` before worker ``worker``'s chunk while ``when()`` holds, at most ``times`` times."""

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


@pytest.mark.parametrize("mode, threads", [("serial", 1), ("sync", 2)])
def test_epoch_checkpoints_then_resume_with_more_epochs_is_bitwise_identical(problem, tmp_path, mode, threads):
    ckpt = str(tmp_path / "ckpt")
    clean = fit(problem, mode=mode, threads=threads, epochs=5)
    first = fit(problem, mode=mode, threads=threads, epochs=3, checkpoint_dir=ckpt)
    assert Path(first.checkpoint).name == "checkpoint-000003.npz"
    assert sorted(p.name for p in Path(ckpt).iterdir()) == ["checkpoint-000002.npz", "checkpoint-000003.npz"]
    state, meta = read_checkpoint(first.checkpoint)
    assert meta["epoch"] == 3 and meta["position"] == 0
    assert np.array_equal(state["engine"]["params"], params(first))
    with pytest.warns(UserWarning, match="resuming from"):
        resumed = fit(problem, mode=mode, threads=threads, epochs=5, checkpoint_dir=ckpt, resume=True)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4, 5]
    assert np.array_equal(params(resumed), params(clean)), f"{mode}: resumed run differs from the uninterrupted one"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("mode, threads", [("serial", 1), ("sync", 2)])
def test_signal_checkpoints_mid_epoch_and_resume_is_bitwise_identical(problem, tmp_path, monkeypatch, signum, mode, threads):
    clean = fit(problem, mode=mode, threads=threads)
    ckpt = str(tmp_path / "ckpt")
    Inject(monkeypatch, lambda w: os.kill(os.getpid(), signum), when=has_checkpoint(ckpt))
    with pytest.raises(TrainingInterrupted) as caught:
        fit(problem, mode=mode, threads=threads, checkpoint_dir=ckpt)
    stopped = caught.value
    assert stopped.signum == signum and stopped.model is not None
    assert stopped.checkpoint and str(stopped.checkpoint) in str(stopped)
    state, meta = read_checkpoint(stopped.checkpoint)
    assert meta["epoch"] == 1 and 0 < meta["position"] < N_ROWS, meta
    assert state["engine"]["progress"].sum() == meta["position"]
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="resuming from"):
        resumed = fit(problem, mode=mode, threads=threads, checkpoint_dir=ckpt, resume=True)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert np.array_equal(params(resumed), params(clean)), f"{mode}: resumed run differs from the uninterrupted one"
    # the epoch that was cut in two reports the same training loss as the uninterrupted one
    assert resumed.history[1]["train_loss"] == clean.history[1]["train_loss"]


def test_async_resume_mid_epoch_finishes_every_row_once(problem, tmp_path, monkeypatch):
    ckpt = str(tmp_path / "ckpt")
    Inject(monkeypatch, lambda w: os.kill(os.getpid(), signal.SIGINT), when=has_checkpoint(ckpt))
    with pytest.raises(TrainingInterrupted) as caught:
        fit(problem, mode="async", threads=2, checkpoint_dir=ckpt)
    state, meta = read_checkpoint(caught.value.checkpoint)
    progress = state["engine"]["progress"]
    assert progress.shape == (2,) and meta["position"] == progress.sum() > 0
    monkeypatch.undo()
    seen = []
    real_run = WorkerPool.run

    def count(pool, task, workers=None, row_range=None, **kwargs):
        seen.extend(row_range(w)[1] - row_range(w)[0] for w in workers)
        return real_run(pool, task, workers, row_range, **kwargs)

    monkeypatch.setattr(WorkerPool, "run", count)
    with pytest.warns(UserWarning, match="resuming from"):
        resumed = fit(problem, mode="async", threads=2, checkpoint_dir=ckpt, resume=True)
    assert sum(seen) == (4 - meta["epoch"]) * N_ROWS - meta["position"]
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    # a mid-epoch state split over two workers' shards cannot continue on three
    X, y = problem
    with pytest.raises(CheckpointError, match="same --threads"):
        train(X, y, dict(hidden=(8,), epochs=4, seed=0, batch_size=8, dtype="float64", optimizer="adam", lr=0.01,
                         mode="async", threads=3), model="mlp", init_state=state)


def test_worker_fault_aborts_naming_worker_and_rows(problem, tmp_path, monkeypatch):
    ckpt = tmp_path / "ckpt"
    Inject(monkeypatch, fail, worker=1, when=has_checkpoint(ckpt))
    with pytest.raises(WorkerError) as caught:
        fit(problem, mode="async", threads=2, checkpoint_dir=str(ckpt))
    error = caught.value
    assert error.worker == 1 and "injected fault" in str(error)
    assert 0 <= error.row_start < error.row_stop <= N_ROWS
    state, meta = read_checkpoint(newest(ckpt))
    assert meta["epoch"] >= 1 and np.all(np.isfinite(state["engine"]["params"]))


def test_worker_fault_restart_rolls_back_and_ends_like_a_clean_run(problem, monkeypatch):
    clean = fit(problem, mode="serial")
    calls = []
    Inject(monkeypatch, fail, when=lambda: calls.append(1) or len(calls) == 25)  # mid-epoch 3
    with pytest.warns(UserWarning, match="worker 0 failed on rows .*restarting from the end of epoch 2"):
        restarted = fit(problem, mode="serial", on_worker_error="restart")
    assert [r["epoch"] for r in restarted.history] == [1, 2, 3, 4]
    assert np.array_equal(params(restarted), params(clean)), "rolling back must leave no trace of the failed chunk"


def test_resume_skips_a_damaged_checkpoint_and_refuses_another_config(problem, tmp_path):
    ckpt = str(tmp_path / "ckpt")
    clean = fit(problem, mode="serial", epochs=4)
    fit(problem, mode="serial", epochs=3, checkpoint_dir=ckpt)
    damaged = newest(ckpt)
    damaged.write_bytes(damaged.read_bytes()[:-50])
    with pytest.warns(UserWarning, match=f"skipping damaged checkpoint {damaged}"), pytest.warns(UserWarning, match="resuming"):
        resumed = fit(problem, mode="serial", epochs=4, checkpoint_dir=ckpt, resume=True)
    assert np.array_equal(params(resumed), params(clean))
    with pytest.raises(CheckpointError, match=r"another configuration \(hidden: \[8\] there, \[9\] here\)"):
        fit(problem, mode="serial", hidden=(9,), checkpoint_dir=ckpt, resume=True)
    X, y = problem
    with pytest.raises(CheckpointError, match="another dataset"):
        fit((X[::-1].copy(), y[::-1].copy()), mode="serial", checkpoint_dir=ckpt, resume=True)


def test_early_stopping_counters_survive_a_resume(problem, tmp_path):
    ckpt = str(tmp_path / "ckpt")
    options = dict(mode="serial", epochs=30, tol=10.0, n_iter_no_change=3, lr=0.001)
    clean = fit(problem, **options)
    assert clean.stopped_early and len(clean.history) == 4  # epoch 1 sets the best; 2-4 fail to beat it by 10
    fit(problem, **dict(options, epochs=2), checkpoint_dir=ckpt)
    with pytest.warns(UserWarning, match="resuming from"):
        resumed = fit(problem, **options, checkpoint_dir=ckpt, resume=True)
    assert resumed.stopped_early and len(resumed.history) == 4


def test_divergence_stops_and_keeps_only_finite_checkpoints(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)) * 1e3
    y = X @ rng.normal(size=5)
    ckpt = tmp_path / "ckpt"
    with pytest.raises(DivergenceError, match="smaller --lr"):
        train(X, y, dict(loss="squared_error", hidden=(4,), optimizer="sgd", lr=10.0, epochs=50, mode="serial",
                         chunk_rows=20, dtype="float64", checkpoint_dir=str(ckpt), checkpoint_seconds=1e-9),
              model="mlp")
    for path in ckpt.glob("checkpoint-*.npz"):
        state, _ = read_checkpoint(path)
        assert np.all(np.isfinite(state["engine"]["params"])), f"{path} holds non-finite weights"
