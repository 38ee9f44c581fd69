"""Time to solve CartPole-v1 (and Acrobot-v1) with `hogwild rl train`, against Stable-Baselines3's A2C.

    python docs/experiments/rl_benchmark.py cartpole [--seeds 0,1,2,3,4] [--configs a3c:1,a3c:2,a2c:1,a2c:2]
                                                     [--sb3-max-steps 500000] [--sb3-torch-threads 1] [--no-sb3]
    python docs/experiments/rl_benchmark.py acrobot [--seeds 0,1,2]
    python docs/experiments/rl_benchmark.py python-path [--steps 20000] [--repeats 3]

Prints Markdown, starting with a heading line so that docs/regenerate.py keeps it as Markdown (the blocks ``rl-cartpole``, ``rl-acrobot``, ``rl-python-path`` of docs/benchmarks.md).

The solve rule is the same for every contender: every 10,000 environment steps the greedy policy plays 100
episodes of hogwild's compiled environment (stopping early once the target is out of reach), and the run is
solved at the first evaluation whose mean return minus three standard errors is at least the target (475 for
CartPole-v1, -100 for Acrobot-v1) and a confirmation on 100 other episodes passes too
(`hogwild.rl.trainer.solve_rule`). hogwild's own runs apply it themselves (`hogwild rl train`'s defaults);
Stable-Baselines3's A2C (rl-zoo's tuned CartPole-v1 hyper-parameters: 8 environments, ent_coef 0, otherwise
SB3's defaults) is stopped by a callback that copies its weights into a hogwild `PolicyModel` (the same 64-64
tanh policy network) and runs the same evaluation, with the clock stopped during evaluations. Every solved
policy is then checked on Gymnasium's own environment: 100 greedy episodes from other starts.

Each hogwild run is a separate `hogwild rl train ... --save --metrics-json` process, as a user runs it; the
table gives the in-run time to solve (evaluations included, start-up excluded), the same without evaluations,
and the whole process's wall time (Python and Numba start-up, loading the cached kernels). Run it once first to
fill Numba's cache: the first run compiles for about a minute.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

EVAL_EVERY = 10_000
EVAL_EPISODES = 100


def machine_line():
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    return f"{cpu}, {os.cpu_count()} cores, load average {load:.1f} at the start"


def fmt(value, digits=1):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:,.{digits}f}"


# --- hogwild ------------------------------------------------------------------------------------------------
def hogwild_run(env, algo, threads, seed, workdir, extra=()):
    """One `hogwild rl train` process; returns its solve record, wall time and a Gymnasium check of the policy."""
    policy_path = os.path.join(workdir, f"{env}-{algo}-{threads}-{seed}.npz")
    metrics_path = policy_path.replace(".npz", ".json")
    command = [sys.executable, "-m", "hogwild.cli.main", "rl", "train", env, "--algo", algo, "--threads",
               str(threads), "--seed", str(seed), "--save", policy_path, "--metrics-json", metrics_path, "--quiet",
               *extra]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {completed.stderr.strip()}")
    with open(metrics_path) as handle:
        report = json.load(handle)
    solved = report["solved"]
    train_seconds = sum(record["seconds"] for record in report["epochs"])
    return {
        "solved": solved,
        "steps": solved["steps"] if solved else None,
        "seconds": solved["seconds"] if solved else None,
        "train_seconds": solved["train_seconds"] if solved else None,
        "wall": wall,
        "steps_per_s": report["steps"] / train_seconds if train_seconds else None,
        "check": gymnasium_check(policy_path, env, seed),
    }


def gymnasium_check(policy_path, env, seed):
    """Mean return of the saved policy over 100 greedy episodes of Gymnasium's own environment."""
    from hogwild.rl.envs import resolve_env
    from hogwild.rl.evaluation import evaluate_policy
    from hogwild.rl.policy import load_policy

    summary = evaluate_policy(load_policy(policy_path), resolve_env(env, "gymnasium"), EVAL_EPISODES,
                              seed=1000 + seed)
    return summary["mean_return"]


# --- Stable-Baselines3 ----------------------------------------------------------------------------------------
def sb3_to_policy(model, env_id):
    """The SB3 A2C MlpPolicy's weights as a hogwild `PolicyModel` (separate 64-64 tanh towers)."""
    import numpy as np

    from hogwild.rl.network import Network
    from hogwild.rl.policy import PolicyModel

    policy = model.policy
    linear = lambda sequential: [m for m in sequential if hasattr(m, "weight")]  # noqa: E731
    pi_layers = linear(policy.mlp_extractor.policy_net) + [policy.action_net]
    vf_layers = linear(policy.mlp_extractor.value_net) + [policy.value_net]
    hidden = tuple(layer.out_features for layer in pi_layers[:-1])
    network = Network.build(pi_layers[0].in_features, pi_layers[-1].out_features, hidden, "tanh", "separate")
    parts = []
    for layer in pi_layers + vf_layers:
        parts.append(layer.weight.detach().cpu().numpy().T.ravel())
        parts.append(layer.bias.detach().cpu().numpy())
    return PolicyModel(np.concatenate(parts).astype(np.float32), network, env_id)


