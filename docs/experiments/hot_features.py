"""Can a layout trick rescue async scaling on the rcv1-shaped set? Run: python docs/experiments/hot_features.py

Two ideas against the write-sharing that `contention.py` identifies, each compared with plain Hogwild! in the
same run (200,000 rows, `optimal` schedule, the engine's block-shuffled row order, best of 2 x 3 epochs):

1. **Relabel features by frequency** (the most common feature gets id 0, ...): a row's popular coordinates
   then share a few cache lines instead of one line each, so a row misses on fewer lines. Done through the
   engine on a relabelled copy of the data.
2. **Per-worker copies of the H hottest coordinates**: each worker reads and writes its own copy of them
   through an index map (``where[j]`` is ``j`` for a shared coordinate, a slot of the worker's private block
   for a hot one: one extra load per non-zero and no branch) and adds its accumulated change to the shared
   weight every ``every`` rows. A standalone kernel beside a plain twin of the engine's hot loop, so that
   only the index map differs.

The kernels here are experiments, not part of the engine; the engine's own kernel is
`hogwild.kernels.linear.sgd_rows_single`.
"""

import math
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from numba import njit

import hogwild
from hogwild._latency import core_to_core_round_trip_ns
from hogwild.datasets.synth import make_synthetic
from hogwild.order import epoch_order
from hogwild.kernels.linear import optimal_t0

L2 = 1e-5


@njit(nogil=True)
def _plain_rows(indptr, indices, data, y, order, start, stop, w, reg, b, t0, t_start, t_stride):
    for r in range(start, stop):
        i = order[r]
        eta = np.float32(1.0 / (L2 * (t0 + t_start + (r - start) * t_stride)))
        score = np.float32(0.0)
        for p in range(indptr[i], indptr[i + 1]):
            score += data[p] * w[indices[p]]
        z = (score + b[0]) * y[i]
        g = np.float32(-y[i] / (1.0 + math.exp(z)) if z > -18.0 else -y[i])
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            w[j] = w[j] * max(np.float32(0.0), np.float32(1.0) - eta * reg[j]) - eta * (g * data[p])
        b[0] -= 0.01 * eta * g


@njit(nogil=True)
def _hot_copy_rows(indptr, indices, data, y, order, start, stop, W, where, reg, b, t0, t_start, t_stride,
                   hot, first_slot, base, every):
    since = 0
    for r in range(start, stop):
        i = order[r]
        eta = np.float32(1.0 / (L2 * (t0 + t_start + (r - start) * t_stride)))
        score = np.float32(0.0)
        for p in range(indptr[i], indptr[i + 1]):
            score += data[p] * W[where[indices[p]]]
        z = (score + b[0]) * y[i]
        g = np.float32(-y[i] / (1.0 + math.exp(z)) if z > -18.0 else -y[i])
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            k = where[j]
            W[k] = W[k] * max(np.float32(0.0), np.float32(1.0) - eta * reg[j]) - eta * (g * data[p])
        b[0] -= 0.01 * eta * g
        since += 1
        if since == every or r == stop - 1:
            since = 0
            for s in range(hot.shape[0]):  # publish this worker's change, then start from the shared value
                value = W[hot[s]] + (W[first_slot + s] - base[s])
                W[hot[s]] = value
                W[first_slot + s] = value
                base[s] = value


def _epoch_seconds(run, repeats=2):
    return min(min(run()) for _ in range(repeats))


