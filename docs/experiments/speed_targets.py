"""Issue 15's linear-model targets, measured in one run on this machine (figures go to docs/benchmarks.md).

    python docs/experiments/speed_targets.py [--rows 200000] [--repeats 3] [--json out.json]

In one process, on one machine, with every figure a median of ``--repeats`` runs:

1. The machine: CPU model, cores, the core-to-core cache-line round trip, and the process ceiling (two
   independent processes training their own copy of the rcv1-shaped rows, together vs alone:
   `hogwild.bench.machine.process_ceiling`).
2. Defaults against defaults: ``HogwildClassifier(max_iter=3, tol=None).fit`` against
   ``SGDClassifier(max_iter=3, tol=None).fit`` on the rcv1-shaped set (80/20 split), wall time including setup,
   and held-out accuracy; and hogwild's setup (the fit's wall time minus its epochs' seconds: input checks,
   the one pass over the rows, the core-to-core ping-pong, the model at the end).
3. Per epoch, each fixed choice (serial, async x2, average x2) and the default (``--mode auto``) on the
   rcv1-shaped set, news20 and a9a (when HOGWILD_TEST_DATA or --data points at them): seconds per epoch
   (median over epochs 2..E of each run, then median over runs, the runs of every choice interleaved: the steady
   state), seconds for all E epochs
   (what auto's probing in the first epochs costs shows there), and what auto chose.
4. ``sync`` with one and two threads against ``serial``, per epoch, on the rcv1-shaped set and news20.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings

import numpy as np


def _split(X, y, seed=0, fraction=0.2):
    order = np.random.default_rng(seed).permutation(X.shape[0])
    cut = int(round(X.shape[0] * (1 - fraction)))
    train, test = np.sort(order[:cut]), np.sort(order[cut:])
    return X[train], y[train], X[test], y[test]


def _sets(rows, data_dir):
    from hogwild.datasets.synth import make_synthetic

    X, y, _ = make_synthetic(like="rcv1", n_rows=rows, seed=0)
    sets = {"rcv1-shaped": _split(X, y)}
    if data_dir:
        from hogwild.datasets.libsvm import load_libsvm

        for name in ("news20.bz2", "a9a"):
            path = os.path.join(data_dir, name)
            if os.path.exists(path):
                Xd, yd = load_libsvm(path, dtype=np.float32)
                sets[name.split(".")[0]] = _split(Xd, yd)
    return sets


def _epoch_seconds(result):
    seconds = [record["seconds"] for record in result.history]
    return statistics.median(seconds[1:] if len(seconds) > 1 else seconds)


def _record_loop_starts():
    """A list that gets the `time.perf_counter` of every `hogwild.loop.EpochLoop.run` call (instrumentation of
    this script only): with the fit's start, the setup before the first epoch (the estimator's checks, the
    problem, the runner's one pass over the rows, its probes), apart from what follows the last epoch."""
    from hogwild.loop import EpochLoop

    starts, run = [], EpochLoop.run

    def timed_run(self):
        starts.append(time.perf_counter())
        return run(self)

    EpochLoop.run = timed_run
    return starts


def estimators(X, y, X_test, y_test, repeats):
    from sklearn.linear_model import SGDClassifier

    from hogwild import HogwildClassifier

    makers = {"hogwild": lambda: HogwildClassifier(max_iter=3, tol=None),
              "sklearn": lambda: SGDClassifier(max_iter=3, tol=None)}
    runs = {name: {"walls": [], "accuracies": [], "setups": [], "before_first": [], "model": None}
            for name in makers}
    for make in makers.values():
        make().fit(X[:2000], y[:2000])  # compile / warm outside the timing
    loop_started = _record_loop_starts()
    for r in range(repeats):  # interleaved, alternating which goes first (see `modes`)
        for name in (list(makers) if r % 2 == 0 else list(makers)[::-1]):
            model = makers[name]()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # sklearn's ConvergenceWarning at max_iter=3
                started = time.perf_counter()
                model.fit(X, y)
                runs[name]["walls"].append(time.perf_counter() - started)
            runs[name]["accuracies"].append(float(np.mean(model.predict(X_test) == y_test)))
            if hasattr(model, "history_"):
                runs[name]["setups"].append(runs[name]["walls"][-1]
                                            - sum(record["seconds"] for record in model.history_))
                runs[name]["before_first"].append(loop_started[-1] - started)
            runs[name]["model"] = model
    out = {}
    for name, run in runs.items():
        out[name] = {"fit_seconds": statistics.median(run["walls"]), "fit_seconds_all": run["walls"],
                     "test_accuracy": statistics.median(run["accuracies"])}
        if run["setups"]:
            out[name]["setup_seconds"] = statistics.median(run["setups"])
            out[name]["before_first_epoch_seconds"] = statistics.median(run["before_first"])
            out[name]["auto_choice"] = run["model"].history_[-1].get("auto", {}).get("choice")
    out["speedup"] = out["sklearn"]["fit_seconds"] / out["hogwild"]["fit_seconds"]
    return out


