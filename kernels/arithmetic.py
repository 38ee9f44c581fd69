"""The scalar arithmetic of every kernel, written once and compiled for both targets from the same source.

A loss and its derivative, a step size, the L1 cumulative-penalty step, AdaGrad's step, an activation and its
slope, an MLP output loss, an optimizer's update: each is one small Python function here. The CPU kernels
(`hogwild.kernels.linear`, `hogwild.kernels.mlp`) call the functions of this module. The scalar ones are
``njit(inline="always")``: Numba pastes their body into the calling kernel before typing it, so a kernel
compiles as if the formula were written in place (same types, same order of operations, nothing to call;
the row kernels' inner loops compile to the same machine code as when the formulas were written in them).
The few that take arrays (a row's scores, the L1 debts) are ordinary njit functions that LLVM inlines
(`_shared_on_arrays` says why). The CUDA kernels (`hogwild.kernels.gpu_linear`, `hogwild.kernels.gpu_mlp`)
call the same Python source compiled by ``cuda.jit(device=True)`` in `hogwild.kernels.gpu_arithmetic`
(stumpy's habit: one source, two targets). So a formula cannot drift between the devices; ``tests/naive.py``
and ``tests/naive_mlp.py`` stay the independent NumPy statement of what the formulas must compute, and
``tests/test_arithmetic.py`` holds all three targets (plain Python, CPU, CUDA) to them.

Why the CUDA versions live in another module: compiling for CUDA needs ``numba.cuda``, whose import costs
start-up time (and a driver probe) that CPU-only users must not pay. This module imports only ``numba.njit``;
`compile_shared` builds the versions of another target on demand, binding the calls between shared
functions (``row_dloss`` calls ``loss_dloss``) to that target's versions. Python code that needs one formula
on the host (a step size per epoch) calls the plain source, ``eta_at.py_func``: the same arithmetic without a
compiled kernel to load.

Rules for a function here: scalars and arrays in, scalars (or a tuple of them) out; only ``math`` and the named
codes of `hogwild.kernels.codes` (frozen as constants by both compilers); no NumPy calls (the CUDA target
compiles little of NumPy); type-generic, so that float32 weights keep float32 arithmetic where the caller passes float32
operands. Numba's on-disk cache checks only the file of the kernel it compiled: after editing this module,
clear the kernels' caches (``find kernels -name '*.nb[ic]' -delete``) or touch the kernel modules.
"""

from __future__ import annotations

import math
import types

from numba import njit

from .codes import (
    ACTIVATION_RELU,
    ACTIVATION_SIGMOID,
    ACTIVATION_TANH,
    LOSS_HINGE,
    LOSS_HUBER,
    LOSS_LOG_LOSS,
    LOSS_MODIFIED_HUBER,
    LOSS_PERCEPTRON,
    LOSS_SQUARED_ERROR,
    LOSS_SQUARED_HINGE,
    MULTICLASS_OVR,
    MULTICLASS_SOFTMAX,
    OUTPUT_LOGISTIC,
    OUTPUT_SOFTMAX,
    SCHEDULE_DECAY,
    SCHEDULE_INVSCALING,
    SCHEDULE_OPTIMAL,
)
from .config import FASTMATH

# AdaGrad's epsilon (added to the root of the summed squares), as tests/naive.py.
ADAGRAD_EPS = 1e-8
# FTRL-Proximal's beta (McMahan et al. 2013: "beta = 1 is usually good enough").
FTRL_BETA = 1.0
# Beyond |margin| 18 the logistic loss is exp(-z) or -z to double precision (and exp cannot overflow).
LOG_LOSS_CUTOFF = 18.0

_SOURCES = {}


def _shared(function):
    """Register the scalar function ``function`` as shared arithmetic; return its CPU version, which Numba
    inlines into the calling kernel before typing it."""
    _SOURCES[function.__name__] = function
    return njit(inline="always", nogil=True, fastmath=FASTMATH)(function)


