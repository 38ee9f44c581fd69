"""Training on data larger than memory: windowed row order, pages dropped as windows finish, copies to mapped
files, ``train -`` cached on the fly, and the peak resident memory the metrics report.

The issue's judged run (a 2,000,000-row rcv1-shaped file: ``data convert`` and ``train --epochs 2`` each peak
less than a quarter of the CSR's size above the same commands on a tiny file, and reach the in-memory test
accuracy within 0.3 points) is ``test_two_million_rows_convert_and_train_in_bounded_memory``, marked slow;
``HOGWILD_STREAM_ROWS`` changes its size. The fast tests check the same properties on smaller sets.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

import hogwild
from hogwild.datasets.cache import read_cache, write_cache
from hogwild.memory import (
    WindowReleaser,
    csr_is_mapped,
    mapped_rows,
    release,
    resident_bytes,
    streamed_all_finite,
    streamed_canonical,
    streamed_max,
)
from hogwild.order import epoch_order


def _cache(tmp_path, n_rows, seed=0, name="set"):
    """A memory-mapped rcv1-shaped set: (X, y) read back from a binary cache written in tmp_path."""
    from hogwild.datasets.synth import make_synthetic

    X, y, _ = make_synthetic(like="rcv1", n_rows=n_rows, seed=seed, dtype=np.float32)
    folder = write_cache(X, y, tmp_path / f"{name}.hwcache", index_shift=1, raw_min_index=1, dtype=np.float32)
    cached = read_cache(folder)
    return cached.X, cached.y, X, y


@pytest.mark.parametrize("n_rows", [1, 31, 32, 33, 1000, 1013, 50_001])
@pytest.mark.parametrize("shift", [5, 0])
@pytest.mark.parametrize("window", [64, 100, 4096])
def test_windowed_order_visits_every_row_once_window_by_window(n_rows, shift, window):
    order = epoch_order(n_rows, seed=3, epoch=1, block_shift=shift, window_rows=window)
    rows = order.expand()
    assert np.array_equal(np.sort(rows), np.arange(n_rows))
    positions = np.empty(n_rows, dtype=np.int64)
    positions[rows] = np.arange(n_rows)
    spans = [order.window_rows(k) for k in order.windows_within(0, n_rows)]
    assert sum(stop - first for first, stop in spans) == n_rows
    for first, stop in spans:  # a window's rows are consecutive in storage and consecutive in the epoch
        where = positions[first:stop]
        assert where.max() - where.min() == stop - first - 1
    cuts = order.shard_bounds(3)
    assert cuts[0] == 0 and cuts[-1] == n_rows and cuts == sorted(cuts)
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        for k in order.windows_within(lo, hi):
            first, stop = order.window_rows(k)
            assert lo <= positions[first:stop].min() and positions[first:stop].max() < hi


def test_windowed_orders_differ_by_epoch_and_the_whole_epoch_order_is_unchanged():
    a, b = (epoch_order(10_000, 0, epoch, window_rows=1024).expand() for epoch in (0, 1))
    assert not np.array_equal(a, b)
    plain = epoch_order(10_000, 0, 0)
    assert plain.window_starts is None and plain.windows_within(0, 10_000) == range(0)


def test_streamed_passes_agree_with_numpy_and_copies_stay_mapped(tmp_path):
    X, y, X_memory, _ = _cache(tmp_path, 20_000)
    assert csr_is_mapped(X) and not csr_is_mapped(X_memory)
    assert streamed_canonical(X.indptr, X.indices, X.shape[0])
    assert streamed_max(X.indices) == X_memory.indices.max()
    assert streamed_all_finite(X.data)
    bad = X_memory.copy()
    bad.indices[bad.indptr[7] : bad.indptr[7] + 2] = bad.indices[bad.indptr[7]]  # a duplicate inside row 7
    assert not streamed_canonical(bad.indptr, bad.indices, bad.shape[0])
    rows = np.sort(np.random.default_rng(1).choice(X.shape[0], 7_000, replace=False))
    copy = mapped_rows(X, rows, dtype=np.float64)
    assert csr_is_mapped(copy) and copy.data.dtype == np.float64
    assert (copy != X_memory[rows].astype(np.float64)).nnz == 0


def test_release_drops_resident_pages_of_a_mapped_array(tmp_path):
    path = tmp_path / "big.npy"
    np.save(path, np.ones(1 << 24, dtype=np.float32))  # 64 MiB
    mapped = np.load(path, mmap_mode="r")
    before = resident_bytes()
    assert float(mapped.sum()) == float(1 << 24)
    touched = resident_bytes()
    release(mapped)
    after = resident_bytes()
    assert touched - before > 48 << 20, f"reading 64 MiB mapped only grew RSS by {(touched - before) >> 20} MiB"
    assert touched - after > 48 << 20, f"release dropped only {(touched - after) >> 20} MiB of 64 MiB"
    assert float(mapped[-1]) == 1.0  # a dropped page reads back from the file


@pytest.mark.parametrize("mode", ["serial", "async", "sync", "average", "locked", "auto"])
def test_training_on_a_mapped_cache_matches_training_in_memory(tmp_path, mode):
    X, y, X_memory, y_memory = _cache(tmp_path, 24_000)
    X_test, y_test = X_memory[20_000:], y_memory[20_000:]
    threads = {} if mode == "serial" else {"threads": 2}
    mapped = hogwild.train(mapped_rows(X, np.arange(20_000)), y[:20_000], mode=mode, epochs=3, chunk_rows=1024,
                           X_test=X_test, y_test=y_test, **threads)
    memory = hogwild.train(X_memory[:20_000], y_memory[:20_000], mode=mode, epochs=3, chunk_rows=1024,
                           X_test=X_test, y_test=y_test, **threads)
    gap = abs(mapped.history[-1]["test_accuracy"] - memory.history[-1]["test_accuracy"])
    assert gap < 0.02, f"{mode}: mapped and in-memory training differ by {gap:.4f} in test accuracy (limit 0.02)"


@pytest.mark.parametrize("mode", ["serial", "async", "sync"])
def test_mlp_trains_on_a_mapped_cache(tmp_path, mode):
    X, y, X_memory, y_memory = _cache(tmp_path, 6_000)
    threads = {} if mode == "serial" else {"threads": 2}
    result = hogwild.train(X, y, model="mlp", hidden=(8,), optimizer="adam", lr=0.01, epochs=2, mode=mode,
                           chunk_rows=512, **threads)
    assert result.history[-1]["train_loss"] < 0.69


def test_window_releaser_drops_each_window_once(tmp_path):
    X, _, _, _ = _cache(tmp_path, 5_000)
    order = epoch_order(X.shape[0], 0, 0, window_rows=1024)
    releaser = WindowReleaser(X)
    releaser.start(order)
    releaser.finished(0, 2048)
    assert releaser.released.sum() == 2
    releaser.finished(0, X.shape[0])
    assert releaser.released.all()


def test_validation_split_of_a_mapped_set_is_mapped(tmp_path):
    from hogwild.config import TrainConfig
    from hogwild.problem import prepare_problem

    X, y, _, _ = _cache(tmp_path, 4_000)
    problem = prepare_problem(X, y, TrainConfig(validation_fraction=0.25).validate())
    assert csr_is_mapped(problem.X) and problem.n_rows == 3_000
    (name, X_val, _), = problem.evaluations
    assert name == "validation" and X_val.shape[0] == 1_000


def _run(*args, stdin=None):
    env = dict(os.environ, HOGWILD_THREADS="2")
    return subprocess.run([sys.executable, "-m", "hogwild.cli.main", *map(str, args)], input=stdin,
                          capture_output=True, env=env, timeout=900)


def test_train_from_stdin_caches_on_the_fly_and_matches_the_file(tmp_path):
    from hogwild.datasets.libsvm import dump_libsvm
    from hogwild.datasets.synth import make_synthetic

    X, y, _ = make_synthetic(like="rcv1", n_rows=3_000, seed=2, dtype=np.float32)
    dump_libsvm(X, y, tmp_path / "train.svm")
    text = (tmp_path / "train.svm").read_bytes()
    reports = {}
    for label, args in (("file", [tmp_path / "train.svm", "--no-cache"]), ("stdin", ["-", "--cache-dir", tmp_path]),
                        ("stdin-memory", ["-", "--no-cache"])):
        metrics = tmp_path / f"{label}.json"
        done = _run("train", *args, "--mode", "serial", "--epochs", "2", "--test-fraction", "0.2", "--quiet",
                    "--metrics-json", metrics, stdin=text if label != "file" else None)
        assert done.returncode == 0, done.stderr.decode()
        reports[label] = json.loads(metrics.read_text())
    accuracy = {label: report["final"]["test_accuracy"] for label, report in reports.items()}
    assert accuracy["stdin"] == pytest.approx(accuracy["stdin-memory"], abs=0.01), accuracy
    assert accuracy["file"] == pytest.approx(accuracy["stdin-memory"], abs=0.01), accuracy
    assert reports["stdin"]["dataset"]["n_features"] == reports["file"]["dataset"]["n_features"]
    assert reports["stdin"]["memory"]["peak_rss_bytes"] > 0
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".hogwild-rows-")], "temporary files left behind"


def _peak_of_training(data, tmp_path, *extra):
    metrics = tmp_path / f"peak-{os.path.basename(str(data))}.json"
    done = _run("train", data, "--epochs", "2", "--quiet", "--metrics-json", metrics, *extra)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(metrics.read_text())["memory"]["peak_rss_bytes"]


def test_training_peak_memory_grows_by_less_than_a_quarter_of_the_csr(tmp_path):
    big, _, _, _ = _cache(tmp_path, 300_000, name="big")
    _cache(tmp_path, 1_000, name="tiny")
    csr_bytes = big.data.nbytes + big.indices.nbytes + big.indptr.nbytes
    for mode in ("async", "serial"):
        extra = ["--chunk-rows", "2048", "--mode", mode]
        tiny_peak = _peak_of_training(tmp_path / "tiny.hwcache", tmp_path, *extra)
        big_peak = _peak_of_training(tmp_path / "big.hwcache", tmp_path, *extra)
        assert big_peak - tiny_peak < csr_bytes / 4, (
            f"{mode}: training peaked {(big_peak - tiny_peak) / 2**20:.1f} MiB above the tiny set's; the limit is a "
            f"quarter of the CSR's {csr_bytes / 2**20:.1f} MiB")


@pytest.mark.slow
def test_two_million_rows_convert_and_train_in_bounded_memory(tmp_path):
    import shutil

    n_rows = int(os.environ.get("HOGWILD_STREAM_ROWS", 2_000_000))
    needed = 2.6e9 * n_rows / 2_000_000 * 2  # the text file and its binary cache, with room to spare
    if shutil.disk_usage(tmp_path).free < needed:
        pytest.skip(f"needs {needed / 1e9:.1f} GB of free disk for the {n_rows:,}-row file and its cache")
    from hogwild.datasets.synth import make_synthetic
    from hogwild.datasets.libsvm import dump_libsvm

    for name, rows in (("big", n_rows + 100_000), ("tiny", 2_000 + 100_000)):
        X, y, _ = make_synthetic(like="rcv1", n_rows=rows, seed=0, dtype=np.float32)
        dump_libsvm(X[: rows - 100_000], y[: rows - 100_000], tmp_path / f"{name}.svm")
        if name == "big":
            dump_libsvm(X[rows - 100_000 :], y[rows - 100_000 :], tmp_path / "test.svm")
            X_memory, y_memory = X[: rows - 100_000], y[: rows - 100_000]
            X_test, y_test = X[rows - 100_000 :], y[rows - 100_000 :]
        del X, y
    csr_bytes = X_memory.data.nbytes + X_memory.indices.nbytes + X_memory.indptr.nbytes
    peaks = {}
    for name in ("tiny", "big"):
        done = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "hogwild.cli.main", "data",
                               "convert", tmp_path / f"{name}.svm", "--cache-dir", tmp_path],
                              capture_output=True, text=True, timeout=3600)
        assert done.returncode == 0, done.stderr
        peaks[("convert", name)] = int(done.stderr.strip().splitlines()[-1]) * 1024
        cache = done.stdout.strip()
        peaks[("train", name)] = _peak_of_training(cache, tmp_path, "--test", tmp_path / "test.svm",
                                                   "--cache-dir", tmp_path)
    for step in ("convert", "train"):
        grew = peaks[(step, "big")] - peaks[(step, "tiny")]
        assert grew < csr_bytes / 4, (f"{step}: peak {grew / 2**20:.0f} MiB above the tiny file's; the limit is a "
                                      f"quarter of the CSR's {csr_bytes / 2**20:.0f} MiB")
    report = json.loads((tmp_path / f"peak-{os.path.basename(cache)}.json").read_text())
    streamed = report["final"]["test_accuracy"]
    memory = hogwild.train(X_memory, y_memory, epochs=2, X_test=X_test, y_test=y_test).history[-1]["test_accuracy"]
    assert abs(streamed - memory) <= 0.003, f"streamed {streamed:.4f} vs in memory {memory:.4f} (limit 0.3 points)"
