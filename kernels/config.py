"""Kernel tunables in one place (stumpy's habit): tests shrink these so tiny inputs span several blocks."""

# CUDA launch shape. Tests under the simulator patch THREADS_PER_BLOCK small.
THREADS_PER_BLOCK = 256
# Rows handed to one CUDA launch (bounds the device-side scratch and the time between host checks).
ROWS_PER_LAUNCH = 1 << 20
# Average nonzeros per row above which a CUDA linear kernel gives each row a whole warp instead of a thread.
WARP_PER_ROW_NNZ = 64

# Numba's fastmath is left off: reassociation would break the bitwise reproducibility of serial/sync runs.
FASTMATH = False
# CUDA MLP kernels: one block per training row, its threads striding over the units of each layer. 128 keeps
# typical hidden layers (64..512 units) in one to four strides. Tests under the simulator patch it small.
MLP_THREADS_PER_BLOCK = 128
# CPU MLP kernels, dense input: the first layer works on tiles of MLP_TILE features (forward) or micro-batch
# rows (gradient), so a tile of weights or deltas (16 x 128 float32 = 8 KB) stays in L1 while it is used, and
# each pass over a row of hidden units adds MLP_TILE products at once. Numba freezes it at compile time (a
# constant trip count is what lets LLVM unroll the tile); tests reach the partial tiles through batch sizes
# and feature counts that are not multiples of it.
MLP_TILE = 16
