"""``hogwild plot FILE.jsonl -o run.png``: draw a ``train --log-jsonl`` log: loss and throughput against time.

Three panels sharing the time axis (seconds since the run started): the progressive training loss at every chunk
(with each epoch's train and test loss where the log has them), the rows per second overall and per worker,
and the resident memory. Epoch ends are marked. A log still being written can be drawn: its last, unfinished
line is left out. Needs matplotlib (``pip install 'hogwild[plot]'``); without it the command says so in one line.
"""

from __future__ import annotations

import click

CONTEXT = {"max_content_width": 100, "help_option_names": ["-h", "--help"]}


@click.command(context_settings=CONTEXT, epilog="""Examples:

\b
  hogwild train big.svm --epochs 5 --log-jsonl run.jsonl &
  tail -f run.jsonl
  hogwild plot run.jsonl -o run.png
""")
@click.argument("log_path", metavar="FILE.jsonl")
@click.option("-o", "--output", required=True, metavar="FILE",
              help="The image to write (its format from the suffix: .png, .svg, .pdf); replaced atomically.")
@click.option("--title", default=None, help="Title of the figure [default: FILE.jsonl's name].")
def plot(log_path, output, title):
    """Draw the loss, throughput and memory of a --log-jsonl log against time."""
    import os

    from hogwild._io import atomic_write, check_outputs
    from hogwild.errors import DataError
    from hogwild.monitor import read_log

    check_outputs([("-o", output)], inputs=[("FILE.jsonl", log_path)])
    suffix = os.path.splitext(output)[1].lower().lstrip(".")
    if suffix not in ("png", "svg", "pdf"):
        raise click.BadParameter(f"{output}: give a file name ending in .png, .svg or .pdf", param_hint="'-o'")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise click.ClickException("hogwild plot needs matplotlib, which is not installed: pip install "
                                   "'hogwild[plot]'") from None
    records = read_log(log_path)
    chunks = [r for r in records if r.get("kind") == "chunk"]
    if not chunks:
        raise DataError(f"{log_path}: has no chunk records to draw (is it a --log-jsonl file of a run that "
                        "started training?)")
    # a file appended to by several runs: draw the last one
    starts = [i for i, r in enumerate(records) if r.get("kind") == "start"]
    if starts:
        records = records[starts[-1]:]
        chunks = [r for r in records if r.get("kind") == "chunk"] or chunks
    epochs = [r for r in records if r.get("kind") == "epoch"]
    figure = draw(plt, chunks, epochs, title or os.path.basename(log_path))
    with atomic_write(output, "wb") as handle:
        figure.savefig(handle, format=suffix, dpi=120)
    plt.close(figure)


def draw(plt, chunks, epochs, title):
    """The figure of a log's chunk and epoch records."""
    def series(records, key):
        points = [(r["elapsed"], r[key]) for r in records if r.get(key) is not None and r.get("elapsed") is not None]
        return [p[0] for p in points], [p[1] for p in points]

    figure, (loss_axis, rate_axis, memory_axis) = plt.subplots(3, 1, sharex=True, figsize=(8, 8))
    loss_axis.plot(*series(chunks, "loss"), lw=1, label="progressive train loss")
    for key, style in (("train_loss", "o-"), ("test_loss", "s-"), ("validation_loss", "^-")):
        x, y = series(epochs, key)
        if x:
            loss_axis.plot(x, y, style, ms=4, label=f"epoch {key.replace('_', ' ')}")
    loss_axis.set_ylabel("loss")
    loss_axis.legend(fontsize=8)
    loss_axis.set_title(title)
    x, y = series(chunks, "rows_per_s")
    rate_axis.plot(x, y, lw=1, label="all workers")
    workers = [(r["elapsed"], r["worker_rows_per_s"]) for r in chunks if r.get("worker_rows_per_s")]
    n_workers = max((len(w) for _, w in workers), default=0)
    if n_workers > 1:
        for w in range(n_workers):
            points = [(t, rates[w]) for t, rates in workers if len(rates) > w and rates[w] is not None]
            rate_axis.plot([p[0] for p in points], [p[1] for p in points], lw=0.7, alpha=0.7, label=f"worker {w}")
    rate_axis.set_ylabel("rows/s")
    rate_axis.legend(fontsize=8)
    x, y = series(chunks, "rss_bytes")
    memory_axis.plot(x, [v / 2**20 for v in y], lw=1)
    memory_axis.set_ylabel("resident MiB")
    memory_axis.set_xlabel("seconds since the start")
    for record in epochs:
        for axis in (loss_axis, rate_axis, memory_axis):
            axis.axvline(record["elapsed"], color="0.8", lw=0.8, zorder=0)
    figure.tight_layout()
    return figure
