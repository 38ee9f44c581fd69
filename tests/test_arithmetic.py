"""The shared scalar arithmetic (`hogwild.kernels.arithmetic`) against the NumPy twins, on every target.

One Python source, compiled three ways: plain Python (`compile_shared` with no compiler, and each CPU
function's ``py_func``), the CPU functions the kernels inline (``njit(inline="always")``, inlined here into a
small njit loop exactly as a kernel inlines them), and the CUDA device functions of
`hogwild.kernels.gpu_arithmetic` (called from tiny kernels, under ``NUMBA_ENABLE_CUDASIM=1`` or on a GPU).
Each is held to ``tests/naive.py`` / ``tests/naive_mlp.py``, which restate the formulas independently, on random
inputs plus the edges of every branch (the log-loss cut-offs, the hinge and huber kinks, the L1 clip at zero).
The naive twins must also name every variant the kernels have a code for.
"""

import math
import types

import numpy as np
import pytest
from numba import njit

import naive
import naive_mlp
from hogwild.kernels import arithmetic, codes
from hogwild.kernels.arithmetic import ADAGRAD_EPS, compile_shared

PYTHON = compile_shared(lambda function: function)
CPU = {name: getattr(arithmetic, name) for name in PYTHON}
PY_FUNC = {name: function.py_func for name, function in CPU.items()}
# The row drivers below call these names; `_bind` points them at one target's versions.
(loss_dloss, clip_dloss, row_dloss, eta_at, adagrad_step, apply_l1, activate, slope, output_loss_delta,
 adam_rate, momentum_step, adam_step, rmsprop_step, normalized_step, ftrl_step) = (
    PYTHON[name] for name in ("loss_dloss", "clip_dloss", "row_dloss", "eta_at", "adagrad_step", "apply_l1",
                              "activate", "slope", "output_loss_delta", "adam_rate", "momentum_step", "adam_step",
                              "rmsprop_step", "normalized_step", "ftrl_step"))

CPU_TARGETS = ["python", "py_func", "cpu"]
RTOL = 1e-13  # the same arithmetic on both sides: equal but for the odd last-bit of a libm call


def _bind(function, functions):
    """``function`` re-created with the shared names bound to ``functions`` (one target's versions)."""
    namespace = dict(function.__globals__)
    namespace.update(functions)
    return types.FunctionType(function.__code__, namespace, function.__name__)


# --- row drivers: row i of the inputs through the shared functions, written once for every target ------------
def _scalar_row(i, x, out):
    value, d = loss_dloss(int(x[i, 0]), x[i, 1], x[i, 2], x[i, 3])
    out[i, 0] = value
    out[i, 1] = d
    out[i, 2] = clip_dloss(x[i, 4], x[i, 5])
    out[i, 3] = eta_at(int(x[i, 6]), x[i, 7], x[i, 8], x[i, 9], x[i, 10], x[i, 11], x[i, 12])
    out[i, 4] = adagrad_step(x[i, 7], x[i, 13], x[i, 14], ADAGRAD_EPS)
    out[i, 5] = activate(x[i, 15], int(x[i, 16]))
    out[i, 6] = slope(x[i, 25], int(x[i, 16]))
    rate = adam_rate(x[i, 7], x[i, 17], x[i, 18], int(x[i, 19]))
    out[i, 7] = rate
    out[i, 8] = momentum_step(x[i, 20], x[i, 22], x[i, 23], x[i, 7])
    m, v, decrement = adam_step(x[i, 20], x[i, 21], x[i, 22], x[i, 17], x[i, 18], 1.0 - x[i, 17], 1.0 - x[i, 18],
                                rate, x[i, 24])
    out[i, 9] = m
    out[i, 10] = v
    out[i, 11] = decrement
    v, decrement = rmsprop_step(x[i, 21], x[i, 22], x[i, 18], 1.0 - x[i, 18], x[i, 7], x[i, 24])
    out[i, 12] = v
    out[i, 13] = decrement


