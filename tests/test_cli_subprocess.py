"""The installed console script `hogwild`, run as a real process: exit codes, streams and files end to end."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from test_cli import make_problem, write_libsvm


def hogwild_command():
    """The console script on PATH, or the same entry point through ``python -m hogwild`` when not installed."""
    script = shutil.which("hogwild")
    return [script] if script else [sys.executable, "-m", "hogwild"]


def run_hogwild(*args, cwd=None, timeout=300):
    env = dict(os.environ, HOGWILD_THREADS="2")
    return subprocess.run(
        [*hogwild_command(), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )


def test_console_script_train_predict_evaluate(tmp_path):
    X, y = make_problem(n_rows=200)
    train = write_libsvm(tmp_path / "train.svm", X[:150], y[:150])
    test = write_libsvm(tmp_path / "test.svm", X[150:], y[150:])
    model, metrics = tmp_path / "model.npz", tmp_path / "metrics.json"

    trained = run_hogwild("train", train, "--test", test, "--epochs", 2, "--save", model, "--metrics-json", metrics)
    assert trained.returncode == 0, trained.stderr
    assert "test_accuracy" in trained.stdout
    # stderr is a pipe here, not a terminal: one plain line per epoch, no carriage returns
    assert "\r" not in trained.stderr
    assert [line.split()[1] for line in trained.stderr.splitlines() if line.startswith("epoch ")] == ["1/2", "2/2"], \
        trained.stderr
    report = json.loads(metrics.read_text())
    assert 0.0 <= report["final"]["test_accuracy"] <= 1.0

    predicted = run_hogwild("predict", model, test)
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stderr == ""
    labels = np.array([float(v) for v in predicted.stdout.split()])
    assert labels.shape == (50,) and set(labels) <= {-1.0, 1.0}

    evaluated = run_hogwild("evaluate", model, test, "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    metrics_out = json.loads(evaluated.stdout)
    accuracy = float(np.mean(labels == y[150:]))
    assert metrics_out["accuracy"] == pytest.approx(accuracy)
    assert metrics_out["accuracy"] == pytest.approx(report["final"]["test_accuracy"])


def test_console_script_errors_are_one_line(tmp_path):
    missing = run_hogwild("train", tmp_path / "absent.svm")
    assert missing.returncode == 1
    assert "Traceback" not in missing.stderr
    assert missing.stderr.strip().count("\n") == 0 and "absent.svm" in missing.stderr

    usage = run_hogwild("train", tmp_path / "absent.svm", "--threads", "-3")
    assert usage.returncode == 2 and "--threads" in usage.stderr and "Usage:" in usage.stderr
