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


# --- structure-aware fuzzing: edited headers and arrays, re-signed or not ------------------------------------
#
# Byte mutations mostly break the ZIP or a checksum. A user who edits a file on purpose (or a tool that rewrites
# it) keeps the structure and may recompute the checksums, so these tests change what the header says and what
# the arrays hold, then re-sign half of the files. The loader must refuse with one sentence naming the file, or
# load a model that predicts (scores, labels, probabilities) without any error and with finite numbers.

_JSON_WORDS = ["linear", "mlp", "binary", "ovr", "softmax", "log_loss", "hinge", "squared_error", "huber",
               "float16", "float32", "float64", "int64", "relu", "tanh", "logistic", "identity", "", "x" * 40]
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 12), st.sampled_from([2**40, -(2**63), 2**64]),
              st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(_JSON_WORDS)),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.sampled_from(_JSON_WORDS), inner, max_size=3)),
    max_leaves=8,
)
_MODEL_FIELDS = [("kind",), ("loss",), ("classes",), ("n_features",), ("dtype",), ("format_version",), ("config",),
                 ("meta",), ("meta", "kind"), ("meta", "loss"), ("meta", "multiclass"), ("meta", "n_features"),
                 ("meta", "n_outputs"), ("meta", "dtype"), ("meta", "dims"), ("meta", "hidden"),
                 ("meta", "activation"), ("meta", "output")]
_DTYPES = ["float16", "float32", "float64", "int32", "int64", "bool", "complex64", "<U3", ">f8", ">f4", "uint8"]


def _array_edits():
    cast = st.tuples(st.just("cast"), st.sampled_from(_DTYPES))
    shape = st.tuples(st.just("shape"), st.sampled_from(["flatten", "add_axis", "transpose", "drop_row", "add_row"]))
    values = st.tuples(st.just("values"), st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1e38, -1.0]))
    replace = st.tuples(st.just("replace"), st.lists(st.integers(0, 4), max_size=3))
    return st.one_of(cast, shape, values, replace, st.tuples(st.just("drop"), st.none()))


model_edits = st.lists(
    st.one_of(
        st.tuples(st.just("header"), st.sampled_from(_MODEL_FIELDS), json_values),
        st.tuples(st.just("header_delete"), st.sampled_from(_MODEL_FIELDS), st.none()),
        st.tuples(st.just("array"), st.sampled_from(["coef", "intercept", "classes", "coef_0", "intercept_1", "extra"]),
                  _array_edits()),
    ),
    min_size=1, max_size=3,
)


def _edit_array(array, edit):
    kind, arg = edit
    if array is None:
        array = np.zeros(2)
    if kind == "cast":
        try:
            return array.astype(arg)
        except (TypeError, ValueError):
            return array
    if kind == "shape":
        if arg == "flatten":
            return array.reshape(-1)
        if arg == "add_axis":
            return array[..., None]
        if arg == "transpose":
            return np.ascontiguousarray(array.T)
        array = np.atleast_1d(array)
        if arg == "drop_row":
            return array[1:]
        return np.concatenate([array, array[:1]]) if array.size else array
    if kind == "values":
        if array.dtype.kind != "f" or not array.size:
            return array
        array = array.copy()
        array.flat[0] = arg
        return array
    if kind == "replace":
        return np.ones(tuple(arg), dtype=array.dtype if array.dtype.kind in "fiu" else np.float32)
    return None  # drop


def _apply_model_edits(members, header, edits):
    for kind, where, value in edits:
        if kind == "array":
            edited = _edit_array(members.get(where), value)
            if edited is None:
                members.pop(where, None)
            else:
                members[where] = edited
            continue
        node = header
        for key in where[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        if kind == "header":
            node[where[-1]] = value
        else:
            node.pop(where[-1], None)


_VALID_MODELS = {}


def _valid_models():
    """Bytes of a binary, a multiclass (softmax), a regression and an MLP model, and a matching X."""
    if not _VALID_MODELS:
        import hogwild
        from hogwild import model_io

        X, y = make_sparse_classification(n_samples=40, n_features=10, seed=4)
        y3 = np.where(y > 0, 2.0, np.where(np.asarray(X.sum(axis=1)).ravel() > 0.5, 1.0, 0.0))
        for name, labels, options in (
            ("binary", y, {}), ("softmax", y3, {"multiclass": "softmax"}),
            ("regression", y * 2.5, {"loss": "squared_error"}), ("mlp", y3, {"model": "mlp", "hidden": (3,)}),
        ):
            model = hogwild.train(X, labels, mode="serial", epochs=1, seed=0, **options).model
            path = Path(_MODEL_DIR.name) / f"{name}.npz"
            model_io.save_model(model, path)
            _VALID_MODELS[name] = path.read_bytes()
        _VALID_MODELS["X"] = X
    return _VALID_MODELS


def _check_usable(model, X):
    """A model that loaded must predict without error: finite scores, known labels, probabilities in [0, 1]."""
    scores = np.asarray(model.decision_function(X))
    assert scores.shape[0] == X.shape[0] and np.all(np.isfinite(scores))
    labels = model.predict(X)
    if model.classes is not None:
        assert set(np.asarray(labels).tolist()) <= set(np.asarray(model.classes).tolist())
    if model.has_proba:
        proba = model.predict_proba(X)
        assert proba.shape == (X.shape[0], len(model.classes)) and np.all((proba >= 0) & (proba <= 1))


@needs_model_io
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(["binary", "softmax", "regression", "mlp"]), edits=model_edits, resign=st.booleans())
def test_edited_model_headers_and_arrays_are_refused_or_usable(base, edits, resign):
    import contextlib
    import io
    import json
    import zipfile

    from hogwild import model_io
    from hogwild.cli.main import main

    valid = _valid_models()
    with zipfile.ZipFile(io.BytesIO(valid[base])) as archive:
        members = {info.filename[:-4]: np.load(io.BytesIO(archive.read(info.filename)), allow_pickle=False)
                   for info in archive.infolist()}
    header = json.loads(members.pop("__header__").tobytes())
    _apply_model_edits(members, header, edits)
    if resign:
        header["sha256"] = model_io._checksum(members)
        header["header_sha256"] = model_io._header_checksum(header)
    path = Path(_MODEL_DIR.name) / "structured.npz"
    with open(path, "wb") as handle:
        np.savez(handle, __header__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **members)
    try:
        model = model_io.load_model(path)
    except ModelFormatError as exc:
        assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc), str(exc)
        loaded = False
    else:
        _check_usable(model, valid["X"])
        loaded = True
    # and through the CLI: exit 0 when it loaded, one line and exit 1 when refused, never an internal error
    data = Path(_MODEL_DIR.name) / "rows.svm"
    if not data.exists():
        from hogwild.datasets.libsvm import dump_libsvm

        dump_libsvm(valid["X"], np.ones(valid["X"].shape[0]), data)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(SystemExit) as code:
            main(["predict", str(path), str(data), "--ignore-extra-features"])
            raise SystemExit(0)
    assert code.value.code == (0 if loaded else 1), err.getvalue()
    assert "internal error" not in err.getvalue() and "Traceback" not in err.getvalue()


