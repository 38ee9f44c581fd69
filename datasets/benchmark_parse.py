"""Benchmark: hogwild's LIBSVM parser (1 and 2 threads) vs scikit-learn's load_svmlight_file, and the binary cache.

    python -m hogwild.datasets.benchmark_parse --size-mb 300 --rounds 5 [--threads 1,2] [--files ...] [--dir DIR]

Writes two rcv1-shaped files of about ``--size-mb`` MB each, from `hogwild.datasets.synth.make_synthetic` with
seed 0, the two kinds of text a parser meets:

- ``sklearn-dump``: written by scikit-learn's ``dump_svmlight_file`` (float64 reprs of the float32 values: 16
  significant digits for most, up to 17; those above 2**53 need Eisel-Lemire rather than Clinger's fast path);
- ``hogwild-synth``: written by ``hogwild data synth --like rcv1 --rows N`` (the shortest text that reads back
  to the same float32: up to 9 significant digits).

Then, in rounds, each loader in a fresh process (so peak memory is that loader's alone; the Numba kernels are
loaded from their cache and warmed on a tiny file first), in an order that rotates every round so that a
machine whose speed drifts (a shared one) slows every loader alike: scikit-learn, hogwild with each thread
count, the file's cache (memory-mapped, and timed again reading every byte), and `hogwild data convert`
writing a cache (a chunk at a time: its peak memory is a chunk's, not the file's). Each process times one
load: wall clock, and the CPU seconds of all its threads (what the load costs however busy the machine is).
The tables give medians over the rounds and the wall-clock range. Peak memory is VmHWM after a reset through
/proc/self/clear_refs, minus the resident memory before the load. Finally checks that hogwild and
scikit-learn return identical float32 matrices. The first line gives the CPU model, the cores and the load
average before and after: how shared the machine was.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LOADERS = ("sklearn", "hogwild", "cache", "convert")
FILES = {
    "sklearn-dump": "written by scikit-learn's dump_svmlight_file (16-17 significant digits)",
    "hogwild-synth": "written by `hogwild data synth --like rcv1` (up to 9 significant digits)",
}
_SAMPLE_ROWS = 2000


def _bytes_per_row(kind, tmp):
    """Text bytes per row of a ``kind`` file, from a small sample written the same way."""
    from hogwild.datasets.libsvm import dump_libsvm
    from hogwild.datasets.synth import make_synthetic

    X, y, _ = make_synthetic(like="rcv1", n_rows=_SAMPLE_ROWS, seed=0)
    sample = Path(tmp) / f"sample-{kind}.svm"
    if kind == "sklearn-dump":
        from sklearn.datasets import dump_svmlight_file

        dump_svmlight_file(X, y, str(sample))
    else:
        dump_libsvm(X, y, sample)
    size = sample.stat().st_size
    sample.unlink()
    return size / _SAMPLE_ROWS


def generate(kind, path, size_mb, tmp):
    """Write a ``kind`` file (see FILES) of about size_mb MB at path; return its row count."""
    n_rows = max(1, int(size_mb * 1e6 / _bytes_per_row(kind, tmp)))
    if kind == "sklearn-dump":
        from sklearn.datasets import dump_svmlight_file

        from hogwild.datasets.synth import make_synthetic

        X, y, _ = make_synthetic(like="rcv1", n_rows=n_rows, seed=0)
        dump_svmlight_file(X, y, str(path))
    else:
        subprocess.run([sys.executable, "-m", "hogwild", "data", "synth", "--like", "rcv1", "--rows", str(n_rows),
                        "-o", str(path)], check=True, capture_output=True)
    return n_rows


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


def _cpu_seconds():
    """User + system CPU seconds of this process, all threads (what a load costs, however busy the machine)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(loader, path, threads, warm_file):
    """Load path once with one loader in this (fresh) process; print a JSON line of time and memory."""
    import gc

    if loader == "sklearn":
        from sklearn.datasets import load_svmlight_file

        def load():
            return load_svmlight_file(path, dtype=np.float32)

        load_svmlight_file(warm_file, dtype=np.float32)
    else:
        from hogwild.datasets.cache import convert, read_cache
        from hogwild.datasets.libsvm import load_libsvm

        load_libsvm(warm_file, cache=False, threads=threads)  # load the compiled kernels outside the timing
        if loader == "hogwild":
            def load():
                return load_libsvm(path, cache=False, threads=threads)
        elif loader == "convert":  # hogwild data convert: parse and write the cache a chunk at a time
            scratch = tempfile.mkdtemp(dir=Path(path).parent)
            convert(warm_file, cache_dir=scratch, threads=threads)

            def load():
                convert(path, cache_dir=scratch, threads=threads)
                return None, None
        else:
            def load():
                X, y, _, _ = read_cache(path)
                return X, y
    gc.collect()
    base = _vm("VmRSS")
    reset = _peak_reset()
    cpu_start = _cpu_seconds()
    start = time.perf_counter()
    X, y = load()
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu_start
    touch = None
    if loader == "cache":  # a memory map costs nothing until read: time reading every byte too
        start = time.perf_counter()
        float(X.data.sum()) + float(X.indices.sum()) + float(y.sum()) + float(X.indptr[-1])
        touch = time.perf_counter() - start + seconds
    peak = _vm("VmHWM")
    if loader == "convert":
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps({
        "seconds": seconds, "cpu_seconds": cpu, "touch_seconds": touch,
        "peak_bytes": peak - base if reset and base is not None and peak is not None else None,
        "csr_bytes": None if X is None else X.data.nbytes + X.indices.nbytes + X.indptr.nbytes + y.nbytes,
        "nnz": None if X is None else int(X.nnz),
    }))


