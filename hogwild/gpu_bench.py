"""GPU benchmark: nonzeros/s of the CUDA modes on rcv1- and url-shaped synthetic sets, epochs to LIBLINEAR's
test accuracy, and the speedup over the CPU engine on every core of the same machine.

Run on a machine with a GPU (``python -m hogwild.gpu_bench --like rcv1 --like url``); every record names the
device and the CPU core count. Under the CUDA simulator it runs too (``--rows 64 --features 32``), which is
how its correctness is checked without a GPU; the figures it prints there mean nothing.

``--mlp`` adds the MLP benchmark (`bench_mlp`): rows/s of the CUDA MLP modes on an MNIST-shaped dense set
(60,000 x 784, 10 classes, hidden 128), against the same network, optimizer and batch size in PyTorch on the
same GPU (recorded as skipped when torch with CUDA is not importable) and the CPU MLP engine on every core.

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


def _mlp_problem(n_rows, n_features, n_classes, seed):
    """A dense, MNIST-shaped problem: non-negative pixel-like features, labels from a random two-layer teacher."""
    rng = np.random.default_rng(seed)
    X = np.maximum(rng.normal(size=(n_rows, n_features)), 0.0).astype(np.float32)
    hidden = np.tanh(X @ rng.normal(size=(n_features, 32)) / np.sqrt(n_features))
    y = np.argmax(hidden @ rng.normal(size=(32, n_classes)), axis=1)
    return X, y


def _rows_per_s(seconds, n_rows):
    seconds = seconds[1:] or seconds
    return n_rows / statistics.median(seconds)


def torch_mlp_rows_per_s(X, y, hidden, *, epochs, lr, batch_size, seed=0):
    """Rows/s of the same MLP (relu, softmax cross-entropy, Adam) in PyTorch on the GPU, or None without torch+CUDA.

    Data and weights stay on the GPU; one epoch is a pass of ``batch_size`` mini-batches in a shuffled order,
    synchronized at its end. The first epoch (cuBLAS/allocator warm-up) is not counted.
    """
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    import time

    torch.manual_seed(seed)
    device = torch.device("cuda")
    sizes = [X.shape[1], *hidden, int(y.max()) + 1]
    layers = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(fan_in, fan_out))
        if index < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    X_gpu = torch.as_tensor(X, device=device)
    y_gpu = torch.as_tensor(y, dtype=torch.long, device=device)
    seconds = []
    for _ in range(epochs):
        torch.cuda.synchronize()
        started = time.perf_counter()
        order = torch.randperm(X.shape[0], device=device)
        for first in range(0, X.shape[0], batch_size):
            rows = order[first : first + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(net(X_gpu[rows]), y_gpu[rows]).backward()
            optimizer.step()
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    return _rows_per_s(seconds, X.shape[0])


def bench_mlp(*, n_rows=60_000, n_features=784, n_classes=10, hidden=(128,), modes=("async", "atomic", "sync"),
              epochs=5, lr=1e-3, batch_size=32, cpu_threads=None, seed=0, progress=print):
    """MLP throughput (rows/s) of each CUDA mode, PyTorch on the same GPU and the CPU engine; JSON-able records."""
    from .device import gpu_name
    from .gpu_mlp import train_mlp_gpu
    from .mlp import train_mlp

    X, y = _mlp_problem(n_rows, n_features, n_classes, seed)
    X_train, y_train, X_test, y_test = _split(X, y)
    shape = f"MNIST-shaped dense {X_train.shape[0]} x {n_features}, {n_classes} classes, hidden {list(hidden)}"
    progress(f"{shape}; device {gpu_name()}")
    common = dict(model="mlp", hidden=tuple(hidden), epochs=epochs, lr=lr, optimizer="adam", batch_size=batch_size,
                  seed=seed, dtype="float32", activation="relu")
    records = []
    for mode in modes:
        result = train_mlp_gpu(X_train, y_train, dict(common), gpu_mode=mode, X_test=X_test, y_test=y_test)
        record = {"system": "hogwild-mlp", "device": gpu_name(), "mode": mode, "shape": shape,
                  "rows_per_s": _rows_per_s([r["seconds"] for r in result.history], X_train.shape[0]),
                  "test_accuracy": result.history[-1].get("test_accuracy")}
        records.append(record)
        progress(json.dumps(record))
    rate = torch_mlp_rows_per_s(X_train, y_train, hidden, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    torch_record = {"system": "pytorch", "device": gpu_name(), "shape": shape, "rows_per_s": rate,
                    "skipped": rate is None and "torch with CUDA is not importable"}
    records.append(torch_record)
    progress(json.dumps(torch_record))
    threads = cpu_threads or available_cores()
    cpu = train_mlp(X_train, y_train, dict(common, mode="async", threads=threads), X_test=X_test, y_test=y_test)
    cpu_record = {"system": "hogwild-mlp", "device": "cpu", "threads": threads, "mode": "async", "shape": shape,
                  "rows_per_s": _rows_per_s([r["seconds"] for r in cpu.history], X_train.shape[0]),
                  "test_accuracy": cpu.history[-1].get("test_accuracy")}
    records.append(cpu_record)
    progress(json.dumps(cpu_record))
    for record in records:
        if record["system"] == "hogwild-mlp" and record["device"] != "cpu":
            record["speedup_over_cpu"] = record["rows_per_s"] / cpu_record["rows_per_s"]
            if rate:
                record["speed_vs_pytorch"] = record["rows_per_s"] / rate
    return records


def main(argv=None):
    """Command line: ``python -m hogwild.gpu_bench --like rcv1 --like url [--rows N] [--mlp] [--json out.json]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--like", action="append", choices=("rcv1", "url"), help="synthetic set shape (repeatable)")
    parser.add_argument("--rows", type=int, default=None, help="rows (default: the real set's)")
    parser.add_argument("--features", type=int, default=None, help="features (default: the real set's)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="CPU engine threads (default: every core)")
    parser.add_argument("--json", default=None, help="write the records to this file")
    parser.add_argument("--mlp", action="store_true", help="also run the MLP benchmark (rows/s vs PyTorch)")
    parser.add_argument("--mlp-only", action="store_true", help="run only the MLP benchmark")
    parser.add_argument("--mlp-rows", type=int, default=60_000, help="rows of the MNIST-shaped MLP set")
    args = parser.parse_args(argv)
    from .device import resolve_device

    resolve_device("cuda")
    records = []
    to_stderr = lambda line: print(line, file=sys.stderr)  # noqa: E731
    for like in [] if args.mlp_only else (args.like or ["rcv1", "url"]):
        records += bench_set(like, n_rows=args.rows, n_features=args.features, epochs=args.epochs,
                             cpu_threads=args.threads, progress=to_stderr)
    if args.mlp or args.mlp_only:
        records += bench_mlp(n_rows=args.mlp_rows, epochs=args.epochs, cpu_threads=args.threads, progress=to_stderr)
    text = json.dumps(records, indent=2)
    if args.json:
        from ._io import atomic_write

        with atomic_write(args.json, "w") as handle:
            handle.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
