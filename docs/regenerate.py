"""Regenerate the figures of ``docs/benchmarks.md`` by running the commands the document itself lists.

    python docs/regenerate.py [--doc docs/benchmarks.md] [--only SECTION ...] [--dry-run]
    python docs/regenerate.py machine | startup | sparsity RESULTS.json ...
    python docs/regenerate.py seeds 0,1,2 -- BENCH ARGUMENTS ...

Every generated block of the document is a fenced ``sh`` command followed by a marker pair
``<!-- bench:NAME -->`` ... ``<!-- /bench:NAME -->``. A ``hogwild bench ... --markdown FILE --section NAME``
command writes its own table into the block; for any other command the block becomes that command's standard
output. So the document names, next to each figure, exactly the command that produced it, and this script is
the single command that reruns them all, in document order. ``$VARIABLES`` in the commands are expanded from the
environment (``$HOGWILD_TEST_DATA`` is the folder of the shared LIBSVM sets).

A maintainer's script beside the document, not part of the library: it needs the installed package (it reads
``hogwild.bench``) and runs from the repository root, where the document's commands expect to run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# A command never holds a backtick, so an ``sh`` fence without a marker after it (a command shown for the reader
# to run by hand) cannot swallow the text up to the next marker.
BLOCK = re.compile(r"```sh\n(?P<command>[^`]*)```\s*\n<!-- bench:(?P<name>[\w-]+) -->")


def generated_blocks(text):
    """[(name, command)] of every generated block, in document order (backslash line continuations joined)."""
    return [(m["name"], " ".join(m["command"].replace("\\\n", " ").split())) for m in BLOCK.finditer(text)]


def run_block(doc, name, command, dry_run=False):
    """Run one block's command; splice its standard output into the block unless it writes the block itself."""
    expanded = os.path.expandvars(command)
    if "$" in expanded:
        raise SystemExit(f"{doc}: block {name}: set the environment variable in {command!r}")
    argv = shlex.split(expanded)
    print(f"[{name}] {expanded}", file=sys.stderr)
    if dry_run:
        return
    writes_itself = "--section" in argv and argv[argv.index("--section") + 1] == name
    for flag in ("--plot", "--out"):  # make the folders the figures and results go to
        if flag in argv:
            Path(argv[argv.index(flag) + 1]).parent.mkdir(parents=True, exist_ok=True)
    if argv[0] == "hogwild":
        argv = [sys.executable, "-m", "hogwild.cli.main", *argv[1:]]
    elif argv[0] == "python":
        argv = [sys.executable, *argv[1:]]
    completed = subprocess.run(argv, stdout=None if writes_itself else subprocess.PIPE, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"[{name}] exited with {completed.returncode}: {expanded}")
    if not writes_itself:
        from hogwild.bench.report import replace_section

        output = completed.stdout.strip("\n")
        body = output if output.lstrip().startswith(("|", "#")) else f"```text\n{output}\n```"
        text = Path(doc).read_text(encoding="utf-8")
        Path(doc).write_text(replace_section(text, name, body + "\n"), encoding="utf-8")


def machine_table():
    """The machine as a Markdown table (the bench's `machine_info`)."""
    from hogwild.bench.machine import machine_info

    info = machine_info()
    rows = ["| | |", "|---|---|"] + [f"| {key} | {value} |" for key, value in info.items()]
    return "\n".join(rows)


STARTUP_COMMANDS = (
    ["hogwild", "--version"],
    ["hogwild", "--help"],
    ["hogwild", "bench", "--help"],
    ["python", "-c", "import hogwild"],
    ["python", "-c", "import hogwild; hogwild.train"],
)
BASELINE_COMMAND = ["python", "-c", "import numpy, scipy.sparse, click"]
# Issue 4's budget: a repeat one-epoch training run costs at most this many times Python's own start-up.
STARTUP_BUDGET = 3.5


