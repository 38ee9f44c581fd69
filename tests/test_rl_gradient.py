"""The actor-critic math: compiled gradient vs the NumPy twin vs central finite differences; returns; updates."""

import numpy as np
import pytest

import naive_actor_critic as naive
from hogwild.kernels import actor_critic as ac
from hogwild.rl.network import Network

ENTROPY, VALUE = 0.05, 0.5


def _batch(network, n=12, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, network.obs_dim))
    actions = rng.integers(network.n_actions, size=n).astype(np.int64)
    targets = rng.normal(scale=3.0, size=n)
    return obs, actions, targets


def compiled_gradient(params, network, obs, actions, targets):
    acts = np.zeros((obs.shape[0], network.act_size), dtype=params.dtype)
    d = np.zeros(network.act_size, dtype=params.dtype)
    grad = np.zeros(network.n_params, dtype=params.dtype)
    stats = np.zeros(ac.N_STATS)
    ac.loss_gradient(params, network.layers, network.activation_code, obs.astype(params.dtype), actions, targets,
                     network.policy_off, network.value_off, network.n_actions, ENTROPY, VALUE, acts, d, grad, stats)
    return grad, stats


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("shape", ["shared", "separate"])
@pytest.mark.parametrize("hidden", [(7,), (9, 5), (16, 6, 4)])
def test_compiled_gradient_matches_numpy_twin_and_finite_differences(activation, shape, hidden):
    network = Network.build(5, 3, hidden, activation, shape)
    params = network.init_params(1, np.float64)
    params += np.random.default_rng(2).normal(scale=0.3, size=params.shape)  # leave the tiny policy-head init
    obs, actions, targets = _batch(network)
    grad, stats = compiled_gradient(params, network, obs, actions, targets)
    twin = naive.gradient(params, network, obs, actions, targets, ENTROPY, VALUE)
    np.testing.assert_allclose(grad, twin, rtol=1e-10, atol=1e-12)

    # the loss the kernel reports is the twin's loss
    reported = (stats[ac.STAT_POLICY_LOSS] + VALUE * stats[ac.STAT_VALUE_LOSS]
                - ENTROPY * stats[ac.STAT_ENTROPY]) / stats[ac.STAT_SAMPLES]
    assert reported == pytest.approx(naive.loss(params, network, obs, actions, targets, ENTROPY, VALUE), rel=1e-12)

    # central differences of the surrogate loss (advantages held at their value here), every parameter
    _, values = naive.heads(params, network, obs)
    advantages = targets - values
    h = 1e-6
    numeric = np.zeros_like(params)
    for q in range(params.size):
        plus, minus = params.copy(), params.copy()
        plus[q] += h
        minus[q] -= h
        numeric[q] = (naive.loss(plus, network, obs, actions, targets, ENTROPY, VALUE, advantages)
                      - naive.loss(minus, network, obs, actions, targets, ENTROPY, VALUE, advantages)) / (2 * h)
    # (relu: a step across a kink would not be a derivative; with random data no pre-activation falls within h of
    # 0 but with probability ~1e-5 per unit, and these seeds are fixed)
    error = np.max(np.abs(numeric - grad)) / max(np.max(np.abs(grad)), 1e-12)
    assert error < 1e-6, f"relative error {error:.2e} against central differences exceeds 1e-6"


def test_float32_gradient_tracks_float64():
    network = Network.build(4, 2, (64, 64), "tanh", "separate")
    params = network.init_params(0, np.float64) + np.random.default_rng(0).normal(scale=0.1, size=network.n_params)
    obs, actions, targets = _batch(network, n=20)
    grad64, _ = compiled_gradient(params, network, obs, actions, targets)
    grad32, _ = compiled_gradient(params.astype(np.float32), network, obs, actions, targets)
    error = np.max(np.abs(grad32 - grad64)) / np.max(np.abs(grad64))
    assert error < 1e-4, f"float32 gradient differs from float64 by {error:.2e} (threshold 1e-4)"


def test_fast_float32_tanh_is_within_a_few_ulps():
    from hogwild.kernels.policy_net import forward

    network = Network.build(1, 1, (1,), "tanh", "shared")  # one hidden tanh unit, weight 1, bias 0
    params = np.zeros(network.n_params, dtype=np.float32)
    params[0] = 1.0
    a = np.zeros(network.act_size, dtype=np.float32)
    worst = 0.0
    for x in np.concatenate([np.linspace(-12, 12, 4001), [0.0, 1e-5, -3e-4, 7.9, 8.5, -20.0]]).astype(np.float32):
        a[0] = x
        forward(params, network.layers, network.activation_code, a)
        exact = np.tanh(np.float64(x))
        worst = max(worst, abs(float(a[1]) - exact) / float(np.spacing(np.float32(max(abs(exact), 1e-30)))))
    assert worst <= 8, f"float32 tanh is {worst:.1f} ulps off (threshold 8)"


@pytest.mark.parametrize("ends,last", [([0, 0, 0, 0], 2.5), ([0, 1, 0, 0], -1.0), ([0, 2, 0, 1], 4.0),
                                       ([2, 0, 0, 2], 0.3), ([1, 1, 1, 1], 9.0)])
def test_n_step_returns_match_the_sum_definition(ends, last):
    rewards = np.array([1.0, -0.5, 2.0, 0.25])
    ends = np.array(ends, dtype=np.int64)
    bootstrap = np.array([10.0, 20.0, 30.0, 40.0])
    out = ac.n_step_returns(rewards, ends, bootstrap, last, 0.9, np.zeros(4))
    np.testing.assert_allclose(out, naive.n_step_returns(rewards, ends, bootstrap, last, 0.9), rtol=1e-14)


@pytest.mark.parametrize("optimizer", ["rmsprop", "adam"])
def test_update_rules_and_gradient_clipping(optimizer):
    rng = np.random.default_rng(0)
    params = rng.normal(size=50)
    grad = rng.normal(size=50) * 10
    s1, s2 = rng.random(50), rng.random(50)
    expected = params.copy()
    norm, scale = ac.clip_scale(ac.squared_norm(grad, 0, 50), 0.5)
    assert norm == pytest.approx(np.linalg.norm(grad)) and scale == pytest.approx(0.5 / np.linalg.norm(grad))
    g = grad * scale
    lr, alpha, b1, b2, eps, t = 0.01, 0.99, 0.9, 0.999, 1e-5, 3
    if optimizer == "rmsprop":
        v = alpha * s2 + (1 - alpha) * g * g
        expected -= lr * g / (np.sqrt(v) + eps)
    else:
        m = b1 * s1 + (1 - b1) * g
        v = b2 * s2 + (1 - b2) * g * g
        expected -= lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
    ac.apply_update(params, s1, s2, grad, 0, 50, scale, lr, ac.OPTIMIZERS[optimizer], alpha, b1, b2, eps, t)
    np.testing.assert_allclose(params, expected, rtol=1e-13)
    assert ac.clip_scale(4.0, 0.0) == (2.0, 1.0)  # clip_norm 0: off
