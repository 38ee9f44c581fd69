"""``hogwild bench``: the speedup study (modes x threads x devices, against peers) as JSON, Markdown and a plot."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from hogwild.cli.options import build_config, config_options

# TrainConfig fields that mean the same thing for every system in the study; mode, threads, device and epochs
# are the study's own axes (--modes, --threads, --device, --epochs).
PASSED_THROUGH = (
    "model", "loss", "multiclass", "penalty", "l2", "l1", "epsilon", "fit_intercept", "hidden", "activation",
    "optimizer", "momentum", "beta1", "beta2", "schedule", "lr", "decay", "power_t", "clip", "clip_norm",
    "aggregate", "average_every", "batch_size", "chunk_rows", "dtype", "shuffle", "seed",
)


class CommaList(click.ParamType):
    """A comma-separated list of names from ``choices`` (or of positive integers with ``integers=True``)."""

    def __init__(self, choices=None, integers=False):
        self.choices, self.integers = choices, integers
        self.name = "N[,N...]" if integers else "|".join(choices or ()) + "[,...]"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        parts = [part.strip() for part in str(value).split(",") if part.strip()]
        if not parts:
            self.fail("give at least one value", param, ctx)
        if self.integers:
            try:
                numbers = tuple(int(part) for part in parts)
            except ValueError:
                self.fail(f"{value!r} is not a comma-separated list of integers", param, ctx)
            if any(n < 1 for n in numbers):
                self.fail(f"{value!r}: every value must be a positive integer", param, ctx)
            return numbers
        unknown = [part for part in parts if part not in self.choices]
        if unknown:
            self.fail(f"{unknown[0]!r} is not one of {', '.join(self.choices)}", param, ctx)
        return tuple(parts)


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _clean(value):
    """JSON has no NaN/inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _write_text(path, text):
    if path == "-":
        click.echo(text, nl=False)
        return
    from hogwild._io import atomic_write

    with atomic_write(path, "w") as handle:
        handle.write(text)


@click.command(
    epilog="Examples:\n\n\b\n"
    "  hogwild bench --synthetic rcv1 --rows 100000 --threads 1,2 --modes serial,async,sync,locked \\\n"
    "      --peers sklearn,vw,liblinear --epochs 5 --repeats 3 --out rcv1.json --plot rcv1.png\n"
    "  hogwild bench a9a --threads 1,2 --markdown docs/benchmarks.md --section a9a\n"
    "  hogwild bench --synthetic dense --rows 60000 --model mlp --hidden 128 --batch-size 64 --peers torch,sklearn\n"
    "  hogwild bench --synthetic rcv1 --device cpu,cuda --modes async,atomic,sync --threads 1,2 --epochs 10",
)
@click.argument("data", nargs=-1, type=click.Path(exists=True, dir_okay=True))
@click.option("--synthetic", type=click.Choice(["rcv1", "url", "kdda", "dense"]), help="Benchmark a synthetic set shaped like this instead of DATA.")
@click.option("--rows", type=click.IntRange(min=4), help="Rows of the synthetic set (default: the preset's), or the first N rows of DATA.")
@click.option("--features", type=click.IntRange(min=1), help="Features of the synthetic set (default: the preset's).")
@click.option("--classes", type=click.IntRange(min=2), help="Classes of the synthetic set (more than 2: multiclass).")
@click.option("--augment-rows", type=click.IntRange(min=1),
              help="With an MNIST IDX images file as DATA: grow it to this many rows by shifts of up to 2 pixels "
                   "(train and test rows come from disjoint originals).")
@click.option("--threads", "threads", type=CommaList(integers=True), default="1,2", show_default=True,
              help="Thread counts to run; counts above the cores available run and are flagged oversubscribed.")
@click.option("--modes", type=CommaList(["auto", "serial", "async", "sync", "average", "locked", "atomic"]), default="auto,serial,async,average",
              show_default=True, help="Update modes of our engine to run (auto, the default, at the largest thread "
                                      "count only: it chooses among the smaller ones); a mode a device lacks (atomic "
                                      "on the CPU, average or locked on a GPU) is reported as skipped.")
@click.option("--device", "devices", type=CommaList(["cpu", "cuda"]), default="cpu", show_default=True,
              help="Devices to run our engine on (an axis of the study, like --modes); an absent device is reported "
                   "as skipped. A GPU run is also compared with the fastest CPU run.")
