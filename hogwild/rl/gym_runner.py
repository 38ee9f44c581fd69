"""The actor-learner runner on Gymnasium environments: the Python-stepping path, for any environment.

Same algorithm, same kernels for the network and the update as `hogwild.rl.runner.CompiledRunner`, but each
environment step is a Python call to ``env.step``: the worker loop runs in Python, calling the compiled
``act`` per step and the compiled gradient (`hogwild.kernels.actor_critic.loss_gradient`) and update once per
rollout. Python holds the GIL while it steps an environment, so extra threads overlap only the compiled parts;
the compiled path is far faster where it exists (docs/benchmarks.md measures how much).

``async`` (A3C): each worker applies its own updates lock-free, as in the compiled runner. ``sync`` (A2C): per
round, every worker rolls out and computes its gradient into its own row; the main thread then averages the
rows in worker order and applies one update.

Checkpoints hold the weights, the optimizer state, the counters and the workers' action streams, but not the
environments (a Gymnasium environment's state is opaque): a resumed run starts fresh episodes, so unlike the
compiled path it is not bitwise identical to an uninterrupted one.
"""

from __future__ import annotations

import math

import numpy as np

from .._workers import WorkerPool
from ..errors import CheckpointError
from .policy import PolicyModel


class _Worker:
    def __init__(self, network, spec, n_envs, t_max, dtype, seed, index):
        from ..kernels.actor_critic import N_STATS

        samples = n_envs * t_max
        self.envs = [spec.make() for _ in range(n_envs)]
        self.obs = np.zeros((n_envs, network.obs_dim), dtype=dtype)
        self.ep_return = np.zeros(n_envs)
        self.ep_length = np.zeros(n_envs, dtype=np.int64)
        self.seeds = [int(s) for s in np.random.SeedSequence([int(seed), int(index)]).generate_state(n_envs)]
        self.local = np.zeros(network.n_params, dtype=dtype)
        self.grad = np.zeros(network.n_params, dtype=dtype)
        self.batch_obs = np.zeros((samples, network.obs_dim), dtype=dtype)
        self.acts = np.zeros((samples, network.act_size), dtype=dtype)
        self.row = np.zeros(network.act_size, dtype=dtype)
        self.d = np.zeros(network.act_size, dtype=dtype)
        self.rewards = np.zeros((t_max, n_envs))
        self.ends = np.zeros((t_max, n_envs), dtype=np.int64)
        self.bootstrap = np.zeros((t_max, n_envs))
        self.returns = np.zeros((t_max, n_envs))
        self.actions = np.zeros(samples, dtype=np.int64)
        self.targets = np.zeros(samples)
        self.stats = np.zeros(N_STATS)
        self.finished = []
        self.reset_all(first=True)

    def reset_all(self, first=False):
        for e, env in enumerate(self.envs):
            obs, _ = env.reset(seed=self.seeds[e]) if first else env.reset()
            self.obs[e] = np.asarray(obs, dtype=self.obs.dtype).reshape(-1)
            self.ep_return[e], self.ep_length[e] = 0.0, 0

    def close(self):
        for env in self.envs:
            env.close()


