"""Run one compiled ``nogil`` kernel call per worker on Python threads, and collect failures.

Why threads and not one ``prange``: between two chunk calls the engine regains control to report progress,
notice Ctrl-C, take a checkpoint or see that a worker failed. Kernels called this way must be compiled
with ``parallel=False``: Numba's workqueue threading layer aborts on concurrent entry.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, wait

from .errors import WorkerError


class WorkerPool:
    """A fixed set of threads; `run` calls ``task(worker)`` once per worker and waits for all of them.

    The calling thread runs the first worker of every round itself, and the pool's ``n_workers - 1`` threads the
    others. Why: a thread that sleeps between rounds is placed again when it wakes, and with every worker on a
    pool thread while the caller slept, the scheduler put two of them on one of two vCPUs for about one round in
    six (that round took 2x; timed by ``--mode auto``, it could make ``serial`` look faster than ``average`` x2).
    The caller is already running on its core, so only the others are placed, beside it.

    Use as a context manager so the threads are joined however training ends.
    """

    def __init__(self, n_workers):
        self.n_workers = int(n_workers)
        self.stop = threading.Event()  # set by the engine on Ctrl-C or a failure; workers poll it between chunks
        self._executor = (ThreadPoolExecutor(max_workers=self.n_workers - 1, thread_name_prefix="hogwild-worker")
                          if self.n_workers > 1 else None)

    def run(self, task, workers=None, row_range=None, on_failure=None):
        """Run ``task(w)`` for each worker ``w``; return their results in worker order.

        If one raises, the stop event is set (so the others quit at their next chunk), ``on_failure()`` is
        called at once while the others may still be running (sync mode uses it to release workers waiting
        at an in-kernel barrier for the one that failed; for a pool worker it runs on that worker's thread, since
        the caller may itself be waiting at such a barrier), and a `WorkerError` names the first failing worker
        and, via ``row_range(w) -> (start, stop)``, the rows it was on.
        """
        workers = list(range(self.n_workers) if workers is None else workers)
        if not workers:
            return []
        if self.n_workers == 1 or len(workers) == 1:
            # No thread hop for serial runs: keeps tracebacks simple and timings honest.
            return [self._call(task, w, row_range) for w in workers]
        failed = threading.Lock()

        def fail():
            self.stop.set()
            if on_failure is not None and failed.acquire(blocking=False):  # once per round
                on_failure()

        def done(future):
            if not future.cancelled() and future.exception() is not None:
                fail()

        futures = [(w, self._executor.submit(task, w)) for w in workers[1:]]
        for _, future in futures:
            future.add_done_callback(done)
        first, first_error = None, None
        try:
            first = task(workers[0])
        except BaseException as exc:  # noqa: BLE001 - re-raised below with the worker named
            first_error = exc
            fail()
        try:
            wait([future for _, future in futures])  # every worker ends its chunk before the round is over
        except BaseException:
            self.stop.set()  # a second Ctrl-C while waiting: the others stop at their next chunk
            raise
        results, failure = [first], (workers[0], first_error) if first_error is not None else None
        for w, future in futures:
            try:
                results.append(future.result())
            except BaseException as exc:  # noqa: BLE001 - re-raised below with the worker named
                self.stop.set()
                results.append(None)
                if failure is None:
                    failure = (w, exc)
        if failure is not None:
            w, exc = failure
            if isinstance(exc, (KeyboardInterrupt, WorkerError)):
                raise exc
            start, stop = row_range(w) if row_range else (-1, -1)
            raise WorkerError(w, start, stop, exc) from exc
        return results

    def _call(self, task, w, row_range):
        try:
            return task(w)
        except (KeyboardInterrupt, WorkerError):
            raise
        except Exception as exc:
            start, stop = row_range(w) if row_range else (-1, -1)
            raise WorkerError(w, start, stop, exc) from exc

    def close(self):
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def worker_count(config, n_rows):
    """How many workers a CPU runner starts: one for ``serial``, else ``--threads`` (default: the cores
    available), never more than there are rows."""
    if config.mode == "serial":
        return 1
    from ._io import available_cores

    return max(1, min(int(config.threads or available_cores()), int(n_rows)))
