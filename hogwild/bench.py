"""The speedup study behind ``hogwild bench``: modes x threads x devices, against peer systems, on one split.

`run_bench` loads (or synthesizes) ONE dataset, splits it once with a fixed seed, converts the training rows
once to the engine's dtype, and shares those arrays with every run, ours and the peers' (`hogwild.peers`).
For each (system, mode, threads, device) it records the seconds per epoch over ``repeats`` runs (median, min,
max), rows/s and nnz/s, the speedup over 1 thread of the same system and mode, the final training objective
(evaluated the same way for every system by `hogwild.bench_problem.BenchProblem`), the test accuracy, and the
time to reach a target objective (the fair measure when modes converge at different rates).

Timing rules: each (mode, device) first runs one untimed epoch on a slice of the data so that Numba's JIT
compilation (or loading its cache) is excluded; that warm-up's wall time is reported as ``compile_seconds``.
Per-epoch objectives are evaluated between epochs, outside the timed part (the engine times each epoch itself).
The default target is 1.01 x the best final objective among the systems that have a per-epoch trace.

`to_markdown` renders the results as a table, `plot` draws speedup vs threads and objective vs wall time.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import time

import numpy as np
import scipy.sparse as sp

from ._io import available_cores
from .bench_problem import BenchProblem, split_train_test
from .config import MODES, TrainConfig
from .errors import ConfigError, DataError, HogwildError
from .peers import PEERS, run_peer

SYNTHETIC_PRESETS = ("rcv1", "url", "kdda", "dense")
# Rows of the untimed warm-up run that compiles (or loads from cache) each mode's kernels.
WARMUP_ROWS = 2_000
# Run keys every record has, in this order (the JSON schema of "runs"; extra keys follow).
RUN_KEYS = (
    "system", "mode", "threads", "device", "seconds_per_epoch", "seconds_min", "seconds_max", "rows_per_s",
    "nnz_per_s", "speedup", "train_loss", "test_accuracy", "time_to_target",
)
DEFAULT_TARGET_FACTOR = 1.01


def _silent(message):
    return None


# --- inputs ---------------------------------------------------------------------------------------------
def load_dataset(data=(), *, synthetic=None, rows=None, seed=0, model="linear", dtype="float32", features=None,
                 classes=None, augment_rows=None):
    """``(X, y, name, groups)`` from LIBSVM paths (several share one feature space and are stacked), an MNIST
    IDX images file (its labels file beside it), or a synthetic preset.

    ``augment_rows`` grows an IDX image set to that many rows by whole-pixel shifts
    (`hogwild.datasets.augment.shifted_images`); ``groups`` then gives each row's original image, so the
    train/test split keeps all copies of an original on one side. Otherwise ``groups`` is None.
    """
    if data and synthetic:
        raise ConfigError("synthetic", "give DATA files or --synthetic, not both")
    idx = _idx_pair(data)
    if augment_rows is not None and idx is None:
        raise ConfigError("augment_rows", "--augment-rows needs one MNIST IDX images file as DATA (*-images-idx3-ubyte[.gz])")
    if idx is not None:
        from .datasets.augment import shifted_images
        from .datasets.idx import load_idx

        X, y = load_idx(*idx, dtype=np.dtype(dtype))
        if rows is not None:
            X, y = X[:rows], y[:rows]
        name = os.path.basename(idx[0])
        if augment_rows is None:
            return X, y, name, None
        n_originals = X.shape[0]
        X, y, groups = shifted_images(X, y, int(augment_rows), seed=seed)
        return X, y, f"{name} ({n_originals:,} images shifted to {int(augment_rows):,} rows)", groups
    if data:
        from .datasets.libsvm import load_libsvm_files

        parts = load_libsvm_files(list(data), dtype=np.dtype(dtype))
        X = sp.vstack([part[0] for part in parts], format="csr") if len(parts) > 1 else parts[0][0]
        y = np.concatenate([np.asarray(part[1]) for part in parts])
        name = "+".join(os.path.basename(str(path)) for path in data)
        if rows is not None:
            X, y = X[:rows], y[:rows]
        return X, y, name, None
    if synthetic is None:
        raise ConfigError("synthetic", "give DATA files or --synthetic rcv1|url|kdda|dense")
    if synthetic not in SYNTHETIC_PRESETS:
        raise ConfigError("synthetic", f"--synthetic must be one of {', '.join(SYNTHETIC_PRESETS)}; got {synthetic!r}")
    from .datasets.synth import make_synthetic

    task = {"task": "multiclass", "n_classes": int(classes)} if classes and classes > 2 else {}
    X, y, _ = make_synthetic(like=synthetic, n_rows=rows, n_features=features, seed=seed, dtype=np.dtype(dtype), **task)
    if synthetic == "dense" and model == "mlp":
        X = X.toarray() if sp.issparse(X) else X
    return X, y, f"synthetic-{synthetic}", None


def _idx_pair(data):
    """``(images, labels)`` paths when ``data`` is one MNIST-style IDX images file, else None."""
    if len(data) != 1:
        return None
    path = str(data[0])
    base = os.path.basename(path)
    if "-images-idx" not in base:
        return None
    labels = os.path.join(os.path.dirname(path), base.replace("-images-idx3", "-labels-idx1"))
    if not os.path.exists(labels):
        raise DataError(f"{path}: no labels file {labels} beside it")
    return path, labels


def _prepared(X, dtype):
    """X in the layout the engine reads without copying: canonical CSR, ``dtype`` data, int32 indices."""
    if not sp.issparse(X):
        return np.ascontiguousarray(X, dtype=dtype)
    X = X.tocsr()
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    if X.data.dtype != dtype:
        X = X.astype(dtype)
    if X.indices.dtype != np.int32 and X.shape[1] < 2**31:
        X.indices = X.indices.astype(np.int32)
    if X.indptr.dtype != np.int64:
        X.indptr = X.indptr.astype(np.int64)
    return X


def machine_info():
    """The machine: CPU model, cores usable and present, memory, library versions, GPU (None without one)."""
    import numba
    import scipy

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = None
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    try:
        from .device import gpu_name

        gpu = gpu_name()
    except Exception:  # noqa: BLE001 - a broken CUDA install means "no GPU" for the bench
        gpu = None
    round_trip = None
    if available_cores() > 1:
        from ._latency import core_to_core_round_trip_ns

        round_trip = round(core_to_core_round_trip_ns(), 1)
    return {
        "cpu": cpu,
        "cores": available_cores(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": memory,
        "memory_gib": round(memory / 2**30, 1) if memory else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numba": numba.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "gpu": gpu,
        # One cache line's round trip between two worker threads: what a write-shared coordinate costs.
        # On a VM it changes with where the hypervisor puts the vCPUs, and Hogwild! speedups change with it.
        "core_to_core_round_trip_ns": round_trip,
    }


def dataset_info(X, y, name, problem):
    """Sizes and the Hogwild! paper's sparsity measures (omega, delta, rho) of the whole dataset."""
    info = {"name": name, "rows": int(X.shape[0]), "features": int(X.shape[1]),
            "nnz": int(X.nnz) if sp.issparse(X) else int(np.count_nonzero(X)),
            "train_rows": int(problem.n_train), "test_rows": int(problem.X_test.shape[0]), "task": problem.task}
    try:
        from .datasets.stats import dataset_stats

        stats = dataset_stats(X if sp.issparse(X) else sp.csr_matrix(X))
        info.update({key: stats.get(key) for key in ("omega", "delta", "rho", "density", "nnz_per_row_mean")})
        info["rho_exact"] = stats.get("rho_exact")
    except ImportError as exc:
        info.update(omega=None, delta=None, rho=None, stats_reason=str(exc))
    return info