def _shared_on_arrays(function):
    """Register ``function``, which reads or writes arrays, as shared arithmetic; return its CPU version, an
    ordinary njit function that LLVM inlines where it pays.

    Not Numba's IR inlining: pasted into a kernel's loop over K outputs, `apply_l1` kept that loop from being
    vectorized (news20 one-vs-rest with L1 ran 1.7x slower per epoch, same weights); called, it compiles to the
    old kernels' machine code.
    """
    _SOURCES[function.__name__] = function
    return njit(nogil=True, fastmath=FASTMATH)(function)


def compile_shared(decorate):
    """Every shared function compiled by ``decorate`` (e.g. ``cuda.jit(device=True)``), as a name -> function dict.

    Each source is re-created over a copy of this module's globals in which the shared names are the new
    versions, so a shared function that calls another calls the one compiled for the same target.
    ``compile_shared(lambda f: f)`` gives the plain-Python versions.
    """
    namespace = dict(globals())
    compiled = {}
    for name, source in _SOURCES.items():
        clone = types.FunctionType(source.__code__, namespace, name, source.__defaults__, source.__closure__)
        clone.__qualname__, clone.__doc__, clone.__module__ = source.__qualname__, source.__doc__, source.__module__
        compiled[name] = namespace[name] = decorate(clone)
    return compiled


# --- linear models -------------------------------------------------------------------------------------
@_shared
def loss_dloss(loss, p, y, epsilon):
    """(loss, dloss/dp) of a binary (y = -1/+1) or regression loss at score p (tests/naive.py states each)."""
    if loss == LOSS_LOG_LOSS:
        z = p * y
        if z > LOG_LOSS_CUTOFF:
            e = math.exp(-z)
            return e, -y * e
        if z < -LOG_LOSS_CUTOFF:
            return -z, -y
        return math.log1p(math.exp(-z)), -y / (1.0 + math.exp(z))
    if loss == LOSS_HINGE or loss == LOSS_PERCEPTRON:
        threshold = 1.0 if loss == LOSS_HINGE else 0.0
        z = p * y
        if z <= threshold:
            return threshold - z, -y
        return 0.0, 0.0
    if loss == LOSS_SQUARED_HINGE:
        z = 1.0 - p * y
        if z > 0.0:
            return z * z, -2.0 * y * z
        return 0.0, 0.0
    if loss == LOSS_MODIFIED_HUBER:
        z = p * y
        if z >= 1.0:
            return 0.0, 0.0
        if z >= -1.0:
            return (1.0 - z) * (1.0 - z), -2.0 * y * (1.0 - z)
        return -4.0 * z, -4.0 * y
    if loss == LOSS_SQUARED_ERROR:
        r = p - y
        return 0.5 * r * r, r
    if loss == LOSS_HUBER:
        r = p - y
        if abs(r) <= epsilon:
            return 0.5 * r * r, r
        return epsilon * abs(r) - 0.5 * epsilon * epsilon, epsilon if r > 0.0 else -epsilon
    # LOSS_EPSILON_INSENSITIVE
    r = y - p
    if r > epsilon:
        return r - epsilon, -1.0
    if -r > epsilon:
        return -r - epsilon, 1.0
    return 0.0, 0.0


@_shared
def clip_dloss(d, clip):
    """``d`` clipped to [-clip, clip]; ``clip`` 0 means no clipping."""
    if clip > 0.0:
        if d > clip:
            return clip
        if d < -clip:
            return -clip
    return d


@_shared_on_arrays
def softmax_dloss(values, base, n_classes, label):
    """Replace the scores ``values[base:base+K]`` by d(cross-entropy)/d(score) (``p_k - [k == label]``);
    return the cross-entropy ``-log p_label`` (the scores are shifted by their maximum, so exp cannot overflow).
    """
    c = int(label)
    top = values[base]
    for k in range(1, n_classes):
        if values[base + k] > top:
            top = values[base + k]
    norm = 0.0
    for k in range(n_classes):
        e = math.exp(values[base + k] - top)
        values[base + k] = e
        norm += e
    for k in range(n_classes):
        values[base + k] /= norm
    value = -math.log(max(values[base + c], 1e-300))
    values[base + c] -= 1.0
    return value


