"""Ctrl-C and SIGTERM as requests to stop at the next chunk boundary, not as exceptions mid-update.

A Python ``KeyboardInterrupt`` raised while worker threads run their kernels would leave the engine
between two chunks with no checkpoint. Instead, the first SIGINT/SIGTERM only sets an event that the
engine polls between chunks: workers finish the chunk they are on, the engine writes a checkpoint when one
is configured and raises `hogwild.errors.TrainingInterrupted`. A second Ctrl-C means "now": the previous
handlers come back and ``KeyboardInterrupt`` is raised as soon as the main thread runs Python again: at once
while it waits, at the end of its chunk while it runs worker 0's kernel (`hogwild._workers.WorkerPool`), a
fraction of a second with the default ``--chunk-rows``.
"""

from __future__ import annotations

import contextlib
import signal
import threading

HANDLED = (signal.SIGINT, signal.SIGTERM)


class InterruptFlag:
    """What the engine polls: ``is_set()`` after the first signal; ``signum`` says which one it was."""

    def __init__(self, event=None):
        self.event = event if event is not None else threading.Event()
        self.signum = None
        self.installed = False  # False off the main thread, where Python cannot install handlers

    def is_set(self):
        return self.event.is_set()

    def set(self, signum):
        """Record ``signum`` (the first one wins) and set the event; also used by tests to simulate one."""
        if self.signum is None:
            self.signum = signum
        self.event.set()

    @property
    def exit_code(self):
        """The shell's exit status for the signal received: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + int(self.signum) if self.signum is not None else 0


@contextlib.contextmanager
def graceful_interrupts(event=None, signals=HANDLED):
    """Yield an `InterruptFlag` set by the first SIGINT/SIGTERM received inside the block.

    ``event``: an existing `threading.Event` to set (for example ``WorkerPool.stop``, so workers see the
    request directly). A second signal restores the previous handlers and raises ``KeyboardInterrupt``.
    Handlers are installed only in the main thread (Python allows nothing else); elsewhere the flag is
    returned unset and signals keep their usual behaviour. The previous handlers are restored on exit.
    """
    flag = InterruptFlag(event)
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {}

    def restore():
        for signum, handler in previous.items():
            # None: a handler installed from C, which Python cannot reinstall; the default is the honest fallback.
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        previous.clear()

    def handler(signum, frame):
        if flag.is_set():
            restore()
            raise KeyboardInterrupt
        flag.set(signum)

    try:
        for signum in signals:
            previous[signum] = signal.getsignal(signum)
            signal.signal(signum, handler)
        flag.installed = True
        yield flag
    finally:
        restore()