@click.option("--peers", type=CommaList(["sklearn", "vw", "liblinear", "torch"]), default=None,
              help="Peer systems to run on the same split; a missing package is reported as skipped.")
@click.option("--nodes", "nodes", type=CommaList(integers=True), default=None,
              help="The cluster axis: node counts to train on a Ray cluster (e.g. 1,2), each with every --cross-nodes "
                   "mode [default: no cluster runs]. Needs hogwild[ray].")
@click.option("--cross-nodes", "cross_nodes", type=CommaList(["ps", "average"]), default="ps,average", show_default=True,
              help="With --nodes: the cross-node modes to run (with the cluster options' defaults: --sync-every "
                   "and the rest are hogwild train's).")
@click.option("--bench-cluster", "bench_cluster", metavar="ADDRESS", default=None,
              help="With --nodes: local:N, auto or HOST:PORT [default: local:<largest --nodes>].")
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True, help="Epochs (passes) for every system.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True, help="Timed repeats of each run (median, min, max).")
@click.option("--target-loss", type=float, default=None,
              help="Objective whose first crossing is 'time to target' (default: 1.01 x the best final objective with a trace).")
@click.option("--target-accuracy", type=click.FloatRange(0.0, 1.0, min_open=True), default=None,
              help="Test accuracy (a fraction) whose first crossing is 'time to target acc' "
                   "(default: the best peer's final accuracy).")
@click.option("--ceiling/--no-ceiling", default=True, show_default=True,
              help="Measure the machine's process ceiling (independent processes together vs one alone) and report "
                   "each parallel run's speedup as a share of it.")
@click.option("--test-fraction", type=click.FloatRange(0.0, 0.9), default=0.2, show_default=True,
              help="Rows held out (fixed seed) for test accuracy.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the results JSON here ('-' for stdout).")
@click.option("--markdown", type=click.Path(dir_okay=False), help="Write the Markdown table here ('-' for stdout).")
@click.option("--section", help="With --markdown: replace only the '<!-- bench:SECTION -->' block of an existing file.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Write a PNG: speedup vs threads, objective vs time (needs matplotlib).")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
@config_options(include=PASSED_THROUGH)
def bench(data, synthetic, rows, features, classes, augment_rows, threads, modes, devices, peers, nodes, cross_nodes,
          bench_cluster, epochs, repeats, target_loss, target_accuracy, ceiling, test_fraction, out, markdown, section,
          plot_path, quiet, **options):
    """Time our modes x threads x devices against peer systems on one dataset and one split.

    Each run reports seconds per epoch, rows/s, nnz/s, speedup over 1 thread of the same mode and that speedup
    as a share of the machine's process ceiling (measured in the same run), the training objective (computed the
    same way for every system), test accuracy, and the time to a target objective and to a target test accuracy.
    Without --out or --markdown the Markdown table goes to stdout. Progress and a short summary go to stderr.
    """
    from hogwild.bench.report import plot, replace_section, summary_lines, to_markdown
    from hogwild.bench.study import run_bench

    if (features or classes) and not synthetic:
        raise click.UsageError("--features and --classes shape a --synthetic set")
    if section and not markdown:
        raise click.UsageError("--section needs --markdown FILE")
    if bench_cluster and not nodes:
        raise click.UsageError("--bench-cluster goes with --nodes")
    config = build_config(options)
    progress = None if quiet else (lambda message: click.echo(f"bench: {message}", err=True))
    results = run_bench(
        tuple(data), synthetic=synthetic, rows=rows, config=config, threads=threads, modes=modes, devices=devices,
        peers=peers or (), epochs=epochs, repeats=repeats, target_loss=target_loss, target_accuracy=target_accuracy,
        ceiling=ceiling, test_fraction=test_fraction,
        seed=config.seed, progress=progress, features=features, classes=classes, augment_rows=augment_rows,
        nodes=nodes or (), cross_nodes=cross_nodes, cluster=bench_cluster,
    )
    if out:
        _write_text(out, json.dumps(_clean(results), indent=2, default=_json_default) + "\n")
    table = to_markdown(results)
    if markdown:
        if section:
            path = Path(markdown)
            text = path.read_text(encoding="utf-8") if path.exists() else ""
            _write_text(markdown, replace_section(text, section, table))
        else:
            _write_text(markdown, table)
    if plot_path:
        plot(results, plot_path)
    if not out and not markdown:
        click.echo(table, nl=False)
    if not quiet:
        for line in summary_lines(results):
            click.echo(f"bench: {line}", err=True)