# --- our runs -------------------------------------------------------------------------------------------
def _linear_params(model, problem):
    coef = np.asarray(model.coef, dtype=np.float64)
    intercept = np.asarray(model.intercept, dtype=np.float64)
    if problem.task == "multiclass":
        return coef, intercept
    return coef[:, 0], float(intercept[0])


class _EpochScorer:
    """Engine callback and hook that score the live weights after each epoch (untimed: the engine's clock stopped).

    The linear engine hands its `Trainer` to chunk hooks; the weights are read from it at the epoch event.
    """

    def __init__(self, problem, config):
        self.problem, self.config = problem, config
        self.trainer = None
        self.mlp_state = None
        self.trace = []
        self.total = 0.0

    def hook(self, trainer):
        self.trainer = trainer

    def __call__(self, event):
        if event.get("kind") != "epoch":
            return
        self.total += float(event["seconds"])
        objective = None
        if self.mlp_state is not None:
            model = self.mlp_state.model(copy=False)
            objective = self.problem.mlp_objective(model.coefs, model.intercepts, model.activation)
        elif isinstance(getattr(getattr(self.trainer, "state", None), "W", None), np.ndarray):  # host weights only
            W, b = self.trainer.state.W, self.trainer.state.b
            objective = self.problem.linear_objective(*_linear_params(_Weights(W, b), self.problem))
        if objective is None:  # an engine without live weights (the GPU path): its own report, flagged
            objective = float(event["train_loss"])
            self.trace_source = "engine"
        self.trace.append([self.total, objective])


