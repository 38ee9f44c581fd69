"""The speedup study behind ``hogwild bench``: modes x threads x devices, against peer systems, on one split.

`run_bench` loads (or synthesizes) ONE dataset, splits it once with a fixed seed, converts the training rows
once to the engine's dtype, and shares those arrays with every run, ours and the peers' (`hogwild.bench.peers`).
Our runs go through the library's one front door, `hogwild.engine.train`, with ``config.mode``,
``config.device`` and ``config.model`` picking the runner; the device is an axis of the study like the mode.

For each (system, mode, threads, device) it records the seconds per epoch over ``repeats`` runs (median, min,
max), rows/s and nnz/s, the speedup over 1 thread of the same system, mode and device, that speedup as a
fraction of the machine's process ceiling (`hogwild.bench.machine.process_ceiling`, measured in the same run),
an accelerator run's speedup over the fastest CPU run of the same system, the final training objective
(evaluated the same way for every system by `hogwild.bench.problem.BenchProblem`), the test accuracy, and the
time to a target objective and to a target test accuracy (the fair measures when systems converge at
different rates). Derivations live in `hogwild.bench.measures`.

Timing rules: each (mode, device) first runs one untimed epoch on a slice of the data so that Numba's JIT
compilation (or loading its cache) is excluded; that warm-up's wall time is reported as ``compile_seconds``.
Per-epoch objectives and accuracies are evaluated between epochs, outside the timed part (the engine times each
epoch itself): on the CPU a chunk hook hands the bench the runner, whose ``model(copy=False)`` is scored at each
epoch's end; an accelerator run gets no hook or callback (they would add host round trips inside its epochs),
so its trace is the engine's own history (its running training loss and its test accuracy), flagged
``trace_source`` in the record.
"""

from __future__ import annotations

import os
import statistics
import sys

import numpy as np

from hogwild._io import available_cores
from hogwild.config import MODES, TrainConfig
from hogwild.errors import ConfigError, DataError, HogwildError

from . import measures
from .data import dataset_info, load_dataset, prepared
from .machine import machine_info, process_ceiling
from .scoring import _EpochScorer, _trace, score_model
from .peers import PEERS, run_peer
from .problem import BenchProblem, split_train_test

DEVICES = ("cpu", "cuda")
# Rows of the untimed warm-up run that compiles (or loads from cache) each mode's kernels.
WARMUP_ROWS = 2_000
# Run keys every record has, in this order (the JSON schema of "runs"; extra keys follow). Keys were only ever
# appended, so results written by older versions read the same.
RUN_KEYS = (
    "system", "mode", "threads", "device", "seconds_per_epoch", "seconds_min", "seconds_max", "rows_per_s",
    "nnz_per_s", "speedup", "train_loss", "test_accuracy", "time_to_target", "ceiling_fraction",
    "time_to_target_accuracy",
)
ENGINE_TRACE = "engine history: its running training loss and its test accuracy (no live weights from this runner)"


def _silent(message):
    return None


# --- our runs ---------------------------------------------------------------------------------------------
def _train_once(problem, config, traced):
    """One run of the front door on the problem's training rows; returns ``(result, trace, trace_source)``."""
    from hogwild.engine import train

    if not traced:
        return train(problem.X_train, problem.y_train, config), None, None
    if config.device == "cpu":
        scorer = _EpochScorer(problem)
        result = train(problem.X_train, problem.y_train, config, X_test=problem.X_test, y_test=problem.y_test,
                       callback=scorer, hooks=(scorer.hook,))
        return (result, *_trace(result.history, scorer.scores))
    result = train(problem.X_train, problem.y_train, config, X_test=problem.X_test, y_test=problem.y_test)
    return (result, *_trace(result.history, []))


def _warm_up(problem, config, threads):
    """Wall seconds of an untimed one-epoch run on a slice of the data: JIT compilation or cache loading."""
    import time

    from hogwild.engine import train

    n = min(problem.n_train, WARMUP_ROWS)
    rows = slice(0, n)
    X, y = problem.X_train[rows], problem.y_train[rows]
    if problem.task != "regression" and len(np.unique(y)) < len(problem.classes):
        picked = np.unique(np.concatenate([np.arange(n), [int(np.flatnonzero(problem.y_train == c)[0]) for c in problem.classes]]))
        X, y = problem.X_train[picked], problem.y_train[picked]
    start = time.perf_counter()
    train(X, y, config.replace(epochs=1, threads=threads, validation_fraction=0.0, tol=None))
    return time.perf_counter() - start


