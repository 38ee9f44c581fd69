"""Issue 15's dense-MLP target, measured in one run on this machine (figures go to docs/benchmarks.md).

    python docs/experiments/mlp_speed_target.py [--data DIR] [--repeats 3] [--epochs 5] [--json out.json]
        [--target-only | --blas-unlimited]

The set is the bench's ``--augment-rows 75000`` one: the 10,000 MNIST test images of ``DIR/mnist`` (default
``$HOGWILD_TEST_DATA``) shifted to 75,000 rows, split by original image (59,988 train / 15,012 test rows,
float32; `hogwild.bench.data.load_dataset`, `hogwild.bench.problem.split_train_test`). A 784-128-10 network
with relu. In one process, every system run once per repeat in a rotating order (so that a change of load
on a shared machine falls on all of them), figures are medians over the repeats:

1. The target: ``MLPClassifier(hidden_layer_sizes=(128,), max_iter=5, n_threads=2)`` (every other parameter
   its default, recorded in the report: when written, adam, lr 0.001, batch 32, float32) ``.fit`` wall time,
   the mode it ran and what ``mode="auto"`` chose each epoch, against PyTorch CPU: plain SGD
   (lr 0.1), batch 64, ``torch.set_num_threads(2)``, 5 epochs (the bench's torch peer: a gather of each
   mini-batch, ``zero_grad``, ``backward``, ``step``; the tensor built from the float32 rows before the clock
   starts). Held-out accuracy of both. Beside them, the same estimator with ``batch_size=64`` and PyTorch at
   one thread (``--target-only`` runs just these four).
2. Seconds per epoch (median over the epochs of a run) at 1 and 2 threads: hogwild with the estimator's
   defaults, with batch 64, and with PyTorch's recipe (SGD lr 0.1, batch 64); the loop kernels that dense
   input ran on before the GEMM kernels (what still runs without threadpoolctl); PyTorch at 1 and 2 threads.
3. ``--blas-unlimited`` instead: the estimator's recipe (adam, batch 32 and 64) at 1 and 2 threads with the
   BLAS held to one thread per call, as training does, and left at its own thread count.

Compiled kernels are loaded (a short fit) before any clock starts. The load average is recorded before and
after: on a shared machine the absolute figures move with other people's work; the comparisons are fair only
because the systems are interleaved.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time

import numpy as np

DEFAULT_FIT = dict(hidden_layer_sizes=(128,), max_iter=5, n_threads=2)
TORCH_LR = 0.1
TORCH_BATCH = 64


def _data(data_dir, rows):
    from hogwild.bench.data import load_dataset
    from hogwild.bench.problem import split_train_test

    path = os.path.join(data_dir, "mnist", "t10k-images-idx3-ubyte.gz")
    X, y, name, groups = load_dataset([path], augment_rows=rows, seed=0, model="mlp", dtype="float32")
    X_train, y_train, X_test, y_test = split_train_test(X, y, 0.2, 0, groups=groups)
    return name, np.ascontiguousarray(X_train), np.asarray(y_train), np.ascontiguousarray(X_test), np.asarray(y_test)


# --- hogwild ------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _blas_unlimited():
    """The GEMM kernels with the BLAS left at its own thread count (what hogwild._blas prevents)."""
    from hogwild.runners import mlp_cpu

    saved = mlp_cpu.one_blas_thread
    mlp_cpu.one_blas_thread = contextlib.nullcontext
    try:
        yield
    finally:
        mlp_cpu.one_blas_thread = saved


@contextlib.contextmanager
def _loop_kernels():
    """Dense input on the loop kernels of hogwild.kernels.mlp (what runs where threadpoolctl is missing)."""
    from hogwild.runners import mlp_cpu

    saved = mlp_cpu.can_limit_blas
    mlp_cpu.can_limit_blas = lambda: False
    try:
        yield
    finally:
        mlp_cpu.can_limit_blas = saved


def hogwild_default_fit(X, y, X_test, y_test, epochs, **changes):
    """The target's estimator as a user writes it: no random_state (a seeded ``mode="auto"`` may run serially)."""
    from hogwild import MLPClassifier

    model = MLPClassifier(**{**DEFAULT_FIT, "max_iter": epochs}, **changes)
    started = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - started
    epoch_seconds = [record["seconds"] for record in model.history_]
    return {"seconds": seconds, "epoch_seconds": statistics.median(epoch_seconds), "all": epoch_seconds,
            "test_accuracy": float(np.mean(model.predict(X_test) == y_test)),
            "mode": model.get_params()["mode"], "auto_choices": [(r.get("auto") or {}).get("choice")
                                                                  for r in model.history_]}


