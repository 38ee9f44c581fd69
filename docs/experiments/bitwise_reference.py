"""Bit-for-bit reference of the engine: save the weights of fixed runs, change the code, check them again.

    python docs/experiments/bitwise_reference.py save /tmp/before.npz     # on the old code
    python docs/experiments/bitwise_reference.py check /tmp/before.npz    # on the new code: "identical: N of N"

Runs (serial float64 and float32, optimal and invscaling schedules, hinge with L1, sync with 1 and 2 threads,
a validation split; MLP serial and sync x2) on a9a and mushrooms from $HOGWILD_TEST_DATA (default
../shared/data). The engine-core rewrite (issue 14) was checked this way: 40 of 40 arrays identical.
"""
import os
import sys
import warnings

import numpy as np

warnings.simplefilter("ignore")
import hogwild
from hogwild.datasets.libsvm import load_libsvm
DATA = os.environ.get("HOGWILD_TEST_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))
X, y = load_libsvm(os.path.join(DATA, "a9a"), dtype=np.float64, cache=False)
Xm, ym = load_libsvm(os.path.join(DATA, "mushrooms"), dtype=np.float64, cache=False)
runs = {
 "a9a_serial_f64": dict(mode="serial", dtype="float64", epochs=3, schedule="adagrad"),
 "a9a_serial_f32": dict(mode="serial", dtype="float32", epochs=2, schedule="adagrad"),
 "a9a_serial_optimal": dict(mode="serial", dtype="float64", epochs=2, schedule="optimal"),
 "a9a_serial_hinge_l1": dict(mode="serial", dtype="float64", epochs=2, loss="hinge", l1=1e-5, schedule="invscaling"),
 "a9a_sync2": dict(mode="sync", dtype="float64", epochs=2, threads=2, schedule="adagrad"),
 "a9a_sync1": dict(mode="sync", dtype="float64", epochs=2, threads=1, schedule="adagrad"),
 "a9a_val": dict(mode="serial", dtype="float64", epochs=2, validation_fraction=0.2, schedule="adagrad"),
 "mush_mlp_serial": dict(model="mlp", mode="serial", dtype="float64", epochs=2, hidden=(8,), lr=0.05, optimizer="sgd", schedule="constant"),
 "mush_mlp_sync2": dict(model="mlp", mode="sync", dtype="float64", epochs=2, hidden=(8,), lr=0.05, threads=2, optimizer="sgd", schedule="constant"),
}
out = {}
for name, kw in runs.items():
    data = (Xm, ym) if name.startswith("mush") else (X, y)
    r = hogwild.train(*data, **kw)
    arrays = r.model.arrays()
    for k, v in arrays.items():
        out[f"{name}/{k}"] = v
    out[f"{name}/loss"] = np.array([h["train_loss"] for h in r.history])
cmd, path = sys.argv[1], sys.argv[2]
if cmd == "save":
    np.savez(path, **out); print("saved", len(out))
else:
    ref = np.load(path)
    bad = [k for k in ref.files if k not in out or not np.array_equal(ref[k], out[k])]
    for k in ref.files:
        if k in out and not np.array_equal(ref[k], out[k]):
            a, b = ref[k], out[k]
            print("DIFF", k, np.max(np.abs(a.astype(float) - b.astype(float))) if a.shape == b.shape else (a.shape, b.shape))
    print("identical:", len(ref.files) - len(bad), "of", len(ref.files))