def _argv(command):
    if command[0] == "hogwild":
        return [shutil.which("hogwild") or sys.executable, *command[1:]] if shutil.which("hogwild") else \
            [sys.executable, "-m", "hogwild.cli.main", *command[1:]]
    return [sys.executable, *command[1:]]


def _timed(argv, repeats, env=None):
    """Wall times (ms) of ``repeats`` fresh processes, after one untimed run that warms every cache."""
    subprocess.run(argv, capture_output=True, check=True, env=env)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, env=env)
        times.append(1000 * (time.perf_counter() - start))
    return times


def _a9a_as_vw(source, target):
    """a9a in Vowpal Wabbit's text format (labels -1/+1), written once, outside any timing."""
    with open(source, encoding="ascii") as lines, open(target, "w", encoding="ascii") as out:
        for line in lines:
            parts = line.split()
            if parts:
                out.write(f"{1 if float(parts[0]) > 0 else -1} | {' '.join(parts[1:])}\n")


def startup_table(repeats=7):
    """Start-up costs as a Markdown table: each command a fresh process, median and min of ``repeats``.

    With $HOGWILD_TEST_DATA set, also the repeat ``hogwild train a9a --epochs 1`` against Python's own
    start-up (issue 4's 3.5x budget), its first run with an empty Numba cache (compile time), and Vowpal
    Wabbit's end-to-end run on the same file through its Python package.
    """
    lines = ["| command | median (ms) | min (ms) |", "|---|---:|---:|"]
    baseline = _timed(_argv(BASELINE_COMMAND), repeats)
    lines.append(f"| `{shlex.join(BASELINE_COMMAND)}` (baseline) | {statistics.median(baseline):.0f} | {min(baseline):.0f} |")
    for command in STARTUP_COMMANDS:
        times = _timed(_argv(command), repeats)
        lines.append(f"| `{shlex.join(command)}` | {statistics.median(times):.0f} | {min(times):.0f} |")
    data = os.environ.get("HOGWILD_TEST_DATA")
    a9a = Path(data) / "a9a" if data else None
    if a9a is None or not a9a.exists():
        lines.append("")
        lines.append("(set HOGWILD_TEST_DATA to the shared data folder for the a9a rows)")
        return "\n".join(lines)
    with tempfile.TemporaryDirectory() as scratch:
        train = ["hogwild", "train", str(a9a), "--epochs", "1", "--quiet", "--cache-dir", scratch]
        repeat = _timed(_argv(train), repeats)
        cold_env = {**os.environ, "NUMBA_CACHE_DIR": str(Path(scratch) / "numba-cold")}
        start = time.perf_counter()
        subprocess.run(_argv(train[:-2] + ["--no-cache"]), capture_output=True, check=True, env=cold_env)
        cold = 1000 * (time.perf_counter() - start)
        vw_file = Path(scratch) / "a9a.vw"
        _a9a_as_vw(a9a, vw_file)
        vw_command = ["python", "-c", "from vowpalwabbit import pyvw; "
                      f"pyvw.Workspace('-d {vw_file} --loss_function logistic --quiet').finish()"]
        try:
            vw = _timed(_argv(vw_command), repeats)
        except subprocess.CalledProcessError:
            vw = None
    shown = "hogwild train $HOGWILD_TEST_DATA/a9a --epochs 1 --quiet"
    ratio = statistics.median(repeat) / statistics.median(baseline)
    lines.append(f"| `{shown}` (repeat: kernels and data cached) | {statistics.median(repeat):.0f} | {min(repeat):.0f} |")
    lines.append(f"| same, first run (empty Numba cache: compiles the kernels; no data cache) | {cold:.0f} | - |")
    if vw is not None:
        lines.append(f"| Vowpal Wabbit end to end on a9a (`pyvw.Workspace('-d a9a.vw --loss_function logistic')`, fresh process) | {statistics.median(vw):.0f} | {min(vw):.0f} |")
    lines.append("")
    verdict = "within" if ratio <= STARTUP_BUDGET else "over"
    lines.append(f"Repeat `hogwild train a9a --epochs 1` / Python baseline: **{ratio:.2f}x** ({verdict} the {STARTUP_BUDGET}x budget).")
    if vw is not None:
        lines.append(f"Repeat `hogwild train a9a --epochs 1` / Vowpal Wabbit end to end: **{statistics.median(repeat) / statistics.median(vw):.2f}x**.")
    return "\n".join(lines)


