"""Long fuzzing run over the LIBSVM parser, the checkpoint loader and the model loader, for a fixed budget.

Usage::

    python tests/fuzz/fuzz_parser.py --target parser --seconds 300 [--engine atheris|hypothesis]

``parser``: arbitrary bytes (seeded with valid files) go to `parse_libsvm_bytes` and, every 16th input, to
`load_libsvm` on a file (the mmap, auto zero-based and threaded paths). ``checkpoint`` / ``model``: libFuzzer
mutates a valid checkpoint / model file. The property is the one the test suite checks with fewer examples:
the input either loads into something valid (CSR arrays consistent, every value finite) or raises the
loader's own error (`LibsvmFormatError`/`DataError`, `CheckpointError`, `ModelFormatError`); any other
exception is a crash, written to ``crash-*`` in the current folder (atheris) or printed (hypothesis).

atheris (``pip install atheris``) gives coverage-guided fuzzing of the Python layers (Numba-compiled code is
not instrumented, so inside the kernels it is a mutation fuzzer); without it, hypothesis runs as many random
examples as fit in the budget. The result of the documented run is in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SEEDS = [
    b"+1 1:0.5 3:1.25\n-1 2:1 3:-0.5\n",
    b"# comment\n1 qid:3 1:1e-3 7:2\n\n0 2:0.5\r\n",
    b"3 1:1 2:2\n1 4:0.25\n2\n",
    b"-1.5 0:1 5:-2.5e10\n2.25 1:3\t2:4\n",
]

_TMP = tempfile.mkdtemp(prefix="hogwild-fuzz-")
_COUNT = [0]


def check_parser(raw):
    from hogwild.datasets.libsvm import load_libsvm, parse_libsvm_bytes
    from hogwild.errors import HogwildError

    _COUNT[0] += 1
    try:
        X, y = parse_libsvm_bytes(raw, dtype=np.float64, zero_based=bool(raw[:1] == b"0"))
    except HogwildError:
        X = None
    if X is not None:
        _check_csr(X, y)
    if _COUNT[0] % 16 == 0:
        path = Path(_TMP) / "input.svm"
        path.write_bytes(raw)
        try:
            X, y = load_libsvm(path, cache=False, threads=2)[:2]
        except HogwildError:
            return
        _check_csr(X, y)


def _check_csr(X, y):
    indptr, indices, data = X.indptr, X.indices, X.data
    assert indptr[0] == 0 and np.all(np.diff(indptr) >= 0) and indptr[-1] == len(indices) == len(data)
    assert len(y) == X.shape[0], (len(y), X.shape)
    if len(indices):
        assert indices.min() >= 0 and indices.max() < X.shape[1]
    for start, stop in zip(indptr[:-1], indptr[1:]):
        assert np.all(np.diff(indices[start:stop]) > 0), "indices not strictly ascending within a row"
    assert np.all(np.isfinite(data)) and np.all(np.isfinite(y))


def _valid_checkpoint():
    from hogwild.checkpoint import CheckpointManager
    from hogwild.config import TrainConfig

    mgr = CheckpointManager(Path(_TMP) / "ckpt", TrainConfig(), {"shape": [3, 4]})
    state = {"W": np.arange(8.0).reshape(4, 2), "b": np.zeros(2), "u": np.ones((2, 1)), "epoch": 1, "t": 40.0}
    return mgr.save(state, 1, 0).read_bytes()


def check_checkpoint(raw):
    from hogwild.checkpoint import read_checkpoint
    from hogwild.errors import CheckpointError

    path = Path(_TMP) / "fuzz.npz"
    path.write_bytes(raw)
    try:
        state, _ = read_checkpoint(path)
    except CheckpointError:
        return
    # Loaded: the checksums held, so it must be the state that was saved.
    assert np.array_equal(state["W"], np.arange(8.0).reshape(4, 2)) and state["epoch"] == 1


_MODEL = {}


def _valid_model():
    import hogwild
    from hogwild.model_io import save_model

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    y = np.where(X[:, 0] > 0, 1.0, -1.0)
    model = hogwild.train(X, y, mode="serial", epochs=1).model
    path = Path(_TMP) / "model.npz"
    save_model(model, path)
    _MODEL["X"], _MODEL["scores"] = X, np.asarray(model.decision_function(X))
    return path.read_bytes()


def check_model(raw):
    from hogwild.errors import ModelFormatError
    from hogwild.model_io import load_model

    path = Path(_TMP) / "fuzz.model"
    path.write_bytes(raw)
    try:
        model = load_model(path)
    except ModelFormatError:
        return
    assert np.array_equal(np.asarray(model.decision_function(_MODEL["X"])), _MODEL["scores"])


TARGETS = {"parser": (check_parser, lambda: SEEDS), "checkpoint": (check_checkpoint, lambda: [_valid_checkpoint()]),
           "model": (check_model, lambda: [_valid_model()])}


def run_atheris(check, seeds, seconds):
    import atheris

    corpus = Path(_TMP) / "corpus"
    corpus.mkdir(exist_ok=True)
    for i, seed in enumerate(seeds):
        (corpus / f"seed{i}").write_bytes(seed)
    max_len = max(4096, 2 * max(len(s) for s in seeds))

    def one_input(raw):
        check(raw)

    _instrument(atheris)
    atheris.Setup([sys.argv[0], f"-max_total_time={seconds}", f"-max_len={max_len}", "-print_final_stats=1",
                   "-timeout=30", str(corpus)], one_input)
    atheris.Fuzz()


def _instrument(atheris):
    """Coverage-instrument the plain Python functions of the loaders (not `atheris.instrument_imports`:
    Numba cannot compile instrumented bytecode, so compiled kernels are left as they are)."""
    import importlib
    import inspect

    for name in ("hogwild.datasets.libsvm", "hogwild.datasets._compressed", "hogwild.checkpoint", "hogwild.model_io"):
        module = importlib.import_module(name)
        for attribute, value in list(vars(module).items()):
            if inspect.isfunction(value) and value.__module__ == name:
                setattr(module, attribute, atheris.instrument_func(value))


def run_hypothesis(check, seeds, seconds):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    deadline = time.monotonic() + seconds
    examples = [0]
    base = st.sampled_from(seeds)

    @settings(max_examples=10**9, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(seed=base, edits=st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=8), st.integers(0, 8)),
                                      max_size=6), raw=st.binary(max_size=512), use_raw=st.booleans())
    def one(seed, edits, raw, use_raw):
        if time.monotonic() > deadline:
            raise _Done
        data = bytearray(raw if use_raw else seed)
        for at, insert, delete in edits:
            at = at % (len(data) + 1)
            data[at : at + delete] = insert
        examples[0] += 1
        check(bytes(data))

    class _Done(Exception):
        pass

    try:
        one()
    except _Done:
        pass
    print(f"hypothesis: {examples[0]} examples in {seconds} s, no failure")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=sorted(TARGETS), default="parser")
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--engine", choices=("atheris", "hypothesis"), default=None)
    args = parser.parse_args()
    check, seeds = TARGETS[args.target]
    seeds = seeds()
    engine = args.engine
    if engine is None:
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "hypothesis"
    print(f"fuzzing {args.target} with {engine} for {args.seconds} s", flush=True)
    (run_atheris if engine == "atheris" else run_hypothesis)(check, seeds, args.seconds)


if __name__ == "__main__":
    os.environ.setdefault("NUMBA_NUM_THREADS", "2")
    main()
