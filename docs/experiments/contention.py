"""Is async's 2-thread speedup limited by threads or by shared cache lines? Run: python docs/experiments/contention.py

Trains the rcv1-shaped synthetic set (200,000 rows) in storage order, serial vs async on 2 threads, twice:
as generated (popular features shared by both workers' shards), and with the second half of the rows moved
onto a disjoint copy of the feature space (same rows, same work, nothing shared between the two workers).
If async scales on the disjoint copy but not on the shared one, the threads are fine and the cost is the
cache-line traffic of write-shared coordinates; the core-to-core round trip printed first says how expensive
that traffic is on this machine right now.
"""

import numpy as np
import scipy.sparse as sp

import hogwild
from hogwild._latency import core_to_core_round_trip_ns
from hogwild.datasets.synth import make_synthetic


def best_epoch(X, y, **config):
    result = hogwild.train(X, y, epochs=3, schedule="optimal", shuffle=False, **config)
    return min(record["seconds"] for record in result.history)


def main():
    print(f"core-to-core cache-line round trip: {core_to_core_round_trip_ns():.0f} ns")
    X, y, _ = make_synthetic(like="rcv1", n_rows=200_000, seed=0)
    n, d = X.shape
    coo = X.tocoo()
    moved = np.where(coo.row >= n // 2, d, 0)
    disjoint = sp.csr_matrix((coo.data, (coo.row, coo.col + moved)), shape=(n, 2 * d))
    print("| features | serial s/epoch | async x2 s/epoch | speedup |")
    print("|---|---:|---:|---:|")
    for name, M in (("shared (as generated)", X), ("disjoint halves", disjoint)):
        best_epoch(M, y, mode="serial")  # compile / load kernels
        serial = min(best_epoch(M, y, mode="serial") for _ in range(3))
        parallel = min(best_epoch(M, y, mode="async", threads=2) for _ in range(3))
        print(f"| {name} | {serial:.3f} | {parallel:.3f} | {serial / parallel:.2f}x |")


if __name__ == "__main__":
    main()