def _coordinate_row(i, x, out):
    # the per-coordinate steps beyond AdaGrad's: x[i] = (lr, grad, acc, scale, z, n, weight, beta, l1, l2)
    out[i, 0] = normalized_step(x[i, 0], x[i, 1], x[i, 2], x[i, 3], ADAGRAD_EPS)
    z, n, weight = ftrl_step(x[i, 4], x[i, 5], x[i, 6], x[i, 1], x[i, 0], x[i, 7], x[i, 8], x[i, 9])
    out[i, 1] = z
    out[i, 2] = n
    out[i, 3] = weight


def _row_dloss_row(i, values, meta, losses):
    # meta[i] = (base, n_outputs, multiclass, loss, label, epsilon, clip); the scores sit at values[i, base:]
    row = values[i]
    losses[i] = row_dloss(row, int(meta[i, 0]), int(meta[i, 1]), int(meta[i, 2]), int(meta[i, 3]), meta[i, 4],
                          meta[i, 5], meta[i, 6])


def _l1_row(i, W, q, u):
    for k in range(W.shape[1]):
        apply_l1(W, q, i, k, u[0])


def _output_row(i, scores, meta, y_index, y_value, deltas, losses):
    # meta[i] = (output, n_out, scale); row i's scores start at 1 and its deltas at 2 (offsets, as in the kernels)
    losses[i] = output_loss_delta(int(meta[i, 0]), scores[i], 1, int(meta[i, 1]), y_index, y_value, i, meta[i, 2],
                                  deltas[i], 2, 0.0)


def _python_run(functions):
    def run(row, n, *arrays):
        bound = _bind(row, functions)
        for i in range(n):
            bound(i, *arrays)

    return run


def _cpu_run(row, n, *arrays):
    bound = njit(_bind(row, CPU))

    @njit
    def loop(n, *arrays):
        for i in range(n):
            bound(i, *arrays)

    loop(n, *arrays)


RUNNERS = {"python": _python_run(PYTHON), "py_func": _python_run(PY_FUNC), "cpu": _cpu_run}


# --- inputs and the naive answers ------------------------------------------------------------------------------
BINARY_LOSSES = ("log_loss", "hinge", "squared_hinge", "modified_huber", "perceptron")
N_SCALAR = 240


def _scalar_inputs(seed):
    rng = np.random.default_rng(seed)
    n = N_SCALAR
    x = np.zeros((n, 26))
    names = list(codes.LOSS_CODES)
    loss_names = [names[i % len(names)] for i in range(n)]
    x[:, 0] = [codes.LOSS_CODES[name] for name in loss_names]
    x[:, 1] = rng.normal(scale=3.0, size=n)
    binary = np.array([name in BINARY_LOSSES for name in loss_names])
    x[:, 2] = np.where(binary, rng.choice([-1.0, 1.0], size=n), rng.normal(size=n))
    x[:, 3] = rng.choice([0.1, 0.5], size=n)
    # the edges of the branches: margins at the log-loss cut-offs and the kinks, residuals at +-epsilon
    edges = [18.0, -18.0, 18.5, -18.5, 1.0, -1.0, 0.0]
    for row, margin in enumerate(edges * 8):
        if binary[row]:
            x[row, 1] = margin * x[row, 2]
        else:
            x[row, 1] = x[row, 2] + (margin if abs(margin) <= 1.0 else 0.0) * x[row, 3]
    x[:, 4] = rng.normal(scale=2.0, size=n)
    x[:, 5] = rng.choice([0.0, 0.5, 1.0], size=n)
    schedules = list(codes.SCHEDULE_CODES.values())
    x[:, 6] = [schedules[i % len(schedules)] for i in range(n)]
    x[:, 7] = rng.uniform(0.01, 0.5, size=n)
    x[:, 8] = rng.uniform(0.3, 1.0, size=n)
    x[:, 9] = rng.uniform(1e-5, 1e-2, size=n)
    x[:, 10] = rng.uniform(1.0, 1e4, size=n)
    x[:, 11] = rng.uniform(0.25, 1.0, size=n)
    x[:, 12] = rng.integers(0, 10**6, size=n).astype(np.float64)
    x[:, 13] = rng.normal(size=n)
    x[:, 14] = x[:, 13] * x[:, 13] + rng.uniform(0.0, 3.0, size=n)
    x[:, 15] = rng.normal(scale=4.0, size=n)
    x[:5, 15] = [0.0, -0.0, 30.0, -30.0, 800.0]
    activations = list(codes.ACTIVATION_CODES.values())
    x[:, 16] = [activations[i % len(activations)] for i in range(n)]
    x[:, 17] = rng.uniform(0.8, 0.95, size=n)
    x[:, 18] = rng.uniform(0.9, 0.9999, size=n)
    x[:, 19] = rng.integers(1, 5000, size=n).astype(np.float64)
    x[:, 20] = rng.normal(size=n)
    x[:, 21] = rng.uniform(0.0, 2.0, size=n)
    x[:, 22] = rng.normal(size=n)
    x[:, 23] = rng.uniform(0.5, 0.99, size=n)
    x[:, 24] = rng.choice([1e-8, 1e-6], size=n)
    x[:, 25] = rng.uniform(0.0, 1.0, size=n)  # an activation's output: valid for relu, tanh and sigmoid
    x[:3, 25] = [0.0, 1.0, 0.5]
    return x, loss_names


