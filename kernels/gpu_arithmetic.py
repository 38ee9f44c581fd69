"""CUDA device versions of `hogwild.kernels.arithmetic`: the same Python source, compiled by ``cuda.jit(device=True)``.

Nothing is written here: every formula is the one the CPU kernels inline (see that module's docstring for
why this twin is a separate module: importing ``numba.cuda`` is left to the GPU paths). Device functions
compile lazily, with the kernel that first calls them; under ``NUMBA_ENABLE_CUDASIM=1`` they are the plain
Python source run by the simulator.
"""

from __future__ import annotations

from numba import cuda

from .arithmetic import ADAGRAD_EPS, FTRL_BETA, compile_shared  # noqa: F401  (the constants: for the CUDA kernels)

_device = compile_shared(cuda.jit(device=True))

# linear models
loss_dloss = _device["loss_dloss"]
clip_dloss = _device["clip_dloss"]
softmax_dloss = _device["softmax_dloss"]
row_dloss = _device["row_dloss"]
eta_at = _device["eta_at"]
adagrad_step = _device["adagrad_step"]
normalized_step = _device["normalized_step"]
ftrl_step = _device["ftrl_step"]
apply_l1 = _device["apply_l1"]
# MLPs
activate = _device["activate"]
slope = _device["slope"]
output_loss_delta = _device["output_loss_delta"]
adam_rate = _device["adam_rate"]
momentum_step = _device["momentum_step"]
adam_step = _device["adam_step"]
rmsprop_step = _device["rmsprop_step"]