class _Weights:
    def __init__(self, coef, intercept):
        self.coef, self.intercept = coef, intercept


def _train_once(problem, config, scorer=None):
    """One training run of our engine on the problem's training rows; returns the `TrainResult`."""
    if config.model == "mlp":
        from .mlp import train_mlp

        state = None
        if scorer is not None:
            state = _new_mlp_state(problem, config)
            scorer.mlp_state = state
        return train_mlp(problem.X_train, problem.y_train, config, callback=scorer, state=state)
    from .engine import train

    hooks = (scorer.hook,) if scorer is not None else ()
    return train(problem.X_train, problem.y_train, config, callback=scorer, hooks=hooks)


def _new_mlp_state(problem, config):
    """A fresh MLP training state that we keep a handle on, so the live weights can be scored per epoch."""
    from .mlp import new_state

    if problem.task == "regression":
        output, n_outputs, classes = "identity", 1, None
    elif problem.task == "binary":
        output, n_outputs, classes = "logistic", 1, problem.classes
    else:
        output, n_outputs, classes = "softmax", len(problem.classes), problem.classes
    dims = np.array([problem.n_features, *config.hidden, n_outputs], dtype=np.int64)
    return new_state(dims, config.activation, output, classes, config.seed, np.dtype(config.dtype))


def _final_metrics(problem, config, model):
    if config.model == "mlp":
        return (problem.mlp_objective(model.coefs, model.intercepts, model.activation),
                problem.mlp_test_metrics(model.coefs, model.intercepts, model.activation))
    coef, intercept = _linear_params(model, problem)
    return problem.linear_objective(coef, intercept), problem.linear_test_metrics(coef, intercept)


def _warm_up(problem, config, threads):
    """Wall seconds of an untimed one-epoch run on a slice of the data: JIT compilation or cache loading."""
    n = min(problem.n_train, WARMUP_ROWS)
    rows = slice(0, n)
    X, y = problem.X_train[rows], problem.y_train[rows]
    if problem.task != "regression" and len(np.unique(y)) < len(problem.classes):
        picked = np.unique(np.concatenate([np.arange(n), [int(np.flatnonzero(problem.y_train == c)[0]) for c in problem.classes]]))
        X, y = problem.X_train[picked], problem.y_train[picked]
    start = time.perf_counter()
    warm = config.replace(epochs=1, threads=threads, validation_fraction=0.0, tol=None)
    if config.model == "mlp":
        from .mlp import train_mlp

        train_mlp(X, y, warm)
    else:
        from .engine import train

        train(X, y, warm)
    return time.perf_counter() - start


def run_hogwild(problem, config, *, mode, threads, device, epochs, repeats, progress=_silent):
    """Records of our engine for one (mode, device) over the thread counts; failures become skipped records."""
    records = []
    if mode == "serial":
        threads = [t for t in threads if t == 1] or [1]
    if device == "cuda":
        threads = [None]
    base = config.replace(mode=mode, device=device, epochs=epochs, tol=None, validation_fraction=0.0)
    try:
        compile_seconds = _warm_up(problem, base, max(t or 1 for t in threads))
    except HogwildError as exc:
        return [{"system": "hogwild", "mode": mode, "threads": t, "device": device, "skipped": True, "reason": str(exc)}
                for t in threads]
    progress(f"hogwild {mode} on {device}: warm-up (compile) {compile_seconds:.2f} s")
    for n_threads in threads:
        record = {"system": "hogwild", "mode": mode, "threads": n_threads, "device": device, "epochs": epochs,
                  "compile_seconds": compile_seconds}
        run_config = base.replace(threads=n_threads)
        repeat_seconds, epoch_seconds, result, scorer = [], None, None, None
        try:
            for repeat in range(repeats):
                scorer = _EpochScorer(problem, run_config) if repeat == 0 else None
                result = _train_once(problem, run_config, scorer)
                seconds = [float(r["seconds"]) for r in result.history]
                repeat_seconds.append(sum(seconds))
                if repeat == 0:  # the final metrics come from the run whose trace is recorded
                    first, epoch_seconds, trace = result, seconds, scorer.trace
                    trace_source = getattr(scorer, "trace_source", "bench")
                progress(f"hogwild {mode}, {n_threads or 'GPU'} threads, {device}: {sum(seconds):.3f} s "
                         f"for {len(seconds)} epochs (repeat {repeat + 1}/{repeats})")
        except HogwildError as exc:
            records.append({**record, "skipped": True, "reason": str(exc)})
            continue
        objective, metrics = _final_metrics(problem, run_config, first.model)
        record.update(metrics)
        record.update(repeat_seconds=repeat_seconds, epoch_seconds=epoch_seconds, trace=trace,
                      train_loss=objective)
        if trace_source != "bench":
            record["trace_source"] = "engine history (no live weights on this device)"
        records.append(record)
    return records


