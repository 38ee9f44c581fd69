"""GPU benchmark: nonzeros/s of the CUDA modes on rcv1- and url-shaped synthetic sets, epochs to LIBLINEAR's
test accuracy, and the speedup over the CPU engine on every core of the same machine.

Run on a machine with a GPU (``python -m hogwild.gpu_bench --like rcv1 --like url``); every record names the
device and the CPU core count. Under the CUDA simulator it runs too (``--rows 64 --features 32``), which is
how its correctness is checked without a GPU; the figures it prints there mean nothing.

Throughput counts the epochs after the first (the first one compiles the kernels); epochs-to-target counts
from the first. The target is LIBLINEAR's test accuracy (same loss and L2, solved to its tolerance) minus
``tolerance``; without liblinear-official the target is recorded as skipped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

import numpy as np

from ._io import available_cores


def _split(X, y, test_fraction=0.2):
    n_test = max(1, int(round(X.shape[0] * test_fraction)))
    return X[:-n_test], y[:-n_test], X[-n_test:], y[-n_test:]


def liblinear_accuracy(X_train, y_train, X_test, y_test, l2):
    """Test accuracy of LIBLINEAR's L2 logistic regression (-s 0, C = 1/(l2 n)), or None when not installed."""
    try:
        from liblinear import liblinearutil as util
    except ImportError:
        return None
    C = 1.0 / (l2 * X_train.shape[0])
    model = util.train(util.problem(y_train.astype(np.float64), X_train.astype(np.float64), 1.0),
                       util.parameter(f"-s 0 -c {C:.17g} -B 1 -q"))
    predicted, _, _ = util.predict(y_test.astype(np.float64), X_test.astype(np.float64), model, "-q")
    return float(np.mean(np.asarray(predicted) == y_test))


def _throughput(result, nnz):
    seconds = [record["seconds"] for record in result.history[1:]] or [result.history[0]["seconds"]]
    return nnz / statistics.median(seconds)


def _epochs_to(result, target):
    if target is None:
        return None
    for record in result.history:
        if record.get("test_accuracy", 0.0) >= target:
            return record["epoch"]
    return None


def bench_set(like, *, n_rows=None, n_features=None, modes=("async", "atomic", "sync"), epochs=10, l2=1e-6,
              lr=0.5, batch_size=256, cpu_threads=None, tolerance=0.005, seed=0, progress=print):
    """One synthetic set: a list of JSON-able records, one per GPU mode plus the CPU engine and LIBLINEAR."""
    from hogwild.datasets.synth import make_synthetic

    from .device import gpu_name
    from .engine import train
    from .gpu_engine import train_linear_gpu

    X, y, info = make_synthetic(like=like, n_rows=n_rows, n_features=n_features, seed=seed)
    X_train, y_train, X_test, y_test = _split(X, y)
    nnz = int(X_train.nnz)
    shape = f"{like}-shaped {X_train.shape[0]} x {X_train.shape[1]}, {nnz} non-zeros"
    progress(f"{shape}; device {gpu_name()}")
    reference = liblinear_accuracy(X_train, y_train, X_test, y_test, l2)
    target = None if reference is None else reference - tolerance
    records = [{"system": "liblinear", "set": like, "test_accuracy": reference,
                "skipped": reference is None and "liblinear-official is not installed"}]
    common = dict(epochs=epochs, l2=l2, lr=lr, schedule="constant", loss="log_loss", batch_size=batch_size,
                  seed=seed, dtype="float32", X_test=X_test, y_test=y_test)
    for mode in modes:
        result = train_linear_gpu(X_train, y_train, gpu_mode=mode, **common)
        record = {"system": "hogwild", "device": gpu_name(), "set": like, "mode": mode, "nnz_per_s": _throughput(result, nnz),
                  "test_accuracy": result.history[-1].get("test_accuracy"), "epochs_to_target": _epochs_to(result, target),
                  "target_accuracy": target}
        records.append(record)
        progress(json.dumps(record))
    threads = cpu_threads or available_cores()
    cpu = train(X_train, y_train, mode="async", threads=threads, **common)
    cpu_record = {"system": "hogwild", "device": "cpu", "threads": threads, "set": like, "mode": "async",
                  "nnz_per_s": _throughput(cpu, nnz), "test_accuracy": cpu.history[-1].get("test_accuracy"),
                  "epochs_to_target": _epochs_to(cpu, target), "target_accuracy": target}
    records.append(cpu_record)
    progress(json.dumps(cpu_record))
    for record in records:
        if record.get("device") not in (None, "cpu"):
            record["speedup_over_cpu"] = record["nnz_per_s"] / cpu_record["nnz_per_s"]
    return records


def main(argv=None):
    """Command line: ``python -m hogwild.gpu_bench --like rcv1 --like url [--rows N] [--json out.json]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--like", action="append", choices=("rcv1", "url"), help="synthetic set shape (repeatable)")
    parser.add_argument("--rows", type=int, default=None, help="rows (default: the real set's)")
    parser.add_argument("--features", type=int, default=None, help="features (default: the real set's)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="CPU engine threads (default: every core)")
    parser.add_argument("--json", default=None, help="write the records to this file")
    args = parser.parse_args(argv)
    from .device import resolve_device

    resolve_device("cuda")
    records = []
    for like in args.like or ["rcv1", "url"]:
        records += bench_set(like, n_rows=args.rows, n_features=args.features, epochs=args.epochs,
                             cpu_threads=args.threads, progress=lambda line: print(line, file=sys.stderr))
    text = json.dumps(records, indent=2)
    if args.json:
        from ._io import atomic_write

        with atomic_write(args.json, "w") as handle:
            handle.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
