"""Cluster training on a local 2-node Ray cluster (two raylets on this machine, one CPU each).

Marked ``ray`` and skipped where Ray is not installed. One session-scoped cluster serves every test (start-up
costs 5-10 s); every wait has a timeout (``cluster_timeout``), so a hang fails instead of stalling CI.
Accuracy is compared with the single-machine serial run on the same split and epochs.
"""

import os
import warnings

import numpy as np
import pytest

from conftest import shared_file

pytestmark = pytest.mark.ray

OBJECT_STORE_BYTES = 200 * 2**20
TIMEOUT = 120.0  # seconds any cluster wait may take in these tests


@pytest.fixture(scope="session")
def ray_cluster():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'hogwild[ray]'")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": OBJECT_STORE_BYTES,
                                                            "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE_BYTES)
        ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
        cluster.wait_for_nodes(timeout=60)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def _split(name):
    from hogwild.datasets.libsvm import load_libsvm

    X, y = load_libsvm(str(shared_file(name)))
    order = np.random.default_rng(0).permutation(X.shape[0])
    n_test = X.shape[0] // 4
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    return X[train], np.asarray(y)[train], X[test], np.asarray(y)[test]


@pytest.fixture(scope="module")
def a9a():
    return _split("a9a")


def _serial(data, epochs, **options):
    from hogwild.engine import train

    X, y, X_test, y_test = data
    return train(X, y, mode="serial", epochs=epochs, X_test=X_test, y_test=y_test, **options).history[-1]["test_accuracy"]


def _cluster(data, **options):
    from hogwild.cluster import train

    X, y, X_test, y_test = data
    options.setdefault("cluster_timeout", TIMEOUT)
    return train(X, y, cluster="auto", X_test=X_test, y_test=y_test, **options)


@pytest.mark.parametrize("cross_node", ["average", "ps"])
def test_a9a_reaches_serial_accuracy(ray_cluster, a9a, cross_node):
    serial = _serial(a9a, 5)
    result = _cluster(a9a, cross_node=cross_node, sync_every=2000, epochs=5)
    accuracy = result.history[-1]["test_accuracy"]
    assert accuracy >= serial - 0.005, f"{cross_node}: test accuracy {accuracy:.4f} < serial {serial:.4f} - 0.005"
    nodes = result.cluster["nodes"]
    # one node actor per raylet, each training with the one CPU Ray gave it (not the host's cores)
    assert len({node["ray_node"] for node in nodes}) == 2, nodes
    assert [node["threads"] for node in nodes] == [1, 1], nodes
    assert all(node["syncs"] >= 6 for node in nodes), nodes  # 12,211 rows per node, a sync every 2,000 rows
    record = result.history[-1]
    assert record["nodes"] == 2 and record["mb_moved"] > 0 and 0 <= record["comm_fraction"] <= 1, record
    if cross_node == "ps":
        assert 0.3 <= record["staleness"] <= 2.0, f"mean staleness {record['staleness']} with 2 nodes, expected ~1"


@pytest.mark.parametrize("cross_node", ["average", "ps"])
def test_news20_reaches_serial_accuracy(ray_cluster, cross_node):
    data = _split("news20.bz2")
    options = {"multiclass": "softmax", "lr": 0.05, "l2": 1e-6}
    serial = _serial(data, 4, **options)
    result = _cluster(data, cross_node=cross_node, sync_every=3000, epochs=4, **options)
    accuracy = result.history[-1]["test_accuracy"]
    assert accuracy >= serial - 0.005, f"{cross_node}: test accuracy {accuracy:.4f} < serial {serial:.4f} - 0.005"


def test_weighted_beats_mean_on_uneven_shards(ray_cluster, a9a):
    """19:1 shards, one averaging per epoch: the plain mean gives the 5% shard's replica half the say."""
    accuracy = {}
    for rule in ("mean", "weighted"):
        result = _cluster(a9a, cross_node="average", aggregate=rule, shard_weights=(19, 1), sync_every=100_000, epochs=1)
        accuracy[rule] = result.history[-1]["test_accuracy"]
    assert accuracy["weighted"] >= accuracy["mean"] + 0.002, f"weighted {accuracy['weighted']:.4f} vs mean {accuracy['mean']:.4f}"


