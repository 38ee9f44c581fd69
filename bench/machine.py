"""The machine a study ran on: what it is (CPU, cores, memory, versions, GPU), and what it can give parallel workers.

Two measurements say how much of a parallel mode's shortfall belongs to the machine rather than to the mode:

- **core-to-core round trip** (`hogwild._latency`): one cache line's trip to another core and back, what a
  write-shared coordinate costs. On a VM it changes with where the hypervisor puts the vCPUs.
- **process ceiling** (`process_ceiling`): T independent processes, each training its own private copy of the
  study's training rows with the study's settings in ``serial`` mode (nothing shared, not even memory), started
  together at a barrier, against one process alone. ``T x alone / together`` is what this machine gives T
  share-nothing workers on this workload (memory bandwidth, shared caches, SMT siblings, turbo, noisy
  neighbours); a T-thread mode's speedup divided by it is the part of the ceiling the mode reached, a figure
  that compares across machines where the bare speedup does not.
"""

from __future__ import annotations

import os
import platform
import queue
import shutil
import statistics
import tempfile

import numpy as np
import scipy.sparse as sp

from hogwild._io import available_cores

# Epochs each process trains per round (at least; more on small data, so that a round lasts CEILING_MIN_SECONDS
# and start-up jitter does not decide the figure), and rounds (the best round counts, as a timing's minimum does).
CEILING_EPOCHS = 2
CEILING_MIN_SECONDS = 0.5
CEILING_MAX_EPOCHS = 500
CEILING_ROUNDS = 2
# Seconds a ceiling process may take to start (imports, loading its copy of the rows, compiling) or to train.
CEILING_TIMEOUT = 600.0