def _hogwild_options(recipe, threads):
    options = dict(model="mlp", hidden=(128,), threads=threads, mode="serial" if threads == 1 else "async",
                   dtype="float32", schedule="constant")
    if recipe.startswith("sgd"):
        options.update(optimizer="sgd", lr=TORCH_LR, l2=0.0, batch_size=TORCH_BATCH)
    else:  # the estimator's defaults: adam, lr 0.001, alpha 1e-4, batch 32 (or 64)
        options.update(optimizer="adam", lr=0.001, l2=1e-4, batch_size=64 if "64" in recipe else 32)
    return options


def hogwild_epochs(X, y, X_test, y_test, seed, recipe, threads, epochs):
    import hogwild

    context = (_loop_kernels() if recipe.endswith("loop kernels") else
               _blas_unlimited() if recipe.endswith("blas unlimited") else contextlib.nullcontext())
    with context:
        result = hogwild.train(X, y, epochs=epochs, seed=seed, **_hogwild_options(recipe, threads))
    seconds = [record["seconds"] for record in result.history]
    return {"epoch_seconds": statistics.median(seconds), "all": seconds,
            "test_accuracy": float(np.mean(result.model.predict(X_test) == y_test))}


# --- PyTorch ------------------------------------------------------------------------------------------------
def _torch_fit(torch, X, y, X_test, y_test, seed, threads, epochs):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=TORCH_LR)
    loss_fn = torch.nn.functional.cross_entropy
    features, labels = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    rng = np.random.default_rng(seed)
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        epoch_seconds = []
        started = time.perf_counter()
        for _ in range(epochs):
            epoch_start = time.perf_counter()
            order = torch.from_numpy(rng.permutation(X.shape[0]))
            for start in range(0, X.shape[0], TORCH_BATCH):
                batch = order[start:start + TORCH_BATCH]
                optimizer.zero_grad(set_to_none=True)
                loss_fn(model(features[batch]), labels[batch]).backward()
                optimizer.step()
            epoch_seconds.append(time.perf_counter() - epoch_start)
        seconds = time.perf_counter() - started
        with torch.no_grad():
            predicted = model(torch.from_numpy(X_test)).argmax(dim=1).numpy()
    finally:
        torch.set_num_threads(saved)
    return {"seconds": seconds, "epoch_seconds": statistics.median(epoch_seconds), "all": epoch_seconds,
            "test_accuracy": float(np.mean(predicted == y_test))}