@_shared_on_arrays
def row_dloss(values, base, n_outputs, multiclass, loss, label, epsilon, clip):
    """Replace one row's scores ``values[base:base+K]`` by its clipped loss derivatives; return the row's loss.

    ``multiclass`` says how the K scores meet ``label``: one score and its binary/regression target, K
    one-vs-rest binary losses of a class index, or one softmax cross-entropy (``loss`` is then unused).
    """
    total = 0.0
    if multiclass == MULTICLASS_SOFTMAX:
        total = softmax_dloss(values, base, n_outputs, label)
    else:
        for k in range(n_outputs):
            if multiclass == MULTICLASS_OVR:
                target = 1.0 if k == int(label) else -1.0
            else:
                target = label
            value, d = loss_dloss(loss, values[base + k], target, epsilon)
            total += value
            values[base + k] = d
    if clip > 0.0:
        for k in range(n_outputs):
            values[base + k] = clip_dloss(values[base + k], clip)
    return total


@_shared
def eta_at(schedule, lr, epoch_factor, l2, t0, power_t, t):
    """The step size at global step ``t`` (0-based); constant, adaptive and the per-coordinate schedules
    (adagrad, normalized, ftrl: their base rate) give ``lr``. Every schedule is proportional to ``lr``: optimal's
    is 1 (`hogwild.kernels.linear.kernel_params`) except where a runner scales the steps (average mode's
    replicas take ``n_replicas`` times the step: `hogwild.runners.linear_cpu`)."""
    if schedule == SCHEDULE_DECAY:
        return lr * epoch_factor
    if schedule == SCHEDULE_INVSCALING:
        return lr / (t + 1.0) ** power_t
    if schedule == SCHEDULE_OPTIMAL:
        # Bottou's schedule; t0 = `hogwild.kernels.linear.optimal_t0`
        return lr / (l2 * (t0 + t))
    return lr


@_shared
def adagrad_step(lr, grad, acc, epsilon):
    """AdaGrad's decrement of a coordinate whose squared gradients sum to ``acc`` (this step's included)."""
    return lr * grad / (math.sqrt(acc) + epsilon)


@_shared
def normalized_step(lr, grad, acc, scale, epsilon):
    """The normalized adaptive decrement of a coordinate (Ross, Mineiro & Langford 2013, "NAG"; Vowpal Wabbit's
    default ``--adaptive --normalized``): ``lr * grad / (scale * sqrt(acc))``.

    ``scale`` is the largest ``|x_j|`` of the coordinate's feature and ``acc`` its summed squared gradients (this
    step's included). Multiplying the feature by c multiplies ``grad``, ``sqrt(acc)`` and ``scale`` by c and so
    divides the step by c: the weight moves exactly as the unscaled problem's would, whatever the feature's
    units. ``epsilon * scale`` keeps the step finite at ``acc = 0`` without breaking that invariance.
    """
    return lr * grad / (scale * (math.sqrt(acc) + epsilon * scale))


@_shared
def ftrl_step(z, acc, weight, grad, alpha, beta, l1, l2):
    """One FTRL-Proximal step of a coordinate (McMahan et al. 2013, Algorithm 1): the new ``(z, acc, weight)``.

    ``acc`` is the coordinate's summed squared gradients (the paper's n), ``alpha`` and ``beta`` its per-coordinate
    rate ``alpha / (beta + sqrt(n))``. ``z += g - sigma w`` with ``sigma = (sqrt(n + g^2) - sqrt(n)) / alpha``;
    the weight is then the closed form of the proximal step: exactly 0 while ``|z| <= l1`` (the sparse models L1
    is for), else ``-(z - sign(z) l1) / ((beta + sqrt(n)) / alpha + l2)``.
    """
    root_before = math.sqrt(acc)
    acc = acc + grad * grad
    root = math.sqrt(acc)
    z = z + grad - (root - root_before) / alpha * weight
    if z <= l1 and z >= -l1:
        return z, acc, 0.0 * z
    shrunk = z - l1 if z > 0.0 else z + l1
    return z, acc, -shrunk / ((beta + root) / alpha + l2)


@_shared_on_arrays
def apply_l1(W, q_l1, j, k, u):
    """Tsuruoka et al. (2009): pull ``W[j, k]`` toward 0 by what it still owes of the total penalty ``u``,
    never across 0; ``q_l1[j, k]`` records what it has paid (read back from ``W``, in the weights' type)."""
    z = W[j, k]
    if z > 0.0:
        W[j, k] = max(0.0, z - (u + q_l1[j, k]))
    elif z < 0.0:
        W[j, k] = min(0.0, z + (u - q_l1[j, k]))
    q_l1[j, k] += W[j, k] - z


