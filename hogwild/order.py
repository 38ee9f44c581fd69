"""The row order of an epoch: blocks of consecutive rows in a per-epoch random order.

Visiting CSR rows through a full random permutation thrashes the caches (~4x slower than storage
order on the rcv1-shaped set). The order shuffles BLOCKS of ``2**block_shift`` consecutive rows instead: a
fresh block permutation every epoch, drawn from ``(seed, epoch)`` so that a resumed run needs no RNG state,
rows in storage order inside a block so that the prefetcher streams it. The linear kernels take the block
permutation itself (one int64 per 32 rows); the MLP runners ask for blocks of one row (a full permutation:
consecutive rows of augmented image sets are near copies, and a micro-batch of them would be one example).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Rows per shuffled block of the linear runners (a power of two: the kernels find a row with a shift and a
# mask): 32 rows of ~75 non-zeros are ~20 KB of data, long enough for the prefetcher.
SHUFFLE_BLOCK_SHIFT = 5
SHUFFLE_BLOCK_ROWS = 1 << SHUFFLE_BLOCK_SHIFT


@dataclass(frozen=True)
class RowOrder:
    """An epoch's row order, stored as its block permutation (what the linear kernels take: `kernel_args`).

    ``blocks`` is a permutation of the ``ceil(n_rows / 2**shift)`` block numbers; the last block may hold
    fewer rows (``2**shift - gap``), so the rows after it in the order sit ``gap`` places earlier than a full
    block would put them: position r of the epoch reads block position ``s >> shift``, offset ``s & mask``,
    where ``s = r + gap`` from ``r >= gap_at`` on (`hogwild.kernels.linear.row_at`).
    """

    blocks: np.ndarray
    shift: int
    gap_at: int
    gap: int
    n_rows: int

    def kernel_args(self):
        return self.blocks, self.shift, self.gap_at, self.gap

    def expand(self):
        """The order as one int64 row index per position (the MLP and CUDA runners, tests)."""
        if self.shift == 0:
            return self.blocks
        positions = np.arange(self.n_rows, dtype=np.int64)
        positions[self.gap_at:] += self.gap
        return (self.blocks[positions >> self.shift] << self.shift) | (positions & ((1 << self.shift) - 1))


def epoch_order(n_rows, seed, epoch, shuffle=True, block_shift=SHUFFLE_BLOCK_SHIFT):
    """The `RowOrder` of an epoch: blocks of ``2**block_shift`` rows in a per-epoch random order."""
    block_rows = 1 << block_shift
    n_blocks = -(-n_rows // block_rows)
    if not shuffle or n_rows <= block_rows:
        blocks = np.arange(n_blocks, dtype=np.int64)
    else:
        blocks = np.random.default_rng([int(seed), int(epoch)]).permutation(n_blocks).astype(np.int64)
    if n_blocks == 0:
        return RowOrder(blocks, block_shift, 0, 0, 0)
    last = n_rows - (n_blocks - 1) * block_rows  # rows in the (possibly partial) last block
    position = int(np.flatnonzero(blocks == n_blocks - 1)[0])
    return RowOrder(blocks, block_shift, position * block_rows + last, block_rows - last, int(n_rows))


__all__ = ["RowOrder", "epoch_order", "SHUFFLE_BLOCK_ROWS", "SHUFFLE_BLOCK_SHIFT"]
