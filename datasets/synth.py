"""Synthetic sparse sets shaped like the standard LIBSVM ones, with a planted linear model to learn.

Columns are drawn with Zipf-like popularity (feature of popularity rank r with probability proportional to
1/(r+1)**s, ranks scattered over the ids by a random permutation), so a few features appear in most rows and
most features in few, as in text and click data. The labels come from a planted sparse-ish linear model:
``sign(x . w + b + noise)`` with a fraction of labels flipped (binary), the argmax of K planted models
(multiclass), or ``x . w + noise`` (regression). The data are therefore learnable by a linear model, up to the
noise, which is what the README's main command and the benchmarks need where real data cannot be downloaded.

Generation is compiled (`hogwild.kernels.synth`) and runs on several threads over fixed blocks of rows with
per-block random streams: a seed gives bitwise identical arrays whatever the thread count.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from hogwild._io import available_cores
from hogwild.errors import ConfigError
from hogwild.kernels import synth as _kernels

# name -> shape and texture of the public set it imitates.
#   rows/features: the original's size; nnz_per_row: its mean row length; spread: sigma of the log-normal row
#   lengths; zipf: popularity exponent; shift: flattens the popularity head (see kernels.synth._zipf_rank);
#   values: how entries look; support: fraction of features the planted
#   model uses.
PRESETS = {
    # shift=20 matches real RCV1's head (measured on the shared rcv1_small): the top feature in ~44% of rows
    # (real: 43.5%), ~95 features in >= 10% of rows (real: 116). A pure power law put the top one in 98%.
    "rcv1": dict(rows=781_265, features=47_236, nnz_per_row=75, spread=0.7, zipf=1.1, shift=20.0,
                 values=_kernels.VALUES_TFIDF, support=0.5),
    "url": dict(rows=2_396_130, features=3_231_961, nnz_per_row=115, spread=0.25, zipf=1.2,
                values=_kernels.VALUES_BINARYISH, support=0.3),
    "kdda": dict(rows=8_407_752, features=20_216_830, nnz_per_row=36, spread=0.4, zipf=1.3,
                 values=_kernels.VALUES_BINARY, support=0.3),
    "dense": dict(rows=100_000, features=300, nnz_per_row=None, spread=0.0, zipf=0.0,
                  values=_kernels.VALUES_GAUSSIAN, support=0.5),
}
TASKS = ("binary", "multiclass", "regression")
# The planted model uses only features expected in at least this many rows, so a learner sees each often.
MIN_INFORMATIVE_ROWS = 500


def make_synthetic(like="rcv1", n_rows=None, n_features=None, nnz_per_row=None, seed=0, dtype=np.float32,
                   label_noise=0.05, task="binary", n_classes=4, margin_noise=0.1, n_threads=None):
    """Return ``(X, y, info)``: a CSR matrix shaped like the ``like`` preset, labels, and a description.

    ``n_rows``/``n_features``/``nnz_per_row`` override the preset (None keeps it; ``dense`` rows always hold
    every feature). ``label_noise`` is the fraction of labels replaced by a wrong one (binary: flipped sign;
    multiclass: another class), or for regression the noise standard deviation relative to the signal's.
    ``margin_noise`` adds Gaussian noise of that relative size to the scores before labelling, so the classes
    overlap near the boundary. Binary labels are -1/+1 (balanced by the planted intercept), multiclass labels
    1..n_classes, regression labels real.

    The planted weights (Gaussian, on a ``support`` fraction of features) sit only on the ``n_informative``
    most popular features, those expected in at least `MIN_INFORMATIVE_ROWS` rows, so a linear model can
    learn them from the rows generated; the rarer features are noise it must learn to ignore.

    ``info`` holds the shape, the preset's parameters, ``n_informative``, the planted model (``coef`` of
    shape (n_features,) or (n_features, n_classes), ``intercept``) and ``planted_accuracy``: how often the
    noiseless planted model agrees with the labels (for regression, ``planted_r2``). Indices are int32 where
    they fit, else int64.
    """
    if like not in PRESETS:
        raise ConfigError("like", f"unknown synthetic preset {like!r}; choose one of {', '.join(PRESETS)}")
    if task not in TASKS:
        raise ConfigError("task", f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ConfigError("dtype", f"dtype must be float32 or float64, not {dtype}")
    preset = PRESETS[like]
    n_rows = preset["rows"] if n_rows is None else int(n_rows)
    n_features = preset["features"] if n_features is None else int(n_features)
    if n_rows < 1:
        raise ConfigError("n_rows", f"n_rows must be at least 1, not {n_rows}")
    if n_features < 1:
        raise ConfigError("n_features", f"n_features must be at least 1, not {n_features}")
    if like == "dense":
        if nnz_per_row is not None and int(nnz_per_row) != n_features:
            raise ConfigError("nnz_per_row", "the dense preset stores every feature; leave nnz_per_row unset")
        mean_nnz, spread = float(n_features), 0.0
    else:
        mean_nnz = float(preset["nnz_per_row"] if nnz_per_row is None else nnz_per_row)
        if mean_nnz < 1:
            raise ConfigError("nnz_per_row", f"nnz_per_row must be at least 1, not {nnz_per_row}")
        mean_nnz = min(mean_nnz, float(n_features))
        spread = preset["spread"]
    if not 0.0 <= label_noise < 1.0 and task != "regression":
        raise ConfigError("label_noise", f"label_noise must be in [0, 1), not {label_noise}")
    if label_noise < 0 or margin_noise < 0:
        raise ConfigError("label_noise", "label_noise and margin_noise must not be negative")
    if task == "multiclass" and int(n_classes) < 2:
        raise ConfigError("n_classes", f"n_classes must be at least 2, not {n_classes}")
    if seed is None or int(seed) < 0:
        raise ConfigError("seed", f"seed must be a non-negative integer, not {seed}")
    seed = int(seed)
    n_threads = available_cores() if n_threads is None else max(1, int(n_threads))

    # Feature-level randomness (which id has which popularity, the planted model) comes from NumPy seeded
    # with (seed, purpose); row-level randomness from the compiled per-block streams.
    permutation_rng = np.random.default_rng([seed, 1])
    index_dtype = np.int32 if n_features < 2**31 else np.int64
    permutation = permutation_rng.permutation(n_features).astype(index_dtype)
    exponent = float(preset["zipf"])
    shift = float(preset.get("shift", 0.0))
    if preset["values"] == _kernels.VALUES_TFIDF:
        # idf grows with rarity: log(1/p_rank) = s * log(rank + 1) up to a constant.
        idf = np.empty(n_features, dtype=np.float64)
        idf[permutation] = 1.0 + exponent * np.log1p(np.arange(n_features, dtype=np.float64))
    else:
        idf = np.ones(1, dtype=np.float64)

    n_blocks = -(-n_rows // _kernels.BLOCK_ROWS)
    lengths = np.empty(n_rows, dtype=np.int64)
    max_nnz = int(min(n_features, max(1.0, 20.0 * mean_nnz)))
    _run_blocks(n_blocks, n_threads, lambda lo, hi: _kernels.row_lengths(
        seed, lo, hi, n_rows, mean_nnz, spread, max_nnz, lengths))
    indptr = np.empty(n_rows + 1, dtype=np.int64)
    indptr[0] = 0
    np.cumsum(lengths, out=indptr[1:])
    del lengths
    nnz = int(indptr[-1])
    if nnz >= 2**31 or index_dtype == np.int64:
        index_dtype = np.int64
        permutation = permutation.astype(np.int64)
    indptr = indptr.astype(index_dtype)
    indices = np.empty(nnz, dtype=index_dtype)
    data = np.empty(nnz, dtype=dtype)
    _run_blocks(n_blocks, n_threads, lambda lo, hi: _kernels.fill_rows(
        seed, lo, hi, n_rows, n_features, exponent, shift, permutation, idf, preset["values"], indptr, indices, data))
    X = sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_features))
    X.has_sorted_indices = True

    # The planted model uses only features common enough to be learned from this many rows (weights on
    # features seen a handful of times would make the labels noise to any learner).
    n_informative = _informative_features(n_rows, nnz / n_rows, n_features, exponent, shift=shift)
    informative = permutation[:n_informative].astype(np.int64)
    del permutation, idf
    y, planted = _plant_labels(X, task, int(n_classes), informative, preset["support"], label_noise,
                               margin_noise, seed, n_threads)
    info = {
        "like": like,
        "task": task,
        "n_rows": n_rows,
        "n_features": n_features,
        "nnz": nnz,
        "mean_nnz_per_row": nnz / n_rows,
        "zipf_exponent": exponent,
        "zipf_shift": shift,
        "seed": seed,
        "dtype": dtype.name,
        "label_noise": float(label_noise),
        "margin_noise": float(margin_noise),
        "n_informative": n_informative,
        **planted,
    }
    if task == "multiclass":
        info["n_classes"] = int(n_classes)
    return X, y, info


def _run_blocks(n_blocks, n_threads, kernel_call):
    """Run ``kernel_call(block_lo, block_hi)`` over contiguous ranges of blocks, one range per thread."""
    n_threads = max(1, min(n_threads, n_blocks))
    bounds = np.linspace(0, n_blocks, n_threads + 1).astype(np.int64)
    if n_threads == 1:
        kernel_call(0, n_blocks)
        return
    with ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="hogwild-synth") as executor:
        futures = [executor.submit(kernel_call, int(bounds[t]), int(bounds[t + 1])) for t in range(n_threads)]
        for future in futures:
            future.result()


def _scores(X, coef, n_threads):
    """``X @ coef`` in float64 with a compiled kernel (scipy would first copy float32 data to float64)."""
    n_rows = X.shape[0]
    scores = np.empty((n_rows, coef.shape[1]), dtype=np.float64)
    n_blocks = -(-n_rows // _kernels.BLOCK_ROWS)

    def call(lo, hi):
        _kernels.csr_scores(lo * _kernels.BLOCK_ROWS, min(n_rows, hi * _kernels.BLOCK_ROWS),
                            X.indptr, X.indices, X.data, coef, scores)

    _run_blocks(n_blocks, n_threads, call)
    return scores


def _informative_features(n_rows, mean_nnz, n_features, exponent, min_rows=None, shift=0.0):
    """How many of the most popular features are expected in at least ``min_rows`` rows (at least 10).

    Popularity rank r is drawn with the density f(x) = (1-s) (x+h)**-s / ((D+1+h)**(1-s) - (1+h)**(1-s)) at
    x = r+1, h the shift (1 / ((x+h) log((D+1+h)/(1+h))) when s = 1), so rank r appears about
    n_rows * mean_nnz * f(r+1) times.
    """
    min_rows = MIN_INFORMATIVE_ROWS if min_rows is None else min_rows
    draws = float(n_rows) * mean_nnz
    if exponent == 1.0:
        top = draws / (min_rows * math.log((n_features + 1.0 + shift) / (1.0 + shift))) - shift
    else:
        c = (1.0 - exponent) / ((n_features + 1.0 + shift) ** (1.0 - exponent) - (1.0 + shift) ** (1.0 - exponent))
        if exponent > 0:
            top = (draws * c / min_rows) ** (1.0 / exponent) - shift
        else:  # uniform popularity: every feature or none is common enough
            top = n_features if draws * c >= min_rows else 0
    return int(min(n_features, max(10, math.floor(top))))


def _plant_labels(X, task, n_classes, informative, support, label_noise, margin_noise, seed, n_threads):
    """Labels from a planted model on the ``informative`` feature ids, and a dict describing that model."""
    rng = np.random.default_rng([seed, 2])
    n_rows, n_features = X.shape
    n_outputs = n_classes if task == "multiclass" else 1
    coef = np.zeros((n_features, n_outputs))
    weights = rng.standard_normal((informative.shape[0], n_outputs))
    weights *= rng.random((informative.shape[0], n_outputs)) < support
    coef[informative] = weights
    scores = _scores(X, coef, n_threads)
    # Noise relative to each output's spread, so the preset's value scale does not change the difficulty.
    spread = scores.std(axis=0)
    spread[spread == 0] = 1.0
    noisy = scores + margin_noise * spread * rng.standard_normal(scores.shape)
    flip = rng.random(n_rows) < label_noise if task != "regression" else None

    if task == "binary":
        # The intercept that balances the classes: a no-intercept model is then also reasonable.
        intercept = -float(np.median(noisy[:, 0]))
        y = np.where(noisy[:, 0] + intercept >= 0, 1.0, -1.0)
        y[flip] = -y[flip]
        planted_accuracy = float(np.mean(np.where(scores[:, 0] + intercept >= 0, 1.0, -1.0) == y))
        return y, {"coef": coef[:, 0], "intercept": intercept, "planted_accuracy": planted_accuracy}
    if task == "multiclass":
        # Per-class intercepts that roughly balance the classes (each class's scores centred).
        intercept = -np.median(noisy, axis=0)
        y = (np.argmax(noisy + intercept, axis=1) + 1).astype(np.float64)
        wrong = rng.integers(1, n_classes, size=n_rows)  # shift 1..K-1: always another class
        y[flip] = (y[flip] - 1 + wrong[flip]) % n_classes + 1
        planted = (np.argmax(scores + intercept, axis=1) + 1).astype(np.float64)
        return y, {"coef": coef, "intercept": intercept, "planted_accuracy": float(np.mean(planted == y))}
    signal = scores[:, 0]
    y = signal + label_noise * spread[0] * rng.standard_normal(n_rows)
    residual = float(np.sum((y - signal) ** 2))
    total = float(np.sum((y - y.mean()) ** 2)) or 1.0
    return y, {"coef": coef[:, 0], "intercept": 0.0, "planted_r2": 1.0 - residual / total}


def default_rows(like):
    """The number of rows of the public set a preset imitates."""
    return PRESETS[like]["rows"]


def nnz_estimate(like, n_rows=None, n_features=None, nnz_per_row=None):
    """Roughly how many nonzeros `make_synthetic` will produce (for memory warnings and progress)."""
    preset = PRESETS[like]
    n_rows = preset["rows"] if n_rows is None else n_rows
    n_features = preset["features"] if n_features is None else n_features
    if like == "dense":
        return n_rows * n_features
    return int(n_rows * min(n_features, nnz_per_row or preset["nnz_per_row"]))


__all__ = ["make_synthetic", "PRESETS", "TASKS", "default_rows", "nnz_estimate"]
