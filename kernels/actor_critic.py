"""Compiled actor-learner kernels: n-step returns, the actor-critic loss gradient, the optimizer, the worker loop.

The algorithm is A3C (Mnih et al., "Asynchronous Methods for Deep Reinforcement Learning", ICML 2016,
Algorithm S3) with a batch of environments per worker; its synchronous twin is A2C.

* Rollout. A worker steps each of its ``E`` environments ``t_max`` times, sampling actions from the softmax
  policy and keeping every step's activation row (`hogwild.kernels.policy_net`), reward and end flag.
* n-step returns (`n_step_returns`), per environment, backwards from the bootstrap value:
  ``R_t = r_t + gamma * R_{t+1}``, where ``R_{t+1}`` is 0 after a terminating step, ``V(final observation)``
  after a truncating one (the episode was cut by the time limit, not ended), and ``V(s_T)`` after the rollout's
  last step. ``A_t = R_t - V(s_t)``.
* Loss, mean over the ``B = E * t_max`` samples (`output_deltas`): ``-log pi(a_t|s_t) * A_t``
  (``A_t`` held constant) ``+ value_coef * 0.5 * (R_t - V(s_t))^2 - entropy_coef * H(pi(.|s_t))``. With softmax
  probabilities ``p`` over logits ``z``: ``dL/dz_j = (A_t (p_j - [j = a_t]) + entropy_coef p_j (log p_j + H)) / B``
  and ``dL/dV = value_coef (V - R_t) / B``. ``tests/naive_actor_critic.py`` is the NumPy twin, and the test
  compares both with central finite differences.
* Update. The gradient's global L2 norm is clipped to ``clip_norm``; then RMSProp with shared statistics (the
  paper's choice: ``v = alpha v + (1 - alpha) g^2; w -= lr g / (sqrt(v) + eps)``) or Adam
  (``m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; w -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)``).
* ``async`` (A3C): a worker copies the shared weights into its own buffer at the start of each rollout (the
  paper's ``theta' = theta``), computes the gradient against that copy, and applies it to the shared weights
  and the shared optimizer statistics with plain loads and stores, no lock: Hogwild!. Another worker may
  write between this one's read and write of a weight; that lost or stale update is the race A3C accepts.
  The step counter may lose increments too (it only feeds Adam's bias correction).
* ``sync`` (A2C): every worker rolls out from the same weights and writes its gradient into its own row of
  ``grads``; at an in-kernel barrier (`hogwild.kernels.atomics.barrier_wait`) the rows are averaged in worker
  order, each worker over its own slice of the parameters, the global norm is summed from per-slice parts,
  and each worker applies the update to its slice. The result does not depend on the threads' timing: a run
  reproduces bit for bit for a seed and a thread count.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .atomics import barrier_wait
from .rl_options import JIT_OPTIONS
from .envs import env_observe, env_reset, env_step
from .policy_net import backward, forward
from .xorshift import next_uniform

OPTIMIZERS = {"rmsprop": 0, "adam": 1}
_RMSPROP, _ADAM = 0, 1

# end-of-step flags of a rollout
CONTINUES, TERMINATED, TRUNCATED = 0, 1, 2

# slots of the per-worker statistics array a chunk adds to
STAT_POLICY_LOSS, STAT_VALUE_LOSS, STAT_ENTROPY, STAT_SAMPLES, STAT_GRAD_NORM, STAT_UPDATES = 0, 1, 2, 3, 4, 5
N_STATS = 6


@njit(**JIT_OPTIONS)
def sample_action(a, policy_off, n_actions, rng):
    """An action drawn from the softmax of the logits ``a[policy_off:policy_off + n_actions]``."""
    largest = a[policy_off]
    for j in range(1, n_actions):
        largest = max(largest, a[policy_off + j])
    total = 0.0
    for j in range(n_actions):
        total += math.exp(a[policy_off + j] - largest)
    threshold = next_uniform(rng) * total
    cumulative = 0.0
    for j in range(n_actions):
        cumulative += math.exp(a[policy_off + j] - largest)
        if threshold < cumulative:
            return j
    return n_actions - 1  # rounding left the threshold at the very top


@njit(**JIT_OPTIONS)
def greedy_action(a, policy_off, n_actions):
    """The most probable action (the first one on ties, as ``numpy.argmax``)."""
    best = 0
    for j in range(1, n_actions):
        if a[policy_off + j] > a[policy_off + best]:
            best = j
    return best


@njit(**JIT_OPTIONS)
def n_step_returns(rewards, ends, bootstrap, last_value, gamma, returns):
    """n-step returns of one environment's rollout into ``returns`` (module docstring).

    ``ends[t]`` is `CONTINUES`, `TERMINATED` or `TRUNCATED`; ``bootstrap[t]`` is V(final observation) where the
    step was truncated; ``last_value`` is V of the state after the last step (unused if that step ended).
    """
    following = last_value
    for t in range(rewards.shape[0] - 1, -1, -1):
        if ends[t] == TERMINATED:
            following = 0.0
        elif ends[t] == TRUNCATED:
            following = bootstrap[t]
        following = rewards[t] + gamma * following
        returns[t] = following
    return returns


@njit(**JIT_OPTIONS)
def output_deltas(a, d, policy_off, value_off, n_actions, action, target, entropy_coef, value_coef, inv_batch):
    """Write dLoss/dlogits and dLoss/dvalue of one sample into ``d``; return its (policy, value, entropy) terms."""
    largest = a[policy_off]
    for j in range(1, n_actions):
        largest = max(largest, a[policy_off + j])
    total = 0.0
    for j in range(n_actions):
        total += math.exp(a[policy_off + j] - largest)
    log_total = math.log(total)
    entropy = 0.0
    for j in range(n_actions):
        log_p = a[policy_off + j] - largest - log_total
        entropy -= math.exp(log_p) * log_p
    value = a[value_off]
    advantage = target - value
    log_p_action = a[policy_off + action] - largest - log_total
    for j in range(n_actions):
        log_p = a[policy_off + j] - largest - log_total
        p = math.exp(log_p)
        chosen = 1.0 if j == action else 0.0
        d[policy_off + j] = (advantage * (p - chosen) + entropy_coef * p * (log_p + entropy)) * inv_batch
    d[value_off] = value_coef * (value - target) * inv_batch
    return -log_p_action * advantage, 0.5 * advantage * advantage, entropy


@njit(**JIT_OPTIONS)
def batch_gradient(params, layers, activation, obs_dim, acts, n_samples, actions, targets, policy_off, value_off,
                   n_actions, entropy_coef, value_coef, d, grad, stats):
    """Mean actor-critic loss gradient of ``n_samples`` activation rows into ``grad`` (zeroed first).

    ``acts[i]`` must come from `forward` with these ``params``. Adds the summed loss terms to ``stats``.
    """
    for q in range(grad.shape[0]):
        grad[q] = 0.0
    inv_batch = 1.0 / n_samples
    for i in range(n_samples):
        a = acts[i]
        for q in range(obs_dim, d.shape[0]):
            d[q] = 0.0
        policy_loss, value_loss, entropy = output_deltas(
            a, d, policy_off, value_off, n_actions, actions[i], targets[i], entropy_coef, value_coef, inv_batch
        )
        stats[STAT_POLICY_LOSS] += policy_loss
        stats[STAT_VALUE_LOSS] += value_loss
        stats[STAT_ENTROPY] += entropy
        backward(params, layers, activation, obs_dim, a, d, grad)
    stats[STAT_SAMPLES] += n_samples


@njit(**JIT_OPTIONS)
def loss_gradient(params, layers, activation, obs, actions, targets, policy_off, value_off, n_actions,
                  entropy_coef, value_coef, acts, d, grad, stats):
    """`batch_gradient` of observations ``obs`` (n, obs_dim): forward each into ``acts`` first.

    The entry for tests (against the NumPy twin and finite differences) and for the Gymnasium-stepping path.
    """
    obs_dim = obs.shape[1]
    for i in range(obs.shape[0]):
        for k in range(obs_dim):
            acts[i, k] = obs[i, k]
        forward(params, layers, activation, acts[i])
    batch_gradient(params, layers, activation, obs_dim, acts, obs.shape[0], actions, targets, policy_off, value_off,
                   n_actions, entropy_coef, value_coef, d, grad, stats)


@njit(**JIT_OPTIONS)
def squared_norm(grad, lo, hi):
    total = 0.0
    for q in range(lo, hi):
        total += grad[q] * grad[q]
    return total


@njit(**JIT_OPTIONS)
def apply_update(params, state1, state2, grad, lo, hi, scale, lr, optimizer, alpha, beta1, beta2, eps, t):
    """One optimizer step on ``params[lo:hi]`` from ``scale * grad[lo:hi]`` (module docstring).

    ``t`` is Adam's step number (1-based) for the bias correction. The scalars are cast to the weights' type
    first, so that a float32 update runs in float32 and its square roots and divisions vectorize (in float64
    they cost about ten cycles per weight, more than a rollout step's share of the whole update).
    """
    typed = np.empty(8, dtype=params.dtype)
    typed[0] = scale
    typed[1] = lr
    typed[2] = alpha
    typed[3] = 1.0 - alpha
    typed[4] = beta1
    typed[5] = 1.0 - beta1
    typed[6] = beta2
    typed[7] = eps
    scale_t, lr_t, alpha_t, keep_t, beta1_t, keep1_t, beta2_t, eps_t = (
        typed[0], typed[1], typed[2], typed[3], typed[4], typed[5], typed[6], typed[7])
    # views indexed from 0: an offset index may be negative as far as Numba knows, and its wraparound check would
    # keep the loops scalar (see hogwild.kernels.mlp._axpy)
    w, m1, m2, g_ = params[lo:hi], state1[lo:hi], state2[lo:hi], grad[lo:hi]
    if optimizer == _RMSPROP:
        for q in range(w.shape[0]):
            g = g_[q] * scale_t
            v = alpha_t * m2[q] + keep_t * g * g
            m2[q] = v
            w[q] -= lr_t * g / (np.sqrt(v) + eps_t)
    else:
        typed[0] = 1.0 - beta2
        typed[1] = lr * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
        keep2_t, step_t = typed[0], typed[1]
        for q in range(w.shape[0]):
            g = g_[q] * scale_t
            m = beta1_t * m1[q] + keep1_t * g
            v = beta2_t * m2[q] + keep2_t * g * g
            m1[q] = m
            m2[q] = v
            w[q] -= step_t * m / (np.sqrt(v) + eps_t)


@njit(**JIT_OPTIONS)
def clip_scale(squares, clip_norm):
    """``(norm, scale)``: the gradient's norm from its sum of squares, and the factor that clips it."""
    norm = math.sqrt(squares)
    if clip_norm > 0 and norm > clip_norm:
        return norm, clip_norm / norm
    return norm, 1.0


@njit(**JIT_OPTIONS)
def _record_episode(e, ep_return, ep_length, finished_returns, finished_lengths, n_finished):
    if n_finished < finished_returns.shape[0]:
        finished_returns[n_finished] = ep_return[e]
        finished_lengths[n_finished] = ep_length[e]
    ep_return[e] = 0.0
    ep_length[e] = 0
    return n_finished + 1


@njit(**JIT_OPTIONS)
def _value_of(weights, layers, activation, obs_dim, value_off, source, row):
    for k in range(obs_dim):
        row[k] = source[k]
    forward(weights, layers, activation, row)
    return row[value_off]


@njit(**JIT_OPTIONS)
def worker_chunk(
    env_code, max_steps, env_states, obs, rng, ep_return, ep_length, finished_returns, finished_lengths,
    params, state1, state2, step, local, grads, norms, barrier, worker, n_workers, sync,
    layers, activation, policy_off, value_off, n_actions,
    acts, d, spare, rewards, ends, bootstrap, returns, actions, targets,
    n_updates, t_max, gamma, entropy_coef, value_coef, clip_norm, lr, optimizer, alpha, beta1, beta2, eps,
    stats,
):
    """``n_updates`` rollouts and updates by one worker; returns the number of episodes it finished.

    ``env_states`` (E, STATE_SIZE) and ``obs`` (E, obs_dim) are the worker's environments and their current
    observations; ``rng`` its xorshift state; ``ep_return``/``ep_length`` the running episodes. Finished
    episodes are logged into ``finished_returns``/``finished_lengths`` (as many as fit). ``grads`` has one row
    per worker (``sync``) or is this worker's own one-row buffer (``async``); ``local`` is the async weight
    copy. Returns early (with what was done) when the barrier is aborted by a failing worker.
    """
    n_envs, obs_dim = obs.shape[0], obs.shape[1]
    n_params = params.shape[0]
    grad = grads[worker] if sync else grads[0]
    # sync: this worker's slice of the parameters for averaging and updating
    lo = n_params * worker // n_workers
    hi = n_params * (worker + 1) // n_workers
    n_finished = 0
    for _ in range(n_updates):
        if sync:
            weights = params  # nobody writes the weights between the barriers that bracket a rollout
        else:
            for q in range(n_params):
                local[q] = params[q]
            weights = local
        # --- rollout: t_max steps of every environment ------------------------------------------------
        for t in range(t_max):
            for e in range(n_envs):
                row = t * n_envs + e
                a = acts[row]
                for k in range(obs_dim):
                    a[k] = obs[e, k]
                forward(weights, layers, activation, a)
                action = sample_action(a, policy_off, n_actions, rng)
                actions[row] = action
                reward, terminated, truncated = env_step(env_code, env_states[e], action, max_steps)
                rewards[t, e] = reward
                ep_return[e] += reward
                ep_length[e] += 1
                env_observe(env_code, env_states[e], obs[e])
                if terminated:
                    ends[t, e] = TERMINATED
                elif truncated:
                    ends[t, e] = TRUNCATED
                    bootstrap[t, e] = _value_of(weights, layers, activation, obs_dim, value_off, obs[e], spare)
                else:
                    ends[t, e] = CONTINUES
                if terminated or truncated:
                    n_finished = _record_episode(e, ep_return, ep_length, finished_returns, finished_lengths,
                                                 n_finished)
                    env_reset(env_code, env_states[e], rng)
                    env_observe(env_code, env_states[e], obs[e])
        # --- n-step returns, per environment ------------------------------------------------------------
        for e in range(n_envs):
            last = 0.0
            if ends[t_max - 1, e] == CONTINUES:
                last = _value_of(weights, layers, activation, obs_dim, value_off, obs[e], spare)
            n_step_returns(rewards[:, e], ends[:, e], bootstrap[:, e], last, gamma, returns[:, e])
            for t in range(t_max):
                targets[t * n_envs + e] = returns[t, e]
        # --- gradient and update ------------------------------------------------------------------------
        n_samples = t_max * n_envs
        batch_gradient(weights, layers, activation, obs_dim, acts, n_samples, actions, targets, policy_off,
                       value_off, n_actions, entropy_coef, value_coef, d, grad, stats)
        if not sync:
            norm, scale = clip_scale(squared_norm(grad, 0, n_params), clip_norm)
            t_adam = step[0] + 1
            step[0] = t_adam  # racy: a lost increment only nudges Adam's bias correction
            apply_update(params, state1, state2, grad, 0, n_params, scale, lr, optimizer, alpha, beta1, beta2, eps,
                         t_adam)
        else:
            if not barrier_wait(barrier, n_workers):
                return n_finished
            # the mean of the workers' rows over this worker's slice, summed in worker order (deterministic)
            mean = grads[0]
            inv_workers = 1.0 / n_workers
            for q in range(lo, hi):
                total = 0.0
                for w in range(n_workers):
                    total += grads[w, q]
                mean[q] = total * inv_workers
            norms[worker] = squared_norm(mean, lo, hi)
            if not barrier_wait(barrier, n_workers):
                return n_finished
            squares = 0.0
            for w in range(n_workers):
                squares += norms[w]
            norm, scale = clip_scale(squares, clip_norm)
            t_adam = step[0] + 1
            apply_update(params, state1, state2, mean, lo, hi, scale, lr, optimizer, alpha, beta1, beta2, eps,
                         t_adam)
            if not barrier_wait(barrier, n_workers):
                return n_finished
            if worker == 0:
                step[0] = t_adam  # read by the others only after the next round's first barrier
        stats[STAT_GRAD_NORM] += norm
        stats[STAT_UPDATES] += 1
    return n_finished


@njit(**JIT_OPTIONS)
def evaluate_episodes(env_code, max_steps, params, layers, activation, obs_dim, policy_off, n_actions, greedy,
                      rng, max_return, target, state, a, returns, lengths):
    """Run whole episodes with the policy (greedy or sampled); return how many were completed.

    ``returns``/``lengths`` (n_episodes,) receive each episode's return and length. With a finite ``target``
    and ``max_return`` (an upper bound on any episode's return), evaluation stops as soon as the mean over all
    ``n_episodes`` can no longer reach ``target``: the caller then knows the target is missed without paying
    for the rest.
    """
    n_episodes = returns.shape[0]
    needed = target * n_episodes
    total = 0.0
    for episode in range(n_episodes):
        env_reset(env_code, state, rng)
        env_observe(env_code, state, a[:obs_dim])
        episode_return = 0.0
        length = 0
        while True:
            forward(params, layers, activation, a)
            if greedy:
                action = greedy_action(a, policy_off, n_actions)
            else:
                action = sample_action(a, policy_off, n_actions, rng)
            reward, terminated, truncated = env_step(env_code, state, action, max_steps)
            episode_return += reward
            length += 1
            env_observe(env_code, state, a[:obs_dim])
            if terminated or truncated:
                break
        returns[episode] = episode_return
        lengths[episode] = length
        total += episode_return
        remaining = n_episodes - episode - 1
        if math.isfinite(target) and math.isfinite(max_return) and total + remaining * max_return < needed:
            return episode + 1
    return n_episodes


@njit(**JIT_OPTIONS)
def reset_envs(env_code, env_states, obs, rng):
    """Start a fresh episode in every environment of a worker and write the first observations."""
    for e in range(env_states.shape[0]):
        env_reset(env_code, env_states[e], rng)
        env_observe(env_code, env_states[e], obs[e])



@njit(**JIT_OPTIONS)
def act(params, layers, activation, obs, a, policy_off, value_off, n_actions, rng):
    """``(action, value)`` for one observation: a sampled action and the critic's estimate (Python-side callers)."""
    for k in range(obs.shape[0]):
        a[k] = obs[k]
    forward(params, layers, activation, a)
    return sample_action(a, policy_off, n_actions, rng), a[value_off]


@njit(**JIT_OPTIONS)
def mean_rows(grads, out):
    """``out = mean over rows of grads``, summed in row order (the sync barrier's average, for Python callers)."""
    inv = 1.0 / grads.shape[0]
    for q in range(out.shape[0]):
        total = 0.0
        for w in range(grads.shape[0]):
            total += grads[w, q]
        out[q] = total * inv