# --- the study ------------------------------------------------------------------------------------------
def run_bench(
    data=(), *, X=None, y=None, synthetic=None, rows=None, config=None, threads=(1, 2), modes=("serial", "async"),
    devices=("cpu",), peers=(), epochs=None, repeats=1, target_loss=None, test_fraction=0.2, seed=0,
    progress=None, name=None, features=None, classes=None, augment_rows=None, **overrides,
):
    """Run the study and return ``{"machine", "dataset", "config", "target_loss", "runs"}`` (see the module doc).

    Data comes from ``X``/``y``, LIBSVM ``data`` paths or a ``synthetic`` preset (``rows`` caps or sets the row
    count; ``features`` and ``classes`` shape a synthetic set; ``augment_rows`` grows an IDX image set by shifts,
    split by original image). ``config`` (a `TrainConfig` or dict) plus ``overrides`` set the loss, penalty, schedule and so on for
    every system; ``epochs`` defaults to ``config.epochs``. ``progress(message)`` receives one line per run.
    """
    progress = progress or _silent
    if isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    config = (config or TrainConfig()).replace(**overrides)
    epochs = int(epochs or config.epochs)
    threads = sorted({int(t) for t in threads})
    if not threads or threads[0] < 1:
        raise ConfigError("threads", f"--threads must be positive integers; got {threads!r}")
    if repeats < 1:
        raise ConfigError("repeats", f"--repeats must be a positive integer; got {repeats!r}")
    for mode in modes:
        if mode not in MODES:
            raise ConfigError("mode", f"--modes must name modes among {', '.join(MODES)}; got {mode!r}")
    for peer in peers:
        if peer not in PEERS:
            raise ConfigError("peers", f"--peers must name peers among {', '.join(PEERS)}; got {peer!r}")
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
    X = _prepared(X, dtype)
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
        "runs": [],
    }
    del X  # the split holds the only copies the runs read
    runs = []
    for device in devices:
        for mode in modes:
            runs.extend(run_hogwild(problem, config, mode=mode, threads=threads, device=device, epochs=epochs,
                                    repeats=repeats, progress=progress))
    for peer in peers:
        progress(f"peer {peer} ...")
        try:
            runs.extend(run_peer(peer, problem, config, threads=threads, epochs=epochs, repeats=repeats,
                                 progress=progress))
        except Exception as exc:  # noqa: BLE001 - a peer's own failure is reported beside our runs, not fatal
            progress(f"peer {peer} failed: {type(exc).__name__}: {exc}")
            runs.append({"system": peer, "mode": "-", "threads": None, "device": "cpu", "skipped": True,
                         "reason": f"the peer failed: {type(exc).__name__}: {exc}"})
    results["target_loss"] = _target(runs, target_loss)
    results["target_rule"] = "given" if target_loss is not None else f"{DEFAULT_TARGET_FACTOR} x best final objective with a trace"
    results["runs"] = [_summarize(run, problem, runs, results["target_loss"]) for run in runs]
    return results


def _target(runs, target_loss):
    if target_loss is not None:
        return float(target_loss)
    finals = [r["train_loss"] for r in runs if not r.get("skipped") and r.get("trace") and _finite(r.get("train_loss"))]
    return DEFAULT_TARGET_FACTOR * min(finals) if finals else None


def _finite(value):
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def _time_to_target(run, target):
    if target is None:
        return None, "no target"
    if run.get("trace"):
        for seconds, objective in run["trace"]:
            if _finite(objective) and objective <= target:
                return float(seconds), None
        return None, "did not reach the target"
    if run.get("seconds_total_is_solve"):
        if _finite(run.get("train_loss")) and run["train_loss"] <= target:
            return float(statistics.median(run["repeat_seconds"])), None
        return None, "did not reach the target"
    return None, run.get("trace_reason", "no per-epoch trace")


