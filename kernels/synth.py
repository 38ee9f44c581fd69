"""Compiled kernels of the synthetic data generator (`hogwild.datasets.synth` is the public side).

Rows are made in fixed blocks of `BLOCK_ROWS`; block ``b`` draws from its own counter-based stream
(splitmix64 seeded from ``(seed, b, stream)``), so the arrays are bitwise identical whatever the number of
threads and whichever thread makes which block. Two passes: row lengths first (stream 1), then, once the
prefix sum fixes where every row goes, indices and values (stream 2). The kernels are ``nogil`` and
``parallel=False``; the caller runs contiguous ranges of blocks on Python threads.
"""

import numpy as np
from numba import njit

# Part of the output's definition, not a tunable: changing it changes every generated set for a given seed.
BLOCK_ROWS = 4096

# Value kinds (small ints inside kernels only).
VALUES_TFIDF = 0  # positive tf x idf weights, rows scaled to unit length (rcv1-like)
VALUES_BINARYISH = 1  # mostly 1.0, a few reals in (0, 1) (url-like)
VALUES_BINARY = 2  # all 1.0 (kdda-like)
VALUES_GAUSSIAN = 3  # N(0, 1) (dense)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_STREAM = np.uint64(0xD1B54A32D192ED03)
_SHIFT30 = np.uint64(30)
_SHIFT27 = np.uint64(27)
_SHIFT31 = np.uint64(31)
_SHIFT11 = np.uint64(11)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


@njit(nogil=True, cache=True)
def _mix64(z):
    z = (z ^ (z >> _SHIFT30)) * _MIX1
    z = (z ^ (z >> _SHIFT27)) * _MIX2
    return z ^ (z >> _SHIFT31)


@njit(nogil=True, cache=True)
def _seed_state(seed, block, stream):
    """A one-element splitmix64 state for (seed, block, stream); distinct triples give unrelated streams."""
    state = np.empty(1, dtype=np.uint64)
    z = _mix64(np.uint64(seed) + _GOLDEN)
    z = _mix64(z ^ (np.uint64(block) * _GOLDEN))
    state[0] = _mix64(z ^ (np.uint64(stream) * _STREAM))
    return state


@njit(nogil=True, cache=True)
def _uniform(state):
    """A double in the open interval (0, 1)."""
    state[0] += _GOLDEN
    return ((_mix64(state[0]) >> _SHIFT11) + 0.5) * _TO_UNIT


@njit(nogil=True, cache=True)
def _normal(state):
    """A standard normal draw (Box-Muller; one of the pair is discarded to keep the stream simple)."""
    u1 = _uniform(state)
    u2 = _uniform(state)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


@njit(nogil=True, cache=True)
def _zipf_rank(state, n_features, exponent, shift, low, scale):
    """A popularity rank in [0, n_features) with P(rank r) roughly proportional to 1/(r+1+shift)**exponent.

    Inverts the CDF of the continuous density (x+shift)**-exponent on [1, n_features+1): O(1) and no table,
    so it works the same for 47 thousand or 20 million features. ``shift`` flattens the head (a shifted
    Zipf-Mandelbrot law: real corpora's most common terms are less dominant than a pure power law says).
    ``low`` is (1+shift)**(1-exponent) and ``scale`` (n_features+1+shift)**(1-exponent) - low.
    """
    u = _uniform(state)
    if exponent == 1.0:
        x = (1.0 + shift) * np.exp(u * np.log((n_features + 1.0 + shift) / (1.0 + shift))) - shift
    else:
        x = (low + u * scale) ** (1.0 / (1.0 - exponent)) - shift
    rank = np.int64(x) - 1
    if rank < 0:
        rank = 0
    if rank >= n_features:
        rank = n_features - 1
    return rank