def _naive_optimizer_step(optimizer, lr, g, state1, state2, t, beta1=0.9, beta2=0.999, momentum=0.9, epsilon=1e-8):
    """(parameter change, state1, state2) of one `naive_mlp.NaiveOptimizer` step of a weight at 0, no L2."""
    layers = [(np.zeros((1, 1)), np.zeros(1))]
    opt = naive_mlp.NaiveOptimizer(layers, optimizer, lr, 0.0, momentum=momentum, beta1=beta1, beta2=beta2,
                                   epsilon=epsilon)
    opt.state1[0][0][0, 0] = state1
    opt.state2[0][0][0, 0] = state2
    opt.t = t - 1
    opt.step(layers, [(np.full((1, 1), g), np.zeros(1))])
    return layers[0][0][0, 0], opt.state1[0][0][0, 0], opt.state2[0][0][0, 0]


def _naive_scalars(x, loss_names):
    n = x.shape[0]
    want = np.zeros((n, 14))
    schedule_names = {code: name for name, code in codes.SCHEDULE_CODES.items()}
    activation_names = {code: name for name, code in codes.ACTIVATION_CODES.items()}
    for i in range(n):
        want[i, 0], want[i, 1] = naive._binary_or_regression(loss_names[i], x[i, 1], x[i, 2], x[i, 3])
        d, clip = x[i, 4], x[i, 5]
        want[i, 2] = np.clip(d, -clip, clip) if clip > 0 else d
        params = {"schedule": schedule_names[int(x[i, 6])], "lr": x[i, 7], "epoch_factor": x[i, 8], "l2": x[i, 9],
                  "t0": x[i, 10], "power_t": x[i, 11]}
        want[i, 3] = naive.naive_eta(params, x[i, 12])
        # AdaGrad through the naive coordinate update of a weight at 0: its new value is minus the decrement
        W, acc = np.zeros((1, 1)), np.full((1, 1), x[i, 14] - x[i, 13] * x[i, 13])
        naive._update_coordinate(W, acc, 0, 0, x[i, 13], 0.0, 0.0, {"schedule": "adagrad", "lr": x[i, 7]})
        want[i, 4] = -W[0, 0]
        name = activation_names[int(x[i, 16])]
        want[i, 5] = float(naive_mlp.activate(np.array([x[i, 15]]), name)[0])
        want[i, 6] = float(naive_mlp.slope(np.array([x[i, 25]]), name)[0])
        lr, beta1, beta2, t = x[i, 7], x[i, 17], x[i, 18], int(x[i, 19])
        want[i, 7] = lr * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
        change, _, _ = _naive_optimizer_step("momentum", lr, x[i, 22], x[i, 20], 0.0, t, momentum=x[i, 23])
        want[i, 8] = change
        change, m, v = _naive_optimizer_step("adam", lr, x[i, 22], x[i, 20], x[i, 21], t, beta1, beta2,
                                             epsilon=x[i, 24])
        want[i, 9:12] = m, v, -change
        change, _, v = _naive_optimizer_step("rmsprop", lr, x[i, 22], 0.0, x[i, 21], t, beta2=beta2, epsilon=x[i, 24])
        want[i, 12:14] = v, -change
    return want