def _summarize(run, problem, runs, target):
    """The run with the schema's keys first: per-epoch seconds over repeats, rates, speedup, target time."""
    if run.get("skipped"):
        out = {key: run.get(key) for key in RUN_KEYS}
        out.update({k: v for k, v in run.items() if k not in out})
        return out
    repeat_seconds = run["repeat_seconds"]
    epochs = run.get("epochs")
    per_epoch = [s / epochs for s in repeat_seconds] if epochs else list(repeat_seconds)
    median = statistics.median(per_epoch)
    out = {
        "system": run["system"], "mode": run["mode"], "threads": run["threads"], "device": run["device"],
        "seconds_per_epoch": median if epochs else None,
        "seconds_min": min(per_epoch), "seconds_max": max(per_epoch),
        "rows_per_s": problem.n_train / median if epochs and median > 0 else None,
        "nnz_per_s": problem.nnz_train / median if epochs and median > 0 else None,
        "speedup": _speedup(run, runs),
        "train_loss": run.get("train_loss"),
        "test_accuracy": run.get("test_accuracy"),
    }
    out["time_to_target"], why = _time_to_target(run, target)
    if why and out["time_to_target"] is None:
        out["time_to_target_reason"] = why
    out["seconds_total"] = statistics.median(repeat_seconds)
    out["oversubscribed"] = bool(run["threads"] and run["threads"] > available_cores())
    for key, value in run.items():
        if key not in out and key not in ("repeat_seconds",):
            out[key] = value
    out["repeat_seconds"] = repeat_seconds
    return out


def _speedup(run, runs):
    """Seconds at 1 thread over seconds at this thread count, for the same system, mode and device."""
    base = next((r for r in runs if not r.get("skipped") and r["system"] == run["system"] and r["mode"] == run["mode"]
                 and r["device"] == run["device"] and r["threads"] == 1), None)
    if base is None or run["threads"] is None:
        return None
    return statistics.median(base["repeat_seconds"]) / statistics.median(run["repeat_seconds"])


# --- renderers ------------------------------------------------------------------------------------------
def _fmt(value, kind="g"):
    if value is None:
        return "-"
    if kind == "rate":
        for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if value >= limit:
                return f"{value / limit:.2f}{suffix}"
        return f"{value:.0f}"
    if kind == "s":
        return f"{value:.3g}"
    if kind == "pct":
        return f"{100 * value:.2f}%"
    if kind == "x":
        return f"{value:.2f}x"
    return f"{value:.5g}" if isinstance(value, float) else str(value)