# --- the run --------------------------------------------------------------------------------------------------
def _summary(runs):
    out = {}
    for key in runs[0]:
        values = [run[key] for run in runs]
        if isinstance(values[0], float):
            out[key] = statistics.median(values)
            out[key + "_range"] = [min(values), max(values)]
    out["runs"] = runs
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.environ.get("HOGWILD_TEST_DATA"))
    parser.add_argument("--rows", type=int, default=75_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--json", default=None)
    parser.add_argument("--blas-unlimited", action="store_true",
                        help="only the estimator's recipe at 1 and 2 threads, BLAS held to one thread and not")
    parser.add_argument("--target-only", action="store_true",
                        help="only the 5-epoch fits (hogwild's estimator, PyTorch at 2 and 1 threads)")
    args = parser.parse_args(argv)
    if not args.data:
        parser.error("--data (or HOGWILD_TEST_DATA) must name the folder holding mnist/")

    import torch

    import hogwild
    from hogwild.bench.machine import cpu_model

    name, X, y, X_test, y_test = _data(args.data, args.rows)
    report = {
        "command": "python docs/experiments/mlp_speed_target.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average_start": os.getloadavg()},
        "versions": {"hogwild": hogwild.__version__, "torch": torch.__version__, "numpy": np.__version__},
        "data": {"name": name, "train_rows": X.shape[0], "test_rows": X_test.shape[0], "features": X.shape[1]},
        "estimator_defaults": {key: value for key, value in hogwild.MLPClassifier().get_params().items()
                               if key in ("solver", "learning_rate_init", "batch_size", "alpha", "mode", "dtype")},
    }
    print(json.dumps(report), flush=True)
    # load the compiled kernels and warm PyTorch up before any clock starts
    hogwild.MLPClassifier(**{**DEFAULT_FIT, "max_iter": 1}).fit(X[:2000], y[:2000])
    for threads in (1, 2):
        for recipe in ("adam b32", "adam b32 loop kernels", "sgd b64"):
            hogwild_epochs(X[:2000], y[:2000], X_test[:10], y_test[:10], 0, recipe, threads, 1)
    _torch_fit(torch, X[:2000], y[:2000], X_test[:10], y_test[:10], 0, 2, 1)

    systems = [("hogwild default fit", lambda seed: hogwild_default_fit(X, y, X_test, y_test, args.epochs)),
               ("torch sgd b64 x2 fit", lambda seed: _torch_fit(torch, X, y, X_test, y_test, seed, 2, args.epochs)),
               ("hogwild default but batch_size=64 fit",
                lambda seed: hogwild_default_fit(X, y, X_test, y_test, args.epochs, batch_size=64))]
    recipes = ("adam b32", "adam b64", "sgd b64", "adam b32 loop kernels")
    if args.blas_unlimited:
        systems, recipes = [], ("adam b32", "adam b32 blas unlimited", "adam b64", "adam b64 blas unlimited")
    for threads in () if args.target_only else (1, 2):
        for recipe in recipes:
            systems.append((f"hogwild {recipe} x{threads}",
                            lambda seed, r=recipe, t=threads: hogwild_epochs(X, y, X_test, y_test, seed, r, t,
                                                                             args.epochs)))
    if not args.blas_unlimited:
        systems.append(("torch sgd b64 x1 fit",
                        lambda seed: _torch_fit(torch, X, y, X_test, y_test, seed, 1, args.epochs)))
    runs = {label: [] for label, _ in systems}
    for repeat in range(args.repeats):
        shift = repeat % len(systems)
        for label, run in systems[shift:] + systems[:shift]:
            load = os.getloadavg()[0]
            result = run(repeat)
            result["load_average"] = load
            runs[label].append(result)
            print(repeat, label, json.dumps({k: v for k, v in result.items() if k != "all"}), flush=True)
    report["results"] = {label: _summary(values) for label, values in runs.items()}
    report["machine"]["load_average_end"] = os.getloadavg()
    print()
    print(f"| system | {args.epochs}-epoch fit (s) | s/epoch | test acc | per run |")
    for label, summary in report["results"].items():
        fit = f"{summary['seconds']:.2f}" if "seconds" in summary else "-"
        key = "seconds" if "seconds" in summary else "epoch_seconds"
        spread = ", ".join(f"{run[key]:.3g}" for run in summary["runs"])
        print(f"| {label} | {fit} | {summary['epoch_seconds']:.3f} | {summary['test_accuracy']:.2%} | {spread} |")
    print("load average at start/end:", report["machine"]["load_average_start"], report["machine"]["load_average_end"])
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2, default=str)


if __name__ == "__main__":
    main()
