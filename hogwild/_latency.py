"""Measure the round-trip time of one cache line between two worker threads (see kernels.pingpong)."""

import threading
import time

import numpy as np


def core_to_core_round_trip_ns(rounds=200_000, max_spins=-1):
    """Median nanoseconds for one cache line to go to the other thread and back (two threads, nogil).

    With ``max_spins >= 0``, None when a wait took longer than that many looks at the line (the two threads were
    not running at once: the machine is busy), so that a caller in a hurry is never held up by the scheduler.
    """
    from hogwild.kernels.pingpong import ping_pong

    flag = np.zeros(1, dtype=np.int64)
    ping_pong(flag, 1, 0, max_spins)  # compile outside the timing
    samples = []
    for _ in range(3):
        flag[0] = 0
        other = threading.Thread(target=ping_pong, args=(flag, 1, rounds, max_spins))
        start = time.perf_counter()
        other.start()
        played = ping_pong(flag, 0, rounds, max_spins)
        other.join()
        if played < rounds:
            return None
        samples.append((time.perf_counter() - start) / rounds * 1e9)
    return float(np.median(samples))