def run_hogwild(problem, config, *, mode, threads, device, epochs, repeats, progress=_silent):
    """Records of our engine for one (mode, device) over the thread counts; failures become skipped records.

    A mode the device cannot run (``atomic`` on the CPU, ``average`` on a GPU) or an absent device gives one
    skipped record with the front door's own sentence as the reason.
    """
    if mode == "serial":
        threads = [t for t in threads if t == 1] or [1]
    if mode == "auto":
        threads = [max(threads)]  # the default picks among the thread counts up to its own
    if device != "cpu":
        threads = [None]  # an accelerator's parallelism is its own; the thread axis does not apply
    try:
        base = config.replace(mode=mode, device=device, epochs=epochs, tol=None, validation_fraction=0.0)
        compile_seconds = _warm_up(problem, base, max(t or 1 for t in threads))
    except HogwildError as exc:
        return [{"system": "hogwild", "mode": mode, "threads": threads[0] if len(threads) == 1 else None,
                 "device": device, "skipped": True, "reason": str(exc)}]
    progress(f"hogwild {mode} on {device}: warm-up (compile) {compile_seconds:.2f} s")
    records = []
    for n_threads in threads:
        record = {"system": "hogwild", "mode": mode, "threads": n_threads, "device": device, "epochs": epochs,
                  "compile_seconds": compile_seconds}
        run_config = base.replace(threads=n_threads)
        repeat_seconds = []
        try:
            for repeat in range(repeats):
                result, trace, source = _train_once(problem, run_config, traced=repeat == 0)
                seconds = [float(r["seconds"]) for r in result.history]
                repeat_seconds.append(sum(seconds))
                if repeat == 0:  # the final metrics come from the run whose trace is recorded
                    first, epoch_seconds, first_trace, trace_source = result, seconds, trace, source
                progress(f"hogwild {mode}, {n_threads or 'GPU'} threads, {device}: {sum(seconds):.3f} s "
                         f"for {len(seconds)} epochs (repeat {repeat + 1}/{repeats})")
        except HogwildError as exc:
            records.append({**record, "skipped": True, "reason": str(exc)})
            continue
        objective, metrics = score_model(problem, first.model)
        record.update(metrics)
        record.update(repeat_seconds=repeat_seconds, epoch_seconds=epoch_seconds, trace=first_trace,
                      train_loss=objective)
        if trace_source != "bench":
            record["trace_source"] = ENGINE_TRACE
        records.append(record)
    return records


# --- the study --------------------------------------------------------------------------------------------
def run_bench(
    data=(), *, X=None, y=None, synthetic=None, rows=None, config=None, threads=(1, 2),
    modes=("auto", "serial", "async", "average"), devices=("cpu",), peers=(), epochs=None, repeats=1,
    target_loss=None, target_accuracy=None, ceiling=True,
    test_fraction=0.2, seed=0, progress=None, name=None, features=None, classes=None, augment_rows=None,
    nodes=(), cross_nodes=("ps", "average"), cluster=None, **overrides,
):
    """Run the study and return ``{"machine", "dataset", "config", "ceiling", "target_loss", "target_accuracy",
    "runs", ...}`` (see the module doc).

    Data comes from ``X``/``y``, LIBSVM ``data`` paths or a ``synthetic`` preset (``rows`` caps or sets the row
    count; ``features`` and ``classes`` shape a synthetic set; ``augment_rows`` grows an IDX image set by shifts,
    split by original image). ``config`` (a `TrainConfig` or dict) plus ``overrides`` set the loss, penalty,
    schedule and so on for every system; ``epochs`` defaults to ``config.epochs``. ``target_accuracy`` defaults
    to the best peer's final test accuracy. ``ceiling=False`` skips the process-ceiling measurement (it runs
    when a CPU run has more than one thread). ``nodes`` adds the cluster axis: each node count with each of
    ``cross_nodes`` on a Ray cluster (``cluster``: an address, or local:<largest node count>), as records of mode
    ``cluster-ps``/``cluster-average`` (`hogwild.bench.cluster`). ``progress(message)`` receives one line per run.
    """
    progress = progress or _silent
    if isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    config = (config or TrainConfig()).replace(**overrides)
    epochs = int(epochs or config.epochs)
    threads = sorted({int(t) for t in threads})
    _check_axes(threads, repeats, modes, devices, peers, target_accuracy)
    dtype = np.dtype(config.dtype)
    groups = None
    if X is None:
        X, y, loaded_name, groups = load_dataset(data, synthetic=synthetic, rows=rows, seed=seed, model=config.model,
                                                 dtype=dtype, features=features, classes=classes,
                                                 augment_rows=augment_rows)
        name = name or loaded_name
    elif y is None:
        raise DataError("run_bench needs labels y with X")
    if X.shape[0] < 4:
        raise DataError(f"the dataset has {X.shape[0]} rows; the bench needs at least 4 to split off a test set")
    X = prepared(X, dtype)
    progress(f"dataset {name or 'data'}: {X.shape[0]} rows x {X.shape[1]} features")
    X_train, y_train, X_test, y_test = split_train_test(X, y, test_fraction, seed, groups=groups)
    problem = BenchProblem(X_train, y_train, X_test, y_test, loss=config.loss, l2=config.l2_strength,
                           l1=config.l1_strength, epsilon=config.epsilon, multiclass=config.multiclass,
                           name=name or "data")
    results = {
        "machine": machine_info(),
        "dataset": dataset_info(X, y, name or "data", problem),
        "config": {**config.to_dict(), "epochs": epochs, "repeats": repeats, "test_fraction": test_fraction, "seed": seed},
        "command": " ".join(["hogwild", *sys.argv[1:]]) if sys.argv and os.path.basename(sys.argv[0]) == "hogwild" else None,
        "ceiling": None,
        "runs": [],
    }
    del X  # the split holds the only copies the runs read
    parallel_cpu = "cpu" in devices and any(t > 1 for t in threads) and (set(modes) - {"serial"} or peers)
    if ceiling and parallel_cpu:
        results["ceiling"] = process_ceiling(problem.X_train, problem.y_train, config, threads, progress=progress)
    runs = []
    for device in devices:
        for mode in modes:
            runs.extend(run_hogwild(problem, config, mode=mode, threads=threads, device=device, epochs=epochs,
                                    repeats=repeats, progress=progress))
    if nodes:
        from .cluster import run_cluster

        counts = tuple(sorted({int(n) for n in nodes}))
        runs.extend(run_cluster(problem, config, nodes=counts, cross_nodes=tuple(cross_nodes),
                                cluster=cluster or f"local:{max(counts)}", epochs=epochs, repeats=repeats,
                                progress=progress))
    for peer in peers:
        progress(f"peer {peer} ...")
        try:
            runs.extend(run_peer(peer, problem, config, threads=threads, epochs=epochs, repeats=repeats,
                                 devices=devices, progress=progress))
        except Exception as exc:  # noqa: BLE001 - a peer's own failure is reported beside our runs, not fatal
            progress(f"peer {peer} failed: {type(exc).__name__}: {exc}")
            runs.append({"system": peer, "mode": "-", "threads": None, "device": "cpu", "skipped": True,
                         "reason": f"the peer failed: {type(exc).__name__}: {exc}"})
    results["target_loss"], results["target_rule"] = measures.target_loss(runs, target_loss)
    results["target_accuracy"], results["target_accuracy_rule"] = measures.target_accuracy(runs, target_accuracy)
    results["runs"] = [_summarize(run, problem, runs, results) for run in runs]
    return results


