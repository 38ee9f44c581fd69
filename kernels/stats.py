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


# What `scan_rows` found wrong, with the position of the first offending entry.
SCAN_OK = 0
SCAN_NOT_CANONICAL = 1  # a row's indices are not strictly increasing (unsorted, or a duplicate)
SCAN_OUT_OF_RANGE = 2  # an index < 0 or >= n_features
SCAN_NOT_FINITE = 3  # NaN or +-infinity


@njit(nogil=True, cache=True)
def scan_rows(indptr, indices, data, n_features, first, stop, sample_weight, counts, max_abs, sq_sums):
    """The one pass over rows ``[first, stop)`` that training makes before its first epoch.

    Per feature j it adds up what the linear runners derive from the data: ``counts[j]``, the rows holding j
    (the paper's row frequencies for the L2 scaling); ``max_abs[j]``, the largest ``|x_ij|`` (the normalized
    schedule's scale); ``sq_sums[j]``, ``sum_i s_i x_ij^2`` with ``s_i`` the row weights (one per row, or one for
    all), from which the normalized schedule's rate factor follows once the scales are known. On the way it
    checks what the kernels rely on: every row's indices strictly increasing (canonical CSR, which makes counting
    entries count rows) and inside ``[0, n_features)``, every value finite. Reading the non-zeros once for all of
    this, instead of once per fact, is what keeps setup a fraction of one epoch.

    Returns ``(SCAN_OK, -1)``, or the first problem as ``(code, position)``; the pass stops there.
    """
    for i in range(first, stop):
        s = sample_weight[0] if sample_weight.shape[0] == 1 else sample_weight[i]
        previous = -1
        # unsigned positions and (once checked) indices: no wraparound check per access (see
        # `hogwild.kernels.linear.sgd_rows_single`; 5% here)
        for p in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            j = indices[p]
            value = data[p]
            # one well-predicted branch per entry; which check failed is sorted out only when one did
            if j <= previous or j >= n_features or value - value != 0.0:  # NaN - NaN and inf - inf are NaN
                if j < 0 or j >= n_features:
                    return SCAN_OUT_OF_RANGE, np.int64(p)
                if value - value != 0.0:
                    return SCAN_NOT_FINITE, np.int64(p)
                return SCAN_NOT_CANONICAL, np.int64(p)
            previous = j
            feature = np.uint64(j)
            counts[feature] += 1
            # a store every entry, no branch: a feature's maximum rises unpredictably early on (12% faster)
            max_abs[feature] = max(max_abs[feature], abs(value))
            x = np.float64(value)
            sq_sums[feature] += s * x * x
    return SCAN_OK, -1


@njit(nogil=True, cache=True)
def normalized_row_norms(indptr, indices, data, scales, sample_weight):
    """``sum_i s_i sum_j (x_ij / scales[j])^2`` over the rows, with ``s_i`` the row weights (one per row, or one for
    all): the normalized schedule's summed squared row norms, dividing before squaring, for values so large or so
    small that `scan_rows`'s ``x^2`` would overflow or underflow."""
    total = 0.0
    for i in range(indptr.shape[0] - 1):
        s = sample_weight[0] if sample_weight.shape[0] == 1 else sample_weight[i]
        norm = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            x = data[p] / scales[indices[p]]
            norm += x * x
        total += s * norm
    return total
