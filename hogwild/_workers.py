"""Run one compiled ``nogil`` kernel call per worker on Python threads, and collect failures.

Why threads and not one ``prange``: between two chunk calls the engine regains control to report progress,
notice Ctrl-C, take a checkpoint or see that a worker failed. Kernels called this way must be compiled
with ``parallel=False``: Numba's workqueue threading layer aborts on concurrent entry.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

from .errors import WorkerError


class WorkerPool:
    """A fixed set of threads; `run` calls ``task(worker)`` once per worker and waits for all of them.

    Use as a context manager so the threads are joined however training ends.
    """

    def __init__(self, n_workers):
        self.n_workers = int(n_workers)
        self.stop = threading.Event()  # set by the engine on Ctrl-C or a failure; workers poll it between chunks
        self._executor = ThreadPoolExecutor(max_workers=self.n_workers, thread_name_prefix="hogwild-worker")

    def run(self, task, workers=None, row_range=None, on_failure=None):
        """Run ``task(w)`` for each worker ``w``; return their results in worker order.

        If one raises, the stop event is set (so the others quit at their next chunk), ``on_failure()`` is
        called at once while the others may still be running (sync mode uses it to release workers waiting
        at an in-kernel barrier for the one that failed), and a `WorkerError` names the first failing worker
        and, via ``row_range(w) -> (start, stop)``, the rows it was on.
        """
        workers = range(self.n_workers) if workers is None else workers
        if self.n_workers == 1 or len(workers) == 1:
            # No thread hop for serial runs: keeps tracebacks simple and timings honest.
            return [self._call(task, w, row_range) for w in workers]
        futures = [(w, self._executor.submit(task, w)) for w in workers]
        pending = [future for _, future in futures]
        while pending:
            finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
            if any(not f.cancelled() and f.exception() is not None for f in finished):
                self.stop.set()
                if on_failure is not None:
                    on_failure()
                wait(pending)
                break
        results, failure = [], None
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
