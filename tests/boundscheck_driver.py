"""Run the compiled kernels over adversarial-but-valid data; meant for a subprocess with NUMBA_BOUNDSCHECK=1.

Usage: ``NUMBA_BOUNDSCHECK=1 NUMBA_CACHE_DIR=<tmp> python tests/boundscheck_driver.py [linear|engine|mlp|parse]``.
Prints one ``ok <case>`` line per case and exits 0; an out-of-bounds index raises ``IndexError`` inside the
kernel (instead of silently reading or corrupting memory) and the traceback ends the run with a non-zero exit.
Not collected by pytest (no ``test_`` prefix): tests/test_boundscheck.py runs it.
"""

from __future__ import annotations

import sys
import threading

import numpy as np
import scipy.sparse as sp
from numba import njit


@njit
def _out_of_bounds(values, i):
    return values[i]


def check_boundscheck_is_on():
    """Fail loudly if Numba's bounds checking is not actually active in this process."""
    try:
        _out_of_bounds(np.zeros(3), 5)
    except IndexError:
        return
    raise SystemExit("NUMBA_BOUNDSCHECK is not in effect: an out-of-bounds read did not raise")


def adversarial_sets():
    """name -> CSR matrix: shapes that stress row and index arithmetic, all of them valid input."""
    rng = np.random.default_rng(0)
    sets = {}
    # Empty rows everywhere, including the first and the last; the last column is used.
    rows = [[], [0, 7], [], [], [3], [], [9], []]
    sets["empty_rows"] = _csr(rows, 10, rng)
    # One row holding every feature among tiny ones.
    n = 3000
    sets["one_huge_row"] = _csr([[1], list(range(n)), [], [n - 1], [2, 5]], n, rng)
    # Every row shares feature 0 (the hottest coordinate any race could hit).
    sets["all_share_one_feature"] = _csr([[0] + sorted(rng.choice(np.arange(1, 50), 3, replace=False)) for _ in range(40)], 50, rng)
    # A single feature.
    sets["single_feature"] = _csr([[0]] * 30 + [[]] * 3, 1, rng)
    # Nothing at all in any row.
    sets["all_rows_empty"] = _csr([[]] * 5, 4, rng)
    return sets


def _csr(rows, n_features, rng):
    indptr = np.zeros(len(rows) + 1, dtype=np.int32)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = np.array([j for r in rows for j in r], dtype=np.int32)
    data = rng.uniform(0.1, 2.0, size=len(indices))
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), n_features))


def labels(n_rows, n_classes):
    y = np.arange(n_rows) % n_classes
    return y.astype(np.float64) if n_classes > 2 else np.where(y == 0, -1.0, 1.0)


def run_linear():
    """Call `sgd_rows` (serial, locked, adagrad+l1, softmax), `sync_batches` and `sync_batches_single` (1 to 3
    workers) directly."""
    from hogwild.config import TrainConfig
    from hogwild.kernels import linear

    variants = {
        "log_l2": (TrainConfig(loss="log_loss", schedule="constant", lr=0.1, l2=1e-3), "binary", 1),
        "hinge_adagrad_l1": (TrainConfig(loss="hinge", schedule="adagrad", lr=0.1, l2=1e-3, l1=1e-3), "binary", 1),
        "softmax": (TrainConfig(loss="log_loss", schedule="optimal", l2=1e-3, multiclass="softmax"), "softmax", 3),
        "huber_regression": (TrainConfig(loss="huber", schedule="invscaling", lr=0.05, clip=1.0), "binary", 1),
        "normalized_asgd": (TrainConfig(loss="log_loss", schedule="normalized", l2=1e-3, average=3), "binary", 1),
        "ftrl_l1_ovr": (TrainConfig(loss="hinge", schedule="ftrl", l2=1e-3, l1=1e-3, average=1), "ovr", 3),
    }
    for set_name, X in adversarial_sets().items():
        indptr, indices, data = X.indptr, X.indices, X.data
        n_rows, n_features = X.shape
        counts = np.bincount(indices[: indptr[-1]], minlength=n_features)
        inv_freq = np.where(counts > 0, n_rows / np.maximum(counts, 1), 0.0)
        # A full permutation as a block order of one-row blocks (shift 0, no partial block).
        row_order = (np.random.default_rng(1).permutation(n_rows).astype(np.int64), 0, n_rows, 0)
        sample_weight = np.ones(n_rows)
        for variant, (config, multiclass, K) in variants.items():
            scalars = linear.kernel_scalars(linear.kernel_params(config, 0, multiclass))
            targets = labels(n_rows, K if K > 1 else 2)
            for use_locks in (False, True):
                arrays = _state(n_features, K)
                W, b = arrays[:2]
                locks = np.zeros((n_features >> linear.STRIPE_SHIFT) + 2, dtype=np.int64)
                for _ in range(2):  # two passes so the second starts from non-zero weights
                    linear.sgd_rows(
                        indptr, indices, data, targets, sample_weight, *row_order, 0, n_rows,
                        *arrays, np.ones(n_features), inv_freq, np.zeros((2, K)),
                        *scalars, 0.0, 1.0, np.zeros(1), locks, use_locks, linear.STRIPE_SHIFT,
                    )
                _finite(f"sgd_rows {set_name} {variant} locks={use_locks}", W, b)
            for n_workers in (1, 2, 3):  # 3: a worker count that is no power of two
                arrays = _state(n_features, K)
                W, b = arrays[:2]
                _sync(linear, X, targets, sample_weight, row_order, n_workers, arrays, inv_freq, scalars)
                _finite(f"sync_batches {set_name} {variant} workers={n_workers}", W, b)
                if K == 1:  # the one-output kernel, whatever the variant's L1 or ASGD (it ignores both)
                    arrays = _state(n_features, K)
                    W, b = arrays[:2]
                    _sync(linear, X, targets, sample_weight, row_order, n_workers, arrays, inv_freq, scalars, True)
                    _finite(f"sync_batches_single {set_name} {variant} workers={n_workers}", W, b)


