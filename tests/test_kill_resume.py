"""SIGKILL a real `hogwild train` process after its first checkpoint, then `--resume`: it must finish, and reach
the accuracy of an uninterrupted run (within noise: async mode on two threads is not deterministic)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import make_sparse_classification

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

ACCURACY_NOISE = 0.02


# The killed run sleeps after each checkpoint, so that the kill reliably lands between two checkpoints
# instead of after a run that was too quick to catch; the resumed and reference runs are the plain CLI.
SLOW_CHILD = (
    "import sys, time\n"
    "import hogwild.checkpoint as c\n"
    "save = c.CheckpointManager.save\n"
    "def slow(self, *a, **k):\n"
    "    path = save(self, *a, **k)\n"
    "    time.sleep(0.3)\n"
    "    return path\n"
    "c.CheckpointManager.save = slow\n"
    "from hogwild.cli.main import main\n"
    "sys.argv[0] = 'hogwild'\n"
    "main(sys.argv[1:])\n"
)


def write_libsvm(path, X, y):
    with open(path, "w") as out:
        for i in range(X.shape[0]):
            row = X.getrow(i)
            features = " ".join(f"{j + 1}:{v:.6g}" for j, v in zip(row.indices, row.data))
            out.write(f"{int(y[i]):+d} {features}\n")


def cli(*args, slow=False):
    command = [sys.executable, "-c", SLOW_CHILD] if slow else [sys.executable, "-m", "hogwild.cli.main"]
    return command + ["train", *map(str, args)]


@pytest.mark.parametrize("model", [[], ["--model", "mlp", "--hidden", "16", "--optimizer", "adam", "--lr", "0.01"]],
                         ids=["linear", "mlp"])
def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, model):
    X, y = make_sparse_classification(n_samples=3000, n_features=60, density=0.1, seed=7)
    train, test = tmp_path / "train.svm", tmp_path / "test.svm"
    write_libsvm(train, X[:2400], y[:2400])
    write_libsvm(test, X[2400:], y[2400:])
    ckpt = tmp_path / "ckpt"
    common = [train, "--test", test, "--epochs", 12, "--threads", 2, "--mode", "async", "--seed", 0, "--no-cache",
              "--quiet", *model, "--checkpoint-dir", ckpt]
    env = dict(os.environ, PYTHONUNBUFFERED="1")

    child = subprocess.Popen(cli(*common, slow=True), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not list(ckpt.glob("checkpoint-*.npz")):
            assert child.poll() is None, f"the run ended before its first checkpoint: {child.communicate()}"
            assert time.monotonic() < deadline, "no checkpoint appeared within 240 s"
            time.sleep(0.02)
        time.sleep(0.1)
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    killed_at = sorted(ckpt.glob("checkpoint-*.npz"))
    assert killed_at, "the checkpoint vanished"

    resumed = subprocess.run(cli(*common, "--resume", "--metrics-json", tmp_path / "resumed.json"), env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr
    reference = subprocess.run(cli(*common[:-2], "--metrics-json", tmp_path / "reference.json"), env=env,
                               capture_output=True, text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr

    got = json.loads((tmp_path / "resumed.json").read_text())
    want = json.loads((tmp_path / "reference.json").read_text())
    assert len(got["epochs"]) == 12, [e["epoch"] for e in got["epochs"]]
    acc, ref = got["final"]["test_accuracy"], want["final"]["test_accuracy"]
    print(f"test accuracy: resumed {acc:.4f}, uninterrupted {ref:.4f}, allowed difference {ACCURACY_NOISE}")
    assert np.isfinite(acc) and abs(acc - ref) <= ACCURACY_NOISE, (
        f"resumed accuracy {acc:.4f} vs uninterrupted {ref:.4f}: difference above {ACCURACY_NOISE}"
    )
    assert len(list(ckpt.glob("checkpoint-*.npz"))) <= 2, "only the last two checkpoints are kept"


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_to_a_real_run_checkpoints_and_exits_with_one_line(tmp_path, signum, code):
    X, y = make_sparse_classification(n_samples=600, n_features=20, density=0.2, seed=8)
    train = tmp_path / "train.svm"
    write_libsvm(train, X, y)
    ckpt = tmp_path / "ckpt"
    args = [train, "--epochs", 50, "--threads", 2, "--no-cache", "--quiet", "--checkpoint-dir", ckpt]
    child = subprocess.Popen(cli(*args, slow=True), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not list(ckpt.glob("checkpoint-*.npz")):
            assert child.poll() is None, f"the run ended before its first checkpoint: {child.communicate()}"
            assert time.monotonic() < deadline, "no checkpoint appeared within 240 s"
            time.sleep(0.02)
        child.send_signal(signum)
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == code, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert "interrupted" in lines[0] and f"checkpoint saved to {ckpt}" in lines[0], lines[0]
    saved = Path(lines[0].split("checkpoint saved to ")[1].strip())
    assert saved.exists()