def compare(path):
    """Print whether hogwild and scikit-learn return identical float32 matrices for path."""
    from sklearn.datasets import load_svmlight_file

    from hogwild.datasets.libsvm import load_libsvm

    X, y = load_libsvm(path, cache=False)
    Xs, ys = load_svmlight_file(path, dtype=np.float32)
    same = (X.shape == Xs.shape and np.array_equal(X.indptr, Xs.indptr) and np.array_equal(X.indices, Xs.indices)
            and X.data.tobytes() == Xs.data.tobytes() and y.tobytes() == ys.tobytes())
    print(json.dumps({"identical": bool(same), "shape": list(X.shape), "nnz": int(X.nnz)}))


def _run_child(args):
    out = subprocess.run([sys.executable, "-m", "hogwild.datasets.benchmark_parse", *args],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_model():
    """The CPU model name from /proc/cpuinfo (or the platform's word for it)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _loadavg():
    """The 1, 5 and 15-minute load averages, and the share of the last 10 s some task waited for a CPU."""
    try:
        text = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "n/a"
    try:
        with open("/proc/pressure/cpu") as handle:
            waited = handle.readline().split()[1].split("=")[1]
        text += f" (CPU pressure {waited}%)"
    except (OSError, IndexError):
        pass
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=300.0, help="size of each generated file (MB)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh-process loads per loader (median reported)")
    parser.add_argument("--threads", default="1,2", help="hogwild parse thread counts, comma-separated")
    parser.add_argument("--files", default=",".join(FILES), help=f"which files: {', '.join(FILES)}")
    parser.add_argument("--loaders", default=",".join(LOADERS),
                        help=f"which loaders: {', '.join(LOADERS)} (hogwild alone: a quick thread comparison)")
    parser.add_argument("--dir", default=None, help="where to write the generated files (default: a temp dir)")
    parser.add_argument("--_child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--_compare", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        loader, path, threads, warm = args._child
        return child(loader, path, int(threads), warm)
    if args._compare:
        return compare(args._compare)

    import numba
    import sklearn

    from hogwild._io import available_cores
    from hogwild.datasets.cache import convert

    thread_counts = [int(t) for t in args.threads.split(",")]
    kinds = [k for k in args.files.split(",") if k]
    chosen = [k for k in args.loaders.split(",") if k]
    for given, known, flag in ((kinds, FILES, "--files"), (chosen, LOADERS, "--loaders")):
        if set(given) - set(known):
            parser.error(f"unknown {flag} {sorted(set(given) - set(known))}; choose from {', '.join(known)}")
    if "hogwild" not in chosen:
        parser.error("--loaders must include hogwild (the tables compare everything with it)")
    load_before = _loadavg()
    blocks = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        warm = Path(tmp) / "warm.svm"
        warm.write_text("1 1:0.5 3:1\n-1 2:0.25\n")
        for kind in kinds:
            path = Path(tmp) / f"{kind}.svm"
            start = time.perf_counter()
            n_rows = generate(kind, path, args.size_mb, tmp)
            gen_seconds = time.perf_counter() - start
            cache_folder = convert(path, cache_dir=tmp) if "cache" in chosen else None
            loaders = [("sklearn", 1)] + [("hogwild", t) for t in thread_counts] + [("cache", 1),
                                                                                   ("convert", thread_counts[-1])]
            loaders = [loader for loader in loaders if loader[0] in chosen]
            results = {loader: [] for loader in loaders}
            for r in range(args.rounds):
                for loader in loaders[r % len(loaders):] + loaders[:r % len(loaders)]:
                    target = cache_folder if loader[0] == "cache" else path
                    results[loader].append(_run_child(["--_child", loader[0], str(target), str(loader[1]), str(warm)]))
            check = _run_child(["--_compare", str(path)]) if "sklearn" in chosen else None
            blocks.append(_table(kind, path.stat().st_size, n_rows, gen_seconds, results, check, thread_counts))
    print(f"LIBSVM parse benchmark: {cpu_model()}, {available_cores()} cores usable; Python "
          f"{platform.python_version()}, numba {numba.__version__}, scikit-learn {sklearn.__version__}; "
          f"{args.rounds} rounds, each load in a fresh process, loaders interleaved; "
          f"load average before {load_before}, after {_loadavg()}")
    for block in blocks:
        print()
        print(block)
    return 0


def _table(kind, size, n_rows, gen_seconds, results, check, thread_counts):
    def med(runs, key="seconds"):
        return float(np.median([run[key] for run in runs]))

    def spread(runs, key="seconds"):
        values = [run[key] for run in runs]
        return f"{min(values):.3f}-{max(values):.3f}"

    sklearn_s = med(results[("sklearn", 1)]) if ("sklearn", 1) in results else None
    csr = results[("hogwild", thread_counts[0])][0]["csr_bytes"]
    nnz = results[("hogwild", thread_counts[0])][0]["nnz"]
    lines = [
        f"{kind}: {size / 1e6:.0f} MB, {n_rows:,} rows, {nnz:,} nonzeros, {FILES[kind]}; generated in "
        f"{gen_seconds:.0f} s; identical to scikit-learn's matrices: {check['identical'] if check else 'not checked'}",
        "",
        "| loader | threads | median s | min-max s | CPU s | MB/s | vs scikit-learn | peak MB | peak / CSR |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]

    def row(label, threads, runs, key="seconds", memory=True):
        seconds = med(runs, key)
        peaks = [run["peak_bytes"] for run in runs if run["peak_bytes"] is not None]
        peak = f"{max(peaks) / 1e6:.0f}" if memory and peaks else ""
        ratio = f"{max(peaks) / csr:.2f}" if memory and peaks else ""
        cpu = f"{med(runs, 'cpu_seconds'):.3f}" if key == "seconds" else ""
        lines.append(f"| {label} | {threads} | {seconds:.3f} | {spread(runs, key)} | {cpu} | {size / 1e6 / seconds:.0f}"
                     f" | {f'{sklearn_s / seconds:.1f}x' if sklearn_s else ''} | {peak} | {ratio} |")

    if sklearn_s:
        row("scikit-learn load_svmlight_file", 1, results[("sklearn", 1)])
    for t in thread_counts:
        row("hogwild load_libsvm", t, results[("hogwild", t)])
    if ("cache", 1) in results:
        row("hogwild cache: open (memory-mapped)", "", results[("cache", 1)])
        row("hogwild cache: open + read every byte", "", results[("cache", 1)], key="touch_seconds", memory=False)
    if ("convert", thread_counts[-1]) in results:
        row("hogwild data convert (parse + write the cache, chunked)", thread_counts[-1],
            results[("convert", thread_counts[-1])])
    notes = [f"CSR arrays (indptr, indices, data, y): {csr / 1e6:.0f} MB."]
    if len(thread_counts) > 1:
        first, last = thread_counts[0], thread_counts[-1]
        scaling = med(results[("hogwild", first)]) / med(results[("hogwild", last)])
        notes.append(f"hogwild {last} threads vs {first}: {scaling:.2f}x faster.")
    if ("cache", 1) in results:
        best_parse = min(med(results[("hogwild", t)]) for t in thread_counts)
        cache_read = med(results[("cache", 1)], "touch_seconds")
        notes.append(f"Parse (fastest) / cache (open + read every byte): {best_parse / cache_read:.1f}x.")
    return "\n".join(lines + ["", " ".join(notes)])


if __name__ == "__main__":
    sys.exit(main())
