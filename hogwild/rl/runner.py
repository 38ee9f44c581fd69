"""The actor-learner runner on compiled environments: N threads, one shared weight array, A3C or A2C.

Each worker is a Python thread that calls `hogwild.kernels.actor_critic.worker_chunk` (compiled, ``nogil``)
for ``chunk_updates`` updates at a time; between calls the trainer regains control (progress, Ctrl-C,
checkpoints, worker faults), as in the supervised engine. A worker owns ``envs_per_worker`` environment copies
(their float64 states and current observations), its xorshift stream (derived from the seed and its index),
its running episodes and all its scratch; the weights, the optimizer statistics and the step counter are
shared. ``async`` (A3C) shares them lock-free; ``sync`` (A2C) meets at in-kernel barriers (see the kernel
module's docstring), so a sync run is bitwise reproducible for a seed and a thread count, and its checkpoint
taken at a chunk boundary resumes to the same bits.

An epoch is a fixed number of environment steps: ``steps_per_epoch`` rounded up so that every worker does the
same whole number of updates (``envs_per_worker * t_max`` steps each).

The methods mirror the engine's runner protocol (`hogwild.runners.Runner`): ``modes``, ``check_config``,
``run_epoch(order, epoch, lr, on_chunk)``, ``position()``, ``snapshot()`` / ``restore(state)``, ``parameters()``,
``model()``, ``close()``. Its ``on_chunk`` receives episodes and statistics rather than a loss sum, and its
epoch loop is `hogwild.rl.trainer.RLTrainer` (evaluation and the stopping rule are the RL loop's own).
"""

from __future__ import annotations

import math

import numpy as np

from .._workers import WorkerPool
from ..errors import CheckpointError
from .policy import PolicyModel


class Worker:
    """One actor-learner's private arrays: rollout buffers, gradient scratch, the episodes it finished."""

    def __init__(self, network, n_envs, t_max, capacity, dtype, grads=None):
        from ..kernels.actor_critic import N_STATS

        samples = n_envs * t_max
        self.local = np.zeros(network.n_params, dtype=dtype)
        self.grads = np.zeros((1, network.n_params), dtype=dtype) if grads is None else grads
        self.acts = np.zeros((samples, network.act_size), dtype=dtype)
        self.d = np.zeros(network.act_size, dtype=dtype)
        self.spare = np.zeros(network.act_size, dtype=dtype)
        self.rewards = np.zeros((t_max, n_envs))
        self.ends = np.zeros((t_max, n_envs), dtype=np.int64)
        self.bootstrap = np.zeros((t_max, n_envs))
        self.returns = np.zeros((t_max, n_envs))
        self.actions = np.zeros(samples, dtype=np.int64)
        self.targets = np.zeros(samples)
        self.stats = np.zeros(N_STATS)
        self.finished_returns = np.zeros(capacity)
        self.finished_lengths = np.zeros(capacity, dtype=np.int64)


