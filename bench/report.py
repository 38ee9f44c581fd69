"""How a study's results are shown: a Markdown section, a few summary lines, a PNG, and a block of a Markdown file.

Every renderer reads only the results dict (`hogwild.bench.study.run_bench`, or its JSON read back), and
tolerates results written before a key existed (no ``ceiling``, no ``target_accuracy``, two-element traces).
"""

from __future__ import annotations

from hogwild.errors import DataError, HogwildError

from .measures import finite


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
    if kind == "share":
        return f"{100 * value:.0f}%"
    return f"{value:.5g}" if isinstance(value, float) else str(value)


def _name(run):
    threads = "" if run.get("threads") is None else f" x{run['threads']}"
    device = "" if run.get("device") in (None, "cpu") else f" ({run['device']})"
    return f"{run['system']} {run['mode']}{threads}{device}"


def ceiling_line(results):
    """One sentence on the machine's process ceiling, or None when the study did not measure it."""
    ceiling = results.get("ceiling")
    if not ceiling or not ceiling.get("processes"):
        return None
    parts = []
    for entry in ceiling["processes"]:
        if entry.get("skipped"):
            parts.append(f"{entry['processes']} processes: not measured ({entry.get('reason')})")
        else:
            parts.append(f"{entry['processes']} processes together {_fmt(entry['seconds_together'], 's')} s/epoch "
                         f"-> **{_fmt(entry['ceiling'], 'x')}**")
    alone = _fmt(ceiling.get("seconds_alone"), "s")
    return (f"Process ceiling (independent processes, each its own copy of the training rows, serial, run together "
            f"vs one alone at {alone} s/epoch): " + "; ".join(parts) + ". A parallel run's `of ceiling` is its "
            "speedup over this.")


def target_line(results):
    """One sentence on the two targets the study times runs to."""
    accuracy = results.get("target_accuracy")
    text = (f"Target objective {_fmt(results.get('target_loss'))} ({results.get('target_rule')})")
    if "target_accuracy" in results:
        shown = _fmt(accuracy, "pct") if accuracy is not None else "none"
        text += f"; target test accuracy {shown} ({results.get('target_accuracy_rule')})"
    return text + "."