# --- MLPs ----------------------------------------------------------------------------------------------
@_shared
def activate(z, activation):
    """The hidden activation f(z): relu, tanh, or the sigmoid written so that exp never overflows."""
    if activation == ACTIVATION_RELU:
        return z if z > 0 else 0.0 * z  # 0 * z keeps a NaN a NaN (the engine's divergence check sees it)
    if activation == ACTIVATION_TANH:
        return math.tanh(z)
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@_shared
def slope(a, activation):
    """f'(z) written in terms of a = f(z), so the forward pass need not keep z."""
    if activation == ACTIVATION_RELU:
        return 1.0 if a > 0 else 0.0
    if activation == ACTIVATION_TANH:
        return 1.0 - a * a
    return a * (1.0 - a)


@_shared_on_arrays
def output_loss_delta(output, scores, base, n_out, y_index, y_value, row, scale, deltas, delta_base, loss_sum):
    """``loss_sum`` plus one row's output loss; writes ``scale * dloss/dscore`` to ``deltas[delta_base:]``.

    The scores are ``scores[base:base+n_out]``; ``y_index[row]`` is the row's class index (softmax; logistic:
    class 1 is the positive one) and ``y_value[row]`` its regression targets (identity); each is read only by
    the outputs that have it (the other is a one-element placeholder). Softmax: cross-entropy,
    delta ``p - onehot``; logistic: ``log(1 + exp(-z))`` for class 1, ``log(1 + exp(z))`` for class 0, delta
    ``sigmoid(z) - target``; identity: ``0.5 * sum (z - y)^2``, delta ``z - y``.
    """
    if output == OUTPUT_SOFTMAX:
        largest = scores[base]
        for k in range(1, n_out):
            largest = max(largest, scores[base + k])
        total = 0.0
        for k in range(n_out):
            total += math.exp(scores[base + k] - largest)
        label = y_index[row]
        loss_sum += math.log(total) - (scores[base + label] - largest)
        for k in range(n_out):
            p = math.exp(scores[base + k] - largest) / total
            deltas[delta_base + k] = (p - (1.0 if k == label else 0.0)) * scale
    elif output == OUTPUT_LOGISTIC:
        z = scores[base]
        target = 1.0 if y_index[row] == 1 else 0.0
        # both signs without overflow: log(1 + exp(s)) = max(s, 0) + log1p(exp(-|s|))
        signed = -z if target == 1.0 else z
        loss_sum += max(signed, 0.0) + math.log1p(math.exp(-abs(signed)))
        deltas[delta_base] = (activate(z, ACTIVATION_SIGMOID) - target) * scale
    else:
        for k in range(n_out):
            diff = scores[base + k] - y_value[row, k]
            loss_sum += 0.5 * diff * diff
            deltas[delta_base + k] = diff * scale
    return loss_sum


@_shared
def adam_rate(lr, beta1, beta2, t):
    """Adam's bias-corrected step at optimizer step ``t`` (1-based), scikit-learn's form."""
    return lr * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)


@_shared
def momentum_step(velocity, g, momentum, lr):
    """The new velocity ``momentum * v - lr * g`` (the parameter then adds it)."""
    return momentum * velocity - lr * g


@_shared
def adam_step(m, v, g, beta1, beta2, keep1, keep2, rate, epsilon):
    """Adam: the new moments ``(m, v)`` and the parameter's decrement; ``keep = 1 - beta``, ``rate`` = `adam_rate`."""
    m = beta1 * m + keep1 * g
    v = beta2 * v + keep2 * g * g
    return m, v, rate * m / (math.sqrt(v) + epsilon)


@_shared
def rmsprop_step(v, g, beta2, keep2, lr, epsilon):
    """RMSprop: the new second moment and the parameter's decrement; ``keep2 = 1 - beta2``."""
    v = beta2 * v + keep2 * g * g
    return v, lr * g / (math.sqrt(v) + epsilon)
