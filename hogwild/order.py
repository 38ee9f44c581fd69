"""The row order of an epoch: blocks of consecutive rows in a per-epoch random order.

Visiting CSR rows through a full random permutation thrashes the caches (~4x slower than storage
order on the rcv1-shaped set). The order shuffles BLOCKS of ``2**block_shift`` consecutive rows instead: a
fresh block permutation every epoch, drawn from ``(seed, epoch)`` so that a resumed run needs no RNG state,
rows in storage order inside a block so that the prefetcher streams it. The linear kernels take the block
permutation itself (one int64 per 32 rows); the MLP runners ask for blocks of one row (a full permutation:
consecutive rows of augmented image sets are near copies, and a micro-batch of them would be one example).

Data larger than memory (a memory-mapped cache) is visited in WINDOWS instead: the rows are cut into windows of
``window_rows`` consecutive rows, the windows are shuffled, and the blocks inside each window are shuffled, so
that an epoch reads one window after another and the page cache streams the file. The order is still one
block permutation (the kernels see no difference); ``window_starts`` says where each window's blocks begin, so
that a runner can drop the pages of the windows it has finished (`hogwild.memory.release_rows`).
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
    window_starts: np.ndarray | None = None  # windowed orders: index in `blocks` where each window starts, + end

    def kernel_args(self):
        return self.blocks, self.shift, self.gap_at, self.gap

    def expand(self):
        """The order as one int64 row index per position (the MLP and CUDA runners, tests)."""
        if self.shift == 0:
            return self.blocks
        positions = np.arange(self.n_rows, dtype=np.int64)
        positions[self.gap_at:] += self.gap
        return (self.blocks[positions >> self.shift] << self.shift) | (positions & ((1 << self.shift) - 1))

    def windows_within(self, lo, hi):
        """The windows (a range of window numbers) whose positions all lie in ``[lo, hi)``; empty without windows."""
        if self.window_starts is None or hi <= lo:
            return range(0)
        slots = np.array([lo, hi], dtype=np.int64)
        slots[slots >= self.gap_at] += self.gap  # positions after the short last block sit `gap` slots later
        first_block = -(-int(slots[0]) // (1 << self.shift))
        stop_block = int(slots[1]) >> self.shift if hi < self.n_rows else self.blocks.shape[0]
        first = int(np.searchsorted(self.window_starts, first_block, side="left"))
        stop = int(np.searchsorted(self.window_starts, stop_block, side="right")) - 1
        return range(first, max(first, stop))

    def shard_bounds(self, n_shards):
        """``n_shards + 1`` positions cutting the epoch into near-equal contiguous shards; with windows, each cut
        moves to the nearest window start, so that no window is shared by two workers."""
        bounds = [(self.n_rows * w) // n_shards for w in range(n_shards + 1)]
        if self.window_starts is None or self.n_rows == 0:
            return bounds
        slots = self.window_starts << self.shift
        positions = np.where(slots <= self.gap_at, slots, slots - self.gap)
        positions[-1] = self.n_rows
        for w in range(1, n_shards):
            nearest = int(positions[np.argmin(np.abs(positions - bounds[w]))])
            bounds[w] = min(max(nearest, bounds[w - 1]), self.n_rows)
        return bounds

    def window_rows(self, window):
        """``(first_row, stop_row)``: the storage rows of one window (consecutive in storage)."""
        members = self.blocks[self.window_starts[window] : self.window_starts[window + 1]]
        return (int(members.min()) << self.shift, min(self.n_rows, (int(members.max()) + 1) << self.shift))


def epoch_order(n_rows, seed, epoch, shuffle=True, block_shift=SHUFFLE_BLOCK_SHIFT, window_rows=None):
    """The `RowOrder` of an epoch: blocks of ``2**block_shift`` rows in a per-epoch random order.

    ``window_rows`` (data larger than memory): shuffle windows of that many rows (rounded up to whole blocks),
    and the blocks within each window, instead of all blocks at once.
    """
    block_rows = 1 << block_shift
    n_blocks = -(-n_rows // block_rows)
    shuffled = shuffle and n_rows > block_rows
    rng = np.random.default_rng([int(seed), int(epoch)])
    window_starts = None
    if window_rows is not None:
        per_window = max(1, -(-int(window_rows) // block_rows))
        n_windows = -(-n_blocks // per_window)
        windows = rng.permutation(n_windows) if shuffled else np.arange(n_windows)
        sizes = np.minimum(per_window, n_blocks - windows.astype(np.int64) * per_window)
        window_starts = np.zeros(n_windows + 1, dtype=np.int64)
        np.cumsum(sizes, out=window_starts[1:])
        blocks = np.empty(n_blocks, dtype=np.int64)
        for k, window in enumerate(windows.tolist()):
            members = np.arange(window * per_window, window * per_window + int(sizes[k]), dtype=np.int64)
            blocks[window_starts[k] : window_starts[k + 1]] = rng.permutation(members) if shuffled else members
    elif shuffled:
        blocks = rng.permutation(n_blocks).astype(np.int64)
    else:
        blocks = np.arange(n_blocks, dtype=np.int64)
    if n_blocks == 0:
        return RowOrder(blocks, block_shift, 0, 0, 0, window_starts)
    last = n_rows - (n_blocks - 1) * block_rows  # rows in the (possibly partial) last block
    position = int(np.flatnonzero(blocks == n_blocks - 1)[0])
    return RowOrder(blocks, block_shift, position * block_rows + last, block_rows - last, int(n_rows), window_starts)


__all__ = ["RowOrder", "epoch_order", "SHUFFLE_BLOCK_ROWS", "SHUFFLE_BLOCK_SHIFT"]
