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


def feature_record(count_type, value_type):
    """The per-feature record `scan_rows` updates: ``count`` (rows holding the feature), ``max_abs`` (largest
    ``|x_ij|``, in the values' type) and ``sq_sum`` (``sum_i s_i x_ij^2``, float64).

    One record instead of three arrays: a non-zero of a rare feature then misses the cache once, not three times.
    On the rcv1-shaped set (47k features, float32 values; 12 M non-zeros, one thread, no checks) three arrays took
    3.3 ns a non-zero, this 16-byte record 1.7 ns, an untyped (n_features, 3) float64 block (records straddling
    cache lines) 2.0 ns; the whole pass went from 3.3 to 1.9 ns.
    """
    return np.dtype([("count", count_type), ("max_abs", value_type), ("sq_sum", np.float64)], align=True)


@njit(nogil=True, cache=True)
def scan_rows(indptr, indices, data, n_features, first, stop, sample_weight, stats):
    """The one pass over rows ``[first, stop)`` that training makes before its first epoch.

    Per feature j it adds up, in the record ``stats[j]`` (`feature_record`), what the linear runners derive
    from the data: ``count``, the rows holding j (the paper's row frequencies for the L2 scaling);
    ``max_abs``, the largest ``|x_ij|`` (the normalized schedule's scale); ``sq_sum``, ``sum_i s_i x_ij^2`` with
    ``s_i`` the row weights (one per row, or one for all), from which the normalized schedule's rate factor
    follows once the scales are known. On the way it checks what the kernels rely on: every row's indices
    strictly increasing (canonical CSR, which makes counting entries count rows) and inside ``[0, n_features)``,
    every value finite. Reading the non-zeros once for all of this, instead of once per fact, is what keeps
    setup a fraction of one epoch.

    The indices are checked here, before they address a record: one unsigned comparison per entry covers both
    ``previous < j`` and ``j < n_features``. The values are not: a NaN or an infinity leaves its feature's
    ``sq_sum`` NaN or infinite, which the caller reads off the records afterwards (`first_non_finite` then finds
    it); a comparison per value cost 20% of the pass.

    Returns ``(SCAN_OK, -1)``, or the first index problem as ``(code, position)``; the pass stops there.
    """
    uniform = sample_weight.shape[0] == 1
    for i in range(first, stop):
        # one weight for all rows (no sample_weight): the caller multiplies the sums by it once, and the row loop
        # is compiled a second time without the multiplication (9% of the pass)
        if uniform:
            found = _scan_row(indptr, indices, data, n_features, i, 1.0, stats)
        else:
            found = _scan_row(indptr, indices, data, n_features, i, sample_weight[i], stats)
        if found >= 0:
            j = indices[found]
            return (SCAN_OUT_OF_RANGE if j < 0 or j >= n_features else SCAN_NOT_CANONICAL), found
    return SCAN_OK, -1


@njit(nogil=True, inline="always")
def _scan_row(indptr, indices, data, n_features, i, s, stats):
    """`scan_rows` on row i with row weight s; the position of an index out of order or range, else -1."""
    previous = -1
    # unsigned positions and (once checked) indices: no wraparound check per access (see
    # `hogwild.kernels.linear.sgd_rows_single`; 5% here)
    for p in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
        j = indices[p]
        # previous < j < n_features as one well-predicted branch: j - previous - 1 wraps around to a huge
        # unsigned number when j <= previous (or j < 0)
        if np.uint64(j - previous - 1) >= np.uint64(n_features - previous - 1):
            return np.int64(p)
        previous = j
        value = data[p]
        record = stats[np.uint64(j)]
        record.count += 1
        # a store every entry, no branch: a feature's maximum rises unpredictably early on (12% faster)
        record.max_abs = max(record.max_abs, abs(value))
        x = np.float64(value)
        record.sq_sum += s * x * x
    return np.int64(-1)


@njit(nogil=True, cache=True)
def merge_records(stats, n_rows, inv_freq, scales, sq_sums, weight):
    """Add up the slices' records (`scan_rows`; one row of ``stats`` per slice, ``sq_sums.shape[0]`` records
    each, then padding), in slice order, into what the runners use: ``inv_freq`` (``n_rows`` / rows holding the
    feature, 0 for an absent one), ``scales`` (the largest magnitude, float64, 1 for a feature absent or only
    zero) and ``sq_sums`` (times ``weight``, the one row weight of an unweighted pass; 1 otherwise).

    Returns whether every sum is finite (else a value was NaN or infinite, or squares overflowed) and whether
    every non-zero maximum lies in (1e-150, 1e150), where float64 holds its square exactly enough."""
    finite, in_range = True, True
    for j in range(sq_sums.shape[0]):
        count, largest, total = np.int64(0), 0.0, 0.0
        for k in range(stats.shape[0]):
            record = stats[k, j]
            count += record.count
            largest = max(largest, np.float64(record.max_abs))
            total += record.sq_sum
        total *= weight
        inv_freq[j] = n_rows / count if count > 0 else 0.0
        scales[j] = largest if largest > 0.0 else 1.0
        sq_sums[j] = total
        finite &= np.isfinite(total)
        in_range &= largest == 0.0 or 1e-150 < largest < 1e150
    return finite, in_range


@njit(nogil=True, cache=True)
def first_non_finite(data, start, stop):
    """The position of the first NaN or infinity in ``data[start:stop]``, or -1."""
    for p in range(start, stop):
        if not np.isfinite(data[p]):
            return p
    return -1


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


@njit(nogil=True, cache=True)
def count_others(values, low, high):
    """How many values of a 1-D array are neither ``low`` nor ``high``: with the array's smallest and largest,
    whether a classifier's labels are two classes, without ``np.unique``'s sort of every label (and without a
    data-dependent branch, which random labels would mispredict one time in two)."""
    others = 0
    for i in range(values.shape[0]):
        others += (values[i] != low) & (values[i] != high)
    return others


@njit(nogil=True, cache=True)
def finite_and_integral(values):
    """``(all finite, all whole numbers)`` of a 1-D float array, in one pass without branches."""
    not_finite, not_whole = 0, 0
    for i in range(values.shape[0]):
        value = values[i]
        not_finite |= value - value != 0.0  # NaN for NaN and +-infinity
        not_whole |= value != np.floor(value)
    return not_finite == 0, not_finite == 0 and not_whole == 0
