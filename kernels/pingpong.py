"""Core-to-core cache-line latency: two threads bounce one shared int64 back and forth.

Hogwild!'s cost on a real machine is the cache-line traffic between cores writing the same coordinates, so
the bench records this round trip next to its speedups: on a VM the two vCPUs may sit on cores that share a
cache (tens of ns) or on different dies (hundreds), and the same code then scales very differently.
"""

from numba import njit

from hogwild.kernels.atomics import atomic_load, atomic_store

# The value either player writes to give up: the other one stops at its next look.
ABORT = -1


@njit(nogil=True, cache=True)
def ping_pong(flag, player, rounds, max_spins=-1, first=0):
    """Player 0 waits for even values and writes odd ones; player 1 the reverse. Returns rounds played.

    ``first`` numbers the first round: a second call with ``first`` = the rounds of the first one continues the
    same game (how `hogwild._latency` leaves the threads' start-up out of the timed rounds).

    With ``max_spins >= 0`` a player that waits longer than that many looks at the flag (the other thread is not
    running: another process holds its core) writes `ABORT` and stops, and so does the other at its next look:
    a measurement that would only time the scheduler ends in bounded time instead.
    """
    for r in range(first, first + rounds):
        want = 2 * r + player
        spins = 0
        while True:
            seen = atomic_load(flag, 0)
            if seen == want:
                break
            if seen == ABORT:
                return r - first
            spins += 1
            if max_spins >= 0 and spins > max_spins:
                atomic_store(flag, 0, ABORT)
                return r - first
        atomic_store(flag, 0, want + 1)
    return rounds