def cpu_model():
    """The CPU's model name from /proc/cpuinfo, else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info():
    """The machine: CPU model, cores usable and present, memory, library versions, GPU (None without one), and
    the core-to-core cache-line round trip in ns (None on one core)."""
    import numba
    import scipy

    memory = None
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    try:
        from hogwild.device import gpu_name

        gpu = gpu_name()
    except Exception:  # noqa: BLE001 - a broken CUDA install means "no GPU" for the bench
        gpu = None
    round_trip = None
    if available_cores() > 1:
        from hogwild._latency import core_to_core_round_trip_ns

        round_trip = round(core_to_core_round_trip_ns(), 1)
    return {
        "cpu": cpu_model(),
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
        "core_to_core_round_trip_ns": round_trip,
    }


# --- process ceiling ----------------------------------------------------------------------------------------
def process_ceiling(X, y, config, process_counts, *, epochs=None, rounds=CEILING_ROUNDS, timeout=CEILING_TIMEOUT,
                    progress=None):
    """``{"workload", "epochs", "rounds", "seconds_alone", "processes": [...]}``: the machine's speedup ceiling.

    Each entry of ``processes`` is ``{"processes": T, "seconds_together": s, "ceiling": T * alone / s}``, or
    ``{"processes": T, "skipped": True, "reason": ...}``. Seconds are the median seconds per epoch of a round
    (the slowest process's, when T run together), best of ``rounds``. ``config`` is the study's `TrainConfig`;
    every process trains it in ``serial`` mode on the CPU, on its own copy of ``X``/``y`` loaded from a
    temporary folder (spawned processes: no memory, not even copy-on-write pages, is shared). ``epochs``
    defaults to enough for a round of at least CEILING_MIN_SECONDS, from a short probe run in this process.
    """
    progress = progress or (lambda message: None)
    counts = sorted({int(t) for t in process_counts if int(t) > 1})
    out = {"workload": "the study's training rows and settings, serial mode, one private copy per process",
           "epochs": None, "rounds": int(rounds), "seconds_alone": None, "processes": []}
    if not counts:
        return out
    serial = config.replace(mode="serial", threads=1, device="cpu", tol=None, validation_fraction=0.0)
    if epochs is None:
        epochs = _epochs_for_a_round(X, y, serial)
    out["epochs"] = int(epochs)
    work = serial.replace(epochs=int(epochs)).to_dict()
    folder = tempfile.mkdtemp(prefix="hogwild-bench-ceiling-")
    try:
        _save_rows(folder, X, y)
        try:
            alone = _group_seconds(folder, work, 1, rounds, timeout)
        except RuntimeError as exc:
            reason = f"one process alone failed: {exc}"
            out["processes"] = [{"processes": t, "skipped": True, "reason": reason} for t in counts]
            return out
        out["seconds_alone"] = alone
        progress(f"process ceiling: 1 process alone {alone:.4g} s/epoch")
        for count in counts:
            try:
                together = _group_seconds(folder, work, count, rounds, timeout)
            except RuntimeError as exc:
                out["processes"].append({"processes": count, "skipped": True, "reason": str(exc)})
                continue
            ceiling = count * alone / together
            out["processes"].append({"processes": count, "seconds_together": together, "ceiling": ceiling})
            progress(f"process ceiling: {count} processes together {together:.4g} s/epoch -> {ceiling:.2f}x")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


def _epochs_for_a_round(X, y, serial):
    """Epochs whose serial training lasts about CEILING_MIN_SECONDS, from two probe epochs (at least CEILING_EPOCHS)."""
    import math

    from hogwild.engine import train

    seconds = min(float(r["seconds"]) for r in train(X, y, serial.replace(epochs=2)).history)  # the 2nd is warm
    wanted = math.ceil(CEILING_MIN_SECONDS / max(seconds, 1e-6))
    return int(min(CEILING_MAX_EPOCHS, max(CEILING_EPOCHS, wanted)))


def _save_rows(folder, X, y):
    """The rows as plain .npy files (CSR as its three arrays) that each process reads into memory of its own."""
    if sp.issparse(X):
        X = X.tocsr()
        np.save(os.path.join(folder, "indptr.npy"), X.indptr)
        np.save(os.path.join(folder, "indices.npy"), X.indices)
        np.save(os.path.join(folder, "data.npy"), X.data)
        np.save(os.path.join(folder, "shape.npy"), np.asarray(X.shape, dtype=np.int64))
    else:
        np.save(os.path.join(folder, "dense.npy"), np.ascontiguousarray(X))
    np.save(os.path.join(folder, "y.npy"), np.asarray(y))


def _load_rows(folder):
    dense = os.path.join(folder, "dense.npy")
    y = np.load(os.path.join(folder, "y.npy"))
    if os.path.exists(dense):
        return np.load(dense), y
    parts = [np.load(os.path.join(folder, f"{name}.npy")) for name in ("data", "indices", "indptr", "shape")]
    return sp.csr_matrix((parts[0], parts[1], parts[2]), shape=tuple(int(n) for n in parts[3])), y


def _ceiling_worker(folder, work, rounds, barrier, results):
    """One ceiling process: load a private copy, compile (or load the kernels' cache), then one timed run per round."""
    try:
        from hogwild.config import TrainConfig
        from hogwild.engine import train

        X, y = _load_rows(folder)
        config = TrainConfig.from_dict(work)
        train(X, y, config.replace(epochs=1))  # compile or load the kernels, fault the pages in: untimed
        for _ in range(rounds):
            barrier.wait()
            history = train(X, y, config).history
            results.put(("seconds", float(statistics.median(float(r["seconds"]) for r in history))))
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line, never a hang
        barrier.abort()
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def _group_seconds(folder, work, count, rounds, timeout):
    """Best over rounds of the slowest of ``count`` processes' median s/epoch; RuntimeError when one fails."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # a fork would inherit Numba's and the study's threads
    barrier, results = context.Barrier(count), context.Queue()
    processes = [context.Process(target=_ceiling_worker, args=(folder, work, rounds, barrier, results), daemon=True)
                 for _ in range(count)]
    for process in processes:
        process.start()
    try:
        best = None
        for _ in range(rounds):
            seconds = [_next_result(results, processes, timeout) for _ in range(count)]
            best = max(seconds) if best is None else min(best, max(seconds))
        return best
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join()


def _next_result(results, processes, timeout):
    waited = 0.0
    while True:
        try:
            kind, value = results.get(timeout=0.5)
        except queue.Empty:
            waited += 0.5
            dead = [p for p in processes if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"a ceiling process exited with code {dead[0].exitcode}") from None
            if waited > timeout:
                raise RuntimeError(f"the ceiling processes gave no time within {timeout:.0f} s") from None
            continue
        if kind == "error":
            raise RuntimeError(f"a ceiling process failed: {value}")
        return value