def main():
    print(f"core-to-core cache-line round trip: {core_to_core_round_trip_ns():.0f} ns")
    X, y, _ = make_synthetic(like="rcv1", n_rows=200_000, seed=0)
    X = X.astype(np.float32)
    n, d = X.shape
    counts = np.bincount(X.indices, minlength=d)
    by_frequency = np.argsort(-counts, kind="stable")

    # 1. relabelled features, through the engine
    rank = np.empty(d, dtype=np.int64)
    rank[by_frequency] = np.arange(d)
    relabelled = sp.csr_matrix((X.data, rank[X.indices].astype(np.int32), X.indptr), shape=X.shape)
    relabelled.sort_indices()

    def engine(M, **config):
        def run():
            result = hogwild.train(M, y, epochs=3, schedule="optimal", **config)
            return [record["seconds"] for record in result.history]
        return run

    print("| layout | serial s/epoch | async x2 s/epoch | async x2 speedup |")
    print("|---|---:|---:|---:|")
    for name, M in (("engine, ids as generated", X), ("engine, ids relabelled by frequency", relabelled)):
        engine(M, mode="serial")()  # compile or load the kernels
        serial = _epoch_seconds(engine(M, mode="serial"))
        parallel = _epoch_seconds(engine(M, mode="async", threads=2))
        print(f"| {name} | {serial:.4f} | {parallel:.4f} | {serial / parallel:.2f}x |")

    # 2. per-worker copies of the hottest coordinates, against a plain twin of the same kernel
    targets = np.asarray(y, dtype=np.float64)
    reg = (L2 * n / np.maximum(counts, 1)).astype(np.float32)
    order = epoch_order(n, 0, 0).expand()
    t0 = optimal_t0(L2)
    pool = ThreadPoolExecutor(2)

    def plain(threads):
        def run():
            w, b, seconds = np.zeros(d, np.float32), np.zeros(1, np.float32), []
            for epoch in range(3):
                start = time.perf_counter()
                cut = np.linspace(0, n, threads + 1).astype(np.int64)
                jobs = [pool.submit(_plain_rows, X.indptr, X.indices, X.data, targets, order, cut[k], cut[k + 1], w,
                                    reg, b, t0, float(epoch * n + k), float(threads)) for k in range(threads)]
                [job.result() for job in jobs]
                seconds.append(time.perf_counter() - start)
            return seconds
        return run

    def hot_copies(threads, H, every):
        block = (H + 15) // 16 * 16 + 16  # whole cache lines of float32, one line apart
        hot = by_frequency[:H].astype(np.int64)

        def run():
            W, b, seconds = np.zeros(d + threads * block + 16, np.float32), np.zeros(1, np.float32), []
            first = [d + 16 + k * block for k in range(threads)]
            where = []
            for k in range(threads):
                m = np.arange(d, dtype=np.int32)
                m[hot] = first[k] + np.arange(H)
                where.append(m)
            bases = [np.zeros(H, np.float32) for _ in range(threads)]
            for epoch in range(3):
                start = time.perf_counter()
                cut = np.linspace(0, n, threads + 1).astype(np.int64)
                jobs = [pool.submit(_hot_copy_rows, X.indptr, X.indices, X.data, targets, order, cut[k], cut[k + 1],
                                    W, where[k], reg, b, t0, float(epoch * n + k), float(threads), hot, first[k],
                                    bases[k], every) for k in range(threads)]
                [job.result() for job in jobs]
                seconds.append(time.perf_counter() - start)
            return seconds
        return run

    plain(1)(), hot_copies(1, 16, 64)()  # compile
    serial = _epoch_seconds(plain(1))
    print()
    print(f"Standalone kernels; speedups are over the plain kernel on 1 thread ({serial:.4f} s/epoch).")
    print()
    print("| kernel | 1 thread s/epoch | 2 threads s/epoch | 2-thread speedup |")
    print("|---|---:|---:|---:|")
    parallel = _epoch_seconds(plain(2))
    print(f"| plain Hogwild! | {serial:.4f} | {parallel:.4f} | {serial / parallel:.2f}x |")
    for H, every in ((64, 512), (1024, 512), (4096, 512), (4096, 64)):
        share = counts[by_frequency[:H]].sum() / counts.sum()
        one = _epoch_seconds(hot_copies(1, H, every))
        two = _epoch_seconds(hot_copies(2, H, every))
        print(f"| {H} hottest copied ({share:.0%} of non-zeros), publish every {every} rows | {one:.4f} | {two:.4f} "
              f"| {serial / two:.2f}x |")


if __name__ == "__main__":
    main()
