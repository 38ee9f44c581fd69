"""The `hogwild` command line through click's CliRunner: train, predict, evaluate, their errors and exit codes.

Commands run through `hogwild.cli.main.main` (the error funnel) so exit codes and the one-line messages are the
ones a user sees. Data are tiny LIBSVM files written by the tests.
"""

import json
import math
import signal

import click
import numpy as np
import pytest
from click.testing import CliRunner

from hogwild.cli.main import main

from conftest import shared_file


@click.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def _hogwild(args):
    """The console script, as CliRunner can call it: `main` with its SystemExit codes."""
    main(list(args))


def run(*args):
    """Run ``hogwild ARGS...``; the result has exit_code, stdout and (separately) stderr."""
    return CliRunner().invoke(_hogwild, [str(a) for a in args])


def write_libsvm(path, X, y, labelled=True, comments=False):
    """Write a dense array as a one-based LIBSVM file (zeros left out)."""
    lines = ["# written by test_cli"] if comments else []
    for row, label in zip(X, y):
        features = " ".join(f"{j + 1}:{v:.6g}" for j, v in enumerate(row) if v != 0)
        head = (f"{label:g} " if labelled else "")
        lines.append((head + features).strip())
        if comments:
            lines.append("")
    path.write_text("\n".join(lines) + "\n")
    return path


def make_problem(n_rows=240, n_features=12, task="binary", seed=0):
    """A small learnable problem: sparse-ish nonnegative features, a planted linear rule."""
    rng = np.random.default_rng(seed)
    X = rng.random((n_rows, n_features)) * (rng.random((n_rows, n_features)) < 0.5)
    X[:, 0] = 1.0  # every row has a nonzero feature; also keeps the feature count at n_features
    X[:, -1] = np.where(rng.random(n_rows) < 0.5, X[:, -1], 0.5)
    w = rng.normal(size=(n_features, 3))
    scores = (X - X.mean(axis=0)) @ w
    if task == "binary":
        y = np.where(scores[:, 0] > 0, 1.0, -1.0)
    elif task == "multiclass":
        y = scores.argmax(axis=1) + 1.0
    else:
        y = scores[:, 0] * 2.0 + 1.0
    return X, y


@pytest.fixture
def binary_files(tmp_path):
    X, y = make_problem()
    train = write_libsvm(tmp_path / "train.svm", X[:180], y[:180])
    test = write_libsvm(tmp_path / "test.svm", X[180:], y[180:])
    return train, test, X[180:], y[180:]


@pytest.fixture
def trained(binary_files, tmp_path):
    """A model trained by the CLI in serial mode, with its metrics JSON."""
    train, test, _, _ = binary_files
    model_path, metrics_path = tmp_path / "model.npz", tmp_path / "metrics.json"
    result = run(
        "train", train, "--test", test, "--epochs", 3, "--mode", "serial", "--seed", 3,
        "--save", model_path, "--metrics-json", metrics_path,
    )
    assert result.exit_code == 0, result.stderr
    return model_path, metrics_path, result


def load_data(path):
    from hogwild.datasets.libsvm import load_libsvm

    return load_libsvm(str(path), cache=False)


# --- help -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["train", "predict", "evaluate"])
def test_help_has_examples_and_defaults(command):
    result = run(command, "--help")
    assert result.exit_code == 0, result.stderr
    assert "Examples:" in result.stdout
    assert f"hogwild {command} " in result.stdout
    assert "[default:" in result.stdout


def test_train_help_documents_every_config_option_with_its_default():
    from hogwild.cli.options import config_fields

    text = run("train", "--help").stdout
    flat = " ".join(text.split())
    for f in config_fields():
        flag = f.metadata["cli"].split("/")[0]
        assert flag in text, flag
        if f.type in ("bool",) and "/" not in f.metadata["cli"]:
            continue  # an off-by-default flag
        assert flag in flat
    # each option's help block shows a default or an env var: check the ones a user reaches for first
    for needle in ("[default: 0.1]", "[default: auto]", "[default: 10]", "HOGWILD_THREADS", "HOGWILD_CACHE_DIR"):
        assert needle in flat, needle


def test_group_help_does_not_need_the_engine():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("train", "predict", "evaluate"):
        assert command in result.stdout