def _row_dloss_inputs(seed):
    """Rows of scores (at offset 2) for every binary/ovr/softmax case, with and without clipping."""
    rng = np.random.default_rng(seed)
    cases = []
    for clip in (0.0, 0.7):
        for loss in codes.LOSS_CODES:
            label = rng.choice([-1.0, 1.0]) if loss in BINARY_LOSSES else rng.normal()
            cases.append(("binary", loss, 1, label, clip))
        for loss in BINARY_LOSSES:
            cases.append(("ovr", loss, 4, float(rng.integers(0, 4)), clip))
        cases.append(("softmax", "log_loss", 5, float(rng.integers(0, 5)), clip))
        cases.append(("softmax", "log_loss", 3, 2.0, clip))
    values = rng.normal(scale=2.0, size=(len(cases), 8))
    values[-1, 2:5] = [800.0, -800.0, 0.0]  # softmax far from zero: the shift by the maximum keeps exp finite
    meta = np.array([[2, k, codes.MULTICLASS_CODES[mc], codes.LOSS_CODES[loss], label, 0.3, clip]
                     for mc, loss, k, label, clip in cases], dtype=np.float64)
    return cases, values, meta


def _output_inputs(seed):
    rng = np.random.default_rng(seed)
    outputs = [("softmax", 4), ("logistic", 1), ("identity", 3)] * 6
    n = len(outputs)
    scores = rng.normal(scale=3.0, size=(n, 6))
    scores[0, 1:5] = [700.0, -700.0, 3.0, 0.0]
    y_index = np.array([rng.integers(0, k) if name == "softmax" else rng.integers(0, 2) for name, k in outputs])
    y_value = rng.normal(size=(n, 3))
    meta = np.array([[codes.OUTPUT_CODES[name], k, 0.25] for name, k in outputs], dtype=np.float64)
    return outputs, scores, meta, y_index.astype(np.int64), y_value


# --- the tests ---------------------------------------------------------------------------------------------------
def test_codes_are_one_vocabulary():
    """Every table is 0..n-1 without repeats; kernels, config and the naive twins all name the same variants."""
    from hogwild import config
    from hogwild.kernels import linear, mlp

    tables = [codes.LOSS_CODES, codes.MULTICLASS_CODES, codes.SCHEDULE_CODES, codes.AGGREGATE_CODES,
              codes.UPDATE_CODES, codes.ACTIVATION_CODES, codes.OUTPUT_CODES, codes.OPTIMIZER_CODES]
    for table in tables:
        assert sorted(table.values()) == list(range(len(table))), table
    assert linear.LOSS_CODES is codes.LOSS_CODES and linear.SCHEDULE_CODES is codes.SCHEDULE_CODES
    assert linear.MULTICLASS_CODES is codes.MULTICLASS_CODES and linear.AGGREGATE_CODES is codes.AGGREGATE_CODES
    assert mlp.ACTIVATIONS is codes.ACTIVATION_CODES and mlp.OUTPUTS is codes.OUTPUT_CODES
    assert mlp.OPTIMIZERS is codes.OPTIMIZER_CODES
    assert set(config.LOSSES) == set(codes.LOSS_CODES)
    assert set(config.SCHEDULES) - {"auto"} == set(codes.SCHEDULE_CODES)
    assert set(config.ACTIVATIONS) == set(codes.ACTIVATION_CODES)
    assert set(config.OPTIMIZERS) == set(codes.OPTIMIZER_CODES)
    assert set(naive.NAIVE_LOSSES) == set(codes.LOSS_CODES)
    assert set(naive.NAIVE_SCHEDULES) == set(codes.SCHEDULE_CODES)
    assert set(naive.MULTICLASS_RULES) == set(codes.MULTICLASS_CODES)
    assert set(naive_mlp.NAIVE_ACTIVATIONS) == set(codes.ACTIVATION_CODES)
    assert set(naive_mlp.OUTPUTS) == set(codes.OUTPUT_CODES)
    assert set(naive_mlp.OPTIMIZERS) == set(codes.OPTIMIZER_CODES)


