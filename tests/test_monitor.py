"""``train --log-jsonl FILE`` (one JSON record per chunk and per epoch, flushed as written) and ``hogwild plot``."""

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import hogwild
from hogwild.cli.main import cli
from hogwild.monitor import JsonlLog, read_log
from conftest import make_sparse_classification

CHUNK_KEYS = {"kind", "time", "elapsed", "epoch", "rows_done", "rows_total", "rows_per_s", "worker_rows_per_s",
              "loss", "rss_bytes"}


@pytest.fixture
def train_file(tmp_path):
    from hogwild.datasets.libsvm import dump_libsvm

    X, y = make_sparse_classification(2000, 40, density=0.2, seed=19)
    dump_libsvm(X, y, tmp_path / "train.svm")
    return tmp_path / "train.svm"


def _train(*args):
    return CliRunner().invoke(cli, ["train", *map(str, args), "--no-cache", "--quiet"])


@pytest.mark.parametrize("mode, model", [("async", "linear"), ("serial", "linear"), ("sync", "mlp")])
def test_log_has_a_record_per_chunk_and_per_epoch(tmp_path, train_file, mode, model):
    log = tmp_path / "run.jsonl"
    threads = [] if mode == "serial" else ["--threads", 2]
    extra = ["--model", "mlp", "--hidden", 4] if model == "mlp" else []
    done = _train(train_file, "--mode", mode, *threads, *extra, "--epochs", 3, "--chunk-rows", 250,
                  "--test-fraction", 0.2, "--log-jsonl", log)
    assert done.exit_code == 0, done.output
    records = read_log(log)
    assert records[0]["kind"] == "start" and records[0]["config"]["epochs"] == 3
    chunks = [r for r in records if r["kind"] == "chunk"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert all(set(r) == CHUNK_KEYS for r in chunks)
    assert {r["epoch"] for r in chunks} == {1, 2, 3}
    assert all(r["rows_total"] == 1600 and 0 < r["rows_done"] <= 1600 and r["rss_bytes"] > 0 for r in chunks)
    assert all(np.isfinite(r["loss"]) for r in chunks)
    times = [r["elapsed"] for r in records[1:]]
    assert times == sorted(times)
    rated = [r for r in chunks if r["rows_per_s"] is not None]
    assert len(rated) >= len(chunks) - 1 and all(r["rows_per_s"] > 0 for r in rated)
    if mode != "serial":
        per_worker = [r["worker_rows_per_s"] for r in chunks if r["worker_rows_per_s"] is not None]
        assert per_worker and all(len(w) == 2 for w in per_worker)
    assert all("test_accuracy" in r and r["peak_rss_bytes"] >= r["rss_bytes"] for r in epochs)


def test_records_are_on_disk_while_the_run_goes_on_and_runs_append(tmp_path):
    X, y = make_sparse_classification(1000, 30, seed=20)
    path = tmp_path / "live.jsonl"
    log = JsonlLog(path)
    seen = []

    def follow(loop):  # another reader of the file, mid-run: what was logged is already there
        seen.append(sum(1 for line in open(path) if line.endswith("\n")))

    try:
        hogwild.train(X, y, mode="serial", epochs=2, chunk_rows=100, callback=log.on_event,
                      hooks=[log.on_chunk, follow])
    finally:
        log.close()
    assert seen[0] >= 2 and seen == sorted(seen) and seen[-1] > seen[0]
    JsonlLog(path).close()
    assert sum(r["kind"] == "start" for r in read_log(path)) == 2


def test_log_path_is_checked_before_training(tmp_path, train_file):
    done = _train(train_file, "--log-jsonl", tmp_path / "no-such-folder" / "run.jsonl", "--save", tmp_path / "m.npz")
    assert done.exit_code == 1 and "--log-jsonl" in str(done.exception)
    assert not (tmp_path / "m.npz").exists()
    onto = _train(train_file, "--log-jsonl", train_file)
    assert onto.exit_code == 1 and "is also the input DATA" in str(onto.exception)


def test_plot_draws_a_log_and_refuses_bad_ones(tmp_path, train_file):
    pytest.importorskip("matplotlib")
    log = tmp_path / "run.jsonl"
    assert _train(train_file, "--epochs", 2, "--chunk-rows", 300, "--log-jsonl", log).exit_code == 0
    done = CliRunner().invoke(cli, ["plot", str(log), "-o", str(tmp_path / "run.png")])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(log, "a") as handle:
        handle.write('{"kind": "chunk", "elapsed": 1}\nthis is not json\n{"kind": "chunk"')  # an unfinished last line
    bad = CliRunner().invoke(cli, ["plot", str(log), "-o", str(tmp_path / "bad.png")])
    assert bad.exit_code == 1 and f"{log}:" in str(bad.exception) and "not a JSON record" in str(bad.exception)
    (tmp_path / "empty.jsonl").write_text("")
    empty = CliRunner().invoke(cli, ["plot", str(tmp_path / "empty.jsonl"), "-o", str(tmp_path / "e.png")])
    assert empty.exit_code == 1 and "has no chunk records" in str(empty.exception)
    suffix = CliRunner().invoke(cli, ["plot", str(log), "-o", str(tmp_path / "run.txt")])
    assert suffix.exit_code == 2 and ".png, .svg or .pdf" in suffix.output


def test_plot_without_matplotlib_says_so_in_one_line(tmp_path, monkeypatch):
    (tmp_path / "run.jsonl").write_text('{"kind": "chunk", "elapsed": 0.1, "loss": 0.5}\n')
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    done = CliRunner().invoke(cli, ["plot", str(tmp_path / "run.jsonl"), "-o", str(tmp_path / "run.png")])
    assert done.exit_code == 1
    assert "needs matplotlib" in done.output and "pip install 'hogwild[plot]'" in done.output
