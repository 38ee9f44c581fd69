"""Reinforcement learning on the shared-weights engine: A3C (lock-free) and A2C (barrier) actor-learners.

Public names load lazily, so ``import hogwild.rl`` compiles nothing::

    from hogwild.rl import A3C
    agent = A3C("CartPole-v1", threads=2, seed=0).learn(500_000)   # stops once the target return is reached
    agent.predict(obs)                                               # greedy action(s)
    agent.save("policy.npz"); agent = A3C.load("policy.npz")

See `hogwild.rl.trainer` for the loop, `hogwild.kernels.actor_critic` for the algorithm and
`hogwild.kernels.envs` for the compiled environments.
"""

_EXPORTS = {
    "A3C": "hogwild.rl.api",
    "A2C": "hogwild.rl.api",
    "RLConfig": "hogwild.rl.config",
    "RLResult": "hogwild.rl.trainer",
    "RLTrainer": "hogwild.rl.trainer",
    "train_rl": "hogwild.rl.trainer",
    "PolicyModel": "hogwild.rl.policy",
    "load_policy": "hogwild.rl.policy",
    "evaluate_policy": "hogwild.rl.evaluation",
    "resolve_env": "hogwild.rl.envs",
    "compiled_envs": "hogwild.rl.envs",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'hogwild.rl' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