def sparsity_table(paths):
    """Per results file: the sparsity measures beside the observed 2-thread speedup of each of our modes."""
    lines = ["| dataset | rows | features | omega | delta | rho | mode | threads | speedup | test acc |",
             "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for path in paths:
        results = json.loads(Path(path).read_text(encoding="utf-8"))
        d = results["dataset"]
        for run in results["runs"]:
            if run["system"] != "hogwild" or run.get("skipped") or not run.get("threads") or run["threads"] == 1:
                continue
            accuracy = "-" if run.get("test_accuracy") is None else f"{100 * run['test_accuracy']:.2f}%"
            speedup = "-" if run.get("speedup") is None else f"{run['speedup']:.2f}x"
            lines.append(f"| {d.get('name')} | {d['rows']:,} | {d['features']:,} | {d.get('omega')} | {d.get('delta')} | "
                         f"{d.get('rho')} | {run['mode']} | {run['threads']} | {speedup} | {accuracy} |")
    return "\n".join(lines)


def seeds_table(seeds, bench_args):
    """Markdown: test accuracy and s/epoch of every run of ``hogwild bench BENCH_ARGS --seed S`` for each seed.

    One bench run has one seed, and a test accuracy from one seed (one initialisation, one shuffle, one split)
    moves by a few tenths of a point from seed to seed; this table shows that spread and the mean per system.
    """
    rows, per_system = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            out = Path(tmp) / f"seed{seed}.json"
            argv = [sys.executable, "-m", "hogwild.cli.main", "bench", *bench_args, "--seed", str(seed), "--out",
                    str(out), "--quiet"]
            completed = subprocess.run(argv, stdout=subprocess.DEVNULL, check=False)
            if completed.returncode != 0:
                raise SystemExit(f"seed {seed}: hogwild bench exited with {completed.returncode}")
            for run in json.loads(out.read_text())["runs"]:
                if run.get("test_accuracy") is None:
                    continue
                key = (run["system"], run["mode"], run["threads"])
                per_system.setdefault(key, []).append((run["test_accuracy"], run["seconds_per_epoch"]))
                rows.append((seed, *key, run["seconds_per_epoch"], run["test_accuracy"]))
    lines = ["| seed | system | mode | threads | s/epoch | test acc |", "|---:|---|---|---:|---:|---:|"]
    lines += [f"| {seed} | {system} | {mode} | {threads} | {sec:.3g} | {acc:.2%} |"
              for seed, system, mode, threads, sec, acc in rows]
    for (system, mode, threads), values in per_system.items():
        accs = [a for a, _ in values]
        secs = [t for _, t in values]
        lines.append(f"| mean | {system} | {mode} | {threads} | {statistics.mean(secs):.3g} | "
                     f"{statistics.mean(accs):.2%} (min {min(accs):.2%}, max {max(accs):.2%}) |")
    return "\n".join(lines)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["machine"]:
        print(machine_table())
        return 0
    if argv[:1] == ["startup"]:
        print(startup_table())
        return 0
    if argv[:1] == ["sparsity"]:
        print(sparsity_table(argv[1:]))
        return 0
    if argv[:1] == ["seeds"] and len(argv) > 2 and argv[2] == "--":
        print(seeds_table([int(s) for s in argv[1].split(",")], argv[3:]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--doc", default="docs/benchmarks.md")
    parser.add_argument("--only", nargs="*", help="run only these sections")
    parser.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    args = parser.parse_args(argv)
    text = Path(args.doc).read_text(encoding="utf-8")
    for name, command in generated_blocks(text):
        if args.only and name not in args.only:
            continue
        run_block(args.doc, name, command, args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
