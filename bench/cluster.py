"""The bench's cluster axis: nodes x cross-node mode on a Ray cluster, as records `hogwild.bench.study` reports.

`run_cluster(problem, config, nodes=(1, 2), cross_nodes=("ps", "average"), cluster="local:2")` trains through the
cluster's front door (`hogwild.cluster.train`) on the study's split and returns one record per (cross-node mode,
node count) in the shape `run_hogwild` gives, so ``_summarize``, the Markdown table and the plot treat them like
any run: ``mode`` is ``cluster-ps`` or ``cluster-average``, ``threads`` the node count (each node trains with the
CPUs Ray gives it; ``speedup`` is then over one node of the same mode), and ``nodes``, ``cross_node`` and
``cluster`` (the last epoch's per-node counters: rows/s, staleness, bytes moved, communication) ride along.

The cluster is started (``local:N``) or joined once for all the runs and left as found; warm node actors are
reused between runs, and one untimed warm-up run per mode loads the nodes' kernels (``compile_seconds``).
"""

from __future__ import annotations

import time

from hogwild.errors import HogwildError


def run_cluster(problem, config, *, nodes=(1, 2), cross_nodes=("ps", "average"), cluster="local:2", epochs=None,
                repeats=1, progress=None):
    """Records of cluster runs for each cross-node mode and node count (failures become skipped records)."""
    from hogwild.cluster import train
    from hogwild.cluster.connect import connect

    from .scoring import _EpochScorer, _trace, score_model

    progress = progress or (lambda message: None)
    epochs = int(epochs or config.epochs)
    base = config.replace(cluster=cluster, epochs=epochs, tol=None, validation_fraction=0.0)
    records = []
    try:
        connection = connect(cluster)
    except HogwildError as exc:
        return [_skipped(cross_node, n, str(exc)) for cross_node in cross_nodes for n in nodes]
    try:
        for cross_node in cross_nodes:
            try:
                started = time.perf_counter()
                train(problem.X_train, problem.y_train, base.replace(cross_node=cross_node, nodes=max(nodes), epochs=1))
                compile_seconds = time.perf_counter() - started
            except HogwildError as exc:
                records += [_skipped(cross_node, n, str(exc)) for n in nodes]
                continue
            progress(f"hogwild cluster-{cross_node}: warm-up {compile_seconds:.2f} s")
            for n_nodes in nodes:
                run_config = base.replace(cross_node=cross_node, nodes=n_nodes)
                record = {"system": "hogwild", "mode": f"cluster-{cross_node}", "threads": n_nodes, "device": "cpu",
                          "nodes": n_nodes, "cross_node": cross_node, "epochs": epochs,
                          "compile_seconds": compile_seconds}
                repeat_seconds = []
                try:
                    for repeat in range(repeats):
                        scorer = _EpochScorer(problem)
                        result = train(problem.X_train, problem.y_train, run_config, X_test=problem.X_test,
                                       y_test=problem.y_test, callback=scorer, hooks=(scorer.hook,))
                        seconds = [float(r["seconds"]) for r in result.history]
                        repeat_seconds.append(sum(seconds))
                        if repeat == 0:
                            first, epoch_seconds = result, seconds
                            trace, source = _trace(result.history, scorer.scores)
                        progress(f"hogwild cluster-{cross_node} x{n_nodes} nodes: {sum(seconds):.3f} s for "
                                 f"{len(seconds)} epochs (repeat {repeat + 1}/{repeats})")
                except HogwildError as exc:
                    records.append({**record, "skipped": True, "reason": str(exc)})
                    continue
                objective, metrics = score_model(problem, first.model)
                record.update(metrics)
                record.update(repeat_seconds=repeat_seconds, epoch_seconds=epoch_seconds, trace=trace,
                              train_loss=objective, cluster=first.cluster)
                records.append(record)
    finally:
        connection.close()
    return records


def _skipped(cross_node, n_nodes, reason):
    return {"system": "hogwild", "mode": f"cluster-{cross_node}", "threads": n_nodes, "device": "cpu",
            "nodes": n_nodes, "cross_node": cross_node, "skipped": True, "reason": reason}