def test_importing_the_cpu_kernels_does_not_import_numba_cuda():
    """CPU-only users do not pay for CUDA: the shared arithmetic compiles for it only in gpu_arithmetic."""
    import subprocess
    import sys

    probe = ("import sys, hogwild.kernels.linear, hogwild.kernels.mlp; "
             "print(any(name.startswith('numba.cuda') for name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False", result.stdout + result.stderr


def _check_scalars(run):
    x, loss_names = _scalar_inputs(seed=1)
    want = _naive_scalars(x, loss_names)
    got = np.full_like(want, np.nan)
    run(_scalar_row, x.shape[0], x, got)
    columns = ["loss", "dloss", "clip", "eta", "adagrad", "activate", "slope", "adam_rate", "momentum", "adam_m",
               "adam_v", "adam_step", "rmsprop_v", "rmsprop_step"]
    for c, name in enumerate(columns):
        np.testing.assert_allclose(got[:, c], want[:, c], rtol=RTOL, atol=0, err_msg=name)


def _check_row_dloss(run):
    cases, values, meta = _row_dloss_inputs(seed=2)
    want_values = values.copy()
    want_losses = np.zeros(len(cases))
    for i, (mc, loss, k, label, clip) in enumerate(cases):
        params = {"loss": loss, "multiclass": mc, "epsilon": 0.3}
        want_losses[i], d = naive.naive_loss(params, values[i, 2:2 + k].copy(), label)
        want_values[i, 2:2 + k] = np.clip(d, -clip, clip) if clip > 0 else d
    losses = np.full(len(cases), np.nan)
    run(_row_dloss_row, len(cases), values, meta, losses)
    np.testing.assert_allclose(losses, want_losses, rtol=RTOL, atol=0)
    np.testing.assert_allclose(values, want_values, rtol=RTOL, atol=1e-300)


def _check_l1(run):
    rng = np.random.default_rng(3)
    W = rng.normal(scale=0.01, size=(40, 3))
    W[:4] = 0.0
    q = rng.normal(scale=0.005, size=W.shape)
    u = np.array([0.008])
    want_W, want_q = W.copy(), q.copy()
    for j in range(W.shape[0]):
        for k in range(W.shape[1]):
            naive._apply_l1(want_W, want_q, j, k, u[0])
    run(_l1_row, W.shape[0], W, q, u)
    assert np.array_equal(W, want_W) and np.array_equal(q, want_q)
    assert np.any(W == 0.0) and np.any(W != 0.0)  # both branches ran: clipped at zero and merely pulled


def _check_outputs(run):
    outputs, scores, meta, y_index, y_value = _output_inputs(seed=4)
    n = len(outputs)
    deltas = np.full((n, 6), np.nan)
    losses = np.full(n, np.nan)
    run(_output_row, n, scores, meta, y_index, y_value, deltas, losses)
    for i, (name, k) in enumerate(outputs):
        y = y_value[i:i + 1, :k] if name == "identity" else y_index[i:i + 1]
        loss, delta = naive_mlp.loss_and_output_delta(scores[i:i + 1, 1:1 + k], y, name)
        np.testing.assert_allclose(losses[i], loss, rtol=RTOL, err_msg=name)
        np.testing.assert_allclose(deltas[i, 2:2 + k], 0.25 * delta[0], rtol=RTOL, atol=1e-300, err_msg=name)


def _check_coordinate_steps(run):
    """The normalized schedule's step and FTRL-Proximal's against `naive._update_coordinate` and `naive._ftrl`."""
    rng = np.random.default_rng(5)
    n = 60
    x = np.zeros((n, 10))
    x[:, 0] = rng.uniform(0.01, 1.0, size=n)
    x[:, 1] = rng.normal(size=n)
    x[:, 2] = x[:, 1] ** 2 + rng.uniform(0.0, 3.0, size=n)
    x[:, 3] = np.exp(rng.uniform(np.log(0.1), np.log(1000.0), size=n))
    x[:, 4] = rng.normal(scale=2.0, size=n)
    x[:, 5] = rng.choice([0.0, 0.5, 4.0], size=n)
    x[:, 6] = rng.normal(scale=0.1, size=n)
    x[:, 7] = 1.0
    x[:, 8] = rng.choice([0.0, 0.5, 3.0], size=n)  # 3: mostly inside the zero region, 0: never
    x[:, 9] = rng.choice([0.0, 0.1], size=n)
    want = np.zeros((n, 4))
    for i in range(n):
        W, acc = np.zeros((1, 1)), np.full((1, 1), x[i, 2] - x[i, 1] ** 2)
        extras = naive.NaiveExtras(W, np.zeros(1), np.array([x[i, 3]]))
        naive._update_coordinate(W, acc, 0, 0, x[i, 1], 0.0, 0.0,
                                 {"schedule": "normalized", "lr": x[i, 0], "normalizer": 1.0}, extras)
        want[i, 0] = -W[0, 0]
        weight, n_after, z = naive._ftrl(x[i, 6], x[i, 5], x[i, 4], x[i, 1], x[i, 0], x[i, 7], x[i, 8], x[i, 9])
        want[i, 1:] = z, n_after, weight
    got = np.full_like(want, np.nan)
    run(_coordinate_row, n, x, got)
    for c, name in enumerate(["normalized", "ftrl_z", "ftrl_n", "ftrl_weight"]):
        np.testing.assert_allclose(got[:, c], want[:, c], rtol=RTOL, atol=1e-300, err_msg=name)
    assert np.any(got[:, 3] == 0.0) and np.any(got[:, 3] != 0.0)  # FTRL's exact zeros and its shrunk weights


CHECKS = [_check_scalars, _check_row_dloss, _check_l1, _check_outputs, _check_coordinate_steps]


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__[len("_check_"):])
@pytest.mark.parametrize("target", CPU_TARGETS)
def test_shared_arithmetic_matches_naive(target, check):
    check(RUNNERS[target])


