"""Watching a run while it trains: one JSON record per chunk (and per epoch) appended to a file as it happens.

`JsonlLog` is what ``hogwild train --log-jsonl FILE`` uses; from Python::

    log = JsonlLog("run.jsonl")
    hogwild.train(X, y, callback=log.on_event, hooks=[log.on_chunk])

Every line is one JSON object, written and flushed at once, so ``tail -f`` or a notebook can follow a long run
(`read_log` reads it back; ``hogwild plot`` draws it). Records, in order:

- ``{"kind": "start", "time", "pid", "config"}`` once;
- ``{"kind": "chunk", "time", "elapsed", "epoch", "rows_done", "rows_total", "rows_per_s", "worker_rows_per_s",
  "loss", "rss_bytes"}`` at every chunk boundary: ``time`` is Unix time and ``elapsed`` seconds since the start;
  ``epoch`` is 1-based (the epoch in progress); ``rows_per_s`` is the rate since the previous record and
  ``worker_rows_per_s`` the same per worker (None where the runner does not tell: ``--mode auto``, the GPU, a
  cluster); ``loss`` is the epoch's progressive training loss so far; ``rss_bytes`` the process's resident memory;
- ``{"kind": "epoch", "time", "elapsed", "rss_bytes", "peak_rss_bytes", ...}`` after each epoch, with the
  history record's fields (train_loss, test_accuracy, seconds, rows_per_s, ...); on a cluster also ``"nodes"``:
  each node's rows, rows/s, staleness and time spent communicating that epoch.

The file is opened for appending (a rerun adds to it; each run starts with its own "start" record).
"""

from __future__ import annotations

import json
import math
import os
import time

from .memory import peak_resident_bytes, resident_bytes


def _plain(value):
    """JSON-able: NumPy scalars and arrays unwrapped, non-finite floats as None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


class JsonlLog:
    """An append-only JSON-lines log of a run (see the module docstring); ``path`` ``-`` is stdout."""

    def __init__(self, path, config=None):
        from ._io import open_log

        self.path = path
        self.handle = open_log(path)
        self.started = time.time()
        self.last_time = None
        self.last_rows = None
        self.last_workers = None
        self.last_epoch = None
        self.event = None
        self._write({"kind": "start", "time": self.started, "pid": os.getpid(),
                     "config": config.to_dict() if hasattr(config, "to_dict") else config})

    def _write(self, record):
        self.handle.write(json.dumps(_plain(record), allow_nan=False) + "\n")
        self.handle.flush()

    def on_event(self, event):
        """The engine's ``callback``: keeps the chunk event for `on_chunk`, writes epoch records."""
        if event.get("kind") == "chunk":
            self.event = event
            return
        if event.get("kind") == "epoch":
            now = time.time()
            record = {"kind": "epoch", "time": now, "elapsed": now - self.started}
            record.update((k, v) for k, v in event.items() if k not in ("kind", "cluster"))
            record.update(rss_bytes=resident_bytes(), peak_rss_bytes=peak_resident_bytes())
            cluster = event.get("cluster")
            if isinstance(cluster, dict) and cluster.get("nodes"):
                record["nodes"] = [{key: node.get(key) for key in ("node", "host", "rows", "rows_per_s",
                                                                   "staleness_mean", "comm_fraction", "lost")}
                                   for node in cluster["nodes"]]
            self._write(record)
            # the next epoch counts its rows from 0, from now
            self.last_time, self.last_rows, self.last_workers = time.perf_counter(), 0, None
            self.last_epoch = int(event.get("epoch", 0)) + 1

    def on_chunk(self, loop):
        """A chunk hook (``hooks=[log.on_chunk]``): one record with the rates since the previous one."""
        now = time.perf_counter()
        event = self.event or {}
        epoch = event.get("epoch", loop.epoch + 1)
        rows = int(event.get("rows_done", loop.position()))
        workers = getattr(loop.runner, "worker_rows", None)
        workers = workers() if callable(workers) else None
        rate = worker_rates = None
        if self.last_time is not None and self.last_rows is not None and epoch == self.last_epoch:
            seconds = max(now - self.last_time, 1e-9)
            rate = (rows - self.last_rows) / seconds
            before = self.last_workers if self.last_workers is not None else [0] * len(workers or ())
            if workers is not None and len(workers) == len(before):
                worker_rates = [(a - b) / seconds for a, b in zip(workers, before)]
        self.last_time, self.last_rows, self.last_workers, self.last_epoch = now, rows, workers, epoch
        wall = time.time()
        self._write({"kind": "chunk", "time": wall, "elapsed": wall - self.started, "epoch": epoch,
                     "rows_done": rows, "rows_total": event.get("rows_total", getattr(loop.runner, "n_rows", None)),
                     "rows_per_s": rate, "worker_rows_per_s": worker_rates, "loss": event.get("loss"),
                     "rss_bytes": resident_bytes()})

    def close(self):
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def read_log(path):
    """The records of a JSON-lines log, in order; `DataError` naming the file and line of a line that is not one."""
    from .errors import DataError

    records = []
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a log") from None
    with handle:
        for number, line in enumerate(handle, 1):
            text = line.strip()
            if not text:
                continue
            try:
                record = json.loads(text)
            except (ValueError, UnicodeDecodeError):
                if not line.endswith(b"\n"):
                    break  # the last line of a log still being written: not finished yet
                raise DataError(f"{path}:{number}: not a JSON record (a --log-jsonl file has one per line)") from None
            if not isinstance(record, dict) or "kind" not in record:
                raise DataError(f"{path}:{number}: not a --log-jsonl record (no \"kind\")")
            records.append(record)
    return records


__all__ = ["JsonlLog", "read_log"]
