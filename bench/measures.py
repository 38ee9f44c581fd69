"""What the study derives from its raw runs: speedups, the share of the machine's ceiling, targets, times to target.

Pure functions of run records (dicts with ``system, mode, threads, device, repeat_seconds, trace, train_loss,
test_accuracy``; a trace is a list of ``[cumulative training seconds, objective, test accuracy]`` after each epoch,
older results have only the first two), so they are tested on tiny hand-made records.
"""

from __future__ import annotations

import math
import statistics

# The default objective target: this factor times the best final objective among runs with a per-epoch trace.
DEFAULT_TARGET_FACTOR = 1.01
# Accuracies are counts over the same test rows: equal ones may differ in the last bit after a division.
ACCURACY_SLACK = 1e-12


def finite(value):
    """Whether ``value`` is a finite int or float (None, NaN and inf are not)."""
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def _ran(run):
    return not run.get("skipped") and bool(run.get("repeat_seconds"))


def speedup(run, runs):
    """Median seconds at 1 thread over median seconds at this thread count, same system, mode and device."""
    if run["threads"] is None or not _ran(run):
        return None
    base = next((r for r in runs if _ran(r) and r["system"] == run["system"] and r["mode"] == run["mode"]
                 and r["device"] == run["device"] and r["threads"] == 1), None)
    if base is None:
        return None
    return statistics.median(base["repeat_seconds"]) / statistics.median(run["repeat_seconds"])


def ceiling_for(ceiling, threads):
    """The measured process ceiling for ``threads`` workers (a `hogwild.bench.machine.process_ceiling` result)."""
    if not ceiling or threads is None:
        return None
    for entry in ceiling.get("processes", ()):
        if entry.get("processes") == threads and finite(entry.get("ceiling")):
            return float(entry["ceiling"])
    return None


def ceiling_fraction(run_speedup, threads, ceiling):
    """``speedup / ceiling(threads)``: the part of what this machine gives ``threads`` share-nothing workers that
    a parallel run reached (1.0: all of it); None at 1 thread or without a speedup or a measured ceiling."""
    limit = ceiling_for(ceiling, threads)
    if threads is None or threads < 2 or not finite(run_speedup) or not limit:
        return None
    return run_speedup / limit


def speedup_over_cpu(run, runs):
    """``(ratio, reference)`` of an accelerator run: the fastest CPU run of the same system over this run, in
    median seconds per repeat, and that CPU run's name (``"async x2"``); ``(None, None)`` without one."""
    if run.get("device") in (None, "cpu") or not _ran(run):
        return None, None
    cpu = [r for r in runs if _ran(r) and r["system"] == run["system"] and r.get("device") == "cpu"]
    if not cpu:
        return None, None
    fastest = min(cpu, key=lambda r: statistics.median(r["repeat_seconds"]))
    ratio = statistics.median(fastest["repeat_seconds"]) / statistics.median(run["repeat_seconds"])
    return ratio, f"{fastest['mode']} x{fastest['threads']}"


# --- targets ---------------------------------------------------------------------------------------------
def target_loss(runs, given=None):
    """``(target, rule)``: ``given``, else DEFAULT_TARGET_FACTOR x the best final objective of runs with a trace."""
    if given is not None:
        return float(given), "given"
    finals = [r["train_loss"] for r in runs if not r.get("skipped") and r.get("trace") and finite(r.get("train_loss"))]
    if not finals:
        return None, "no run has a per-epoch trace"
    return DEFAULT_TARGET_FACTOR * min(finals), f"{DEFAULT_TARGET_FACTOR} x best final objective with a trace"


def target_accuracy(runs, given=None, ours="hogwild"):
    """``(target, rule)``: ``given``, else the best final test accuracy among the peers (systems not ``ours``)."""
    if given is not None:
        return float(given), "given (--target-accuracy)"
    peers = [r for r in runs if r["system"] != ours and not r.get("skipped") and finite(r.get("test_accuracy"))]
    if not peers:
        return None, "no peer reported a test accuracy (give --peers or --target-accuracy)"
    best = max(peers, key=lambda r: r["test_accuracy"])
    threads = "" if best.get("threads") is None else f" x{best['threads']}"
    return float(best["test_accuracy"]), f"best peer's final accuracy ({best['system']} {best['mode']}{threads})"


def time_to_target(run, target):
    """``(seconds, reason)``: training seconds until the run's objective first reaches ``target`` (lower is better)."""
    if target is None:
        return None, "no target"
    if run.get("trace"):
        for point in run["trace"]:
            if finite(point[1]) and point[1] <= target:
                return float(point[0]), None
        return None, "did not reach the target"
    if run.get("seconds_total_is_solve"):
        if finite(run.get("train_loss")) and run["train_loss"] <= target:
            return float(statistics.median(run["repeat_seconds"])), None
        return None, "did not reach the target"
    return None, run.get("trace_reason", "no per-epoch trace")


def time_to_accuracy(run, target):
    """``(seconds, epoch, reason)``: training seconds (and epoch) at which the test accuracy first reaches ``target``.

    A run solved to a tolerance (LIBLINEAR) has one point, its whole solve, which counts when its final accuracy
    reaches the target (epoch None). The reason says why the seconds are None.
    """
    if target is None:
        return None, None, "no target accuracy"
    if run.get("trace"):
        for epoch, point in enumerate(run["trace"], start=1):
            accuracy = point[2] if len(point) > 2 else None
            if finite(accuracy) and accuracy >= target - ACCURACY_SLACK:
                return float(point[0]), epoch, None
        if all(len(point) < 3 or point[2] is None for point in run["trace"]):
            return None, None, "no test accuracy per epoch"
        return None, None, "did not reach the target accuracy"
    if run.get("seconds_total_is_solve"):
        if finite(run.get("test_accuracy")) and run["test_accuracy"] >= target - ACCURACY_SLACK:
            return float(statistics.median(run["repeat_seconds"])), None, None
        return None, None, "did not reach the target accuracy"
    return None, None, run.get("trace_reason", "no per-epoch trace")
