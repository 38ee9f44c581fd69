"""The one pass training makes over the linear model's rows before its first epoch.

`scan_features` reads the non-zeros once (`hogwild.kernels.stats.scan_rows`) for everything the linear runners
derive from the data, `FeatureStats`: the row frequencies of the Hogwild! paper's L2 scaling, the normalized
schedule's per-feature scales and its rate factor; and on the way it checks what the kernels rely on (canonical
rows, indices in range, finite values). One read instead of one per fact (and none by scipy or the estimators
before it), into one 16-byte record per feature, is what brought setup on the rcv1-shaped set from 2.4 epochs to
0.28 of one (12 ms of the pass on two threads, 16 ms in all before the first epoch; a serial epoch is 56 ms).
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from ..memory import csr_is_mapped, pieces, release, release_rows, row_pieces, worker_rows

# The setup pass splits the rows into slices by their non-zeros; how many depends on the data alone (never on the
# cores), so that the per-feature float sums, added slice by slice, come out the same on every machine. Two at
# most: each slice starts on cold per-feature arrays, and with eight the pass ran 1.4x slower on one thread.
_SCAN_SLICE_NNZ = 1 << 20
_SCAN_MAX_SLICES = 2
_SCAN_BYTES = 256 << 20  # the slices' per-feature records together stay under this
_SCAN_BYTES_PER_FEATURE = 24  # a slice's record (`feature_record`): 16 bytes for float32 values, 24 at most


class FeatureStats:
    """What the setup pass reads off the training rows (`hogwild.kernels.stats.scan_rows`), per feature j:
    ``inv_freq[j]`` (``n_rows`` / rows holding j, 0 when none does), ``scale[j]`` (largest ``|x_ij|``, float64; 1
    when absent or only zero) and ``sq_sums[j]`` (``sum_i s_i x_ij^2``), and ``weight_total`` (``sum_i s_i``)."""

    def __init__(self, inv_freq, scale, sq_sums, weight_total, rows, squares_in_range):
        self.inv_freq, self.scale, self.sq_sums = inv_freq, scale, sq_sums
        self.weight_total, self.n_rows = weight_total, rows[0].n_rows
        # x^2 is exact enough in float64 for |x| in (1e-150, 1e150), unless its sums overflow; beyond,
        # `rate_normalizer` reads the rows again
        self.squares_in_range = squares_in_range
        self._rows = rows  # (csr, sample_weight), for that second pass only

    def keep_sums_only(self):
        """Drop the frequencies and the scales once used (a float each per feature); the sums of squares serve
        again when a continued run merges scales (`LinearData.use_scale`)."""
        self.inv_freq = self.scale = None

    def inverse_row_frequency(self):
        """``n_rows / (rows containing feature j)`` (0 for absent features): the Hogwild! paper's L2 scaling."""
        return self.inv_freq

    def scales(self, dtype):
        """Each feature's largest ``|x_ij|`` in ``dtype``; 1 for a feature that is absent or only zero (it never
        moves, and 1 keeps its step finite).

        The normalized schedule (Ross, Mineiro & Langford 2013; Vowpal Wabbit's default) divides a coordinate's
        adaptive step by its feature's scale, so that multiplying a feature by any constant changes nothing but
        the units of its weight. The online algorithm discovers each scale at the row where it first appears and
        then rescales the weight; a training set is known before the first row, so the scales are read in the
        setup pass, and no row ever writes them (nothing shared beyond the per-coordinate state AdaGrad has).
        """
        return self.scale.astype(dtype, copy=False)

    def rate_normalizer(self, scale, fit_intercept):
        """The normalized schedule's global rate factor ``1 / sqrt(mean_i sum_j (x_ij / scale_j)^2)`` (row-weighted
        mean; the intercept counts as one more feature of value 1 when fitted).

        Vowpal Wabbit's ``sqrt(t / N)``, with ``N`` its running sum of the rows' normalized squared norms: it
        makes the step independent of how many features a row holds, as the scales make it independent of their
        units. Over a pass the running sum and this mean agree; the mean needs no shared counter that every row
        writes. Summed per feature (``sum_j sq_sums[j] / scale_j^2``), it needs no second pass over the rows,
        and a continued run's merged scales (`LinearData.use_scale`) change it without reading the data again.
        """
        if self.n_rows == 0 or self.weight_total <= 0:
            return 1.0
        scale = np.asarray(scale, dtype=np.float64)
        if self.squares_in_range:
            total = float(np.sum(self.sq_sums / (scale * scale)))
        else:  # values whose squares overflow or underflow: a pass that divides by the scale before squaring
            from hogwild.kernels.stats import normalized_row_norms

            csr, sample_weight = self._rows
            total = normalized_row_norms(csr.indptr, csr.indices, csr.data, scale, sample_weight)
        mean = total / self.weight_total + (1.0 if fit_intercept else 0.0)
        return 1.0 / float(np.sqrt(mean)) if mean > 0 else 1.0


