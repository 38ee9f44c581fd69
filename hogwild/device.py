"""Where training runs: `resolve_device` turns ``device="cpu"|"cuda"|"auto"`` into ``"cpu"`` or ``"cuda"``.

``numba.cuda`` (the ``numba-cuda`` package, the ``cuda`` extra) is imported here lazily and only when a GPU is
asked for, so CPU-only installs never pay for it. Under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)
``cuda.is_available()`` is True: that is how the test suite exercises the GPU path on machines without one.
"""

from __future__ import annotations

import os
import warnings

from .errors import ConfigError, NoCudaError

DEVICES = ("cpu", "cuda", "auto")


class CudaFallbackWarning(UserWarning):
    """``device="auto"`` found no usable CUDA GPU and trains on the CPU instead."""


def _cuda_status():
    """``(usable, reason)``: whether numba.cuda can launch kernels here, and why not when it cannot."""
    try:
        from numba import cuda
    except Exception as exc:  # ImportError, or a broken CUDA toolkit raising at import
        return False, f"numba.cuda cannot be imported: {exc}; install the 'cuda' extra (numba-cuda)"
    try:
        if cuda.is_available():
            return True, ""
        return False, "numba.cuda found no usable GPU or driver"
    except Exception as exc:  # driver present but broken
        return False, f"the CUDA driver failed: {exc}"


def cuda_usable():
    """True when numba.cuda can launch kernels (a real GPU, or the simulator)."""
    return _cuda_status()[0]


def is_simulator():
    """True when numba.cuda runs kernels on the CPU simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def resolve_device(name, *, notify=True):
    """The device training will use, ``"cpu"`` or ``"cuda"``, for a requested ``"cpu"``, ``"cuda"`` or ``"auto"``.

    ``"cuda"`` raises `NoCudaError` (one sentence suggesting ``--device cpu``) when numba-cuda is missing or no
    GPU is usable. ``"auto"`` returns ``"cuda"`` when one is usable, else ``"cpu"`` and, with ``notify``, emits a
    `CudaFallbackWarning` whose message the CLI prints as its one-line notice.
    """
    if name not in DEVICES:
        raise ConfigError("device", f"--device must be one of {', '.join(DEVICES)}; got {name!r}")
    if name == "cpu":
        return "cpu"
    usable, reason = _cuda_status()
    if usable:
        return "cuda"
    if name == "cuda":
        raise NoCudaError(reason)
    if notify:
        warnings.warn(f"--device auto: no CUDA GPU found ({reason}); training on the CPU", CudaFallbackWarning, stacklevel=2)
    return "cpu"


def gpu_name():
    """Name of the current CUDA device (e.g. "NVIDIA H100 80GB HBM3"), "CUDA simulator", or None without one."""
    if not cuda_usable():
        return None
    if is_simulator():
        return "CUDA simulator"
    from numba import cuda

    name = cuda.get_current_device().name
    return name.decode() if isinstance(name, bytes) else str(name)
