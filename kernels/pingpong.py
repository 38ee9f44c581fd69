"""Core-to-core cache-line latency: two threads bounce one shared int64 back and forth.

Hogwild!'s cost on a real machine is the cache-line traffic between cores writing the same coordinates, so
the bench records this round trip next to its speedups: on a VM the two vCPUs may sit on cores that share a
cache (tens of ns) or on different dies (hundreds), and the same code then scales very differently.
"""

from numba import njit

from hogwild.kernels.atomics import atomic_load, atomic_store


@njit(nogil=True, cache=True)
def ping_pong(flag, player, rounds):
    """Player 0 waits for even values and writes odd ones; player 1 the reverse. Returns rounds played."""
    for r in range(rounds):
        want = 2 * r + player
        while atomic_load(flag, 0) != want:
            pass
        atomic_store(flag, 0, want + 1)
    return rounds