def _state(n_features, K):
    """W, b, acc_W, acc_b, q_l1, z_W, z_b, avg_W, avg_b: every array full size (each variant uses its own)."""
    return (np.zeros((n_features, K)), np.zeros(K), np.zeros((n_features, K)), np.zeros(K), np.zeros((n_features, K)),
            np.zeros((n_features, K)), np.zeros(K), np.zeros((n_features, K)), np.zeros(K))


def _sync(linear, X, targets, sample_weight, row_order, n_workers, arrays, inv_freq, scalars, single=False):
    """`sync_batches` (or, ``single``, `sync_batches_single` on the same arrays flattened) over every row, in
    batches of 4, by ``n_workers`` threads, on buffers laid out as the CPU runner's (`_sync_buffers`)."""
    from hogwild.kernels import linear_sync
    n_rows, n_features = X.shape
    K = arrays[0].shape[1]
    exchange = n_workers > 1
    capacity = -(-n_features // n_workers)
    buffers = (
        np.zeros((n_workers, n_features * (K + 1))),  # sums
        np.empty((n_workers, n_features + 1), dtype=np.int32),  # touched
        np.zeros((n_workers, n_workers), dtype=np.int64),  # ends
        np.empty((n_workers, capacity * n_workers if exchange else 0), dtype=np.int32),  # index
        np.empty((n_workers, capacity * n_workers * (K + 1) if exchange else 0)),  # packed
        np.empty((n_workers, n_features + 1 if exchange else 0), dtype=np.int32),  # owned
        np.zeros((n_workers, K)),  # intercept_buffers
        np.zeros(n_workers, dtype=np.int64),  # slice_rows
        np.zeros(3, dtype=np.int64),  # barrier
    )
    reg = scalars[5] * inv_freq
    errors = []

    def worker(w):
        try:
            if single:
                W, b, acc_W, acc_b, _, z_W, z_b, _, _ = arrays
                (loss, multiclass, epsilon, clip, intercept_step, l2, l1, schedule, lr, epoch_factor, t0, power_t,
                 _, ftrl_beta) = scalars
                linear_sync.sync_batches_single(
                    X.indptr, X.indices, X.data, targets, sample_weight, *row_order, 0, n_rows, 4, w, n_workers, 0,
                    W.reshape(-1), b, acc_W.reshape(-1), acc_b, z_W.reshape(-1), z_b, np.ones(n_features), reg,
                    *buffers, loss, multiclass, epsilon, clip, intercept_step, schedule, lr, epoch_factor, l2, l1, t0,
                    power_t, ftrl_beta, 0.0,
                )
            else:
                linear_sync.sync_batches(
                    X.indptr, X.indices, X.data, targets, sample_weight, *row_order, 0, n_rows, 4, w, n_workers, 0,
                    *arrays, np.ones(n_features), reg, np.zeros((2, K)), *buffers, *scalars, 0.0, np.zeros(1),
                )
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(n_workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    if np.any(buffers[0] != 0.0):
        raise SystemExit("the sync kernels left non-zero sums behind")


def _finite(case, *arrays):
    for array in arrays:
        if not np.all(np.isfinite(array)):
            raise SystemExit(f"{case}: non-finite result")
    print(f"ok {case}", flush=True)


def run_engine():
    """Every mode of `hogwild.train` (2 threads where it runs threads) over the same adversarial sets."""
    import hogwild

    for set_name, X in adversarial_sets().items():
        y = labels(X.shape[0], 2)
        if len(np.unique(y)) < 2:
            continue
        for mode in ("serial", "sync", "async", "average", "locked"):
            result = hogwild.train(X, y, mode=mode, threads=1 if mode == "serial" else 2, epochs=2, seed=0,
                                   chunk_rows=4, batch_size=4, average_every=4, dtype="float64")
            _finite(f"train {set_name} mode={mode}", *_model_arrays(result.model))


def run_mlp():
    """A couple of epochs of the MLP (sparse input, 2 threads) over the adversarial sets."""
    import hogwild

    for set_name, X in adversarial_sets().items():
        y = labels(X.shape[0], 3).astype(np.int64)
        for mode in ("serial", "async"):
            result = hogwild.train(X, y, model="mlp", hidden=(4,), mode=mode, threads=1 if mode == "serial" else 2,
                                   epochs=2, seed=0, chunk_rows=4, batch_size=4, lr=0.01, schedule="constant",
                                   dtype="float64")
            _finite(f"mlp {set_name} mode={mode}", *_model_arrays(result.model))


def parse_texts():
    """name -> LIBSVM bytes: tokens at block ends, no final newline, long numbers, odd separators, errors."""
    rng = np.random.default_rng(0)
    values = rng.standard_normal(400) * 10.0 ** rng.integers(-320, 300, 400)
    long_row = " ".join(f"{j + 1}:{v:.17g}" for j, v in enumerate(values))
    return {
        "no_final_newline": b"1 1:0.5 2:0.25\n-1 3:0.125",
        "long_values": f"1 {long_row}\n-1 1:{values[0]!r}\n".encode(),
        "digits_to_the_end": b"1 1:0.1234567890123456789\n2 2:12345678901234567890123",
        "tiny_tokens": b"1 1:1\n0 2:2\n1\n-1 3:.5 4:5.\n",
        "comments_crlf_qid": b"# c\r\n1 qid:3 1:1e-5 # x\r\n\r\n-1\t2:+7E+2\n",
        "undecided": b"1 1:1.00000000000000011102230246251565404236316680908203125\n" * 5,
        "bad_value_at_end": b"1 1:1\n1 2:0.12345678x",
        "bad_index_at_end": b"1 1:1\n1 12345678",
        "bad_label_at_end": b"1 1:1\n1.2.3",
    }


def run_parse():
    """The LIBSVM count and fill kernels over blocks of a few bytes, where the word-at-a-time paths end."""
    import tempfile
    from pathlib import Path

    from hogwild.datasets import parser
    from hogwild.datasets.libsvm import load_libsvm
    from hogwild.errors import LibsvmFormatError

    with tempfile.TemporaryDirectory() as folder:
        for name, text in parse_texts().items():
            path = Path(folder) / f"{name}.svm"
            path.write_bytes(text)
            for block_bytes in (7, 13, 64, 1 << 20):
                parser.BLOCK_BYTES = block_bytes
                for dtype in (np.float32, np.float64):
                    try:
                        load_libsvm(path, dtype=dtype, cache=False, threads=2)
                    except LibsvmFormatError:
                        pass  # the malformed cases end here; an IndexError would not
            print(f"ok parse {name}", flush=True)


def _model_arrays(model):
    """The numeric arrays of a fitted model (weights, intercepts), whatever the model class calls them."""
    found = [np.asarray(value) for name, value in vars(model).items()
             if isinstance(value, np.ndarray) and value.dtype.kind == "f"]
    for value in vars(model).values():
        if isinstance(value, (list, tuple)):
            found += [np.asarray(v) for v in value if isinstance(v, np.ndarray) and v.dtype.kind == "f"]
    if not found:
        raise SystemExit(f"no weight arrays found on {type(model).__name__}")
    return found


if __name__ == "__main__":
    check_boundscheck_is_on()
    {"linear": run_linear, "engine": run_engine, "mlp": run_mlp, "parse": run_parse}[
        sys.argv[1] if len(sys.argv) > 1 else "linear"
    ]()
