"""Feature hashing, compiled: MurmurHash3 (x86, 32-bit) of a column index, and CSR rows hashed into 2^B columns.

The hash is Austin Appleby's MurmurHash3_x86_32 with seed 0 applied to the column index as a 4-byte
little-endian integer: exactly ``sklearn.utils.murmurhash3_32(j, seed=0, positive=True)`` (the function under
scikit-learn's FeatureHasher; Vowpal Wabbit hashes with MurmurHash3 too). Column ``j`` goes to bucket
``hash(j) & (2^B - 1)`` (the unsigned hash modulo 2^B), with its sign kept: no alternating sign. Columns of one row
that land in one bucket are summed, so every hashed row is canonical (sorted, no duplicates).

`hogwild.hashing` is the Python front (validation, pieces of rows, memory-mapped input); ``tests`` check the hash
against scikit-learn's for many keys and `hash_rows` against a NumPy twin.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_C1 = np.uint64(0xCC9E2D51)
_C2 = np.uint64(0x1B873593)
_MASK32 = np.uint64(0xFFFFFFFF)


@njit(inline="always")
def _rotl32(x, r):
    return ((x << np.uint64(r)) | (x >> np.uint64(32 - r))) & _MASK32


@njit(nogil=True, cache=True)
def murmurhash3_32(key):
    """MurmurHash3_x86_32 (seed 0) of the 4 bytes of the 32-bit integer ``key``, as an unsigned value."""
    k1 = np.uint64(np.int64(key) & np.int64(0xFFFFFFFF))
    k1 = (k1 * _C1) & _MASK32
    k1 = _rotl32(k1, 15)
    k1 = (k1 * _C2) & _MASK32
    h1 = k1  # the seed is 0
    h1 = _rotl32(h1, 13)
    h1 = (h1 * np.uint64(5) + np.uint64(0xE6546B64)) & _MASK32
    h1 ^= np.uint64(4)  # the key's length in bytes
    h1 ^= h1 >> np.uint64(16)
    h1 = (h1 * np.uint64(0x85EBCA6B)) & _MASK32
    h1 ^= h1 >> np.uint64(13)
    h1 = (h1 * np.uint64(0xC2B2AE35)) & _MASK32
    h1 ^= h1 >> np.uint64(16)
    return h1


@njit(nogil=True, cache=True)
def hash_columns(columns, mask, out):
    """``out[i] = murmurhash3_32(columns[i]) & mask`` for every column index."""
    for i in range(columns.shape[0]):
        out[i] = np.int32(murmurhash3_32(columns[i]) & np.uint64(mask))


@njit(nogil=True, cache=True)
def hash_rows(indptr, indices, data, first, stop, mask, out_indices, out_data, out_lengths):
    """Hash rows ``[first, stop)`` of a CSR into buckets ``hash & mask``, summing what collides within a row.

    Writes the hashed rows one after another from the start of ``out_indices``/``out_data`` (each at least as
    long as the rows' non-zeros), each row's buckets in increasing order, and row ``first + r``'s length to
    ``out_lengths[r]``; returns the number of non-zeros written.
    """
    written = 0
    for row in range(first, stop):
        lo, hi = indptr[row], indptr[row + 1]
        n = hi - lo
        buckets = np.empty(n, dtype=np.int32)
        for p in range(n):
            buckets[p] = np.int32(murmurhash3_32(indices[lo + p]) & np.uint64(mask))
        order = np.argsort(buckets, kind="mergesort")
        start = written
        for p in range(n):
            bucket = buckets[order[p]]
            value = data[lo + order[p]]
            if written > start and out_indices[written - 1] == bucket:
                out_data[written - 1] += value
            else:
                out_indices[written] = bucket
                out_data[written] = value
                written += 1
        out_lengths[row - first] = written - start
    return written
