"""Compiled kernels (installed as ``hogwild.kernels``): private Numba functions the engine calls.

CPU kernels are ``@njit(nogil=True, cache=True)``; their CUDA twins live beside them with a ``gpu_`` prefix.
Tunables (threads per block, chunk sizes) live in `hogwild.kernels.config`, never in decorators.
"""
