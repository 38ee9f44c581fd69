"""Evaluate a policy over whole episodes: compiled for the compiled environments, through Gymnasium otherwise."""

from __future__ import annotations

import math

import numpy as np

from ..errors import DataError


def evaluate_policy(policy, spec, episodes=100, seed=0, deterministic=True, target=None, stop_early=False):
    """Run ``episodes`` episodes of ``policy`` (a `PolicyModel`) on ``spec``; return a JSON-able summary.

    Actions are the most probable ones (``deterministic``) or sampled. With ``target`` (a mean return) the
    summary says whether it was ``reached``; with ``stop_early`` too, on an environment whose episode returns
    are bounded (CartPole-v1, Acrobot-v1), evaluation stops once the mean over all ``episodes`` can no longer
    reach it (``complete`` is then False). The summary
    has ``mean_return`` (over the episodes run), ``std_return``, ``min_return``, ``max_return``,
    ``mean_length``, ``episodes`` (run), ``episodes_requested``, ``seconds`` and ``returns``.
    """
    import time

    if policy.obs_dim != spec.obs_dim or policy.n_actions != spec.n_actions:
        raise DataError(
            f"the policy was trained for {policy.obs_dim} observations and {policy.n_actions} actions ({policy.env}), "
            f"but {spec.id} has {spec.obs_dim} and {spec.n_actions}"
        )
    episodes = int(episodes)
    started = time.perf_counter()
    if spec.compiled:
        returns, lengths = _compiled_episodes(policy, spec, episodes, seed, deterministic,
                                             target if stop_early else None)
    else:
        returns, lengths = _gymnasium_episodes(policy, spec, episodes, seed, deterministic)
    seconds = time.perf_counter() - started
    run = returns.shape[0]
    mean = float(returns.mean()) if run else math.nan
    summary = {
        "env": spec.id,
        "episodes": int(run),
        "episodes_requested": episodes,
        "complete": bool(run == episodes),
        "deterministic": bool(deterministic),
        "seed": int(seed),
        "mean_return": mean,
        "std_return": float(returns.std()) if run else math.nan,
        "min_return": float(returns.min()) if run else math.nan,
        "max_return": float(returns.max()) if run else math.nan,
        "mean_length": float(lengths.mean()) if run else math.nan,
        "seconds": seconds,
        "returns": [float(r) for r in returns],
    }
    if target is not None:
        summary["target_return"] = float(target)
        summary["reached"] = bool(run == episodes and mean >= target)
    return summary


def _compiled_episodes(policy, spec, episodes, seed, deterministic, target):
    from ..kernels.actor_critic import evaluate_episodes
    from ..kernels.envs import STATE_SIZE
    from ..kernels.xorshift import seed_state

    net = policy.network
    rng = seed_state(seed, 0x4556414C)  # an evaluation stream no training worker uses
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, dtype=np.int64)
    state = np.zeros(STATE_SIZE)
    scratch = np.zeros(net.act_size, dtype=policy.dtype)
    done = evaluate_episodes(
        spec.code, spec.max_steps, policy.params, net.layers, net.activation_code, net.obs_dim, net.policy_off,
        net.n_actions, bool(deterministic), rng, float(spec.max_return),
        float(target) if target is not None else math.nan, state, scratch, returns, lengths,
    )
    return returns[:done], lengths[:done]


def _gymnasium_episodes(policy, spec, episodes, seed, deterministic):
    env = spec.make()
    rng = np.random.default_rng([int(seed), 0x4556414C])
    returns, lengths = np.zeros(episodes), np.zeros(episodes, dtype=np.int64)
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=int(seed) * 100_003 + episode)
            total, length = 0.0, 0
            while True:
                action = policy.predict(np.asarray(obs, dtype=policy.dtype).reshape(-1), deterministic, rng)
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                length += 1
                if terminated or truncated:
                    break
            returns[episode], lengths[episode] = total, length
    finally:
        env.close()
    return returns, lengths