def _check_axes(threads, repeats, modes, devices, peers, target_accuracy):
    if not threads or threads[0] < 1:
        raise ConfigError("threads", f"--threads must be positive integers; got {threads!r}")
    if repeats < 1:
        raise ConfigError("repeats", f"--repeats must be a positive integer; got {repeats!r}")
    for mode in modes:
        if mode not in MODES:
            raise ConfigError("mode", f"--modes must name modes among {', '.join(MODES)}; got {mode!r}")
    for device in devices:
        if device not in DEVICES:
            raise ConfigError("device", f"--device must name devices among {', '.join(DEVICES)}; got {device!r}")
    for peer in peers:
        if peer not in PEERS:
            raise ConfigError("peers", f"--peers must name peers among {', '.join(PEERS)}; got {peer!r}")
    if target_accuracy is not None and not 0.0 < target_accuracy <= 1.0:
        raise ConfigError("target_accuracy", f"--target-accuracy must be a fraction in (0, 1]; got {target_accuracy!r}")


def _summarize(run, problem, runs, results):
    """The run with the schema's keys first: per-epoch seconds over repeats, rates, speedups, target times."""
    if run.get("skipped"):
        out = {key: run.get(key) for key in RUN_KEYS}
        out.update({k: v for k, v in run.items() if k not in out})
        return out
    repeat_seconds = run["repeat_seconds"]
    epochs = run.get("epochs")
    per_epoch = [s / epochs for s in repeat_seconds] if epochs else list(repeat_seconds)
    median = statistics.median(per_epoch)
    speedup = measures.speedup(run, runs)
    out = {
        "system": run["system"], "mode": run["mode"], "threads": run["threads"], "device": run["device"],
        "seconds_per_epoch": median if epochs else None,
        "seconds_min": min(per_epoch), "seconds_max": max(per_epoch),
        "rows_per_s": problem.n_train / median if epochs and median > 0 else None,
        "nnz_per_s": problem.nnz_train / median if epochs and median > 0 else None,
        "speedup": speedup,
        "train_loss": run.get("train_loss"),
        "test_accuracy": run.get("test_accuracy"),
    }
    out["time_to_target"], why = measures.time_to_target(run, results["target_loss"])
    out["ceiling_fraction"] = measures.ceiling_fraction(speedup, run["threads"], results.get("ceiling"))
    seconds, epoch, why_accuracy = measures.time_to_accuracy(run, results["target_accuracy"])
    out["time_to_target_accuracy"] = seconds
    out["epochs_to_target_accuracy"] = epoch
    if why and out["time_to_target"] is None:
        out["time_to_target_reason"] = why
    if why_accuracy and seconds is None:
        out["time_to_target_accuracy_reason"] = why_accuracy
    over_cpu, reference = measures.speedup_over_cpu(run, runs)
    if over_cpu is not None:
        out["speedup_over_cpu"], out["speedup_over_cpu_of"] = over_cpu, reference
    out["seconds_total"] = statistics.median(repeat_seconds)
    out["oversubscribed"] = bool(run["threads"] and run["threads"] > available_cores())
    for key, value in run.items():
        if key not in out and key not in ("repeat_seconds",):
            out[key] = value
    out["repeat_seconds"] = repeat_seconds
    return out
