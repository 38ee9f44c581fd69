"""Regenerate the figures of ``docs/benchmarks.md`` by running the commands the document itself lists.

    python -m hogwild.bench_docs [--doc docs/benchmarks.md] [--only SECTION ...] [--dry-run]
    python -m hogwild.bench_docs machine | startup | sparsity RESULTS.json ...

Every generated block of the document is a fenced ``sh`` command followed by a marker pair
``<!-- bench:NAME -->`` ... ``<!-- /bench:NAME -->``. A ``hogwild bench ... --markdown FILE --section NAME``
command writes its own table into the block; for any other command the block becomes that command's standard
output. So the document names, next to each figure, exactly the command that produced it, and this module is
the single command that reruns them all, in document order. ``$VARIABLES`` in the commands are expanded from the
environment (``$HOGWILD_TEST_DATA`` is the folder of the shared LIBSVM sets).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

BLOCK = re.compile(r"```sh\n(?P<command>.*?)```\s*\n<!-- bench:(?P<name>[\w-]+) -->", re.S)


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
        from .bench import replace_section

        output = completed.stdout.strip("\n")
        body = output if output.lstrip().startswith(("|", "#")) else f"```text\n{output}\n```"
        text = Path(doc).read_text(encoding="utf-8")
        Path(doc).write_text(replace_section(text, name, body + "\n"), encoding="utf-8")


def machine_table():
    """The machine as a Markdown table (the bench's `machine_info`)."""
    from .bench import machine_info

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


def startup_table(repeats=7):
    """Median and min wall time of the start-up commands, each a fresh process, as a Markdown table."""
    lines = ["| command | median (ms) | min (ms) |", "|---|---:|---:|"]
    for command in STARTUP_COMMANDS:
        argv = [sys.executable, "-m", "hogwild.cli.main", *command[1:]] if command[0] == "hogwild" else [sys.executable, *command[1:]]
        subprocess.run(argv, capture_output=True, check=True)  # warm the file cache once
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=True)
            times.append(1000 * (time.perf_counter() - start))
        lines.append(f"| `{shlex.join(command)}` | {statistics.median(times):.0f} | {min(times):.0f} |")
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
