"""Hold the BLAS to one thread per call while worker threads run their own GEMMs (threadpoolctl).

The dense MLP kernels (`hogwild.kernels.mlp_dense`) call the BLAS that SciPy ships from every worker thread at
once. OpenBLAS (and MKL) would start their own threads for each of those calls: T workers x T BLAS threads on
T cores, each GEMM (3-6 MFLOP for a micro-batch of 32-64 rows x 784 x 128) waiting at the end for the BLAS
threads the scheduler has not run yet. On a 2-core Xeon shared with other work, an epoch of the 784-128-10
network (batch 32 or 64, Adam) took 1.4-25x longer with OpenBLAS left at 2 threads than at 1, with one worker
as with two (``docs/experiments/mlp_speed_target.py --blas-unlimited``, docs/benchmarks.md). One BLAS thread per
worker is what Hogwild! wants: the parallelism is the workers'.

How: threadpoolctl's limit, entered around each epoch's training and left after it, so that the user's own
NumPy/SciPy work between epochs (an evaluation callback, another library) keeps the BLAS threads it had.
Why threadpoolctl and not ``OPENBLAS_NUM_THREADS``: the variable is read once, when the BLAS is loaded, so it
only works if set before NumPy or SciPy is first imported, and it would change the user's whole process.
threadpoolctl finds every loaded OpenBLAS, MKL or BLIS (SciPy's and NumPy's are different libraries) and sets
and restores their thread counts through their own APIs.

threadpoolctl is a dependency of hogwild (pure Python, no dependencies of its own). Where it cannot be imported,
`can_limit_blas` says so and the MLP runner keeps the loop kernels of `hogwild.kernels.mlp`, which call
no BLAS: slower on dense input, never oversubscribed.

The limit is process-wide while it holds (that is how these libraries work): two trainings running at the same
time in one process see each other's limit, which is one thread per call either way.
"""

from __future__ import annotations

import contextlib
import threading

_lock = threading.Lock()
_controller = []  # the threadpoolctl controller, created once (finding the loaded libraries takes ~5 ms)


def _find_controller():
    try:
        import threadpoolctl
    except ImportError:
        return None
    # Numba calls SciPy's BLAS (scipy.linalg.cython_blas); load it first so that the controller sees it.
    import scipy.linalg.cython_blas  # noqa: F401

    return threadpoolctl.ThreadpoolController()


def _get_controller():
    with _lock:
        if not _controller:
            _controller.append(_find_controller())
        return _controller[0]


def can_limit_blas():
    """Whether `one_blas_thread` can hold the BLAS to one thread (threadpoolctl is importable)."""
    return _get_controller() is not None


def one_blas_thread():
    """A context manager that holds every loaded BLAS to one thread while it is entered and restores the
    thread counts on exit; a no-op where threadpoolctl is missing (see `can_limit_blas`)."""
    controller = _get_controller()
    if controller is None:
        return contextlib.nullcontext()
    return _Limit(controller)


class _Limit:
    """threadpoolctl's limiter applies its limit when created: this one applies it on entry."""

    def __init__(self, controller):
        self._controller, self._limiter = controller, None

    def __enter__(self):
        self._limiter = self._controller.limit(limits=1, user_api="blas")
        return self

    def __exit__(self, *exc):
        self._limiter.restore_original_limits()
        return False


__all__ = ["can_limit_blas", "one_blas_thread"]
