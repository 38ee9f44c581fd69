"""The cluster's options and errors a user can cause: one sentence naming the option, no traceback, no Ray needed."""

import socket
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from hogwild.cli.main import main
from hogwild.cluster.errors import ClusterError
from hogwild.config import TrainConfig, parse_cluster
from hogwild.errors import ConfigError


@pytest.mark.parametrize("value, parsed", [("local:2", ("local", 2)), ("auto", ("auto", None)),
                                           ("10.0.0.5:6379", ("address", "10.0.0.5:6379")),
                                           ("head-node:6379", ("address", "head-node:6379"))])
def test_parse_cluster(value, parsed):
    assert parse_cluster(value) == parsed


@pytest.mark.parametrize("options, option, words", [
    ({"cluster": "bogus"}, "cluster", "--cluster must be local:N, auto or HOST:PORT"),
    ({"cluster": "local:0"}, "cluster", "between 1 and 64"),
    ({"cluster": "host:70000"}, "cluster", "HOST:PORT"),
    ({"cluster": "auto", "model": "mlp"}, "model", "--cluster trains linear models"),
    ({"cluster": "auto", "mode": "average"}, "mode", "cannot run inside a cluster node"),
    ({"cluster": "auto", "l1": 1e-4}, "l1", "--l1 cannot be combined with --cluster"),
    ({"aggregate": "adagrad"}, "aggregate", "needs --cluster"),
    ({"cluster": "auto", "aggregate": "adagrad", "schedule": "constant"}, "aggregate", "--schedule adagrad"),
    ({"cluster": "auto", "sync_every": 0}, "sync_every", "--sync-every must be a positive integer"),
    ({"cluster": "auto", "nodes": 0}, "nodes", "--nodes must be a positive integer"),
    ({"cluster": "auto", "cluster_timeout": -1.0}, "cluster_timeout", "--cluster-timeout"),
    ({"cluster": "auto", "nodes": 3, "shard_weights": (3, 1)}, "shard_weights", "2 sizes for 3 nodes"),
])
def test_bad_cluster_options_name_the_option(options, option, words):
    with pytest.raises(ConfigError) as raised:
        TrainConfig(**options).validate()
    assert raised.value.option == option
    assert words in str(raised.value) and "\n" not in str(raised.value), str(raised.value)


def test_a_cluster_config_round_trips():
    config = TrainConfig(cluster="local:2", cross_node="ps", sync_every=500, ps_shards=2, shard_weights=(3, 1)).validate()
    again = TrainConfig.from_dict(config.to_dict())
    assert again == config and again.shard_weights == (3, 1)


def _run(*args):
    import click

    @click.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def hogwild(args):
        main(list(args))

    return CliRunner().invoke(hogwild, [str(a) for a in args])


@pytest.fixture
def tiny_file(tmp_path):
    rng = np.random.default_rng(0)
    lines = [f"{1 if rng.random() < 0.5 else -1} 1:{rng.random():.3f} 2:{rng.random():.3f}" for _ in range(40)]
    path = tmp_path / "tiny.svm"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_lists_the_cluster_options():
    result = _run("train", "--help")
    for flag in ("--cluster", "--nodes", "--cross-node", "--sync-every", "--aggregate", "--ps-shards",
                 "--max-staleness", "--on-node-loss", "--cluster-timeout"):
        assert flag in result.output, flag


def test_cli_bad_cluster_is_a_usage_error(tiny_file):
    result = _run("train", tiny_file, "--cluster", "somewhere")
    assert result.exit_code == 2
    assert "--cluster" in result.output and "Traceback" not in result.output


def test_cli_without_ray_says_how_to_install_it(tiny_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = _run("train", tiny_file, "--cluster", "local:2", "--epochs", "1")
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1] == "hogwild: error: --cluster needs Ray, which is not installed; install it with pip install 'hogwild[ray]'"
    assert "Traceback" not in result.output


def test_a_dead_address_is_one_sentence():
    from hogwild.cluster.connect import probe

    with socket.socket() as sock:  # a port nobody listens on: bind, then close
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ClusterError) as raised:
        probe(f"127.0.0.1:{port}", timeout=2.0)
    message = str(raised.value)
    assert message.startswith(f"--cluster 127.0.0.1:{port}: nothing answers there") and "\n" not in message
    assert "ray start --head" in message