def scan_features(csr, sample_weight, row_ids=None, n_threads=None):
    """`FeatureStats` of ``csr`` in one compiled pass over its non-zeros, a slice of rows per thread (at most
    `_SCAN_MAX_SLICES`); ``None`` when the rows are not canonical (the caller sorts them and scans again).

    The pass also checks every value (`DataError` at the first NaN or infinity, naming its row: ``row_ids[i]``
    when given, the user's numbering of a training row after a hold-out split) and every index. Each slice
    counts into its own records, merged in slice order. A memory-mapped cache is read a piece of rows at a time,
    dropping the pages read, so that the file does not become resident.
    """
    import threading

    from hogwild.kernels.stats import (SCAN_NOT_CANONICAL, SCAN_OK, feature_record, first_non_finite,
                                       merge_records, scan_rows)

    from .._io import available_cores

    n_rows, n_features, nnz = csr.n_rows, csr.n_features, csr.nnz
    n_slices = max(1, min(_SCAN_MAX_SLICES, nnz // _SCAN_SLICE_NNZ,
                          _SCAN_BYTES // max(1, _SCAN_BYTES_PER_FEATURE * n_features)))
    # (targets in indptr's own type: a list of Python ints would make searchsorted copy an int32 indptr to int64)
    targets = np.array([(nnz * k) // n_slices for k in range(n_slices)], dtype=csr.indptr.dtype)
    cuts = np.searchsorted(csr.indptr, targets, side="left")
    bounds = [int(c) for c in np.minimum(cuts, n_rows)] + [n_rows]
    # one row of records per slice, apart by a cache line (`worker_rows`); the largest magnitude in the values'
    # type (exact, and a smaller record)
    record = feature_record(np.int32 if n_rows < 2**31 else np.int64, csr.data.dtype)
    padded = worker_rows(n_slices, n_features, record)
    stats = padded[:, :n_features]
    found = [(SCAN_OK, -1)] * n_slices
    n_threads = max(1, min(n_threads or available_cores(), n_slices))
    mapped = csr_is_mapped(csr)

    def scan(k):
        first, stop = bounds[k], bounds[k + 1]
        # a memory-mapped cache a piece at a time, dropping each piece's pages once read
        for piece_first, piece_stop in row_pieces(csr.indptr, stop, first=first) if mapped else [(first, stop)]:
            found[k] = scan_rows(csr.indptr, csr.indices, csr.data, n_features, piece_first, piece_stop,
                                 sample_weight, stats[k])
            if mapped:
                release_rows(csr, piece_first, piece_stop)
            if found[k][0] != SCAN_OK:
                return

    def worker(t):
        for k in range(t, n_slices, n_threads):
            scan(k)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(1, n_threads)]
    for thread in threads:
        thread.start()
    worker(0)
    for thread in threads:
        thread.join()
    problems = [(position, code) for code, position in found if code != SCAN_OK]
    position, code = min(problems) if problems else (nnz, SCAN_OK)
    inv_freq, scale, sq_sums = np.empty(n_features), np.empty(n_features), np.empty(n_features)
    uniform = sample_weight.shape[0] == 1
    # the padded rows whole: one compiled layout however many slices
    finite, in_range = merge_records(padded, n_rows, inv_freq, scale, sq_sums,
                                     float(sample_weight[0]) if uniform else 1.0)
    if not finite:  # a NaN or an infinity among the values read, or squares beyond float64
        bad = -1
        for start, stop in pieces(position):  # a mapped cache a piece at a time, its pages dropped
            bad = first_non_finite(csr.data, start, stop)
            if mapped:
                release(csr.data, start, stop)
            if bad >= 0:
                break
        if bad >= 0:
            raise DataError(f"X contains NaN or infinite values (row {_row(csr, bad, row_ids)}); remove or impute "
                            "them before training")
    if code == SCAN_NOT_CANONICAL:
        return None
    if problems:
        raise DataError(f"X row {_row(csr, position, row_ids)} holds feature index {int(csr.indices[position])}, "
                        f"outside [0, {n_features})")
    weight_total = float(sample_weight[0]) * n_rows if uniform else float(np.sum(sample_weight))
    return FeatureStats(inv_freq, scale, sq_sums, weight_total, (csr, sample_weight), finite and in_range)


def _row(csr, position, row_ids):
    """The row holding non-zero ``position``: ``row_ids[row]`` when given (the user's numbering after a split)."""
    row = int(np.searchsorted(csr.indptr, csr.indptr.dtype.type(position), side="right")) - 1
    return row if row_ids is None else int(row_ids[row])