def sb3_run(env_id, seed, target, max_steps, torch_threads):
    """SB3 A2C with rl-zoo's CartPole-v1 hyper-parameters until the solve rule passes or ``max_steps``."""
    import numpy as np
    import torch
    from stable_baselines3 import A2C
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    from hogwild.rl.envs import resolve_env
    from hogwild.rl.evaluation import evaluate_policy
    from hogwild.rl.trainer import solve_rule

    torch.set_num_threads(torch_threads)
    spec = resolve_env(env_id)
    vec = make_vec_env(env_id, n_envs=8, seed=seed)
    model = A2C("MlpPolicy", vec, ent_coef=0.0, seed=seed, device="cpu", verbose=0)
    # the weight copy must act as SB3 does
    probe = np.random.default_rng(seed).normal(size=(256, spec.obs_dim)).astype(np.float32)
    copy = sb3_to_policy(model, env_id)
    assert np.array_equal(copy.predict(probe), model.predict(probe, deterministic=True)[0]), "weight copy differs"

    class SolveRule(BaseCallback):
        def __init__(self):
            super().__init__()
            self.next_eval, self.eval_seconds, self.solved, self.evals = EVAL_EVERY, 0.0, None, 0

        def _on_step(self):
            if self.num_timesteps < self.next_eval:
                return True
            self.next_eval += EVAL_EVERY
            started = time.perf_counter()
            policy = sb3_to_policy(self.model, env_id)

            def evaluate(k):
                return evaluate_policy(policy, spec, EVAL_EPISODES, seed=seed * 1_000_003 + 2 * self.evals + k,
                                       target=target, stop_early=True)

            reached, _, _ = solve_rule(evaluate, target)
            self.evals += 1
            self.eval_seconds += time.perf_counter() - started
            if reached:
                self.solved = self.num_timesteps
                return False
            return True

    rule = SolveRule()
    started = time.perf_counter()
    model.learn(total_timesteps=max_steps, callback=rule)
    wall = time.perf_counter() - started
    train = wall - rule.eval_seconds
    result = {"steps": rule.solved, "train_seconds": train if rule.solved else None,
              "seconds": wall if rule.solved else None, "steps_per_s": model.num_timesteps / train,
              "total_steps": model.num_timesteps, "total_train_seconds": train}
    if rule.solved:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "sb3.npz")
            sb3_to_policy(model, env_id).save(path)
            result["check"] = gymnasium_check(path, env_id, seed)
    return result


