"""What training holds beyond the data, on the rcv1-shaped set. Run: python docs/experiments/training_memory.py

NumPy reports every array it allocates to tracemalloc, so the peak of traced memory during `hogwild.train`,
minus what was traced before, is what training adds (the kernels allocate nothing of their own). The set is
`make_synthetic("rcv1")` (781,265 x 47,236, float32 data, int32 indices and indptr as scipy builds them).
Setup (labels, row frequencies, the engine's state) and the epochs are measured apart; the epochs' peak is the
steady state the issue's bound speaks of. `tests/test_memory.py` asserts the same on small sets: nothing grows
with the rows but the encoded labels.
"""

import gc
import tracemalloc

import numpy as np

from hogwild import TrainConfig
from hogwild.datasets.synth import make_synthetic
from hogwild.engine import prepare, train
from hogwild.resilience import run_resilient

MiB = 2**20


def measure(X, y, config):
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        loop = prepare(X, y, config)
        held, setup_peak = (value - base for value in tracemalloc.get_traced_memory())
        tracemalloc.reset_peak()
        run_resilient(loop)
        loop.runner.close()
        epochs_peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return held, setup_peak, epochs_peak


def main():
    X, y, _ = make_synthetic("rcv1", seed=0)
    data = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes + y.nbytes
    d = X.shape[1]
    print(f"data: {X.shape[0]:,} x {d:,}, {X.nnz:,} non-zeros, {data / MiB:.1f} MiB (indptr {X.indptr.dtype}); "
          f"float32 weights: {4 * d / 2**10:.0f} KiB per array of the model's size")
    print()
    print("| mode | schedule | held after setup (MiB) | setup peak (MiB) | epochs peak (MiB) | epochs peak / data |")
    print("|---|---|---|---|---|---|")
    for mode, schedule in (("serial", "adagrad"), ("async", "adagrad"), ("async", "optimal"), ("sync", "adagrad"),
                           ("average", "adagrad"), ("locked", "adagrad")):
        config = TrainConfig(mode=mode, schedule=schedule, threads=2, epochs=1).validate()
        train(X[:2000], y[:2000], config)  # compile outside the measurement
        held, setup_peak, epochs_peak = measure(X, y, config)
        print(f"| {mode} | {schedule} | {held / MiB:.2f} | {setup_peak / MiB:.2f} | {epochs_peak / MiB:.2f} | "
              f"{epochs_peak / data:.2%} |")
    print()
    print(f"Encoded labels (float32, one per row): {4 * X.shape[0] / MiB:.2f} MiB of the 'held' column; "
          f"block row order: {8 * -(-X.shape[0] // 32) / MiB:.2f} MiB per epoch.")


if __name__ == "__main__":
    main()
