"""Data larger than memory: ``data convert`` and ``train --epochs 2`` on a 2,000,000-row rcv1-shaped file, against
the same commands on a tiny file (peak resident memory) and against training on the in-memory matrix (accuracy).

    python docs/experiments/bounded_memory.py [--rows 2000000] [--dir /tmp/bounded] > bounded_memory.json

Writes ``all.svm`` (rows + 100,000), splits it into ``train.svm`` (the first ROWS lines), ``test.svm`` (the last
100,000) and ``tiny.svm`` (the first 2,000), converts each to a binary cache, then trains on the caches with the
test file, each command in its own process: peak RSS is the process's VmHWM (``/usr/bin/time``'s %M for convert,
``--metrics-json``'s ``memory.peak_rss_bytes`` for train). Then ``train -`` from a pipe, every CPU mode on the
cache, and ``hogwild.train`` on the matrix copied into memory. Prints one JSON object. The issue's bar: each
command's peak exceeds the tiny file's by less than a quarter of the CSR's size, and the test accuracy is within
0.3 points of the in-memory run's.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time


def run(command, **kwargs):
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        sys.exit(f"{' '.join(map(str, command))} failed: {done.stderr[-2000:]}")
    return done


def peak_of(command, **kwargs):
    """(peak RSS in bytes from /usr/bin/time, seconds, stdout)."""
    started = time.perf_counter()
    done = run(["/usr/bin/time", "-f", "%M", *command], **kwargs)
    return int(done.stderr.strip().splitlines()[-1]) * 1024, time.perf_counter() - started, done.stdout


def train(data, folder, name, *extra, stdin=None):
    metrics = os.path.join(folder, f"metrics-{name}.json")
    command = ["hogwild", "train", data, "--test", os.path.join(folder, "test.svm"), "--cache-dir",
               os.path.join(folder, "cache"), "--epochs", "2", "--quiet", "--metrics-json", metrics, *extra]
    if stdin is not None:
        with open(stdin, "rb") as handle:
            run(command, stdin=handle)
    else:
        run(command)
    report = json.load(open(metrics))
    return {"peak_rss_bytes": report["memory"]["peak_rss_bytes"], "test_accuracy": report["final"]["test_accuracy"],
            "rows_per_s": report["throughput"]["rows_per_s"],
            "auto": [e.get("auto", {}).get("choice") for e in report["epochs"] if isinstance(e.get("auto"), dict)]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--dir", default="/tmp/bounded")
    args = parser.parse_args()
    folder = args.dir
    os.makedirs(os.path.join(folder, "cache"), exist_ok=True)
    out = {"rows": args.rows}
    all_rows = os.path.join(folder, "all.svm")
    if not os.path.exists(all_rows):
        run(["hogwild", "data", "synth", "--like", "rcv1", "--rows", str(args.rows + 100_000), "-o", all_rows])
    for name, command in (("train", f"head -n {args.rows}"), ("test", "tail -n 100000"), ("tiny", "head -n 2000")):
        target = os.path.join(folder, f"{name}.svm")
        if not os.path.exists(target):
            run(["bash", "-c", f"{command} {all_rows} > {target}"])
    out["file_bytes"] = os.path.getsize(os.path.join(folder, "train.svm"))
    caches = {}
    for name in ("tiny", "train", "test"):
        peak, seconds, stdout = peak_of(["hogwild", "data", "convert", os.path.join(folder, f"{name}.svm"),
                                         "--cache-dir", os.path.join(folder, "cache")])
        caches[name] = stdout.strip()
        out[f"convert_{name}"] = {"peak_rss_bytes": peak, "seconds": seconds}
    header = json.load(open(os.path.join(caches["train"], "header.json")))
    out["csr_bytes"] = sum(header["files"][f"{array}.npy"] for array in ("indptr", "indices", "data"))
    out["nnz"] = header["nnz"]
    out["train_tiny"] = train(caches["tiny"], folder, "tiny")
    out["train_big"] = train(caches["train"], folder, "big")
    out["train_stdin"] = train("-", folder, "stdin", stdin=os.path.join(folder, "train.svm"))
    for mode in ("serial", "async", "average", "sync"):
        threads = [] if mode == "serial" else ["--threads", "2"]
        for name in ("tiny", "train"):
            out[f"mode_{mode}_{name}"] = train(caches[name], folder, f"{mode}-{name}", "--mode", mode, *threads)
    # the same run on the matrix held in memory
    code = f"""
import json, time, numpy as np, hogwild
from hogwild.datasets.libsvm import load_libsvm
X, y = load_libsvm({caches['train']!r}); Xt, yt = load_libsvm({caches['test']!r}, n_features=X.shape[1])
X, y, Xt, yt = X.copy(), np.array(y), Xt.copy(), np.array(yt)
result = hogwild.train(X, y, epochs=2, X_test=Xt, y_test=yt)
print(json.dumps({{"test_accuracy": result.history[-1]["test_accuracy"],
                  "rows_per_s": sum(h["rows_per_s"] for h in result.history) / len(result.history)}}))
"""
    out["train_in_memory"] = json.loads(run([sys.executable, "-c", code]).stdout)
    quarter = out["csr_bytes"] / 4
    out["checks"] = {
        "convert_peak_grew_bytes": out["convert_train"]["peak_rss_bytes"] - out["convert_tiny"]["peak_rss_bytes"],
        "train_peak_grew_bytes": out["train_big"]["peak_rss_bytes"] - out["train_tiny"]["peak_rss_bytes"],
        "quarter_csr_bytes": quarter,
        "accuracy_gap_points": 100 * abs(out["train_big"]["test_accuracy"] - out["train_in_memory"]["test_accuracy"]),
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
