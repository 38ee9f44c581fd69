"""Per-worker random streams for compiled kernels: xorshift64* on a one-element uint64 state array.

umap-learn's habit: each worker owns a tiny state that it advances itself, instead of sharing NumPy's global
generator (which is neither nogil-safe nor reproducible across threads). A worker's stream depends only on
its seed, so a synchronous run reproduces bit for bit whatever the threads' timing. ``seed_state`` derives
well-mixed, non-zero states from ``(seed, stream)`` with SplitMix64, so neighbouring seeds do not give
correlated streams.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .rl_options import JIT_OPTIONS

_MASK64 = (1 << 64) - 1


def seed_state(seed, stream):
    """A non-zero xorshift state (one-element uint64 array) for worker or evaluation stream ``stream`` of ``seed``."""
    value = (int(seed) * 0x9E3779B97F4A7C15 + int(stream) * 0xD1B54A32D192ED03 + 0x632BE59BD9B4E019) & _MASK64
    # SplitMix64's finalizer: every input bit moves about half of the output bits
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    value ^= value >> 31
    return np.array([value or 0x2545F4914F6CDD1D], dtype=np.uint64)


@njit(**JIT_OPTIONS)
def next_uniform(state):
    """A float64 uniform on [0, 1) from ``state`` (advanced in place): xorshift64* (Vigna 2016), top 53 bits."""
    x = state[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    state[0] = x
    return float((x * np.uint64(0x2545F4914F6CDD1D)) >> np.uint64(11)) * (1.0 / 9007199254740992.0)