@njit(nogil=True, cache=True)
def row_lengths(seed, block_lo, block_hi, n_rows, mean_nnz, spread, max_nnz, lengths):
    """Fill ``lengths[i]`` (nonzeros of row i) for the rows of blocks [block_lo, block_hi).

    Lengths are log-normal around ``mean_nnz`` (``spread`` is sigma; 0 gives exactly round(mean_nnz)),
    clipped to [1, max_nnz], as document lengths are.
    """
    for block in range(block_lo, block_hi):
        state = _seed_state(seed, block, 1)
        row_stop = min(n_rows, (block + 1) * BLOCK_ROWS)
        for row in range(block * BLOCK_ROWS, row_stop):
            if spread > 0.0:
                k = np.int64(np.round(mean_nnz * np.exp(spread * _normal(state) - 0.5 * spread * spread)))
            else:
                k = np.int64(np.round(mean_nnz))
            lengths[row] = max(1, min(k, max_nnz))


@njit(nogil=True, cache=True)
def fill_rows(seed, block_lo, block_hi, n_rows, n_features, exponent, shift, permutation, idf, value_kind,
              indptr, indices, data):
    """Write sorted, unique column ids and values of the rows of blocks [block_lo, block_hi).

    ``indptr`` is final (from `row_lengths`). Ids are Zipf-ranked then mapped through ``permutation`` so the
    popular features are scattered over the id range; a draw that repeats an id of the row is redrawn. ``idf[id]`` is
    the tf-idf weight of an id (used by VALUES_TFIDF only). Dense rows (length == n_features) take every id.
    """
    low = (1.0 + shift) ** (1.0 - exponent)
    scale = (n_features + 1.0 + shift) ** (1.0 - exponent) - low
    # taken[id] == row + 1 marks an id already in this row: rejecting repeats costs one lookup, not a re-sort.
    taken = np.zeros(n_features if n_features > 0 else 1, dtype=np.int32)
    for block in range(block_lo, block_hi):
        state = _seed_state(seed, block, 2)
        row_stop = min(n_rows, (block + 1) * BLOCK_ROWS)
        for row in range(block * BLOCK_ROWS, row_stop):
            start = indptr[row]
            k = indptr[row + 1] - start
            ids = indices[start:start + k]
            if k == n_features:
                for t in range(k):
                    ids[t] = t
            else:
                mark = np.int32(row + 1)
                count = 0
                draws = 0
                while count < k:
                    draws += 1
                    if draws <= 64 * k:
                        j = permutation[_zipf_rank(state, n_features, exponent, shift, low, scale)]
                    else:
                        # The popular ids are all taken: fall back to uniform draws so the loop ends.
                        j = np.int64(_uniform(state) * n_features)
                    if taken[j] != mark:
                        taken[j] = mark
                        ids[count] = j
                        count += 1
                ids.sort()
            values = data[start:start + k]
            if value_kind == VALUES_TFIDF:
                norm = 0.0
                for t in range(k):
                    # Term frequency: 1 + a geometric-like count, damped by log as tf-idf does.
                    tf = 1.0 + np.log(1.0 - np.log(_uniform(state)))
                    v = tf * idf[ids[t]]
                    values[t] = v
                    norm += v * v
                norm = np.sqrt(norm)
                for t in range(k):
                    values[t] = values[t] / norm
            elif value_kind == VALUES_BINARYISH:
                for t in range(k):
                    u = _uniform(state)
                    values[t] = 1.0 if u < 0.9 else _uniform(state)
            elif value_kind == VALUES_BINARY:
                for t in range(k):
                    values[t] = 1.0
            else:
                for t in range(k):
                    values[t] = _normal(state)


@njit(nogil=True, cache=True)
def csr_scores(row_lo, row_hi, indptr, indices, data, coef, scores):
    """``scores[i, c] = sum_j X[i, j] * coef[j, c]`` for rows [row_lo, row_hi), in float64."""
    n_outputs = coef.shape[1]
    for row in range(row_lo, row_hi):
        for c in range(n_outputs):
            scores[row, c] = 0.0
        for p in range(indptr[row], indptr[row + 1]):
            j = indices[p]
            v = np.float64(data[p])
            for c in range(n_outputs):
                scores[row, c] += v * coef[j, c]