def to_markdown(results):
    """A Markdown section: the dataset and machine in one line each, the ceiling and targets, a table of runs,
    skipped runs and warm-up times below."""
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
    ]
    ceiling = ceiling_line(results)
    if ceiling:
        lines += [ceiling, ""]
    lines += [
        f"Epochs: {results['config']['epochs']}, repeats: {results['config']['repeats']}; {target_line(results)}",
        "",
        "| system | mode | threads | device | s/epoch (median) | min-max | rows/s | nnz/s | speedup | of ceiling "
        "| train objective | test acc | time to target (s) | time to target acc (s) |",
        "|---|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    skipped = []
    for run in results["runs"]:
        if run.get("skipped"):
            skipped.append(run)
            continue
        lines.append(_row(run))
    if skipped:
        lines.append("")
        lines.append("Skipped: " + "; ".join(
            f"{r['system']}{'' if r.get('mode') in (None, '-') else ' ' + r['mode']}"
            f"{'' if r.get('threads') is None else ' x' + str(r['threads'])}"
            f"{'' if r.get('device') in (None, 'cpu') else ' on ' + r['device']}: {r.get('reason')}" for r in skipped) + ".")
    compile_times = {(r["mode"], r["device"]): r["compile_seconds"] for r in results["runs"] if r.get("compile_seconds") is not None}
    if compile_times:
        lines.append("")
        lines.append("Warm-up (JIT compile or cache load, excluded above): " + ", ".join(
            f"{mode}/{device} {seconds:.2f} s" for (mode, device), seconds in compile_times.items()) + ".")
    flagged = sorted({_name(r) for r in results["runs"] if r.get("trace_source")})
    if flagged:
        lines.append("")
        lines.append("Per-epoch objective and accuracy from the engine's own history (no live weights from the "
                     "runner): " + ", ".join(flagged) + ".")
    return "\n".join(lines) + "\n"


def _row(run):
    threads = "-" if run["threads"] is None else str(run["threads"]) + (" (over)" if run.get("oversubscribed") else "")
    if run["seconds_per_epoch"] is None and run.get("seconds_total") is not None:
        per_epoch, spread = f"{_fmt(run['seconds_total'], 's')} (solve)", "-"
    else:
        per_epoch = _fmt(run["seconds_per_epoch"], "s")
        spread = f"{_fmt(run['seconds_min'], 's')}-{_fmt(run['seconds_max'], 's')}"
    accuracy = _fmt(run["test_accuracy"], "pct") if run.get("test_accuracy") is not None else (
        f"rmse {_fmt(run['test_rmse'])}" if run.get("test_rmse") is not None else "-")
    speedup = _fmt(run["speedup"], "x")
    if run.get("speedup_over_cpu") is not None:
        speedup = f"{_fmt(run['speedup_over_cpu'], 'x')} vs CPU {run.get('speedup_over_cpu_of')}"
    to_accuracy = _fmt(run.get("time_to_target_accuracy"), "s")
    if run.get("epochs_to_target_accuracy") is not None:
        to_accuracy += f" (epoch {run['epochs_to_target_accuracy']})"
    return (
        f"| {run['system']} | {run['mode']} | {threads} | {run['device']} | {per_epoch} | {spread} | "
        f"{_fmt(run['rows_per_s'], 'rate')} | {_fmt(run['nnz_per_s'], 'rate')} | {speedup} | "
        f"{_fmt(run.get('ceiling_fraction'), 'share')} | {_fmt(run['train_loss'])} | {accuracy} | "
        f"{_fmt(run['time_to_target'], 's')} | {to_accuracy} |"
    )


def summary_lines(results):
    """A few plain lines for the terminal: the ceiling, each parallel run's share of it, and who reached the
    target accuracy when."""
    lines = []
    ceiling = results.get("ceiling") or {}
    for entry in ceiling.get("processes", ()):
        if not entry.get("skipped"):
            lines.append(f"process ceiling: {entry['processes']} independent processes run {entry['ceiling']:.2f}x "
                         f"one alone")
    for run in results["runs"]:
        if run.get("ceiling_fraction") is not None:
            lines.append(f"{_name(run)}: {run['speedup']:.2f}x over 1 thread = {100 * run['ceiling_fraction']:.0f}% "
                         f"of the {run['threads']}-process ceiling")
        if run.get("speedup_over_cpu") is not None:
            lines.append(f"{_name(run)}: {run['speedup_over_cpu']:.2f}x the CPU's {run['speedup_over_cpu_of']}")
    target = results.get("target_accuracy")
    if target is None:
        if "target_accuracy_rule" in results:
            lines.append(f"time to target accuracy: no target ({results['target_accuracy_rule']})")
        return lines
    lines.append(f"time to {100 * target:.2f}% test accuracy ({results.get('target_accuracy_rule')}):")
    for run in results["runs"]:
        if run.get("skipped"):
            continue
        seconds = run.get("time_to_target_accuracy")
        if seconds is None:
            reached = f"not reached ({run.get('time_to_target_accuracy_reason', 'no trace')})"
        else:
            epoch = run.get("epochs_to_target_accuracy")
            reached = f"{seconds:.3g} s" + ("" if epoch is None else f" (epoch {epoch})")
        final = "-" if not finite(run.get("test_accuracy")) else f"{100 * run['test_accuracy']:.2f}%"
        lines.append(f"  {_name(run)}: {reached}; final {final}")
    return lines


def plot(results, path):
    """Write a PNG: speedup vs threads per mode (with the ideal line and the measured process ceiling) and
    objective vs wall time per system."""
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
    ceiling = [(1, 1.0)] + [(e["processes"], e["ceiling"]) for e in (results.get("ceiling") or {}).get("processes", ())
                            if not e.get("skipped")]
    if len(ceiling) > 1:
        left.plot([p[0] for p in ceiling], [p[1] for p in ceiling], color="grey", linestyle=":", marker="^",
                  label="process ceiling")
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
        elif finite(run.get("train_loss")) and run.get("seconds_total") is not None:
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
    from hogwild._io import atomic_write

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
