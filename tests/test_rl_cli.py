"""`hogwild rl` on the command line: train, evaluate, their one-line errors and exit codes, Ctrl-C and --resume."""

import json
import os
import signal
import subprocess
import sys
import time

import click
import pytest
from click.testing import CliRunner

from hogwild.cli.main import main

QUICK = ["--threads", "1", "--steps", "4000", "--steps-per-epoch", "2000", "--eval-episodes", "5"]


@click.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def _hogwild(args):
    main(list(args))


def run(*args):
    return CliRunner().invoke(_hogwild, [str(a) for a in args])


def _one_line_error(result, code, *fragments):
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def test_train_save_metrics_and_evaluate(tmp_path):
    policy, metrics = tmp_path / "policy.npz", tmp_path / "run.json"
    result = run("rl", "train", "CartPole-v1", *QUICK, "--algo", "a2c", "--save", policy, "--metrics-json", metrics)
    assert result.exit_code == 0, result.output
    assert "trained a2c on CartPole-v1 (compiled) with 1 thread(s): 4,000 steps" in result.stdout
    assert f"policy saved to {policy}" in result.stdout
    report = json.loads(metrics.read_text())
    assert report["steps"] == 4000 and len(report["epochs"]) == 2 and report["config"]["algo"] == "a2c"
    assert {"mean_return", "eval_return", "steps_per_s", "episodes"} <= set(report["epochs"][-1])

    result = run("rl", "evaluate", policy, "CartPole-v1", "--episodes", "7", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["episodes"] == 7 and summary["env"] == "CartPole-v1"
    assert 1 <= summary["mean_return"] <= 500
    result = run("rl", "evaluate", policy, "--episodes", "3")  # ENV defaults to the policy's
    assert result.exit_code == 0 and "CartPole-v1: mean return" in result.stdout


def test_progress_lines_and_help():
    result = run("rl", "train", "CartPole-v1", *QUICK)
    assert result.exit_code == 0
    assert "epoch 2/2  steps 4,000" in result.stderr and "steps/s" in result.stderr
    assert "--algo [a3c|a2c]" in run("rl", "train", "--help").stdout
    assert "CartPole-v1: 4 observations, 2 actions" in run("rl", "envs").stdout


@pytest.mark.parametrize("args,code,fragments", [
    (["rl", "train", "NoSuchEnv-v0"], 2, ["NoSuchEnv-v0"]),
    (["rl", "train", "MountainCar-v0", "--backend", "compiled"], 2, ["no compiled version"]),
    (["rl", "train", "CartPole-v1", "--lr", "-1"], 2, ["--lr"]),
    (["rl", "train", "CartPole-v1", "--algo", "ppo"], 2, ["--algo"]),
    (["rl", "train", "CartPole-v1", "--hidden", "64,x"], 2, ["--hidden"]),
    (["rl", "train", "CartPole-v1", "--resume"], 2, ["--resume needs --checkpoint-dir"]),
    (["rl", "evaluate", "missing.npz"], 1, ["missing.npz: policy file not found"]),
])
def test_user_errors_are_one_line(args, code, fragments):
    _one_line_error(run(*args), code, *fragments)


def test_bad_policy_files(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    _one_line_error(run("rl", "evaluate", junk), 1, "junk.npz", "not a readable hogwild policy file")
    policy = tmp_path / "acrobot.npz"
    assert run("rl", "train", "Acrobot-v1", *QUICK, "--save", policy).exit_code == 0
    _one_line_error(run("rl", "evaluate", policy, "CartPole-v1"), 1, "6 observations and 3 actions")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_writes_a_checkpoint_and_resume_continues(tmp_path):
    folder = tmp_path / "ckpt"
    command = [sys.executable, "-m", "hogwild.cli.main", "rl", "train", "CartPole-v1", "--threads", "2",
               "--steps", "100000000", "--steps-per-epoch", "2000", "--eval-episodes", "2", "--no-stop-at-target",
               "--checkpoint-dir", str(folder)]

    def interrupted(extra=()):
        process = subprocess.Popen([*command, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait for the first finished epoch
            line = process.stderr.readline()
            lines.append(line)
            if line.startswith("epoch "):
                break
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=60)
        return process.returncode, "".join(lines) + rest

    code, stderr = interrupted()
    assert code == 130, stderr
    assert "training interrupted; checkpoint saved to" in stderr and "Traceback" not in stderr
    assert any(name.startswith("checkpoint-") for name in os.listdir(folder))
    code, stderr = interrupted(["--resume"])
    assert code == 130 and "resuming from" in stderr, stderr
