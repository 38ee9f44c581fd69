"""Benchmark: hogwild's LIBSVM parser vs scikit-learn's load_svmlight_file, and the binary cache.

    python -m hogwild.datasets.benchmark_parse --size-mb 300 [--repeats 3] [--dir DIR]

Generates an rcv1-shaped LIBSVM file (about 75 nonzeros per row, Zipf-like feature popularity, float32
values), then, each in a fresh subprocess so that peak memory is that loader's alone: times the loaders
(median of ``--repeats`` runs in the same process), reads the peak resident memory (VmHWM after resetting
it through /proc/self/clear_refs; the Numba kernels are compiled and warmed on a tiny file first), and checks
that both loaders return identical matrices. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def generate(path, size_mb, seed=0):
    """Write an rcv1-like LIBSVM file of about size_mb MB with dump_libsvm; return (rows, nnz)."""
    import scipy.sparse as sp

    from hogwild.datasets.libsvm import dump_libsvm

    rng = np.random.default_rng(seed)
    n_features, per_row = 47236, 75
    bytes_per_row = 14 * per_row + 3
    n_rows = max(1, int(size_mb * 1e6 / bytes_per_row))
    popularity = 1.0 / np.arange(1, n_features + 1) ** 0.8
    popularity /= popularity.sum()
    chunk, written, parts = 100_000, 0, []
    tmp_parts = []
    for start in range(0, n_rows, chunk):
        rows = min(chunk, n_rows - start)
        counts = rng.poisson(per_row, rows).clip(1, 400)
        cols = rng.choice(n_features, size=int(counts.sum()), p=popularity)
        row_ids = np.repeat(np.arange(rows), counts)
        values = rng.random(len(cols)).astype(np.float32)
        X = sp.csr_matrix((values, (row_ids, cols)), shape=(rows, n_features))
        X.sum_duplicates()
        y = np.where(rng.random(rows) < 0.5, -1.0, 1.0)
        part = Path(f"{path}.part{len(tmp_parts)}")
        dump_libsvm(X.astype(np.float32), y, part)
        tmp_parts.append(part)
        written += X.nnz
        parts.append(rows)
    with open(path, "wb") as out:
        for part in tmp_parts:
            out.write(part.read_bytes())
            part.unlink()
    return n_rows, written


def _peak_reset():
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _vm(field):
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def child(loader, path, repeats, warm_file):
    """Run one loader in this (fresh) process; print a JSON line of timings and memory."""
    import gc

    if loader == "sklearn":
        from sklearn.datasets import load_svmlight_file

        def load():
            return load_svmlight_file(path, dtype=np.float32)

        load_svmlight_file(warm_file, dtype=np.float32)
    else:
        from hogwild.datasets.cache import read_cache
        from hogwild.datasets.libsvm import load_libsvm

        load_libsvm(warm_file, cache=False)  # compile/load the kernels outside the measurement
        if loader == "hogwild":
            def load():
                return load_libsvm(path, cache=False)
        else:
            def load():
                X, y, _, _ = read_cache(path)
                return X, y
    times, touch_times, peaks = [], [], []
    csr_bytes = None
    for _ in range(repeats):
        gc.collect()
        base = _vm("VmRSS")
        reset = _peak_reset()
        start = time.perf_counter()
        X, y = load()
        times.append(time.perf_counter() - start)
        if loader == "cache":  # a memory map costs nothing until read: time reading every byte too
            start = time.perf_counter()
            float(X.data.sum()) + float(X.indices.sum()) + float(y.sum()) + float(X.indptr[-1])
            touch_times.append(time.perf_counter() - start + times[-1])
        peak = _vm("VmHWM")
        if reset and base is not None and peak is not None:
            peaks.append(peak - base)
        csr_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes + y.nbytes
        del X, y
    print(json.dumps({
        "loader": loader, "times": times, "touch_times": touch_times,
        "peak_bytes": max(peaks) if peaks else None, "csr_bytes": csr_bytes,
    }))


def compare(path):
    """Print whether hogwild and scikit-learn return identical matrices for path."""
    from sklearn.datasets import load_svmlight_file

    from hogwild.datasets.libsvm import load_libsvm

    X, y = load_libsvm(path, cache=False)
    Xs, ys = load_svmlight_file(path, dtype=np.float32)
    same = (X.shape == Xs.shape and np.array_equal(X.indptr, Xs.indptr) and np.array_equal(X.indices, Xs.indices)
            and np.array_equal(X.data, Xs.data) and np.array_equal(y, ys))
    print(json.dumps({"identical": bool(same), "shape": list(X.shape), "nnz": int(X.nnz)}))


def _run_child(args):
    out = subprocess.run([sys.executable, "-m", "hogwild.datasets.benchmark_parse", *args],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=300.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write the generated file (default: a temp dir)")
    parser.add_argument("--_child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--_compare", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        loader, path, repeats, warm = args._child
        return child(loader, path, int(repeats), warm)
    if args._compare:
        return compare(args._compare)

    from hogwild._io import available_cores
    from hogwild.datasets.cache import convert

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / f"synthetic_{args.size_mb:g}mb.svm"
        warm = Path(tmp) / "warm.svm"
        warm.write_text("1 1:0.5 3:1\n-1 2:0.25\n")
        start = time.perf_counter()
        n_rows, nnz = generate(path, args.size_mb)
        gen_time = time.perf_counter() - start
        size = path.stat().st_size
        cache_folder = convert(path, cache_dir=tmp)
        results = {name: _run_child(["--_child", name, str(target), str(args.repeats), str(warm)])
                   for name, target in [("sklearn", path), ("hogwild", path), ("cache", cache_folder)]}
        check = _run_child(["--_compare", str(path)])

    med = {k: float(np.median(v["times"])) for k, v in results.items()}
    cache_touch = float(np.median(results["cache"]["touch_times"]))
    csr = results["hogwild"]["csr_bytes"]
    print(f"\nLIBSVM parse benchmark: {size / 1e6:.0f} MB file, {n_rows:,} rows, {nnz:,} nonzeros "
          f"(generated in {gen_time:.1f} s by dump_libsvm); {available_cores()} cores, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}; median of {args.repeats} runs; identical matrices: {check['identical']}\n")
    print("| loader | median time (s) | MB/s | vs sklearn | peak memory (MB) | peak / CSR arrays |")
    print("|---|---|---|---|---|---|")
    for name, label in [("sklearn", "scikit-learn load_svmlight_file"), ("hogwild", "hogwild load_libsvm (parse)"),
                        ("cache", "hogwild cache (open, memory-mapped)")]:
        peak = results[name]["peak_bytes"]
        peak_s = f"{peak / 1e6:.0f}" if peak is not None else "n/a"
        ratio = f"{peak / csr:.2f}" if peak is not None else "n/a"
        print(f"| {label} | {med[name]:.3f} | {size / 1e6 / med[name]:.0f} | {med['sklearn'] / med[name]:.1f}x "
              f"| {peak_s} | {ratio} |")
    print(f"| hogwild cache (open + read every byte) | {cache_touch:.3f} | {size / 1e6 / cache_touch:.0f} | "
          f"{med['sklearn'] / cache_touch:.1f}x | | |")
    print(f"\nCSR arrays (indptr + indices + data + y): {csr / 1e6:.0f} MB. Parse / cache(open+read) = "
          f"{med['hogwild'] / cache_touch:.1f}x. Peak memory is VmHWM minus VmRSS before the load.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