class GymnasiumRunner:
    """N actor-learner threads stepping Gymnasium environments from Python (module docstring)."""

    modes = ("async", "sync")

    @classmethod
    def check_config(cls, config):
        """Refuse options this runner cannot honour (`RLConfig.validate` has checked the rest)."""
        if config.mode not in cls.modes:
            from ..errors import ConfigError

            raise ConfigError("algo", f"--algo {config.algo} is not available here; use a3c or a2c")

    def __init__(self, spec, network, config, n_workers, params=None):
        from ..kernels.actor_critic import N_STATS
        from ..kernels.xorshift import seed_state

        self.spec, self.network, self.config = spec, network, config
        self.n_workers = int(n_workers)
        self.mode = config.mode
        self.dtype = dtype = np.dtype(config.dtype)
        self.steps_per_update = config.envs_per_worker * config.t_max
        round_steps = self.n_workers * self.steps_per_update
        self.updates_per_epoch = max(1, math.ceil(config.steps_per_epoch / round_steps))
        self.steps_per_epoch = self.updates_per_epoch * round_steps
        self.params = network.init_params(config.seed, dtype) if params is None else np.array(params, dtype=dtype)
        self.state1 = np.zeros_like(self.params)
        self.state2 = np.zeros_like(self.params)
        self.step = np.zeros(1, dtype=np.int64)
        self.rng = np.concatenate([seed_state(config.seed, w) for w in range(self.n_workers)]).reshape(-1, 1)
        self.progress = np.zeros(self.n_workers, dtype=np.int64)
        self.epoch_stats = np.zeros(N_STATS)  # the current epoch's summed statistics so far
        self.workers = [_Worker(network, spec, config.envs_per_worker, config.t_max, dtype, config.seed, w)
                        for w in range(self.n_workers)]
        self.mean_grad = np.zeros(network.n_params, dtype=dtype)
        self.grads = np.zeros((self.n_workers, network.n_params), dtype=dtype)
        self.pool = None

    def position(self):
        return int(self.progress.sum()) * self.steps_per_update

    # --- one worker's rollout and gradient -----------------------------------------------------------------
    def _rollout_gradient(self, w, weights):
        """Roll out ``t_max`` steps of worker ``w``'s environments with ``weights``; its gradient into ``s.grad``."""
        from ..kernels.actor_critic import CONTINUES, TERMINATED, TRUNCATED, act, loss_gradient, n_step_returns

        config, net, s = self.config, self.network, self.workers[w]
        rng = self.rng[w]
        n_envs = len(s.envs)
        for t in range(config.t_max):
            for e, env in enumerate(s.envs):
                row = t * n_envs + e
                s.batch_obs[row] = s.obs[e]
                action, _ = act(weights, net.layers, net.activation_code, s.obs[e], s.row, net.policy_off,
                                net.value_off, net.n_actions, rng)
                s.actions[row] = action
                obs, reward, terminated, truncated, _ = env.step(int(action))
                reward = float(reward)
                s.rewards[t, e] = reward
                s.ep_return[e] += reward
                s.ep_length[e] += 1
                s.obs[e] = np.asarray(obs, dtype=self.dtype).reshape(-1)
                if terminated:
                    s.ends[t, e] = TERMINATED
                elif truncated:
                    s.ends[t, e] = TRUNCATED
                    s.bootstrap[t, e] = act(weights, net.layers, net.activation_code, s.obs[e], s.row,
                                            net.policy_off, net.value_off, net.n_actions, rng.copy())[1]
                else:
                    s.ends[t, e] = CONTINUES
                if terminated or truncated:
                    s.finished.append((float(s.ep_return[e]), int(s.ep_length[e])))
                    s.ep_return[e], s.ep_length[e] = 0.0, 0
                    obs, _ = env.reset()
                    s.obs[e] = np.asarray(obs, dtype=self.dtype).reshape(-1)
        for e in range(n_envs):
            last = 0.0
            if s.ends[-1, e] == CONTINUES:
                last = act(weights, net.layers, net.activation_code, s.obs[e], s.row, net.policy_off,
                           net.value_off, net.n_actions, rng.copy())[1]
            n_step_returns(s.rewards[:, e], s.ends[:, e], s.bootstrap[:, e], float(last), config.gamma,
                           s.returns[:, e])
        s.targets[:] = s.returns.reshape(-1)  # row t * n_envs + e, as the batch was filled
        loss_gradient(weights, net.layers, net.activation_code, s.batch_obs, s.actions, s.targets, net.policy_off,
                      net.value_off, net.n_actions, config.entropy_coef, config.value_coef, s.acts, s.d, s.grad,
                      s.stats)

    def _apply(self, grad, lr):
        from ..kernels.actor_critic import OPTIMIZERS, apply_update, clip_scale, squared_norm

        config = self.config
        norm, scale = clip_scale(squared_norm(grad, 0, grad.shape[0]), float(config.clip_norm or 0.0))
        t = int(self.step[0]) + 1
        self.step[0] = t
        apply_update(self.params, self.state1, self.state2, grad, 0, grad.shape[0], scale, float(lr),
                     OPTIMIZERS[self.config.optimizer], config.rmsprop_alpha, config.beta1, config.beta2, config.eps, t)
        return norm

    # --- the protocol -----------------------------------------------------------------------------------------
    def run_epoch(self, order, epoch, lr, on_chunk):
        """The rest of the current epoch; ``on_chunk`` as in `hogwild.rl.runner.CompiledRunner.run_epoch`."""
        from ..kernels.actor_critic import N_STATS, STAT_GRAD_NORM, STAT_UPDATES, mean_rows

        config = self.config
        if self.pool is None:
            self.pool = WorkerPool(self.n_workers)
        totals = self.epoch_stats  # kept across a checkpoint taken mid-epoch
        while True:
            remaining = self.updates_per_epoch - self.progress
            active = [w for w in range(self.n_workers) if remaining[w] > 0]
            if not active:
                break
            counts = {w: int(min(config.chunk_updates, remaining[w])) for w in active}
            for w in active:
                self.workers[w].stats[:] = 0.0
                self.workers[w].finished = []

            def steps_of(w):
                start = int(self.progress[w]) * self.steps_per_update
                return start, start + counts[w] * self.steps_per_update

            if self.mode == "async":
                def task(w):
                    s = self.workers[w]
                    for _ in range(counts[w]):
                        s.local[:] = self.params
                        self._rollout_gradient(w, s.local)
                        s.stats[STAT_GRAD_NORM] += self._apply(s.grad, lr)
                        s.stats[STAT_UPDATES] += 1

                self.pool.run(task, workers=active, row_range=steps_of)
            else:
                for _ in range(counts[active[0]]):
                    def task(w):
                        self._rollout_gradient(w, self.params)
                        self.grads[w] = self.workers[w].grad

                    self.pool.run(task, workers=active, row_range=steps_of)
                    mean_rows(self.grads[active], self.mean_grad)
                    lead = self.workers[active[0]]
                    lead.stats[STAT_GRAD_NORM] += self._apply(self.mean_grad, lr)
                    lead.stats[STAT_UPDATES] += 1
            chunk = np.zeros(N_STATS)
            returns, lengths = [], []
            for w in active:
                s = self.workers[w]
                self.progress[w] += counts[w]
                chunk += s.stats
                returns += [r for r, _ in s.finished]
                lengths += [n for _, n in s.finished]
            totals += chunk
            on_chunk(self.position(), (np.asarray(returns, dtype=np.float64), np.asarray(lengths, dtype=np.int64)),
                     chunk)
        return totals

    def end_epoch(self):
        self.progress[:] = 0
        self.epoch_stats[:] = 0.0

    def snapshot(self):
        return {"params": self.params.copy(), "state1": self.state1.copy(), "state2": self.state2.copy(),
                "step": int(self.step[0]), "rng": self.rng.copy(), "progress": self.progress.copy(),
                "epoch_stats": self.epoch_stats.copy(), "n_workers": self.n_workers}

    def restore(self, state):
        params = np.asarray(state["params"])
        if params.shape != self.params.shape or params.dtype != self.params.dtype:
            raise CheckpointError(
                f"the checkpoint holds {params.dtype} weights of shape {params.shape} but this run's network has "
                f"{self.params.dtype} {self.params.shape}; resume with the same --hidden, --network and --dtype"
            )
        if int(state.get("n_workers", self.n_workers)) != self.n_workers:
            raise CheckpointError(f"the checkpoint was taken with {state.get('n_workers')} workers; resume with "
                                  "the same --threads")
        self.params[...] = params
        self.state1[...] = state["state1"]
        self.state2[...] = state["state2"]
        self.step[0] = int(state["step"])
        self.rng[...] = state["rng"]
        self.progress[...] = state["progress"]
        self.epoch_stats[...] = state.get("epoch_stats", 0.0)
        for worker in self.workers:
            worker.reset_all()  # Gymnasium environments cannot be restored: fresh episodes

    def parameters(self):
        return {"params": self.params, "state1": self.state1, "state2": self.state2}

    def model(self, copy=True):
        return PolicyModel(self.params.copy() if copy else self.params, self.network, self.spec.id,
                           self.config.to_dict())

    def close(self):
        if self.pool is not None:
            self.pool.close()
            self.pool = None