def modes(X, y, X_test, y_test, repeats, epochs, choices):
    """Each choice ``repeats`` times, interleaved (repeat r runs every choice, in an order rotated by r), so that a
    drift of the machine during the run (another process, the host) falls on every choice alike; run one after
    the other, the default read 6% slower than fixed `average` x2 in one run where 8 interleaved pairs gave 0.3%."""
    import hogwild

    out = {label: {"seconds": [], "totals": [], "accuracies": [], "picked": []} for label, _ in choices}
    for _, options in choices:
        hogwild.train(X[:2000], y[:2000], epochs=1, **options)
    for r in range(repeats):
        for label, options in choices[r % len(choices):] + choices[:r % len(choices)]:
            result = hogwild.train(X, y, epochs=epochs, X_test=X_test, y_test=y_test, **options)
            runs = out[label]
            runs["seconds"].append(_epoch_seconds(result))
            runs["totals"].append(sum(record["seconds"] for record in result.history))
            runs["accuracies"].append(result.history[-1].get("test_accuracy"))
            if "auto" in result.history[-1]:
                runs["picked"].append(result.history[-1]["auto"]["choice"])
    for label, runs in out.items():
        summary = {"epoch_seconds": statistics.median(runs["seconds"]), "epoch_seconds_all": runs["seconds"],
                   "all_epochs_seconds": statistics.median(runs["totals"]),
                   "test_accuracy": statistics.median(runs["accuracies"])}
        if runs["picked"]:
            summary["auto_choices"] = runs["picked"]
        out[label] = summary
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--data", default=os.environ.get("HOGWILD_TEST_DATA"))
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    from hogwild.bench.machine import machine_info, process_ceiling
    from hogwild.config import TrainConfig

    report = {"machine": machine_info(), "command": "python docs/experiments/speed_targets.py " + " ".join(argv or [])}
    sets = _sets(args.rows, args.data)
    X, y, X_test, y_test = sets["rcv1-shaped"]
    serial = TrainConfig(mode="serial", epochs=1).validate()
    report["process_ceiling"] = process_ceiling(X, y, serial, [2])
    print(json.dumps({"machine": report["machine"], "ceiling": report["process_ceiling"]}, default=str), flush=True)
    report["defaults"] = estimators(X, y, X_test, y_test, args.repeats)
    print(json.dumps(report["defaults"]), flush=True)
    fixed = [("serial", dict(mode="serial")), ("async x2", dict(mode="async", threads=2)),
             ("average x2", dict(mode="average", threads=2)), ("auto (default)", dict())]
    report["modes"] = {}
    for name, (Xs, ys, Xt, yt) in sets.items():
        report["modes"][name] = modes(Xs, ys, Xt, yt, args.repeats, args.epochs, fixed)
        print(name, json.dumps(report["modes"][name]), flush=True)
    report["sync"] = {}
    for name in [n for n in ("rcv1-shaped", "news20") if n in sets]:
        Xs, ys, Xt, yt = sets[name]
        report["sync"][name] = modes(Xs, ys, Xt, yt, args.repeats, args.epochs,
                                     [("serial", dict(mode="serial")), ("sync x1", dict(mode="sync", threads=1)),
                                      ("sync x2", dict(mode="sync", threads=2))])
        print(name, "sync", json.dumps(report["sync"][name]), flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2, default=str)


if __name__ == "__main__":
    main()
