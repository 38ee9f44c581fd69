"""How well does this machine itself scale to two workers? Run: python docs/experiments/process_ceiling.py

Two independent processes, each training its own copy of the rcv1-shaped rows serially (nothing shared, not
even the memory), started together at a barrier, against one process alone. If each of the two runs as fast
as the lone one, the machine gives 2 workers 2x, and whatever a 2-thread mode loses below that is the price
of what its threads share (cache lines of the model), not of the cores. Same kernels, `optimal` schedule,
median seconds per epoch of 6 epochs, best of two rounds.
"""

import multiprocessing as mp

import numpy as np

N_ROWS = 300_000


def _worker(results, barrier):
    import hogwild
    from hogwild.datasets.synth import make_synthetic

    X, y, _ = make_synthetic("rcv1", n_rows=N_ROWS, seed=0, n_threads=1)
    hogwild.train(X[:2000], y[:2000], epochs=1, mode="serial", schedule="optimal")  # compile or load the kernels
    barrier.wait()
    history = hogwild.train(X, y, epochs=6, mode="serial", schedule="optimal").history
    results.put(float(np.median([record["seconds"] for record in history])))


def _round(n_processes):
    results, barrier = mp.Queue(), mp.Barrier(n_processes)
    processes = [mp.Process(target=_worker, args=(results, barrier)) for _ in range(n_processes)]
    for process in processes:
        process.start()
    times = [results.get() for _ in processes]
    for process in processes:
        process.join()
    return max(times)  # the pair is as fast as its slower member


def main():
    from hogwild._latency import core_to_core_round_trip_ns

    mp.set_start_method("spawn")
    print(f"core-to-core cache-line round trip: {core_to_core_round_trip_ns():.0f} ns; {N_ROWS:,} rcv1-shaped rows")
    alone = min(_round(1) for _ in range(2))
    pair = min(_round(2) for _ in range(2))
    print()
    print("| run | s/epoch | throughput vs one process |")
    print("|---|---:|---:|")
    print(f"| 1 process | {alone:.4f} | 1.00x |")
    print(f"| 2 processes at once (slower of the two) | {pair:.4f} | {2 * alone / pair:.2f}x |")


if __name__ == "__main__":
    main()
