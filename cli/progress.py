"""Training progress on stderr: a live bar per epoch on a terminal, one summary line per epoch otherwise.

`Progress` is the ``callback`` that `hogwild.engine.train` calls with ``{"kind": "chunk", ...}`` after each
chunk of rows and ``{"kind": "epoch", **history_record}`` after each epoch. Progress never goes to stdout, so
``hogwild train ... > summary.txt`` and ``hogwild predict ... | sort`` see results only.
"""

from __future__ import annotations

import math
import time

import click

# Keys of a history record shown on an epoch line, in this order (results.HISTORY_KEYS plus the optional ones).
EPOCH_LINE_KEYS = (
    "train_loss",
    "validation_loss",
    "validation_accuracy",
    "validation_auc",
    "validation_rmse",
    "test_loss",
    "test_accuracy",
    "test_auc",
    "test_rmse",
    # cluster runs (--cluster): live nodes, mean staleness (ps), MB moved, share of node time communicating
    "nodes",
    "staleness",
    "mb_moved",
    "comm_fraction",
)

BAR_WIDTH = 24
REDRAW_SECONDS = 0.1  # a terminal redrawn more often than this only costs time


def format_rate(per_second):
    """A rate with an SI suffix: 1234567 -> '1.23M'."""
    if per_second is None or not math.isfinite(per_second):
        return "?"
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if per_second >= limit:
            return f"{per_second / limit:.2f}{suffix}"
    return f"{per_second:.0f}"


def format_value(value):
    """A metric for humans: 4 significant digits, 'nan' for missing or non-finite values."""
    if value is None:
        return "nan"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"


def format_epoch_line(record, epochs=None):
    """'epoch 3/10  1.21 s  train_loss 0.3412  test_accuracy 0.8470  1.23M rows/s' for one history record."""
    total = f"/{epochs}" if epochs else ""
    parts = [f"epoch {record.get('epoch', '?')}{total}", f"{record.get('seconds', float('nan')):.2f} s"]
    parts += [f"{key} {format_value(record[key])}" for key in EPOCH_LINE_KEYS if key in record]
    if "rows_per_s" in record:
        parts.append(f"{format_rate(record['rows_per_s'])} rows/s")
    auto = record.get("auto")
    if isinstance(auto, dict):  # --mode auto: what it runs now (or that it is still measuring)
        parts.append(f"auto: {auto.get('choice') or 'measuring'}")
    return "  ".join(parts)


class Progress:
    """Engine callback drawing progress on stderr: a live bar on a terminal, one line per epoch otherwise.

    ``live`` defaults to whether ``stream`` is a terminal; ``quiet`` silences everything (errors still reach
    stderr through the CLI's error funnel, not through here).
    """

    def __init__(self, epochs=None, stream=None, live=None, quiet=False, clock=time.perf_counter):
        self.stream = stream if stream is not None else click.get_text_stream("stderr")
        self.live = _isatty(self.stream) if live is None else bool(live)
        self.quiet = quiet
        self.epochs = epochs
        self.clock = clock
        self._epoch_started = clock()
        self._last_draw = -math.inf
        self._bar_shown = False
        self._anchor = None  # (time, rows_done) at the epoch's first chunk event

    def __call__(self, event):
        if self.quiet:
            return
        kind = event.get("kind")
        if kind == "chunk" and self.live:
            self._draw_bar(event)
        elif kind == "epoch":
            self._end_epoch(event)

    def notice(self, message):
        """One line of information for the user (a fallback, a resumed checkpoint), unless quiet."""
        if not self.quiet:
            self._clear_bar()
            click.echo(f"hogwild: {message}", file=self.stream)

    def _draw_bar(self, event):
        now = self.clock()
        rows_done, rows_total = event.get("rows_done", 0), event.get("rows_total") or 0
        if now - self._last_draw < REDRAW_SECONDS and rows_done < rows_total:
            return
        self._last_draw = now
        fraction = min(1.0, rows_done / rows_total) if rows_total else 0.0
        filled = int(round(fraction * BAR_WIDTH))
        # Measure the rate from the epoch's first chunk on: time before it (loading data, loading compiled
        # kernels) is not rows being processed.
        if self._anchor is None:
            self._anchor = (now, rows_done)
        anchor_time, anchor_rows = self._anchor
        if now > anchor_time and rows_done > anchor_rows:
            rate = (rows_done - anchor_rows) / (now - anchor_time)
        else:
            rate = rows_done / max(now - self._epoch_started, 1e-9)
        total = f"/{self.epochs}" if self.epochs else ""
        loss = event.get("loss")
        loss_text = f"  loss {format_value(loss)}" if loss is not None else ""
        line = (
            f"epoch {event.get('epoch', '?')}{total} [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] "
            f"{fraction * 100:3.0f}%  {format_rate(rate)} rows/s{loss_text}"
        )
        # \r back to the start and \x1b[K to erase what a longer previous line left behind
        self.stream.write("\r" + line + "\x1b[K")
        self.stream.flush()
        self._bar_shown = True

    def _end_epoch(self, event):
        record = {k: v for k, v in event.items() if k != "kind"}
        self._clear_bar()
        click.echo(format_epoch_line(record, self.epochs), file=self.stream)
        self._epoch_started = self.clock()
        self._last_draw = -math.inf
        self._anchor = None

    def _clear_bar(self):
        if self._bar_shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._bar_shown = False

    def close(self):
        """Erase a half-drawn bar (after an error or Ctrl-C) so the error line starts at column 0."""
        self._clear_bar()


def _isatty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or exotic streams
        return False
