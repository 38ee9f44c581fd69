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