class CompiledRunner:
    """N actor-learner threads on compiled environments updating one shared network (module docstring)."""

    modes = ("async", "sync")

    @classmethod
    def check_config(cls, config):
        """Refuse options this runner cannot honour (`RLConfig.validate` has checked the rest)."""
        if config.mode not in cls.modes:
            from ..errors import ConfigError

            raise ConfigError("algo", f"--algo {config.algo} is not available here; use a3c or a2c")

    def __init__(self, spec, network, config, n_workers, params=None):
        from ..kernels.actor_critic import N_STATS
        from ..kernels.envs import STATE_SIZE
        from ..kernels.xorshift import seed_state

        self.spec, self.network, self.config = spec, network, config
        self.n_workers = int(n_workers)
        self.mode = config.mode
        dtype = np.dtype(config.dtype)
        self.dtype = dtype
        n_envs, t_max = config.envs_per_worker, config.t_max
        self.steps_per_update = n_envs * t_max  # per worker
        round_steps = self.n_workers * self.steps_per_update
        self.updates_per_epoch = max(1, math.ceil(config.steps_per_epoch / round_steps))  # per worker
        self.steps_per_epoch = self.updates_per_epoch * round_steps

        self.params = network.init_params(config.seed, dtype) if params is None else np.array(params, dtype=dtype)
        self.state1 = np.zeros_like(self.params)
        self.state2 = np.zeros_like(self.params)
        self.step = np.zeros(1, dtype=np.int64)
        shape = (self.n_workers, n_envs)
        self.env_states = np.zeros((*shape, STATE_SIZE))
        self.obs = np.zeros((*shape, network.obs_dim), dtype=dtype)
        self.rng = np.concatenate([seed_state(config.seed, w) for w in range(self.n_workers)]).reshape(-1, 1)
        self.ep_return = np.zeros(shape)
        self.ep_length = np.zeros(shape, dtype=np.int64)
        self.progress = np.zeros(self.n_workers, dtype=np.int64)  # updates done in the current epoch
        self.epoch_stats = np.zeros(N_STATS)  # the current epoch's summed statistics so far
        self._reset_envs()

        capacity = config.chunk_updates * self.steps_per_update  # an episode lasts at least one step
        shared_grads = np.zeros((self.n_workers, network.n_params), dtype=dtype) if self.mode == "sync" else None
        self.grads = shared_grads
        self.workers = [Worker(network, n_envs, t_max, capacity, dtype, shared_grads) for _ in range(self.n_workers)]
        self.norms = np.zeros(self.n_workers)
        self.barrier = np.zeros(3, dtype=np.int64)  # count, generation, abort (kernels.atomics.barrier_wait)
        self.pool = None

    def _reset_envs(self):
        from ..kernels.actor_critic import reset_envs

        for w in range(self.n_workers):
            reset_envs(self.spec.code, self.env_states[w], self.obs[w], self.rng[w])

    # --- the protocol ---------------------------------------------------------------------------------------
    def position(self):
        """Environment steps done in the current epoch, over all workers."""
        return int(self.progress.sum()) * self.steps_per_update

    def run_epoch(self, order, epoch, lr, on_chunk):
        """The rest of the current epoch at learning rate ``lr``; returns the epoch's summed statistics.

        ``order`` is unused (an environment has no row order) and ``epoch`` is the epoch's number: both keep the
        signature of the engine's runner protocol (`hogwild.runners.Runner`).
        After every chunk, ``on_chunk(steps_done, episodes, stats)`` receives the steps done in this epoch so
        far, the episodes finished in the chunk as ``(returns, lengths)`` in worker order, and the chunk's
        statistics (`hogwild.kernels.actor_critic` ``STAT_*`` slots), once ``progress`` is up to date.
        """
        from ..kernels.actor_critic import N_STATS, OPTIMIZERS, worker_chunk

        config, net = self.config, self.network
        if self.pool is None:
            self.pool = WorkerPool(self.n_workers)
        sync = self.mode == "sync"
        hyper = (config.t_max, config.gamma, config.entropy_coef, config.value_coef, float(config.clip_norm or 0.0),
                 float(lr), OPTIMIZERS[config.optimizer], config.rmsprop_alpha, config.beta1, config.beta2,
                 config.eps)
        totals = self.epoch_stats  # kept across a checkpoint taken mid-epoch
        self.barrier[:] = 0
        while True:
            remaining = self.updates_per_epoch - self.progress
            active = [w for w in range(self.n_workers) if remaining[w] > 0]
            if not active:
                break
            counts = {w: int(min(config.chunk_updates, remaining[w])) for w in active}
            finished = {}

            def task(w):
                s = self.workers[w]
                s.stats[:] = 0.0
                finished[w] = worker_chunk(
                    self.spec.code, self.spec.max_steps, self.env_states[w], self.obs[w], self.rng[w],
                    self.ep_return[w], self.ep_length[w], s.finished_returns, s.finished_lengths,
                    self.params, self.state1, self.state2, self.step, s.local, s.grads, self.norms, self.barrier,
                    w, self.n_workers, sync,
                    net.layers, net.activation_code, net.policy_off, net.value_off, net.n_actions,
                    s.acts, s.d, s.spare, s.rewards, s.ends, s.bootstrap, s.returns, s.actions, s.targets,
                    counts[w], *hyper, s.stats,
                )

            def steps_of(w):
                start = int(self.progress[w]) * self.steps_per_update
                return start, start + counts[w] * self.steps_per_update

            self.pool.run(task, workers=active, row_range=steps_of, on_failure=self._abort_barrier)
            returns, lengths, chunk = [], [], np.zeros(N_STATS)
            for w in active:
                s = self.workers[w]
                self.progress[w] += counts[w]
                n = min(finished[w], s.finished_returns.shape[0])
                returns.append(s.finished_returns[:n].copy())
                lengths.append(s.finished_lengths[:n].copy())
                chunk += s.stats
            totals += chunk
            on_chunk(self.position(), (np.concatenate(returns), np.concatenate(lengths)), chunk)
        return totals

    def end_epoch(self):
        """Mark the current epoch finished (the trainer calls this once it has recorded the epoch)."""
        self.progress[:] = 0
        self.epoch_stats[:] = 0.0

    def _abort_barrier(self):
        self.barrier[2] = 1  # a worker failed: release the others from any barrier they wait at

    def snapshot(self):
        """Copies of everything a resumed run needs: weights, optimizer, environments, streams, episodes."""
        return {
            "params": self.params.copy(),
            "state1": self.state1.copy(),
            "state2": self.state2.copy(),
            "step": int(self.step[0]),
            "env_states": self.env_states.copy(),
            "obs": self.obs.copy(),
            "rng": self.rng.copy(),
            "ep_return": self.ep_return.copy(),
            "ep_length": self.ep_length.copy(),
            "progress": self.progress.copy(),
            "epoch_stats": self.epoch_stats.copy(),
            "n_workers": self.n_workers,
        }

    def restore(self, state):
        """Continue from a `snapshot` (in place: the shared arrays keep their identity)."""
        params = np.asarray(state["params"])
        if params.shape != self.params.shape or params.dtype != self.params.dtype:
            raise CheckpointError(
                f"the checkpoint holds {params.dtype} weights of shape {params.shape} but this run's network has "
                f"{self.params.dtype} {self.params.shape}; resume with the same --hidden, --network and --dtype"
            )
        if int(state.get("n_workers", self.n_workers)) != self.n_workers or \
                np.asarray(state["env_states"]).shape != self.env_states.shape:
            raise CheckpointError(
                f"the checkpoint was taken with {state.get('n_workers')} workers and other environment copies; "
                "resume with the same --threads and --envs-per-worker"
            )
        self.params[...] = params
        self.state1[...] = state["state1"]
        self.state2[...] = state["state2"]
        self.step[0] = int(state["step"])
        self.env_states[...] = state["env_states"]
        self.obs[...] = state["obs"]
        self.rng[...] = state["rng"]
        self.ep_return[...] = state["ep_return"]
        self.ep_length[...] = state["ep_length"]
        self.progress[...] = state["progress"]
        self.epoch_stats[...] = state.get("epoch_stats", 0.0)

    def parameters(self):
        """The live shared arrays by name (weights and optimizer statistics)."""
        return {"params": self.params, "state1": self.state1, "state2": self.state2}

    def model(self, copy=True):
        params = self.params.copy() if copy else self.params
        return PolicyModel(params, self.network, self.spec.id, self.config.to_dict())

    def close(self):
        if self.pool is not None:
            self.pool.close()
            self.pool = None
