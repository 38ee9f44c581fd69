"""Compiled forward and backward passes of a small policy/value network, one observation at a time.

The network is described by data, not code: a layer table (``layers``, int64, one row per layer, columns
`IN_OFF` .. `HIDDEN`) over one flat parameter array and one per-sample activation row.

* Activation row ``a`` (length ``act_size``): ``a[0:obs_dim]`` is the observation; layer ``l`` reads its
  ``fan_in`` inputs at ``a[IN_OFF:]`` and writes its ``fan_out`` outputs at ``a[OUT_OFF:]``. The policy's
  logits sit at ``a[policy_off:policy_off + n_actions]`` and the value at ``a[value_off]``.
* Parameters: layer ``l``'s weights are a row-major ``(fan_in, fan_out)`` block at ``params[W_OFF:]``, its
  bias a ``fan_out`` block at ``params[B_OFF:]``, as in `hogwild.kernels.mlp`.
* Layers are listed in forward order: a shared trunk (possibly empty), then the policy tower, then the value
  tower. With a shared trunk the towers are one linear layer each, reading the trunk's last output; with
  two separate networks the trunk is empty and each tower starts from the observation. Hidden layers apply
  the activation (tanh or relu); the towers' last layers are linear.
* Backward (`backward`): the deltas of the two outputs are given; layers are walked in reverse, so every
  consumer of a layer's output (both towers, for the trunk) has added its share to that layer's delta before
  the layer itself is reached. No delta is computed for the observation.

Weights are used as 2-D ``(fan_in, fan_out)`` views (a flat slice with offsets hides from LLVM that indices
stay in bounds, and it then keeps loops scalar); inner loops run over contiguous rows. Measured on a 64 x 64
layer in float32: 0.5 us per product instead of 2.6 us for the flat-offset loops.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from .rl_options import JIT_OPTIONS

# columns of the layer table
IN_OFF, OUT_OFF, FAN_IN, FAN_OUT, W_OFF, B_OFF, HIDDEN = 0, 1, 2, 3, 4, 5, 6
N_COLUMNS = 7

ACTIVATIONS = {"tanh": 0, "relu": 1}
_TANH, _RELU = 0, 1


def tanh_inplace(values):
    """``values = tanh(values)`` in place; compiled code gets the float32 or float64 variant below."""
    np.tanh(values, out=values)


# Eigen's float32 tanh (``generic_fast_tanh_float``): an odd degree-13 over even degree-6 rational function on
# [-7.9, 7.9], saturated outside, the identity below 4e-4. Within 6 float32 ulps of the exact tanh, and only
# multiplications, additions and one division, so the loop vectorizes, where a libm call per unit cost about
# 19 ns: three quarters of a forward pass of the 64-64 tanh networks. Float64 keeps the exact ``np.tanh``
# (the precision the gradient checks compare at).
_T_CLAMP = np.float32(7.90531110763549805)
_T_TINY = np.float32(0.0004)
_T_A1, _T_A3, _T_A5, _T_A7 = (np.float32(v) for v in (4.89352455891786e-03, 6.37261928875436e-04,
                                                      1.48572235717979e-05, 5.12229709037114e-08))
_T_A9, _T_A11, _T_A13 = (np.float32(v) for v in (-8.60467152213735e-11, 2.00018790482477e-13,
                                                 -2.76076847742355e-16))
_T_B0, _T_B2, _T_B4, _T_B6 = (np.float32(v) for v in (4.89352518554385e-03, 2.26843463243900e-03,
                                                      1.18534705686654e-04, 1.19825839466702e-06))


@overload(tanh_inplace, jit_options=JIT_OPTIONS)
def _tanh_inplace_compiled(values):
    if isinstance(values, types.Array) and values.dtype == types.float32:
        def fast(values):
            for j in range(values.shape[0]):
                x = values[j]
                clamped = min(max(x, -_T_CLAMP), _T_CLAMP)
                x2 = clamped * clamped
                p = x2 * _T_A13 + _T_A11
                p = x2 * p + _T_A9
                p = x2 * p + _T_A7
                p = x2 * p + _T_A5
                p = x2 * p + _T_A3
                p = x2 * p + _T_A1
                p = clamped * p
                q = x2 * _T_B6 + _T_B4
                q = x2 * q + _T_B2
                q = x2 * q + _T_B0
                values[j] = x if abs(x) < _T_TINY else p / q
        return fast

    def exact(values):
        for j in range(values.shape[0]):
            values[j] = np.tanh(values[j])
    return exact


@njit(**JIT_OPTIONS)
def _matvec_add(W, x, out):
    """``out += x W`` for a ``(fan_in, fan_out)`` row-major ``W``: rows of ``W`` are added four at a time.

    Adding four rows' products per pass over ``out`` loads and stores each output once per four inputs; the
    inner loop runs over a contiguous row, which LLVM vectorizes. Zero inputs (relu zeros) are skipped.
    """
    fan_in, fan_out = W.shape
    k = 0
    while k + 4 <= fan_in:
        x0, x1, x2, x3 = x[k], x[k + 1], x[k + 2], x[k + 3]
        if x0 != 0 or x1 != 0 or x2 != 0 or x3 != 0:
            for j in range(fan_out):
                out[j] += x0 * W[k, j] + x1 * W[k + 1, j] + x2 * W[k + 2, j] + x3 * W[k + 3, j]
        k += 4
    while k < fan_in:
        x0 = x[k]
        if x0 != 0:
            for j in range(fan_out):
                out[j] += x0 * W[k, j]
        k += 1


@njit(**JIT_OPTIONS)
def _matvec_transposed_add(W, delta, out):
    """``out += W delta`` (one dot product per row of ``W``), eight rows at a time.

    Each row's sum runs over ``delta`` in order, as a plain loop would; eight independent sums per pass give
    the core eight chains of additions to overlap instead of one (without fastmath, LLVM may not reorder a
    single sum, so one chain would run at the latency of an addition per product).
    """
    fan_in, fan_out = W.shape
    zero = delta[0] - delta[0]  # in the arrays' own float type
    k = 0
    while k + 8 <= fan_in:
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = zero
        for j in range(fan_out):
            dj = delta[j]
            s0 += W[k, j] * dj
            s1 += W[k + 1, j] * dj
            s2 += W[k + 2, j] * dj
            s3 += W[k + 3, j] * dj
            s4 += W[k + 4, j] * dj
            s5 += W[k + 5, j] * dj
            s6 += W[k + 6, j] * dj
            s7 += W[k + 7, j] * dj
        out[k] += s0
        out[k + 1] += s1
        out[k + 2] += s2
        out[k + 3] += s3
        out[k + 4] += s4
        out[k + 5] += s5
        out[k + 6] += s6
        out[k + 7] += s7
        k += 8
    while k < fan_in:
        total = zero
        for j in range(fan_out):
            total += W[k, j] * delta[j]
        out[k] += total
        k += 1


@njit(**JIT_OPTIONS)
def _outer_add(x, delta, G):
    """``G += x^T delta`` (the weight gradient of one sample), skipping zero inputs."""
    fan_in, fan_out = G.shape
    for k in range(fan_in):
        x0 = x[k]
        if x0 != 0:
            for j in range(fan_out):
                G[k, j] += x0 * delta[j]


@njit(**JIT_OPTIONS)
def forward(params, layers, activation, a):
    """Fill the activation row ``a`` (its observation already in place) through every layer."""
    for layer in range(layers.shape[0]):
        in_off, out_off = layers[layer, IN_OFF], layers[layer, OUT_OFF]
        fan_in, fan_out = layers[layer, FAN_IN], layers[layer, FAN_OUT]
        w_off, b_off = layers[layer, W_OFF], layers[layer, B_OFF]
        out = a[out_off:out_off + fan_out]
        bias = params[b_off:b_off + fan_out]
        for j in range(fan_out):
            out[j] = bias[j]
        W = params[w_off:w_off + fan_in * fan_out].reshape((fan_in, fan_out))
        _matvec_add(W, a[in_off:in_off + fan_in], out)
        if layers[layer, HIDDEN]:
            if activation == _TANH:
                tanh_inplace(out)
            else:
                for j in range(fan_out):
                    if out[j] < 0:
                        out[j] = 0
    return a


@njit(**JIT_OPTIONS)
def backward(params, layers, activation, obs_dim, a, d, grad):
    """Add the parameter gradient of one sample to ``grad``, given ``a`` (from `forward`) and the output deltas.

    ``d`` has the activation row's layout; on entry its two output blocks (logits, value) hold dLoss/dOutput
    and every other entry from ``obs_dim`` on is zero. It is used as scratch (the hidden deltas).
    """
    for layer in range(layers.shape[0] - 1, -1, -1):
        in_off, out_off = layers[layer, IN_OFF], layers[layer, OUT_OFF]
        fan_in, fan_out = layers[layer, FAN_IN], layers[layer, FAN_OUT]
        w_off, b_off = layers[layer, W_OFF], layers[layer, B_OFF]
        delta = d[out_off:out_off + fan_out]
        if layers[layer, HIDDEN]:
            out = a[out_off:out_off + fan_out]
            # f'(z) written in terms of a = f(z): tanh 1 - a^2, relu a > 0
            if activation == _TANH:
                for j in range(fan_out):
                    delta[j] *= 1 - out[j] * out[j]
            else:
                for j in range(fan_out):
                    if out[j] <= 0:
                        delta[j] = 0
        gb = grad[b_off:b_off + fan_out]
        for j in range(fan_out):
            gb[j] += delta[j]
        W = params[w_off:w_off + fan_in * fan_out].reshape((fan_in, fan_out))
        if in_off >= obs_dim:  # the observation needs no delta
            _matvec_transposed_add(W, delta, d[in_off:in_off + fan_in])
        G = grad[w_off:w_off + fan_in * fan_out].reshape((fan_in, fan_out))
        _outer_add(a[in_off:in_off + fan_in], delta, G)


@njit(**JIT_OPTIONS)
def forward_batch(params, layers, activation, obs, a, policy_off, value_off, logits, values):
    """Logits ``(n, n_actions)`` and values ``(n,)`` of a batch of observations ``obs`` (n, obs_dim).

    The entry for Python-side callers (`hogwild.rl.policy.PolicyModel`, the Gymnasium-stepping runner);
    ``a`` is scratch of the activation row's size. The worker kernels call `forward` directly.
    """
    obs_dim = obs.shape[1]
    n_actions = logits.shape[1]
    for row in range(obs.shape[0]):
        for i in range(obs_dim):
            a[i] = obs[row, i]
        forward(params, layers, activation, a)
        for j in range(n_actions):
            logits[row, j] = a[policy_off + j]
        values[row] = a[value_off]