def to_markdown(results):
    """A Markdown section: the dataset and machine in one line each, a table of runs, skipped peers below."""
    machine, dataset = results["machine"], results["dataset"]
    lines = [
        f"Dataset **{dataset.get('name')}**: {dataset['rows']:,} rows x {dataset['features']:,} features, "
        f"{dataset['nnz']:,} non-zeros; omega={_fmt(dataset.get('omega'))}, delta={_fmt(dataset.get('delta'))}, "
        f"rho={_fmt(dataset.get('rho'))}; {dataset.get('train_rows', '?'):,} train / {dataset.get('test_rows', '?'):,} test rows.",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores usable, {machine.get('memory_gib')} GiB; "
        f"numba {machine['numba']}, numpy {machine['numpy']}; GPU: {machine.get('gpu') or 'none'}; "
        f"core-to-core cache-line round trip: {_fmt(machine.get('core_to_core_round_trip_ns'))} ns.",
        "",
        f"Epochs: {results['config']['epochs']}, repeats: {results['config']['repeats']}; "
        f"target objective {_fmt(results.get('target_loss'))} ({results.get('target_rule')}).",
        "",
        "| system | mode | threads | device | s/epoch (median) | min-max | rows/s | nnz/s | speedup | train objective | test acc | time to target (s) |",
        "|---|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    skipped = []
    for run in results["runs"]:
        if run.get("skipped"):
            skipped.append(run)
            continue
        threads = "-" if run["threads"] is None else str(run["threads"]) + (" (over)" if run.get("oversubscribed") else "")
        if run["seconds_per_epoch"] is None and run.get("seconds_total") is not None:
            per_epoch, spread = f"{_fmt(run['seconds_total'], 's')} (solve)", "-"
        else:
            per_epoch = _fmt(run["seconds_per_epoch"], "s")
            spread = f"{_fmt(run['seconds_min'], 's')}-{_fmt(run['seconds_max'], 's')}"
        accuracy = _fmt(run["test_accuracy"], "pct") if run.get("test_accuracy") is not None else (
            f"rmse {_fmt(run['test_rmse'])}" if run.get("test_rmse") is not None else "-")
        lines.append(
            f"| {run['system']} | {run['mode']} | {threads} | {run['device']} | {per_epoch} | {spread} | "
            f"{_fmt(run['rows_per_s'], 'rate')} | {_fmt(run['nnz_per_s'], 'rate')} | {_fmt(run['speedup'], 'x')} | "
            f"{_fmt(run['train_loss'])} | {accuracy} | {_fmt(run['time_to_target'], 's')} |"
        )
    if skipped:
        lines.append("")
        lines.append("Skipped: " + "; ".join(
            f"{r['system']}{'' if r.get('mode') in (None, '-') else ' ' + r['mode']}"
            f"{'' if r.get('threads') is None else ' x' + str(r['threads'])}: {r.get('reason')}" for r in skipped) + ".")
    compile_times = {(r["mode"], r["device"]): r["compile_seconds"] for r in results["runs"] if r.get("compile_seconds") is not None}
    if compile_times:
        lines.append("")
        lines.append("Warm-up (JIT compile or cache load, excluded above): " + ", ".join(
            f"{mode}/{device} {seconds:.2f} s" for (mode, device), seconds in compile_times.items()) + ".")
    return "\n".join(lines) + "\n"


def plot(results, path):
    """Write a PNG: speedup vs threads per mode (with the ideal line) and objective vs wall time per system."""
    try:
        import matplotlib.ticker
        from matplotlib.figure import Figure  # no pyplot: no global backend or figure state is touched
    except ImportError:
        raise HogwildError("plotting needs matplotlib: pip install 'hogwild[plot]'") from None
    runs = [r for r in results["runs"] if not r.get("skipped")]
    figure = Figure(figsize=(11, 4.2))
    left, right = figure.subplots(1, 2)
    series = {}
    for run in runs:
        if run.get("speedup") is not None and run["threads"] is not None:
            series.setdefault(f"{run['system']} {run['mode']} ({run['device']})", []).append((run["threads"], run["speedup"]))
    series = {label: points for label, points in series.items() if len(points) > 1}  # single-thread peers: no curve
    max_threads = max([t for points in series.values() for t, _ in points] or [1])
    left.set_xticks(sorted({t for points in series.values() for t, _ in points} | {1}))
    left.plot([1, max_threads], [1, max_threads], "k--", linewidth=1, label="ideal")
    for label, points in sorted(series.items()):
        points.sort()
        left.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    left.set_xlabel("threads")
    left.set_ylabel("speedup over 1 thread (same mode)")
    left.set_title("Speedup")
    left.legend(fontsize=7)
    target = results.get("target_loss")
    for run in runs:
        label = f"{run['system']} {run['mode']} x{run['threads']} ({run['device']})"
        if run.get("trace"):
            times = [point[0] for point in run["trace"]]
            values = [point[1] for point in run["trace"]]
            right.plot(times, values, marker=".", label=label)
        elif _finite(run.get("train_loss")) and run.get("seconds_total") is not None:
            right.plot([run["seconds_total"]], [run["train_loss"]], marker="*", linestyle="none", markersize=10, label=label)
    if target is not None:
        right.axhline(target, color="grey", linestyle=":", linewidth=1, label="target")
    right.set_xlabel("training wall time (s)")
    right.set_ylabel("train objective")
    right.set_title("Objective vs time")
    right.set_xscale("log")
    right.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    right.legend(fontsize=6)
    dataset = results["dataset"]
    figure.suptitle(f"{dataset.get('name')} ({dataset['rows']:,} x {dataset['features']:,}) on {results['machine']['cpu']}", fontsize=9)
    figure.tight_layout()
    from ._io import atomic_write

    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=110)
    return path


def replace_section(text, section, body):
    """``text`` with the lines between ``<!-- bench:SECTION -->`` and ``<!-- /bench:SECTION -->`` replaced by ``body``."""
    begin, end = f"<!-- bench:{section} -->", f"<!-- /bench:{section} -->"
    start = text.find(begin)
    stop = text.find(end)
    if start < 0 or stop < start:
        raise DataError(f"the markdown file has no '{begin}' ... '{end}' block for --section {section}")
    return text[: start + len(begin)] + "\n" + body.rstrip("\n") + "\n" + text[stop:]
