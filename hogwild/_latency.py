"""Measure the round-trip time of one cache line between two worker threads (see kernels.pingpong)."""

import threading
import time

import numpy as np


def core_to_core_round_trip_ns(rounds=200_000):
    """Median nanoseconds for one cache line to go to the other thread and back (two threads, nogil)."""
    from hogwild.kernels.pingpong import ping_pong

    flag = np.zeros(1, dtype=np.int64)
    ping_pong(flag, 1, 0)  # compile outside the timing
    samples = []
    for _ in range(3):
        flag[0] = 0
        other = threading.Thread(target=ping_pong, args=(flag, 1, rounds))
        start = time.perf_counter()
        other.start()
        ping_pong(flag, 0, rounds)
        other.join()
        samples.append((time.perf_counter() - start) / rounds * 1e9)
    return float(np.median(samples))