# --- usage errors: exit 2 with click's usage message ----------------------------------------------------


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--threads", "-3"], "--threads"),
        (["--epochs", "0"], "--epochs"),
        (["--mode", "turbo"], "--mode"),
        (["--lr", "nan"], "--lr"),
        (["--validation-fraction", "1.5"], "--validation-fraction"),
        (["--model", "mlp", "--hidden", "8,x"], "--hidden"),
        (["--resume"], "--resume"),
    ],
)
def test_bad_option_values_are_usage_errors(binary_files, args, needle):
    result = run("train", binary_files[0], *args)
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert "Usage: hogwild train" in result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    "args, needle",
    [
        ([], "missing DATA"),
        (["DATA", "--synthetic", "dense"], "not both"),
        (["DATA", "--rows", "10"], "--rows goes with --synthetic"),
        (["DATA", "--test", "t.svm", "--test-fraction", "0.2"], "not both"),
    ],
)
def test_inconsistent_sources_are_usage_errors(binary_files, args, needle):
    args = [binary_files[0] if a == "DATA" else a for a in args]
    result = run("train", *args)
    assert result.exit_code == 2, result.stderr
    assert needle in result.stderr


# --- runtime errors: exit 1, one line naming the file ---------------------------------------------------


def assert_one_line_error(result, *needles):
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hogwild: error:"), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_missing_data_file(tmp_path):
    assert_one_line_error(run("train", tmp_path / "absent.svm", "--quiet"), "absent.svm")


def test_directory_instead_of_file(tmp_path):
    assert_one_line_error(run("train", tmp_path, "--quiet"), str(tmp_path))


def test_malformed_file_names_the_line(tmp_path):
    path = tmp_path / "bad.svm"
    path.write_text("1 1:0.5 2:1\n-1 1:0.25 2:zz\n")
    assert_one_line_error(run("train", path, "--quiet"), "bad.svm", "2")


def test_debug_shows_the_exception(tmp_path):
    from hogwild.errors import DataError, HogwildError

    result = run("--debug", "train", tmp_path / "absent.svm")
    assert result.exit_code == 1
    assert isinstance(result.exception, (DataError, HogwildError, OSError)), result.exception


def test_no_gpu_for_device_cuda(binary_files, monkeypatch):
    import hogwild.device

    monkeypatch.setattr(hogwild.device, "_cuda_status", lambda: (False, "no driver in this test"))
    assert_one_line_error(run("train", binary_files[0], "--device", "cuda"), "--device cpu")


def test_diverged_run_saves_no_model(binary_files, tmp_path):
    model_path = tmp_path / "diverged.npz"
    result = run(
        "train", binary_files[0], "--schedule", "constant", "--lr", "1e30", "--l2", "0", "--loss", "squared_hinge",
        "--mode", "serial", "--epochs", 3, "--save", model_path, "--quiet",
    )
    assert_one_line_error(result, "--lr")
    assert not model_path.exists()


# --- train ----------------------------------------------------------------------------------------------


def test_train_writes_metrics_json_with_the_documented_schema(trained):
    model_path, metrics_path, result = trained
    assert model_path.exists()
    report = json.loads(metrics_path.read_text())
    assert set(report) == {"config", "epochs", "final", "throughput", "dataset", "memory"}
    assert report["memory"]["peak_rss_bytes"] >= report["memory"]["rss_bytes"] > 0
    assert report["config"]["mode"] == "serial" and report["config"]["epochs"] == 3
    assert len(report["epochs"]) == 3
    for record in report["epochs"]:
        assert {"epoch", "seconds", "train_loss", "test_accuracy"} <= set(record), record
        assert 0.0 <= record["test_accuracy"] <= 1.0
    final = report["final"]
    assert {"train_loss", "test_accuracy", "test_loss", "test_auc"} <= set(final)
    assert 0.0 <= final["test_accuracy"] <= 1.0 and 0.0 <= final["test_auc"] <= 1.0
    assert final["test_accuracy"] >= 0.7, f"test accuracy {final['test_accuracy']} below threshold 0.7"
    assert set(report["throughput"]) == {"rows_per_s", "nnz_per_s"}
    assert report["throughput"]["rows_per_s"] > 0
    dataset = report["dataset"]
    assert dataset["n_train"] == 180 and dataset["n_test"] == 60 and dataset["n_features"] == 12
    assert dataset["classes"] == [-1, 1]