# --- CUDA: the device versions of the same source, through tiny kernels ----------------------------------------
cuda = None  # numba.cuda, imported by the CUDA tests only (a module global: the simulator swaps it in kernels)


def _cuda_runner():
    global cuda
    cuda = pytest.importorskip("numba.cuda", reason="numba-cuda is not installed")
    if not cuda.is_available():
        pytest.skip("no CUDA GPU and NUMBA_ENABLE_CUDASIM is not set")

    from hogwild.kernels import gpu_arithmetic

    device = {name: getattr(gpu_arithmetic, name) for name in PYTHON}
    threads = 4  # several blocks even for these tiny inputs

    def kernel(row, arity):
        bound = cuda.jit(device=True)(_bind(row, device))
        if arity == 2:
            def body(n, a, b):
                i = cuda.grid(1)
                if i < n:
                    bound(i, a, b)
        elif arity == 3:
            def body(n, a, b, c):
                i = cuda.grid(1)
                if i < n:
                    bound(i, a, b, c)
        else:
            def body(n, a, b, c, d, e, f):
                i = cuda.grid(1)
                if i < n:
                    bound(i, a, b, c, d, e, f)
        return cuda.jit(body)

    def run(row, n, *arrays):
        on_device = [cuda.to_device(array) for array in arrays]
        kernel(row, len(arrays))[(n + threads - 1) // threads, threads](n, *on_device)
        for array, copy in zip(arrays, on_device):
            array[...] = copy.copy_to_host()

    return run


@pytest.mark.cuda
@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__[len("_check_"):])
def test_cuda_device_arithmetic_matches_naive(check):
    check(_cuda_runner())
