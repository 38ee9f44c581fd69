"""Compiled kernels of the dataset statistics (`hogwild.datasets.stats` is the public side).

The Hogwild! paper (Niu, Recht, Re and Wright, 2011) bounds the cost of lock-free updates by how sparse the
hypergraph of rows is: Omega, the largest row support; Delta, the largest fraction of rows that share one
feature; rho, the largest fraction of rows whose supports meet a given row's. Omega and Delta are counts;
rho needs, for a row e, the set of rows reachable through e's features, which these kernels collect by
walking the feature -> rows lists (CSC) and stamping each row reached.
"""

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def feature_degrees(indices, n_features, degrees):
    """``degrees[j]`` = number of stored entries in column j (rows containing feature j, for canonical CSR)."""
    for j in range(n_features):
        degrees[j] = 0
    for p in range(indices.shape[0]):
        degrees[indices[p]] += 1


@njit(nogil=True, cache=True)
def overlap_counts(rows, bounds, indptr, indices, col_indptr, col_rows, n_rows, counts):
    """``counts[t]`` = rows whose support meets row ``rows[t]``'s (itself included), or -1 where skipped.

    ``bounds[t]`` must be an upper bound of that count (the sum of its features' degrees, capped at n_rows)
    and ``rows`` sorted by decreasing bound: once a bound is no larger than the best count found, no later
    row can beat it, so the scan stops there (only the maximum, rho, is needed). Returns the best count.
    """
    stamp = np.zeros(n_rows, dtype=np.int64)
    best = 0
    for t in range(rows.shape[0]):
        counts[t] = -1
    for t in range(rows.shape[0]):
        if bounds[t] <= best:
            break
        e = rows[t]
        mark = e + 1
        count = 0
        for p in range(indptr[e], indptr[e + 1]):
            j = indices[p]
            for q in range(col_indptr[j], col_indptr[j + 1]):
                r = col_rows[q]
                if stamp[r] != mark:
                    stamp[r] = mark
                    count += 1
            if count == n_rows:
                break
        counts[t] = count
        if count > best:
            best = count
        if best == n_rows:
            break
    return best


@njit(nogil=True, cache=True)
def count_features_checked(indices, data, start, stop, counts):
    """``counts[j] += 1`` for every stored entry ``p`` in ``[start, stop)`` of column ``indices[p]``, checking each
    value on the way: the one pass over the data that training makes before its first epoch (row frequencies
    for the L2 scaling, and no NaN or infinity for the kernels). Returns the position of the first NaN or
    infinite value, or -1 when there is none (counting stops there)."""
    for p in range(start, stop):
        value = data[p]
        if value - value != 0.0:  # NaN or +-inf: NaN - NaN and inf - inf are NaN
            return p
        counts[indices[p]] += 1
    return -1


@njit(nogil=True, cache=True)
def feature_max_abs(indices, data, nnz, scales):
    """``scales[j] = max(scales[j], |x|)`` over the first ``nnz`` stored entries: each feature's largest magnitude
    (the normalized schedule's per-feature scale)."""
    for p in range(nnz):
        value = abs(data[p])
        j = indices[p]
        if value > scales[j]:
            scales[j] = value


@njit(nogil=True, cache=True)
def normalized_row_norms(indptr, indices, data, scales, sample_weight):
    """``(sum_i s_i sum_j (x_ij / scales[j])^2, sum_i s_i)`` over the rows, with ``s_i`` the row weights (one per
    row, or one for all): the normalized schedule's mean squared row norm, in the features' own scales."""
    total = 0.0
    weights = 0.0
    for i in range(indptr.shape[0] - 1):
        s = sample_weight[0] if sample_weight.shape[0] == 1 else sample_weight[i]
        norm = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            x = data[p] / scales[indices[p]]
            norm += x * x
        total += s * norm
        weights += s
    return total, weights
