"""Measure cluster training on a local Ray cluster, calibrate the simulator on it, validate it, and sweep it.

    python docs/experiments/cluster_scaling.py measure  --data DIR   # local 2- and 4-node Ray runs (needs Ray)
    python docs/experiments/cluster_scaling.py validate --data DIR   # calibrate on the 2-node runs; simulate all
    python docs/experiments/cluster_scaling.py sweep                 # simulated sweeps to 100 nodes
    python docs/experiments/cluster_scaling.py report                # the sweeps' Markdown tables

Results go to docs/results/cluster_{measured,validation,sweeps}.json; each step prints the Markdown tables
that docs/scaling.md shows. DIR holds the shared a9a and news20.bz2 files.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parents[1] / "results"
SETTINGS = {  # dataset -> (options, epochs, --sync-every)
    "a9a": ({}, 5, 2000),
    "news20.bz2": ({"multiclass": "softmax", "lr": 0.05, "l2": 1e-6}, 4, 3000),
}
HOST_CORES = 2  # the measured runs share this VM's 2 cores


def split(path):
    from hogwild.datasets.libsvm import load_libsvm

    X, y = load_libsvm(str(path))
    order = np.random.default_rng(0).permutation(X.shape[0])
    n_test = X.shape[0] // 4
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    y = np.asarray(y)
    return X[train], y[train], X[test], y[test]


def measure(data_dir):
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    from ray.cluster_utils import Cluster

    from hogwild.cluster import train
    from hogwild.engine import train as train_one

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 150 * 2**20,
                                                            "include_dashboard": False})
    for _ in range(3):
        cluster.add_node(num_cpus=1, object_store_memory=150 * 2**20)
    ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
    cluster.wait_for_nodes(timeout=120)
    runs = []
    try:
        for name, (options, epochs, sync_every) in SETTINGS.items():
            X, y, X_test, y_test = split(Path(data_dir) / name)
            serial = train_one(X, y, mode="serial", epochs=epochs, X_test=X_test, y_test=y_test, **options)
            runs.append({"data": name, "mode": "serial", "nodes": 1,
                         "accuracy": [r["test_accuracy"] for r in serial.history]})
            for n_nodes in (2, 4):
                for cross_node in ("ps", "average"):
                    started = time.perf_counter()
                    result = train(X, y, cluster="auto", nodes=n_nodes, cross_node=cross_node, sync_every=sync_every,
                                   epochs=epochs, X_test=X_test, y_test=y_test, cluster_timeout=300, **options)
                    history = result.history
                    run = {"data": name, "mode": cross_node, "nodes": n_nodes, "sync_every": sync_every,
                           "accuracy": [r["test_accuracy"] for r in history],
                           "staleness": [r["staleness"] for r in history],
                           "epoch_seconds": [r["cluster"]["seconds"] for r in history],
                           "wall_seconds": time.perf_counter() - started,
                           "epochs": [r["cluster"] for r in history]}
                    runs.append(run)
                    print(f"{name} {cross_node} x{n_nodes}: accuracy {run['accuracy'][-1]:.4f} staleness "
                          f"{np.mean(run['staleness'][1:]):.2f} s/epoch {np.median(run['epoch_seconds'][1:]):.3f}",
                          flush=True)
    finally:
        ray.shutdown()
        cluster.shutdown()
    write("cluster_measured.json", {"host_cores": HOST_CORES, "runs": runs})


def validate(data_dir):
    from hogwild.cluster.simulate import calibrate, simulate
    from hogwild.config import TrainConfig

    measured = json.loads((RESULTS / "cluster_measured.json").read_text())["runs"]
    # calibrate on the 2-node ps runs (epochs after the first, which loads the kernels): small a9a messages pin
    # the latency, news20's 5 MB pulls the bandwidth
    calibration = calibrate([epoch for run in measured if run["mode"] == "ps" and run["nodes"] == 2
                             for epoch in run["epochs"][1:]])
    rows = []
    for run in measured:
        if run["mode"] == "serial":
            continue
        options, epochs, sync_every = SETTINGS[run["data"]]
        X, y, X_test, y_test = split(Path(data_dir) / run["data"])
        config = TrainConfig(cluster="auto", cross_node=run["mode"], sync_every=sync_every, epochs=epochs, **options)
        machine = calibration
        if run["nodes"] > HOST_CORES:  # the measured nodes share the host's cores
            from dataclasses import replace

            machine = replace(calibration, nnz_per_s=calibration.nnz_per_s * HOST_CORES / run["nodes"])
        result = simulate(X, y, config, run["nodes"], machine, X_test=X_test, y_test=y_test)
        times = np.diff([0.0] + [r["time"] for r in result.history])
        serial = next(r for r in measured if r["mode"] == "serial" and r["data"] == run["data"])["accuracy"][-1]
        rows.append({
            "data": run["data"], "mode": run["mode"], "nodes": run["nodes"], "serial_accuracy": serial,
            "measured_accuracy": run["accuracy"][-1], "simulated_accuracy": result.history[-1]["test_accuracy"],
            "measured_staleness": float(np.mean(run["staleness"][1:])),
            "simulated_staleness": float(np.mean([r["staleness"] for r in result.history])),
            "measured_epoch_seconds": float(np.median(run["epoch_seconds"][1:])),
            "simulated_epoch_seconds": float(np.median(times)),
        })
        print(rows[-1], flush=True)
    write("cluster_validation.json", {"calibration": calibration.as_dict(), "rows": rows})
    print(markdown_validation(rows, calibration))


def markdown_validation(rows, calibration):
    lines = [f"Calibration (fitted to the 2-node ps epochs): {calibration.nnz_per_s / 1e6:.1f} M nnz/s per node, "
             f"latency {calibration.latency_s * 1e3:.2f} ms, bandwidth {calibration.bandwidth_Bps / 1e6:.0f} MB/s.",
             "",
             "| data | mode | nodes | serial acc | measured acc | simulated acc | measured staleness | simulated staleness | measured s/epoch | simulated s/epoch |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['data']} | {r['mode']} | {r['nodes']} | {r['serial_accuracy']:.4f} | "
                     f"{r['measured_accuracy']:.4f} | {r['simulated_accuracy']:.4f} | {r['measured_staleness']:.2f} | "
                     f"{r['simulated_staleness']:.2f} | {r['measured_epoch_seconds']:.3f} | {r['simulated_epoch_seconds']:.3f} |")
    return "\n".join(lines)


# --- sweeps ---------------------------------------------------------------------------------------------------
EPOCH_CAP = 10  # simulated epochs at most; a run stops at the target accuracy
DATACENTER = {"nnz_per_s": 100e6, "latency_s": 0.5e-3, "bandwidth_Bps": 1.25e9}  # 10 GbE, Ray RPC overhead


def sweep():
    from hogwild.cluster.simulate import Calibration, simulate
    from hogwild.config import TrainConfig
    from hogwild.datasets.synth import make_synthetic
    from hogwild.engine import train as train_one

    machine = Calibration(**DATACENTER)
    data = {}
    for d in (47_236, 1_000_000):
        X, y, _ = make_synthetic(like="rcv1", n_rows=200_000, n_features=d, seed=0)
        data[d] = (X[:160_000], y[:160_000], X[160_000:], y[160_000:])
    targets = {}
    for d, (X, y, X_test, y_test) in data.items():
        serial = train_one(X, y, mode="serial", epochs=6, X_test=X_test, y_test=y_test)
        targets[d] = serial.history[-1]["test_accuracy"] - 0.005
        print(f"d={d}: serial accuracy after 6 epochs {targets[d] + 0.005:.4f}; target {targets[d]:.4f}", flush=True)
    records = []

    def run(label, d, n_nodes, cross_node, sync_every, calibration=machine, epochs=EPOCH_CAP, **options):
        X, y, X_test, y_test = data[d]
        config = TrainConfig(cluster="auto", cross_node=cross_node, sync_every=sync_every, epochs=epochs, **options)
        started = time.perf_counter()
        result = simulate(X, y, config, n_nodes, calibration, X_test=X_test, y_test=y_test,
                          stop_at_accuracy=targets[d])
        last = result.history[-1]
        record = {"sweep": label, "features": d, "nodes": n_nodes, "mode": cross_node, "sync_every": sync_every,
                  **options, "calibration": calibration.as_dict(), "epochs_run": len(result.history),
                  "time_to_target": result.time_to_accuracy(targets[d]), "accuracy": last["test_accuracy"],
                  "staleness": float(np.mean([r["staleness"] for r in result.history])),
                  "comm_fraction": float(np.mean([r["comm_fraction"] for r in result.history])),
                  "seconds_per_epoch": last["time"] / len(result.history), "target": targets[d],
                  "wall_seconds": time.perf_counter() - started}
        records.append(record)
        print({k: v for k, v in record.items() if k != "calibration"}, flush=True)

    from dataclasses import replace

    variants = (("ps", {"ps_step": "damped"}), ("ps", {"ps_step": "sum"}), ("average", {"aggregate": "weighted"}))
    for n in (2, 4, 8, 16, 32, 64, 100):
        for mode, options in variants:
            run("nodes", 47_236, n, mode, 1000, **options)
    for k in (250, 4000, 16000):
        for mode, options in variants[1:]:
            run("sync_every", 47_236, 16, mode, k, **options)
    for rule in ("mean", "adagrad"):
        run("aggregate", 47_236, 16, "average", 1000, aggregate=rule)
    for mode, options in variants[1:]:
        run("model_size", 1_000_000, 16, mode, 1000, **options)
    for shards in (1, 4, 16):
        run("ps_shards", 1_000_000, 64, "ps", 1000, ps_shards=shards, ps_step="sum")
    for topology in ("star", "ring", "tree"):
        run("topology", 1_000_000, 64, "average", 1000, calibration=replace(machine, topology=topology),
            aggregate="weighted")
    for mode, options in variants[1:]:
        run("stragglers", 47_236, 32, mode, 1000,
            calibration=replace(machine, straggler_fraction=0.1, straggler_slowdown=3.0), **options)
    write("cluster_sweeps.json", {"machine": DATACENTER, "targets": {str(k): v for k, v in targets.items()},
                                  "records": records})


def report():
    """Markdown tables of the sweeps (docs/scaling.md)."""
    sweeps = json.loads((RESULTS / "cluster_sweeps.json").read_text())
    records = sweeps["records"]

    def label(r):
        if r["mode"] == "ps":
            extra = f", {r['ps_shards']} shards" if r.get("ps_shards") else ""
            return f"ps ({r.get('ps_step', 'damped')}{extra})"
        topology = r["calibration"].get("topology", "star")
        return f"average ({r.get('aggregate', 'mean')}{', ' + topology if r['sweep'] == 'topology' else ''})"

    def seconds(value):
        return "not reached" if value is None else f"{value:.2f}"

    out = []
    for sweep, column in (("nodes", "nodes"), ("sync_every", "sync_every"), ("aggregate", "nodes"),
                          ("model_size", "features"), ("ps_shards", "nodes"), ("topology", "nodes"),
                          ("stragglers", "nodes")):
        rows = [r for r in records if r["sweep"] == sweep]
        if not rows:
            continue
        out += [f"**{sweep}**", "",
                f"| {column} | mode | epochs run | time to target (s) | test acc | staleness | comm share | s/epoch |",
                "|---:|---|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            out.append(f"| {r[column]} | {label(r)} | {r['epochs_run']} | {seconds(r['time_to_target'])} | "
                       f"{r['accuracy']:.4f} | {r['staleness']:.1f} | {r['comm_fraction']:.2f} | "
                       f"{r['seconds_per_epoch']:.3f} |")
        out.append("")
    print("\n".join(out))


def write(name, document):
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / name).write_text(json.dumps(document, indent=1, default=float) + "\n")
    print(f"wrote {RESULTS / name}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("measure", "validate", "sweep", "report"))
    parser.add_argument("--data", default=os.environ.get("HOGWILD_TEST_DATA", "../shared/data"))
    args = parser.parse_args()
    steps = {"measure": lambda: measure(args.data), "validate": lambda: validate(args.data), "sweep": sweep,
             "report": report}
    steps[args.step]()
