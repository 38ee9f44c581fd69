"""Property-based tests: any damage to a valid checkpoint or model file gives the loader's own error, never a crash.

Mutations: byte flips, overwritten runs, insertions, deletions and truncations, alone or combined. A mutated
file must either raise `CheckpointError` / `ModelFormatError`, or (when only bytes the format ignores were hit,
such as a ZIP timestamp) load exactly what was saved. Any other exception, or a load that returns different
numbers, is a bug. The long-running variant of this is tests/fuzz/fuzz_parser.py.
"""

import importlib.util
import tempfile
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hogwild.checkpoint import CheckpointManager, data_fingerprint, read_checkpoint  # noqa: E402
from hogwild.config import TrainConfig  # noqa: E402
from hogwild.errors import CheckpointError, ModelFormatError  # noqa: E402

from conftest import make_sparse_classification  # noqa: E402

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def mutations(size):
    """A strategy for a list of edits to a file of ``size`` bytes."""
    position = st.integers(0, max(0, size - 1))
    edit = st.one_of(
        st.tuples(st.just("flip"), position, st.integers(1, 255)),
        st.tuples(st.just("overwrite"), position, st.binary(min_size=1, max_size=64)),
        st.tuples(st.just("insert"), position, st.binary(min_size=1, max_size=64)),
        st.tuples(st.just("delete"), position, st.integers(1, 256)),
        st.tuples(st.just("truncate"), st.integers(0, max(0, size - 1)), st.just(0)),
    )
    return st.lists(edit, min_size=1, max_size=4)


def mutate(raw, edits):
    raw = bytearray(raw)
    for kind, at, arg in edits:
        at = min(at, max(0, len(raw) - 1))
        if kind == "flip" and raw:
            raw[at] ^= arg
        elif kind == "overwrite":
            raw[at : at + len(arg)] = arg
        elif kind == "insert":
            raw[at:at] = arg
        elif kind == "delete":
            del raw[at : at + arg]
        elif kind == "truncate":
            del raw[at:]
    return bytes(raw)


# --- checkpoints ---------------------------------------------------------------------------------------

_CKPT_DIR = tempfile.TemporaryDirectory(prefix="hogwild-fuzz-ckpt-")


def _valid_checkpoint():
    X, y = make_sparse_classification(n_samples=30, n_features=12, seed=3)
    mgr = CheckpointManager(Path(_CKPT_DIR.name) / "src", TrainConfig(mode="serial"), data_fingerprint(X, y))
    rng = np.random.default_rng(0)
    state = {
        "weights": rng.normal(size=(12, 1)),
        "intercept": np.array([0.25]),
        "optimizer": {"acc": rng.random(12).astype(np.float32)},
        "rng_states": np.array([[1, 2], [3, 4]], dtype=np.uint64),
        "epoch": 2,
        "global_step": 60,
    }
    path = mgr.save(state, 2, 10)
    return path.read_bytes(), state


CHECKPOINT_BYTES, CHECKPOINT_STATE = _valid_checkpoint()


@FUZZ
@given(edits=mutations(len(CHECKPOINT_BYTES)))
def test_damaged_checkpoint_raises_checkpoint_error_or_loads_the_original(edits):
    damaged = mutate(CHECKPOINT_BYTES, edits)
    path = Path(_CKPT_DIR.name) / "fuzz.npz"
    path.write_bytes(damaged)
    try:
        state, meta = read_checkpoint(path)
    except CheckpointError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    # Loaded: then it must be exactly what was saved (only ignorable bytes were hit).
    for key in ("weights", "intercept", "rng_states"):
        assert state[key].tobytes() == CHECKPOINT_STATE[key].tobytes(), key
    assert state["optimizer"]["acc"].tobytes() == CHECKPOINT_STATE["optimizer"]["acc"].tobytes()
    assert state["epoch"] == 2 and meta["position"] == 10


@FUZZ
@given(raw=st.binary(max_size=2048))
def test_arbitrary_bytes_are_not_a_checkpoint(raw):
    path = Path(_CKPT_DIR.name) / "random.npz"
    path.write_bytes(raw)
    with pytest.raises(CheckpointError):
        read_checkpoint(path)


# --- model files ----------------------------------------------------------------------------------------


def _has(module):
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


needs_model_io = pytest.mark.skipif(
    not (_has("hogwild.model_io") and _has("hogwild.engine")),
    reason="hogwild.model_io and hogwild.engine (issues 3 and 4) are not built yet",
)

_MODEL_DIR = tempfile.TemporaryDirectory(prefix="hogwild-fuzz-model-")
_MODEL = {}


def _valid_model():
    """Bytes of a saved model and its weights, trained once on a tiny problem."""
    if not _MODEL:
        import hogwild
        from hogwild import model_io

        X, y = make_sparse_classification(n_samples=40, n_features=10, seed=4)
        model = hogwild.train(X, y, mode="serial", epochs=1, seed=0).model
        path = Path(_MODEL_DIR.name) / "model.npz"
        model_io.save_model(model, path)
        _MODEL["bytes"] = path.read_bytes()
        _MODEL["scores"] = _scores(model_io.load_model(path), X)
        _MODEL["X"] = X
    return _MODEL


def _scores(model, X):
    for name in ("decision_function", "predict_scores", "predict"):
        if hasattr(model, name):
            return np.asarray(getattr(model, name)(X))
    raise AssertionError(f"{type(model).__name__} has no decision_function/predict")


@needs_model_io
def test_model_fuzz_target_round_trips():
    model = _valid_model()
    assert len(model["bytes"]) > 0 and np.all(np.isfinite(model["scores"]))


@needs_model_io
@FUZZ
@given(data=st.data())
def test_damaged_model_raises_model_format_error_or_loads_the_original(data):
    from hogwild import model_io

    valid = _valid_model()
    damaged = mutate(valid["bytes"], data.draw(mutations(len(valid["bytes"]))))
    path = Path(_MODEL_DIR.name) / "fuzz.npz"
    path.write_bytes(damaged)
    try:
        model = model_io.load_model(path)
    except ModelFormatError as exc:
        assert "\n" not in str(exc), str(exc)
        return
    assert np.array_equal(_scores(model, valid["X"]), valid["scores"]), "a damaged model loaded with other weights"


@needs_model_io
@FUZZ
@given(raw=st.binary(max_size=2048))
def test_arbitrary_bytes_are_not_a_model(raw):
    from hogwild import model_io

    path = Path(_MODEL_DIR.name) / "random.npz"
    path.write_bytes(raw)
    with pytest.raises(ModelFormatError):
        model_io.load_model(path)