_CKPT_FIELDS = ["epoch", "position", "timestamp", "config", "config_fingerprint", "data_fingerprint", "state",
                "arrays", "library_version", "format_version"]
checkpoint_edits = st.lists(
    st.one_of(
        st.tuples(st.just("header"), st.sampled_from(_CKPT_FIELDS), json_values),
        st.tuples(st.just("header_delete"), st.sampled_from(_CKPT_FIELDS), st.none()),
        st.tuples(st.just("spec"), st.sampled_from(["member", "dtype", "shape", "sha256"]), json_values),
        st.tuples(st.just("state"), st.sampled_from(["weights", "intercept", "optimizer", "epoch", "new"]),
                  st.one_of(json_values, st.just({"$array": "a0.npy"}), st.just({"$array": "a99.npy"}))),
        st.tuples(st.just("member"), st.integers(0, 3), _array_edits()),
    ),
    min_size=1, max_size=3,
)


@FUZZ
@given(edits=checkpoint_edits, resign=st.booleans())
def test_edited_checkpoint_headers_and_arrays_are_refused_or_sound(edits, resign):
    import hashlib
    import io
    import json
    import zipfile

    from hogwild.checkpoint import _header_digest

    with zipfile.ZipFile(io.BytesIO(CHECKPOINT_BYTES)) as archive:
        contents = {info.filename: archive.read(info.filename) for info in archive.infolist()}
    header = json.loads(contents["header.json"])
    for kind, where, value in edits:
        if kind == "header":
            header[where] = value
        elif kind == "header_delete":
            header.pop(where, None)
        elif kind == "spec" and isinstance(header.get("arrays"), list) and header["arrays"]:
            if isinstance(header["arrays"][0], dict):
                header["arrays"][0][where] = value
        elif kind == "state" and isinstance(header.get("state"), dict):
            header["state"][where] = value
        elif kind == "member":
            name = f"a{where}.npy"
            if name in contents:
                array = np.load(io.BytesIO(contents[name]), allow_pickle=False)
                edited = _edit_array(array, value)
                if edited is None:
                    del contents[name]
                    continue
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, np.ascontiguousarray(edited), allow_pickle=False)
                contents[name] = buffer.getvalue()
                if resign:  # a forger who knows the format re-signs the array's entry too
                    for spec in header.get("arrays") or []:
                        if isinstance(spec, dict) and spec.get("member") == name:
                            spec.update(dtype=edited.dtype.str, shape=list(edited.shape),
                                        sha256=hashlib.sha256(np.ascontiguousarray(edited).tobytes()).hexdigest())
    if resign:
        try:
            header["header_sha256"] = _header_digest(header)
        except (TypeError, ValueError):
            pass
    contents["header.json"] = json.dumps(header).encode()
    path = Path(_CKPT_DIR.name) / "structured.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for name, raw in contents.items():
            archive.writestr(name, raw)
    try:
        state, meta = read_checkpoint(path)
    except CheckpointError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc), str(exc)
        return
    assert isinstance(state, dict) and state
    assert isinstance(meta["epoch"], int) and meta["epoch"] >= 0 and isinstance(meta["position"], int)

    def arrays(node):
        if isinstance(node, np.ndarray):
            yield node
        elif isinstance(node, dict):
            for value in node.values():
                yield from arrays(value)
        elif isinstance(node, list):
            for value in node:
                yield from arrays(value)

    for array in arrays(state):
        assert array.dtype.kind in "biuU" or array.dtype in (np.float32, np.float64), array.dtype
        assert array.dtype.kind != "f" or np.all(np.isfinite(array))