def _kill_node_when(rows, node=1):
    """A chunk hook that kills node ``node``'s actor once the second epoch is ``rows`` rows in."""
    import ray

    done = []

    def hook(trainer):
        if not done and trainer.epoch == 1 and trainer.position() >= rows:
            ray.kill(trainer.runner.nodes[node])
            done.append(trainer.position())

    return hook, done


@pytest.fixture
def fast_polls(monkeypatch):
    """The driver reports progress (and runs chunk hooks) every 10 ms, so a hook can act mid-epoch."""
    from hogwild.cluster import runner

    monkeypatch.setattr(runner, "POLL_SECONDS", 0.01)


@pytest.mark.parametrize("cross_node", ["average", "ps"])
def test_a_lost_node_leaves_a_finished_model_and_one_line(ray_cluster, a9a, cross_node, fast_polls):
    from hogwild.cluster.errors import NodeLostWarning

    hook, done = _kill_node_when(1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # syncs every 300 rows make an epoch (~40 rounds) outlast the first 10 ms poll, where the kill lands
        result = _cluster(a9a, cross_node=cross_node, sync_every=300, epochs=3, hooks=[hook])
    assert done and done[0] < a9a[0].shape[0], f"the node should be killed mid-epoch, not at row {done}"
    lost = [w for w in caught if issubclass(w.category, NodeLostWarning)]
    assert len(lost) == 1, [str(w.message) for w in caught]
    message = str(lost[0].message)
    assert "\n" not in message and message.startswith("node 1 ") and "continuing on 1 node" in message, message
    assert len(result.history) == 3 and result.history[-1]["nodes"] == 1
    assert np.all(np.isfinite(result.model.coef))
    assert result.history[-1]["test_accuracy"] > 0.82, result.history[-1]


def test_a_lost_node_aborts_with_one_sentence(ray_cluster, a9a, tmp_path, fast_polls):
    from hogwild.cluster.errors import ClusterError

    hook, _ = _kill_node_when(1)
    with pytest.raises(ClusterError) as raised:
        _cluster(a9a, cross_node="ps", sync_every=300, epochs=3, hooks=[hook], on_node_loss="abort",
                 checkpoint_dir=str(tmp_path))
    message = str(raised.value)
    assert "\n" not in message and message.startswith("node 1 ") and "--resume" in message, message
    assert list(tmp_path.glob("checkpoint-*.npz")), "the first epoch's checkpoint should be kept"


def test_checkpoint_and_resume(ray_cluster, a9a, tmp_path):
    first = _cluster(a9a, cross_node="average", sync_every=4000, epochs=2, checkpoint_dir=str(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = _cluster(a9a, cross_node="average", sync_every=4000, epochs=3, checkpoint_dir=str(tmp_path),
                           resume=True)
    assert any("resuming from" in str(w.message) for w in caught), [str(w.message) for w in caught]
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    assert resumed.history[1]["test_accuracy"] == first.history[1]["test_accuracy"]
    assert resumed.history[-1]["test_accuracy"] > 0.83


def test_cli_trains_on_the_cluster_and_reports_per_node(ray_cluster, tmp_path):
    """`hogwild train --cluster auto` joins the running cluster: progress lines carry the cluster's counters and
    the metrics JSON each node's."""
    import json

    import click
    from click.testing import CliRunner

    from hogwild.cli.main import main

    @click.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def hogwild(args):
        main(list(args))

    metrics = tmp_path / "metrics.json"
    args = ["train", str(shared_file("a9a")), "--test-fraction", "0.25", "--cluster", "auto", "--cross-node", "ps",
            "--sync-every", "3000", "--epochs", "2", "--cluster-timeout", "120", "--metrics-json", str(metrics)]
    result = CliRunner().invoke(hogwild, args)
    assert result.exit_code == 0, result.output
    epoch_lines = [line for line in result.output.splitlines() if line.startswith("epoch 2/2")]
    assert epoch_lines and "nodes 2" in epoch_lines[0] and "staleness" in epoch_lines[0], result.output
    report = json.loads(metrics.read_text())
    nodes = report["epochs"][-1]["cluster"]["nodes"]
    assert len(nodes) == 2
    for node in nodes:
        for key in ("rows_per_s", "staleness_mean", "bytes_sent", "bytes_received", "comm_seconds"):
            assert node[key] is not None and node[key] >= 0, (key, node)
    assert report["final"]["test_accuracy"] > 0.83


def test_bench_cluster_axis_records_fit_the_study(ray_cluster, a9a):
    """`hogwild.bench.cluster.run_cluster`: nodes x cross-node mode, in the study's record schema."""
    from hogwild.bench.cluster import run_cluster
    from hogwild.bench.problem import BenchProblem
    from hogwild.bench.report import _row
    from hogwild.bench.study import _summarize
    from hogwild.config import TrainConfig

    X, y, X_test, y_test = a9a
    problem = BenchProblem(X, y, X_test, y_test, loss="log_loss", l2=1e-5, l1=0.0, epsilon=0.1, multiclass="ovr",
                           name="a9a")
    config = TrainConfig(cluster="auto", sync_every=4000, cluster_timeout=TIMEOUT)
    runs = run_cluster(problem, config, nodes=(1, 2), cross_nodes=("ps", "average"), cluster="auto", epochs=2)
    assert [(r["mode"], r["nodes"]) for r in runs] == [("cluster-ps", 1), ("cluster-ps", 2), ("cluster-average", 1),
                                                       ("cluster-average", 2)], runs
    results = {"target_loss": None, "target_accuracy": 0.8, "ceiling": None}
    summarized = [_summarize(run, problem, runs, results) for run in runs]
    for run in summarized:
        assert not run.get("skipped"), run.get("reason")
        assert run["seconds_per_epoch"] > 0 and run["test_accuracy"] > 0.8 and len(run["cluster"]["nodes"]) == run["nodes"]
        assert run["speedup"] is not None  # over one node of the same mode
        assert _row(run).startswith(f"| hogwild | {run['mode']} | {run['nodes']} |")


def test_bench_command_has_the_cluster_axis(ray_cluster, tmp_path):
    """`hogwild bench --nodes 2 --cross-nodes average --bench-cluster auto` adds the cluster runs to the one study's
    JSON and Markdown outputs."""
    import json

    from click.testing import CliRunner

    from hogwild.cli.main import cli

    out, table = tmp_path / "bench.json", tmp_path / "bench.md"
    args = ["bench", "--synthetic", "rcv1", "--rows", "3000", "--epochs", "1", "--repeats", "1", "--threads", "1",
            "--modes", "serial", "--nodes", "2", "--cross-nodes", "average", "--bench-cluster", "auto",
            "--no-ceiling", "--out", str(out), "--markdown", str(table), "--quiet"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    runs = json.loads(out.read_text())["runs"]
    cluster = [run for run in runs if run["mode"] == "cluster-average"]
    assert len(cluster) == 1 and cluster[0]["nodes"] == 2 and not cluster[0].get("skipped"), cluster
    assert "| hogwild | cluster-average | 2 |" in table.read_text()


def test_estimator_trains_on_the_cluster(ray_cluster, a9a):
    """The estimators reach the cluster runner through the same front door: cluster=, nodes=, cross_node=."""
    from hogwild import HogwildClassifier

    X, y, X_test, y_test = a9a
    clf = HogwildClassifier(cluster="auto", nodes=2, cross_node="average", sync_every=4000, max_iter=2, tol=None,
                            random_state=0).fit(X, y)
    accuracy = clf.score(X_test, y_test)
    assert accuracy > 0.83, f"cluster-trained classifier: test accuracy {accuracy:.4f} below 0.83"
    assert clf.history_[-1]["nodes"] == 2
