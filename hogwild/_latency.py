"""Measure the round-trip time of one cache line between two worker threads (see kernels.pingpong)."""

import threading
import time

import numpy as np


WARM_ROUNDS = 20


def core_to_core_round_trip_ns(rounds=200_000, max_spins=-1, pool=None):
    """Median nanoseconds for one cache line to go to the other thread and back (two threads, nogil).

    The timed rounds start once both threads are playing (`WARM_ROUNDS` untimed ones first): starting a thread
    costs tens of microseconds, which over the 200 rounds a training run played read as ~1 us a round trip on a
    machine where it takes ~130 ns (a run now plays 1,000).

    With ``max_spins >= 0``, None when a wait took longer than that many looks at the line (the two threads were
    not running at once: the machine is busy), so that a caller in a hurry is never held up by the scheduler.
    ``pool``: a `hogwild._workers.WorkerPool` of two workers or more whose first pool thread plays the other
    side (a runner's own threads, already started), instead of a thread started for it.
    """
    from hogwild.kernels.pingpong import ping_pong

    flag = np.zeros(1, dtype=np.int64)
    ping_pong(flag, 1, 0, max_spins)  # compile outside the timing
    n_samples = 3

    # one other thread for the three samples: it plays every round without a pause while this thread times them
    # in three stretches
    def other_player():
        if ping_pong(flag, 1, WARM_ROUNDS, max_spins) == WARM_ROUNDS:
            ping_pong(flag, 1, n_samples * rounds, max_spins, WARM_ROUNDS)

    def timing_player():
        samples = []
        first = ping_pong(flag, 0, WARM_ROUNDS, max_spins)
        while first == WARM_ROUNDS + len(samples) * rounds and len(samples) < n_samples:
            start = time.perf_counter()
            first += ping_pong(flag, 0, rounds, max_spins, first)
            samples.append((time.perf_counter() - start) / rounds * 1e9)
        return samples if len(samples) == n_samples else None

    if pool is not None:
        samples = pool.run(lambda w: timing_player() if w == 0 else other_player(), workers=[0, 1])[0]
    else:
        other = threading.Thread(target=other_player)
        other.start()
        samples = timing_player()
        other.join()
    return None if samples is None else float(np.median(samples))
