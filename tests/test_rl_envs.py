"""The compiled environments against Gymnasium's own: same spaces, same step from the same state and action,
same reset distribution, same time limit."""

import math

import numpy as np
import pytest

from hogwild.kernels.envs import ACROBOT, CARTPOLE, STATE_SIZE, env_observe, env_reset, env_step
from hogwild.kernels.xorshift import next_uniform, seed_state
from hogwild.rl.envs import compiled_envs, resolve_env

gym = pytest.importorskip("gymnasium")

CODES = {"CartPole-v1": CARTPOLE, "Acrobot-v1": ACROBOT}


def _copy_state(env, state):
    state[:4] = np.asarray(env.unwrapped.state, dtype=np.float64)


@pytest.mark.parametrize("name", list(CODES))
def test_spaces_and_limits_match_gymnasium(name):
    env = gym.make(name)
    spec = compiled_envs()[name]
    assert spec.code == CODES[name]
    assert env.observation_space.shape == (spec.obs_dim,) and env.observation_space.dtype == np.float32
    assert env.action_space.n == spec.n_actions
    np.testing.assert_allclose(env.observation_space.low, np.float32(spec.obs_low))
    np.testing.assert_allclose(env.observation_space.high, np.float32(spec.obs_high))
    assert env.spec.max_episode_steps == spec.max_steps
    assert env.spec.reward_threshold == spec.reward_threshold


@pytest.mark.parametrize("name", list(CODES))
def test_step_for_step_from_the_same_states_and_actions(name):
    """Many episodes of random actions: before every step the compiled state is set to Gymnasium's, then both
    step with the same action; observation, reward, terminated and truncated must agree."""
    code = CODES[name]
    env = gym.make(name)
    rng = np.random.default_rng(0)
    state = np.zeros(STATE_SIZE)
    obs = np.zeros(env.observation_space.shape[0], dtype=np.float32)
    worst, steps, ends = 0.0, 0, {"terminated": 0, "truncated": 0}
    for episode in range(40 if name == "CartPole-v1" else 4):  # Acrobot's random episodes last 500 steps
        env.reset(seed=episode)
        state[4] = 0.0
        while True:
            _copy_state(env, state)
            action = int(rng.integers(env.action_space.n))
            gym_obs, gym_reward, gym_terminated, gym_truncated, _ = env.step(action)
            reward, terminated, truncated = env_step(code, state, action, 500)
            env_observe(code, state, obs)
            worst = max(worst, float(np.max(np.abs(obs - gym_obs))))
            assert (reward, terminated, truncated) == (gym_reward, gym_terminated, gym_truncated), (
                f"{name} step {steps}: {(reward, terminated, truncated)} != {(gym_reward, gym_terminated, gym_truncated)}"
            )
            np.testing.assert_allclose(state[:4], np.asarray(env.unwrapped.state, dtype=np.float64), rtol=1e-12,
                                       atol=1e-12)
            steps += 1
            if gym_terminated or gym_truncated:
                ends["terminated" if gym_terminated else "truncated"] += 1
                break
    assert worst <= 1e-6, f"{name}: observations differ by up to {worst:.2e} (threshold 1e-6)"
    assert steps > 800, f"only {steps} steps compared"


def test_long_cartpole_trajectory_without_resynchronizing():
    """CartPole under a stabilizing policy for a whole 500-step episode: the compiled copy runs on its own."""
    env = gym.make("CartPole-v1")
    gym_obs, _ = env.reset(seed=3)
    state = np.zeros(STATE_SIZE)
    _copy_state(env, state)
    obs = np.zeros(4, dtype=np.float32)
    for step in range(500):
        action = int(gym_obs[2] + 0.5 * gym_obs[3] > 0)  # push toward the falling side
        gym_obs, gym_reward, gym_terminated, gym_truncated, _ = env.step(action)
        reward, terminated, truncated = env_step(CARTPOLE, state, action, 500)
        env_observe(CARTPOLE, state, obs)
        np.testing.assert_allclose(obs, gym_obs, rtol=0, atol=1e-5)
        assert (terminated, truncated) == (gym_terminated, gym_truncated)
        if gym_terminated or gym_truncated:
            break
    assert gym_truncated and step == 499, "the stabilizing policy should reach the 500-step time limit"


@pytest.mark.parametrize("name,bound", [("CartPole-v1", 0.05), ("Acrobot-v1", 0.1)])
def test_reset_distribution_is_gymnasiums(name, bound):
    code = CODES[name]
    rng = seed_state(7, 0)
    state = np.zeros(STATE_SIZE)
    draws = np.zeros((4000, 4))
    for i in range(draws.shape[0]):
        env_reset(code, state, rng)
        draws[i] = state[:4]
        assert state[4] == 0.0
    assert np.all(np.abs(draws) <= bound)
    # uniform(-b, b): mean 0, standard deviation b / sqrt(3)
    assert np.all(np.abs(draws.mean(axis=0)) < 0.1 * bound)
    np.testing.assert_allclose(draws.std(axis=0), bound / math.sqrt(3), rtol=0.05)
    if name == "Acrobot-v1":  # Gymnasium stores Acrobot's reset state as float32
        assert np.all(draws == draws.astype(np.float32))
    env = gym.make(name)
    gym_obs, _ = env.reset(seed=0)
    obs = np.zeros(gym_obs.shape[0], dtype=np.float32)
    env_observe(code, state, obs)
    assert obs.dtype == gym_obs.dtype and obs.shape == gym_obs.shape


def test_truncation_at_the_time_limit_and_both_flags():
    state = np.zeros(STATE_SIZE)
    env_reset(CARTPOLE, state, seed_state(0, 0))
    state[4] = 498.0
    assert env_step(CARTPOLE, state, 0, 500)[2] is False
    state[:4] = [2.39, 5.0, 0.0, 0.0]  # the cart leaves the track on the 500th step: terminated and truncated
    reward, terminated, truncated = env_step(CARTPOLE, state, 1, 500)
    assert (reward, terminated, truncated) == (1.0, True, True)
    assert env_step(CARTPOLE, state, 1, 0)[2] is False  # max_steps 0: no time limit


def test_xorshift_streams_are_uniform_and_distinct():
    a, b = seed_state(0, 0), seed_state(0, 1)
    xs = np.array([next_uniform(a) for _ in range(20000)])
    ys = np.array([next_uniform(b) for _ in range(100)])
    assert xs.min() >= 0.0 and xs.max() < 1.0 and abs(xs.mean() - 0.5) < 0.01
    assert not np.allclose(xs[:100], ys)
    assert seed_state(5, 3)[0] == seed_state(5, 3)[0]


def test_unknown_and_unsupported_environments_are_one_sentence():
    from hogwild.errors import ConfigError

    with pytest.raises(ConfigError, match="Gymnasium cannot make environment 'NoSuchEnv-v0'"):
        resolve_env("NoSuchEnv-v0")
    with pytest.raises(ConfigError, match="no compiled version"):
        resolve_env("MountainCar-v0", backend="compiled")
    with pytest.raises(ConfigError, match="Box action space"):
        resolve_env("Pendulum-v1")
    assert resolve_env("MountainCar-v0").code is None
    assert resolve_env("CartPole-v1", backend="gymnasium").code is None