def test_train_summary_on_stdout_progress_on_stderr(trained):
    _, metrics_path, result = trained
    assert "3 epochs" in result.stdout and "test_accuracy" in result.stdout
    epoch_lines = [line for line in result.stderr.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == 3, result.stderr
    assert "train_loss" in epoch_lines[0] and "rows/s" in epoch_lines[0]
    assert "epoch" not in result.stdout.split("\n", 1)[1]  # no progress lines among the results


def test_quiet_prints_nothing(binary_files):
    result = run("train", binary_files[0], "--epochs", 1, "--quiet")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


def test_metrics_json_final_matches_the_saved_model(trained, binary_files):
    from hogwild.metrics import evaluate_model
    from hogwild.model_io import load_model

    model_path, metrics_path, _ = trained
    model = load_model(model_path)
    X_test, y_test = load_data(binary_files[1])
    metrics = evaluate_model(model, X_test, y_test)
    final = json.loads(metrics_path.read_text())["final"]
    assert final["test_accuracy"] == pytest.approx(metrics["accuracy"])
    assert final["test_auc"] == pytest.approx(metrics["roc_auc"])


def test_test_file_with_more_features_than_train(tmp_path):
    X, y = make_problem(n_features=12)
    train = write_libsvm(tmp_path / "train.svm", X[:150, :8], y[:150])
    test = write_libsvm(tmp_path / "test.svm", X[150:], y[150:])
    metrics_path = tmp_path / "m.json"
    result = run("train", train, "--test", test, "--epochs", 1, "--metrics-json", metrics_path, "--quiet")
    assert result.exit_code == 0, result.stderr
    assert json.loads(metrics_path.read_text())["dataset"]["n_features"] == 12


def test_compressed_input_and_test_fraction(tmp_path):
    import gzip

    X, y = make_problem()
    plain = write_libsvm(tmp_path / "all.svm", X, y)
    packed = tmp_path / "all.svm.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    metrics_path = tmp_path / "m.json"
    result = run("train", packed, "--test-fraction", 0.25, "--epochs", 2, "--metrics-json", metrics_path, "--quiet")
    assert result.exit_code == 0, result.stderr
    dataset = json.loads(metrics_path.read_text())["dataset"]
    assert dataset["n_test"] == 60 and dataset["n_train"] == 180 and dataset["test_split"] == "holdout"


def test_validation_fraction_reaches_the_history(binary_files, tmp_path):
    metrics_path = tmp_path / "m.json"
    result = run("train", binary_files[0], "--validation-fraction", 0.25, "--epochs", 2,
                 "--metrics-json", metrics_path, "--quiet")
    assert result.exit_code == 0, result.stderr
    epochs = json.loads(metrics_path.read_text())["epochs"]
    assert any(key.startswith("validation_") for key in epochs[-1]), epochs[-1]


def test_synthetic_without_data(tmp_path):
    metrics_path = tmp_path / "m.json"
    result = run("train", "--synthetic", "dense", "--rows", 400, "--epochs", 1, "--metrics-json", metrics_path)
    assert result.exit_code == 0, result.stderr
    report = json.loads(metrics_path.read_text())
    assert report["dataset"]["train"] == "synthetic:dense"
    assert report["dataset"]["n_test"] == 80 and report["dataset"]["n_train"] == 320
    assert report["dataset"]["synthetic"]["like"] == "dense"
    assert 0.0 <= report["final"]["test_accuracy"] <= 1.0


def test_regression(tmp_path):
    X, y = make_problem(task="regression")
    train = write_libsvm(tmp_path / "train.svm", X[:180], y[:180])
    test = write_libsvm(tmp_path / "test.svm", X[180:], y[180:])
    model_path, metrics_path = tmp_path / "r.npz", tmp_path / "m.json"
    result = run("train", train, "--test", test, "--loss", "squared_error", "--schedule", "invscaling",
                 "--lr", 0.05, "--epochs", 5, "--save", model_path, "--metrics-json", metrics_path, "--quiet")
    assert result.exit_code == 0, result.stderr
    final = json.loads(metrics_path.read_text())["final"]
    assert "test_rmse" in final and "test_accuracy" not in final
    assert final["test_rmse"] < np.std(y) * 2, f"rmse {final['test_rmse']} vs label std {np.std(y)}"
    evaluated = run("evaluate", model_path, test, "--json")
    assert evaluated.exit_code == 0, evaluated.stderr
    metrics = json.loads(evaluated.stdout)
    assert metrics["rmse"] == pytest.approx(final["test_rmse"]) and "mae" in metrics
    predicted = run("predict", model_path, test)
    values = [float(v) for v in predicted.stdout.split()]
    assert len(values) == 60 and not all(v.is_integer() for v in values)


# --- predict --------------------------------------------------------------------------------------------


def test_round_trip_train_save_load_predict_equals_in_memory(binary_files, trained):
    """CLI train -> save -> CLI predict gives the in-memory model's predictions (same seed, serial mode)."""
    import hogwild.engine
    from hogwild.config import TrainConfig
    from hogwild.model_io import load_model

    model_path, _, _ = trained
    X_train, y_train = load_data(binary_files[0])
    X_test, _ = load_data(binary_files[1])
    config = TrainConfig(epochs=3, mode="serial", seed=3).validate()
    in_memory = hogwild.engine.train(X_train, y_train, config).model
    expected = in_memory.predict(X_test)

    loaded = load_model(model_path)
    np.testing.assert_array_equal(loaded.predict(X_test), expected)
    result = run("predict", model_path, binary_files[1])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 60
    assert set(lines) <= {"-1", "1"}, set(lines)  # printed like the training labels
    np.testing.assert_array_equal(np.array([float(v) for v in lines]), expected)


def test_predict_streams_in_chunks_without_labels_and_comments(binary_files, trained, tmp_path):
    model_path = trained[0]
    _, test, X_test, y_test = binary_files
    whole = run("predict", model_path, test)
    unlabelled = write_libsvm(tmp_path / "bare.svm", X_test, y_test, labelled=False, comments=True)
    chunked = run("predict", model_path, unlabelled, "--chunk-rows", 7)
    assert chunked.exit_code == 0, chunked.stderr
    assert chunked.stdout == whole.stdout


def test_predict_proba_matches_the_model(binary_files, trained, tmp_path):
    from hogwild.model_io import load_model

    model_path = trained[0]
    out = tmp_path / "proba.txt"
    result = run("predict", model_path, binary_files[1], "--proba", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    proba = np.loadtxt(out)
    assert proba.shape == (60, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    X_test, _ = load_data(binary_files[1])
    expected = np.asarray(load_model(model_path).predict_proba(X_test))
    np.testing.assert_allclose(proba, expected.reshape(proba.shape), atol=1e-5)


def test_predict_refuses_extra_features_unless_asked(trained, tmp_path):
    model_path = trained[0]
    X, y = make_problem(n_rows=5, n_features=15, seed=1)
    wide = write_libsvm(tmp_path / "wide.svm", X, y)
    assert_one_line_error(run("predict", model_path, wide), "wide.svm:1", "--ignore-extra-features")
    result = run("predict", model_path, wide, "--ignore-extra-features")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 5


def test_predict_proba_needs_a_probabilistic_model(binary_files, tmp_path):
    model_path = tmp_path / "hinge.npz"
    assert run("train", binary_files[0], "--loss", "hinge", "--epochs", 1, "--save", model_path, "--quiet").exit_code == 0
    result = run("predict", model_path, binary_files[1], "--proba")
    assert result.exit_code == 2, result.stderr
    assert "--proba" in result.stderr


def test_corrupt_or_missing_model(binary_files, trained, tmp_path):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(trained[0].read_bytes()[:100])
    assert_one_line_error(run("predict", broken, binary_files[1]), "broken.npz")
    assert_one_line_error(run("evaluate", tmp_path / "nothing.npz", binary_files[1]), "nothing.npz")


def test_predict_malformed_line_names_the_file_line(trained, tmp_path):
    path = tmp_path / "bad.svm"
    path.write_text("# header\n1 1:0.5\n\n1 3:x\n")
    assert_one_line_error(run("predict", trained[0], path, "--chunk-rows", 1), "bad.svm:4")


# --- evaluate -------------------------------------------------------------------------------------------


def test_evaluate_text_and_json_agree_with_metrics(binary_files, trained):
    from hogwild.metrics import evaluate_model
    from hogwild.model_io import load_model

    model_path = trained[0]
    text = run("evaluate", model_path, binary_files[1])
    assert text.exit_code == 0, text.stderr
    assert "accuracy" in text.stdout and "roc_auc" in text.stdout
    result = run("evaluate", model_path, binary_files[1], "--json")
    metrics = json.loads(result.stdout)
    assert {"accuracy", "log_loss", "roc_auc", "n_samples"} <= set(metrics)
    X_test, y_test = load_data(binary_files[1])
    expected = evaluate_model(load_model(model_path), X_test, y_test)
    for key in ("accuracy", "log_loss", "roc_auc"):
        assert metrics[key] == pytest.approx(expected[key], rel=1e-6), key


def test_evaluate_unknown_labels(trained, tmp_path):
    X, y = make_problem(n_rows=6, seed=2)
    y = np.array([1, -1, 3, 1, 7, -1], dtype=float)
    path = write_libsvm(tmp_path / "odd.svm", X, y)
    assert_one_line_error(run("evaluate", trained[0], path), "odd.svm", "3, 7")


def test_evaluate_needs_labels(trained, binary_files, tmp_path):
    _, _, X_test, y_test = binary_files
    bare = write_libsvm(tmp_path / "bare.svm", X_test, y_test, labelled=False)
    assert_one_line_error(run("evaluate", trained[0], bare), "bare.svm:1", "label")


def test_multiclass_softmax_per_class_report(tmp_path):
    X, y = make_problem(n_rows=300, task="multiclass")
    train = write_libsvm(tmp_path / "train.svm", X[:220], y[:220])
    test = write_libsvm(tmp_path / "test.svm", X[220:], y[220:])
    model_path = tmp_path / "soft.npz"
    result = run("train", train, "--test", test, "--multiclass", "softmax", "--epochs", 5,
                 "--save", model_path, "--quiet")
    assert result.exit_code == 0, result.stderr
    metrics = json.loads(run("evaluate", model_path, test, "--json").stdout)
    assert set(metrics["per_class"]) == {"1", "2", "3"}
    assert metrics["accuracy"] > 0.5, f"softmax accuracy {metrics['accuracy']} below threshold 0.5"
    proba = run("predict", model_path, test, "--proba")
    rows = [list(map(float, line.split())) for line in proba.stdout.splitlines()]
    assert len(rows) == 80 and all(len(r) == 3 and math.isclose(sum(r), 1.0, abs_tol=1e-4) for r in rows)
    labels = run("predict", model_path, test).stdout.split()
    assert set(labels) <= {"1", "2", "3"}


# --- progress -------------------------------------------------------------------------------------------


class FakeTerminal:
    def __init__(self, tty):
        self.text, self.tty = "", tty

    def write(self, text):
        self.text += text

    def flush(self):
        pass

    def isatty(self):
        return self.tty


def feed(progress):
    for rows in (100, 200, 300):
        progress({"kind": "chunk", "epoch": 1, "rows_done": rows, "rows_total": 300, "loss": 0.5})
    progress({"kind": "epoch", "epoch": 1, "seconds": 0.5, "train_loss": 0.25, "test_accuracy": 0.875,
              "rows_per_s": 600.0, "nnz_per_s": 6000.0, "lr": 0.1})


def test_progress_draws_a_live_bar_on_a_terminal():
    from hogwild.cli.progress import Progress

    ticks = iter(float(t) for t in range(100))
    terminal = FakeTerminal(tty=True)
    feed(Progress(epochs=2, stream=terminal, clock=lambda: next(ticks)))
    assert "\r" in terminal.text and "rows/s" in terminal.text and "loss 0.5000" in terminal.text
    assert "100%" in terminal.text
    last_line = terminal.text.rsplit("\r\x1b[K", 1)[1]
    assert last_line.startswith("epoch 1/2") and "test_accuracy 0.8750" in last_line and last_line.endswith("\n")


def test_progress_prints_one_line_per_epoch_when_not_a_terminal():
    from hogwild.cli.progress import Progress

    pipe = FakeTerminal(tty=False)
    feed(Progress(epochs=2, stream=pipe))
    assert pipe.text.count("\n") == 1 and "\r" not in pipe.text
    assert pipe.text.startswith("epoch 1/2") and "train_loss 0.2500" in pipe.text and "600 rows/s" in pipe.text


def test_progress_quiet_prints_nothing():
    from hogwild.cli.progress import Progress

    terminal = FakeTerminal(tty=True)
    feed(Progress(epochs=2, stream=terminal, quiet=True))
    assert terminal.text == ""


# --- Ctrl-C ---------------------------------------------------------------------------------------------


def test_interrupt_saves_a_checkpoint_and_exits_130(binary_files, tmp_path, monkeypatch):
    """A SIGINT delivered mid-epoch stops at a chunk boundary, writes a checkpoint, exits 130."""
    import os

    import hogwild.cli.progress as progress_module

    original = progress_module.Progress.__call__

    def interrupt_after_first_chunk(self, event):
        if event.get("kind") == "chunk" and not getattr(self, "_sent", False):
            self._sent = True
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, event)

    monkeypatch.setattr(progress_module.Progress, "__call__", interrupt_after_first_chunk)
    checkpoints = tmp_path / "ckpt"
    result = run("train", binary_files[0], "--epochs", 50, "--chunk-rows", 16, "--mode", "serial",
                 "--checkpoint-dir", checkpoints, "--save", tmp_path / "m.npz")
    assert result.exit_code == 130, (result.exit_code, result.stderr)
    assert not (tmp_path / "m.npz").exists()
    assert "interrupted" in result.stderr and "checkpoint" in result.stderr
    assert any(checkpoints.iterdir()), "no checkpoint written"
    assert not (tmp_path / "m.npz").exists()


def test_interrupt_exit_codes_from_the_engine(binary_files, monkeypatch):
    import hogwild.engine
    from hogwild.errors import TrainingInterrupted

    def stopped(*args, **kwargs):
        raise TrainingInterrupted(signal.SIGTERM, checkpoint="ckpt/epoch-2.npz")

    monkeypatch.setattr(hogwild.engine, "train", stopped)
    result = run("train", binary_files[0], "--quiet")
    assert result.exit_code == 143
    assert "ckpt/epoch-2.npz" in result.stderr


# --- real data ------------------------------------------------------------------------------------------


def test_a9a_one_epoch(tmp_path):
    path = shared_file("a9a")
    metrics_path = tmp_path / "a9a.json"
    result = run("train", path, "--test-fraction", 0.2, "--epochs", 1, "--threads", 2,
                 "--metrics-json", metrics_path, "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.stderr
    final = json.loads(metrics_path.read_text())["final"]
    assert final["test_accuracy"] > 0.8, f"a9a test accuracy {final['test_accuracy']} below threshold 0.8"


# --- more inputs and model kinds ------------------------------------------------------------------------


def test_binary_cache_as_data(binary_files, tmp_path):
    from hogwild.datasets.cache import convert

    train, test, _, _ = binary_files
    cache_path = convert(str(train), str(tmp_path / "caches"))
    metrics_path = tmp_path / "m.json"
    result = run("train", cache_path, "--test", test, "--epochs", 1, "--metrics-json", metrics_path, "--quiet")
    assert result.exit_code == 0, result.stderr
    dataset = json.loads(metrics_path.read_text())["dataset"]
    assert dataset["n_train"] == 180 and dataset["n_test"] == 60 and dataset["n_features"] == 12


def test_mlp_train_save_predict(binary_files, tmp_path):
    from hogwild.model_io import load_model

    train, test, _, _ = binary_files
    model_path = tmp_path / "mlp.npz"
    result = run("train", train, "--test", test, "--model", "mlp", "--hidden", 8, "--epochs", 2,
                 "--mode", "serial", "--save", model_path, "--quiet")
    assert result.exit_code == 0, result.stderr
    model = load_model(model_path)
    assert model.kind == "mlp"
    X_test, _ = load_data(test)
    predicted = run("predict", model_path, test)
    assert predicted.exit_code == 0, predicted.stderr
    np.testing.assert_array_equal(np.array([float(v) for v in predicted.stdout.split()]), model.predict(X_test))


def test_predict_truncated_gzip_is_one_line(trained, binary_files, tmp_path):
    import gzip

    packed = gzip.compress(binary_files[1].read_bytes())
    truncated = tmp_path / "cut.svm.gz"
    truncated.write_bytes(packed[: len(packed) // 2])
    assert_one_line_error(run("predict", trained[0], truncated), "cut.svm.gz")