# --- reports --------------------------------------------------------------------------------------------------
def cartpole(args):
    seeds = [int(s) for s in args.seeds.split(",")]
    configs = [(c.split(":")[0], int(c.split(":")[1])) for c in args.configs.split(",")]
    print(f"#### CartPole-v1, seeds {', '.join(map(str, seeds))}; machine: {machine_line()}\n")
    print("| contender | seed | steps to solve | time to solve (s) | without evaluations (s) | process wall (s) "
          "| steps/s | Gymnasium check |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    summary = {}
    with tempfile.TemporaryDirectory() as workdir:
        for algo, threads in configs:
            name = f"hogwild {algo} x{threads}"
            for seed in seeds:
                run = hogwild_run("CartPole-v1", algo, threads, seed, workdir)
                summary.setdefault(name, []).append(run)
                print(f"| {name} | {seed} | {fmt(run['steps'], 0)} | {fmt(run['seconds'], 2)} | "
                      f"{fmt(run['train_seconds'], 2)} | {fmt(run['wall'], 2)} | {fmt(run['steps_per_s'], 0)} | "
                      f"{fmt(run['check'])} |", flush=True)
    if not args.no_sb3:
        name = f"SB3 A2C (rl-zoo), torch threads {args.sb3_torch_threads}"
        for seed in seeds:
            run = sb3_run("CartPole-v1", seed, 475.0, args.sb3_max_steps, args.sb3_torch_threads)
            run["wall"] = None
            summary.setdefault(name, []).append(run)
            steps = fmt(run["steps"], 0) if run["steps"] else f"not in {run['total_steps']:,}"
            print(f"| {name} | {seed} | {steps} | {fmt(run['seconds'], 2)} | {fmt(run['train_seconds'], 2)} | - | "
                  f"{fmt(run['steps_per_s'], 0)} | {fmt(run.get('check'))} |", flush=True)
    print("\nMedians over the seeds (a run that did not solve counts as its whole budget, marked >):\n")
    print("| contender | solved | steps to solve | time to solve (s) | without evaluations (s) | steps/s |")
    print("|---|---:|---:|---:|---:|---:|")
    medians = {}
    for name, runs in summary.items():
        solved = sum(1 for run in runs if run["steps"])
        steps = statistics.median(run["steps"] or run.get("total_steps", math.inf) for run in runs)
        seconds = statistics.median(run["seconds"] if run["steps"] else math.inf for run in runs)
        train = statistics.median(run["train_seconds"] if run["steps"] else run.get("total_train_seconds", math.inf)
                                  for run in runs)
        rate = statistics.median(run["steps_per_s"] for run in runs)
        medians[name] = train
        print(f"| {name} | {solved}/{len(runs)} | {fmt(steps, 0)} | {fmt(seconds, 2)} | {fmt(train, 2)} | "
              f"{fmt(rate, 0)} |")
    sb3 = [v for k, v in medians.items() if k.startswith("SB3")]
    if sb3:
        print()
        for name, train in medians.items():
            if not name.startswith("SB3"):
                print(f"- {name}: {sb3[0] / train:.0f}x less training time to solve than SB3 A2C (medians, "
                      "evaluations excluded on both sides)")


def acrobot(args):
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"#### Acrobot-v1, hogwild a3c x2 with its defaults; machine: {machine_line()}\n")
    print("| seed | steps to solve | time to solve (s) | process wall (s) | steps/s | Gymnasium check |")
    print("|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as workdir:
        for seed in seeds:
            run = hogwild_run("Acrobot-v1", "a3c", 2, seed, workdir)
            print(f"| {seed} | {fmt(run['steps'], 0)} | {fmt(run['seconds'], 2)} | {fmt(run['wall'], 2)} | "
                  f"{fmt(run['steps_per_s'], 0)} | {fmt(run['check'])} |", flush=True)


def python_path(args):
    from hogwild.rl.trainer import RLTrainer

    print(f"#### CartPole-v1 training throughput, compiled vs Gymnasium-stepped environments (no evaluation; best of "
          f"{args.repeats} interleaved runs of {args.steps:,} steps, 10x that compiled); machine: {machine_line()}\n")
    print("Steps per CPU-second (all threads' CPU time) does not depend on how busy the machine is; wall-clock "
          "steps/s does.\n")
    print("| algo | threads | compiled steps/s | Gymnasium steps/s | ratio | compiled steps/CPU-s | "
          "Gymnasium steps/CPU-s | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for algo in ("a3c", "a2c"):
        for threads in (1, 2):
            wall, cpu = {}, {}
            for _ in range(args.repeats):
                for backend in ("compiled", "gymnasium"):
                    steps = args.steps * (10 if backend == "compiled" else 1)
                    trainer = RLTrainer(env="CartPole-v1", algo=algo, threads=threads, steps=steps, backend=backend,
                                        eval_episodes=0, stop_at_target=False, steps_per_epoch=steps, seed=0)
                    cpu_start = time.process_time()
                    result = trainer.run()
                    cpu_seconds = time.process_time() - cpu_start
                    seconds = sum(record["seconds"] for record in result.history)
                    wall[backend] = max(wall.get(backend, 0.0), result.steps / seconds)
                    cpu[backend] = max(cpu.get(backend, 0.0), result.steps / cpu_seconds)
            print(f"| {algo} | {threads} | {fmt(wall['compiled'], 0)} | {fmt(wall['gymnasium'], 0)} | "
                  f"{wall['compiled'] / wall['gymnasium']:.1f}x | {fmt(cpu['compiled'], 0)} | "
                  f"{fmt(cpu['gymnasium'], 0)} | {cpu['compiled'] / cpu['gymnasium']:.1f}x |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    one = sub.add_parser("cartpole")
    one.add_argument("--seeds", default="0,1,2,3,4")
    one.add_argument("--configs", default="a3c:1,a3c:2,a2c:1,a2c:2")
    one.add_argument("--sb3-max-steps", type=int, default=500_000)
    one.add_argument("--sb3-torch-threads", type=int, default=1)
    one.add_argument("--no-sb3", action="store_true")
    two = sub.add_parser("acrobot")
    two.add_argument("--seeds", default="0,1,2")
    three = sub.add_parser("python-path")
    three.add_argument("--steps", type=int, default=20_000)
    three.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    {"cartpole": cartpole, "acrobot": acrobot, "python-path": python_path}[args.what](args)


if __name__ == "__main__":
    main()
