"""Hostile inputs, by class: what a careless or unlucky user can hand the CLI and the Python API.

Every case must end in one sentence naming the file, line or option, exit 1 (data, files) or 2 (options), no
traceback and no "internal error", and must leave every file but the one the output option names as it was.
The classes (docs/reliability.md has one row per class):

1. streams: stdin, pipes, ``/dev/stdin``, process substitution, ``/dev/zero``: read once, in order, bounded;
2. output paths: symlinks, devices, FIFOs, outputs that are inputs, missing or unwritable folders;
3. model files a user can damage or craft (header edits, class counts, dtypes, non-finite weights);
4. checkpoint files likewise;
5. options: ranges, thread counts, options that do not apply to the chosen model, loss or mode;
6. inputs without bounds: feature indices far beyond what memory holds.
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import subprocess
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

import hogwild
from hogwild.checkpoint import CheckpointManager, _header_digest, data_fingerprint, read_checkpoint
from hogwild.config import TrainConfig
from hogwild.errors import CheckpointError, ConfigError, DataError, LibsvmFormatError, ModelFormatError
from hogwild.model_io import _checksum, _header_checksum, load_model, save_model

from test_cli import make_problem, run, write_libsvm
from test_cli_subprocess import hogwild_command

N_ROWS = 120


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOGWILD_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def data(tmp_path):
    X, y = make_problem(n_rows=N_ROWS, n_features=8)
    return write_libsvm(tmp_path / "data.svm", X, y)


@pytest.fixture
def model(tmp_path, data):
    path = tmp_path / "model.npz"
    result = run("train", data, "--epochs", 1, "--mode", "serial", "--save", path, "--quiet", "--no-cache")
    assert result.exit_code == 0, result.stderr
    return path


def snapshot(folder):
    """{relative path: (kind, bytes or link target)} of everything under ``folder`` except the cache."""
    out = {}
    for path in sorted(Path(folder).rglob("*")):
        if "cache" in path.relative_to(folder).parts:
            continue
        if path.is_symlink():
            out[str(path.relative_to(folder))] = ("link", os.readlink(path))
        elif path.is_file():
            out[str(path.relative_to(folder))] = ("file", path.read_bytes())
        elif path.is_dir():
            out[str(path.relative_to(folder))] = ("dir", None)
        else:
            out[str(path.relative_to(folder))] = ("special", None)
    return out


def one_line(result, code, *needles):
    """Assert the user saw exactly one error line (click's usage block for exit 2) containing ``needles``."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    err = result.stderr
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.strip().splitlines()
    if code == 1:
        assert len(lines) == 1 and lines[0].startswith("hogwild: error:"), err
    else:
        assert lines[-1].startswith("Error:"), err
    for needle in needles:
        assert str(needle) in lines[-1], (needle, lines[-1])
    assert ".tmp-" not in err, err
    return lines[-1]


def shell(command, cwd, timeout=300, **kwargs):
    """Run a shell pipeline with the real console script; (returncode, stdout, stderr)."""
    env = dict(os.environ, HOGWILD_THREADS="2", HOGWILD_CACHE_DIR=str(Path(cwd) / "cache"))
    hogwild_cmd = " ".join(hogwild_command())
    done = subprocess.run(["bash", "-c", command.replace("hogwild ", hogwild_cmd + " ")], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, **kwargs)
    return done.returncode, done.stdout, done.stderr


# ================================================================================================ 1. streams


@pytest.mark.parametrize("how", [
    "cat data.svm | hogwild predict model.npz /dev/stdin",
    "cat data.svm | hogwild predict model.npz -",
    "gzip -c data.svm | hogwild predict model.npz -",
    "hogwild predict model.npz <(cat data.svm)",
    "hogwild predict <(cat model.npz) data.svm",
])
def test_predict_reads_every_row_of_a_stream(tmp_path, data, model, how):
    code, out, err = shell(how, tmp_path)
    assert code == 0, err
    assert len(out.splitlines()) == N_ROWS, "rows were lost reading the stream"


@pytest.mark.parametrize("how", [
    "cat data.svm | hogwild train /dev/stdin",
    "hogwild train - < data.svm",
    "xz -c data.svm | hogwild train -",
    "hogwild train <(cat data.svm) --test <(bzip2 -c data.svm)",
])
def test_train_reads_a_stream_once(tmp_path, data, how):
    code, out, err = shell(how + " --epochs 1 --mode serial --save m.npz", tmp_path)
    assert code == 0, err
    assert f"{N_ROWS} rows" in out
    assert load_model(tmp_path / "m.npz").n_features == 8


def test_stream_errors_name_the_input_and_line(tmp_path, data):
    code, _, err = shell("printf '+1 1:1\\n-1 2:x\\n' | hogwild train -", tmp_path)
    assert code == 1 and err.strip() == "hogwild: error: <stdin>:2: the feature value is not a number near '2:x'"
    code, _, err = shell("hogwild train - < /dev/null", tmp_path)
    assert code == 1 and "<stdin> has no rows" in err
    code, _, err = shell("hogwild train - --test - < data.svm", tmp_path)
    assert code == 2 and "stdin can be read only once" in err
    # garbage fails at its first line, not after reading the whole stream into memory
    code, _, err = shell("head -c 3000000 /dev/urandom | hogwild train /dev/stdin", tmp_path)
    assert code == 1 and "/dev/stdin:" in err and len(err.strip().splitlines()) == 1, err
    code, _, err = shell("gzip -c data.svm | head -c 300 | hogwild train -", tmp_path)
    assert code == 1 and "<stdin>: the gzip stream is truncated" in err, err


def test_dev_zero_is_refused_after_a_bounded_read(tmp_path, model):
    code, _, err = shell("hogwild predict model.npz /dev/zero", tmp_path, timeout=120)
    assert code == 1 and err.strip().startswith("hogwild: error: /dev/zero:1: the line is longer than"), err
    code, _, err = shell("hogwild predict /dev/zero /dev/null", tmp_path, timeout=120)
    assert code == 1 and "/dev/zero: not a hogwild model file" in err, err


def test_line_length_limit_names_file_and_line(tmp_path, model, monkeypatch):
    from hogwild.datasets import _compressed

    monkeypatch.setattr(_compressed, "MAX_LINE_BYTES", 64)
    long_file = tmp_path / "long.svm"
    long_file.write_text("+1 1:1\n# comment\n-1 " + " ".join(f"{i}:1" for i in range(1, 40)) + "\n")
    one_line(run("predict", model, long_file), 1, "long.svm:3: the line is longer than 64 bytes")
    one_line(run("evaluate", model, long_file), 1, "long.svm:3:")
    # a stream read whole for training has the same bound
    with pytest.raises(LibsvmFormatError, match=r"^/dev/fd/\d+:3: the line is longer than 64 bytes"):
        _compressed.read_stream(_pipe_path(long_file.read_bytes()))


def _pipe_path(payload):
    """A /dev/fd path reading ``payload`` from a pipe (written by a thread, as process substitution does)."""
    read_fd, write_fd = os.pipe()

    def feed():
        with os.fdopen(write_fd, "wb") as sink:
            sink.write(payload)

    threading.Thread(target=feed, daemon=True).start()
    return f"/dev/fd/{read_fd}"


@pytest.mark.parametrize("compress", [None, gzip.compress])
def test_python_api_loads_a_pipe_once(data, compress):
    from hogwild.datasets.libsvm import load_libsvm

    payload = data.read_bytes()
    X, y = load_libsvm(_pipe_path(compress(payload) if compress else payload), cache=False)
    X_file, y_file = load_libsvm(data, cache=False)
    assert X.shape == X_file.shape and np.array_equal(y, y_file)
    assert (X != X_file).nnz == 0


# =========================================================================================== 2. output paths


def test_save_through_a_symlink_keeps_the_link(tmp_path, data):
    (tmp_path / "real").mkdir()
    for name in ("m.npz", "metrics.json"):
        os.symlink(tmp_path / "real" / name, tmp_path / name)  # dangling: the target is created
    result = run("train", data, "--epochs", 1, "--save", tmp_path / "m.npz", "--metrics-json", tmp_path / "metrics.json",
                 "--quiet")
    assert result.exit_code == 0, result.stderr
    for name in ("m.npz", "metrics.json"):
        assert (tmp_path / name).is_symlink() and (tmp_path / "real" / name).is_file()
    load_model(tmp_path / "m.npz")
    json.loads((tmp_path / "metrics.json").read_text())


def test_predict_output_symlink_device_and_fifo(tmp_path, data, model):
    target = tmp_path / "predictions.txt"
    target.write_text("old\n")
    os.symlink(target, tmp_path / "link.txt")
    assert run("predict", model, data, "-o", tmp_path / "link.txt").exit_code == 0
    assert (tmp_path / "link.txt").is_symlink() and len(target.read_text().splitlines()) == N_ROWS

    assert run("predict", model, data, "-o", os.devnull).exit_code == 0
    assert not Path(os.devnull).is_file(), "/dev/null must stay a device"

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    assert run("predict", model, data, "-o", fifo).exit_code == 0
    reader.join(30)
    assert received and len(received[0].splitlines()) == N_ROWS and fifo.is_fifo()


def test_full_device_names_the_output(tmp_path, data, model):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    one_line(run("predict", model, data, "-o", "/dev/full"), 1, "/dev/full: no space left on device")


@pytest.mark.parametrize("case", ["save over data", "save over data via symlink", "save over data via hard link",
                                  "metrics over data", "metrics equals save", "predict over model",
                                  "predict over data", "test file as save"])
def test_an_output_that_is_an_input_is_refused_before_training(tmp_path, data, model, case):
    test_file = write_libsvm(tmp_path / "test.svm", *make_problem(n_rows=30, n_features=8, seed=1))
    os.symlink(data, tmp_path / "data-link.svm")
    os.link(data, tmp_path / "data-hard.svm")
    before = snapshot(tmp_path)
    train = ["train", data, "--epochs", 1, "--quiet", "--no-cache"]
    argv, needle = {
        "save over data": ([*train, "--save", data], "is also the input DATA"),
        "save over data via symlink": ([*train, "--save", tmp_path / "data-link.svm"], "is also the input DATA"),
        "save over data via hard link": ([*train, "--save", tmp_path / "data-hard.svm"], "is also the input DATA"),
        "metrics over data": ([*train, "--metrics-json", data], "is also the input DATA"),
        "metrics equals save": ([*train, "--save", tmp_path / "x", "--metrics-json", tmp_path / "x"],
                                "is also the output of --save"),
        "predict over model": (["predict", model, data, "-o", model], "is also the input MODEL"),
        "predict over data": (["predict", model, data, "-o", data], "is also the input DATA"),
        "test file as save": ([*train, "--test", test_file, "--save", test_file], "is also the input --test"),
    }[case]
    one_line(run(*argv), 1, needle)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("option", ["--save", "--metrics-json"])
@pytest.mark.parametrize("where, needle", [
    ("no-such-dir/sub/out", "the folder {tmp}/no-such-dir/sub does not exist"),
    ("data.svm/out", "{tmp}/data.svm is not a folder"),
    ("adir", "is a folder; give a file name"),
])
def test_output_paths_are_checked_before_training(tmp_path, data, option, where, needle, monkeypatch):
    (tmp_path / "adir").mkdir()
    before = snapshot(tmp_path)
    trained = []
    import hogwild.engine

    monkeypatch.setattr(hogwild.engine, "train", lambda *a, **k: trained.append(1))
    result = run("train", data, "--epochs", 1, "--quiet", option, tmp_path / where)
    one_line(result, 1, option, needle.format(tmp=tmp_path))
    assert not trained, "training ran although an output path was unusable"
    assert snapshot(tmp_path) == before


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes read-only files and folders")
def test_read_only_outputs_are_refused(tmp_path, data):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    read_only = tmp_path / "ro.json"
    read_only.write_text("{}")
    read_only.chmod(0o444)
    try:
        one_line(run("train", data, "--save", locked / "m.npz"), 1, "is not writable")
        one_line(run("train", data, "--metrics-json", read_only), 1, "not writable")
    finally:
        locked.chmod(0o755)


def test_model_is_written_before_the_report(tmp_path, data, monkeypatch):
    import hogwild.cli.train as train_module

    def full_disk(path, document):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(train_module, "write_json", full_disk)
    result = run("train", data, "--epochs", 1, "--quiet", "--save", tmp_path / "m.npz",
                 "--metrics-json", tmp_path / "m.json")
    one_line(result, 1, "--metrics-json", "no space left on device", "the model was saved to")
    load_model(tmp_path / "m.npz")


def test_errors_name_the_users_path_not_a_temporary_one(tmp_path):
    X, y = make_problem(n_rows=40, n_features=4)
    trained = hogwild.train(X, y, mode="serial", epochs=1).model
    with pytest.raises(OSError) as caught:
        trained.save(tmp_path / "no-such-dir" / "sub" / "m.npz")
    assert caught.value.filename == str(tmp_path / "no-such-dir" / "sub" / "m.npz")
    assert ".tmp" not in str(caught.value) and "does not exist" in str(caught.value)
    with pytest.raises(IsADirectoryError, match="is a folder"):
        trained.save(tmp_path)
    assert not list(tmp_path.glob(".tmp-*"))


def test_checkpoint_dir_and_other_outputs(tmp_path, data):
    one_line(run("train", data, "--checkpoint-dir", data), 1, "--checkpoint-dir", "is a file, not a folder")
    result = run("train", data, "--save", "-")
    assert result.exit_code == 2 and "--save" in result.stderr and not (tmp_path / "-").exists()
    one_line(run("data", "synth", "--rows", 10, "-o", tmp_path / "nope" / "s.svm"), 1, "the folder", "does not exist")
    one_line(run("data", "fetch", "a9a", "--dir", data), 2, "--dir", "is a file")


def test_metrics_to_stdout(tmp_path, data):
    result = run("train", data, "--epochs", 1, "--metrics-json", "-")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["final"]["epochs"] == 1
    assert "trained linear" in result.stderr and not (tmp_path / "-").exists()


# ============================================================================================ 3. model files


def members_of(path):
    with zipfile.ZipFile(path) as archive:
        return {info.filename[:-4]: np.load(io.BytesIO(archive.read(info.filename)), allow_pickle=False)
                for info in archive.infolist()}


def write_members(path, members, header, resign=True, compressed=False):
    """Write a model file from ``members`` and ``header``; ``resign`` recomputes both checksums (a deliberate edit)."""
    arrays = {k: v for k, v in members.items() if k != "__header__"}
    if resign:
        header["sha256"] = _checksum(arrays)
        header["header_sha256"] = _header_checksum(header)
    encoded = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    saver = np.savez_compressed if compressed else np.savez
    with open(path, "wb") as handle:
        saver(handle, __header__=encoded, **arrays)
    return path


def crafted(source, target, edit, resign=True, compressed=False):
    members = members_of(source)
    header = json.loads(members["__header__"].tobytes())
    edit(header, members)
    return write_members(target, members, header, resign=resign, compressed=compressed)


def _set(path, value):
    """An edit that sets header[path...] = value."""
    def edit(header, members):
        node = header
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


def _array(name, make):
    def edit(header, members):
        members[name] = make(members[name]) if name in members else make(None)
    return edit


def _drop(name):
    def edit(header, members):
        del members[name]
    return edit


MODEL_EDITS = {
    "binary edited to softmax": (_set(["meta", "multiclass"], "softmax"), "softmax"),
    "binary edited to ovr": (_set(["meta", "multiclass"], "ovr"), "ovr"),
    "one class": (lambda h, m: (m.__setitem__("classes", m["classes"][:1]), h.__setitem__("classes", h["classes"][:1])),
                  "at least two classes"),
    "three classes, one output": (
        lambda h, m: (m.__setitem__("classes", np.array([-1.0, 1.0, 2.0])), h.__setitem__("classes", [-1.0, 1.0, 2.0])),
        "2 classes and 1 output"),
    "classes not sorted": (
        lambda h, m: (m.__setitem__("classes", m["classes"][::-1].copy()), h.__setitem__("classes", h["classes"][::-1])),
        "not sorted"),
    "header classes differ from array": (_set(["classes"], [5, 7]), "classes do not match"),
    "NaN weights": (_array("coef", lambda a: np.where(np.arange(a.size).reshape(a.shape) == 0, np.nan, a).astype(a.dtype)),
                    "NaN or infinite"),
    "infinite intercept": (_array("intercept", lambda a: np.full_like(a, np.inf)), "NaN or infinite"),
    "float16 weights": (_array("coef", lambda a: a.astype(np.float16)), "float16"),
    "integer weights": (_array("coef", lambda a: a.astype(np.int64)), "int64"),
    "dtype claims float16": (lambda h, m: (h.__setitem__("dtype", "float16"), h["meta"].__setitem__("dtype", "float16")),
                             "float16"),
    "loss edited to regression": (lambda h, m: (h.__setitem__("loss", "squared_error"),
                                                h["meta"].__setitem__("loss", "squared_error")), "regression"),
    "loss edited to an unknown one": (lambda h, m: (h.__setitem__("loss", "magic"), h["meta"].__setitem__("loss", "magic")),
                                      "unknown loss"),
    "meta and header disagree": (_set(["meta", "loss"], "hinge"), "in one place"),
    "kind edited to mlp": (lambda h, m: (h.__setitem__("kind", "mlp"), h["meta"].__setitem__("kind", "mlp")),
                           "layer sizes"),
    "unknown kind": (lambda h, m: (h.__setitem__("kind", "tree"), h["meta"].__setitem__("kind", "tree")),
                     "unknown model kind"),
    "n_features edited": (lambda h, m: (h.__setitem__("n_features", 99), h["meta"].__setitem__("n_features", 99)),
                          "99 features"),
    "n_features not a number": (lambda h, m: (h.__setitem__("n_features", "8"), h["meta"].__setitem__("n_features", "8")),
                                "not a positive integer"),
    "coef missing": (_drop("coef"), "holds coef and intercept"),
    "classes missing": (_drop("classes"), "needs its classes"),
    "an extra member": (_array("extra", lambda a: np.zeros(3)), "holds coef and intercept"),
    "coef is 3-D": (_array("coef", lambda a: a.reshape(a.shape[0], 1, 1)), "shape"),
    "intercept too long": (_array("intercept", lambda a: np.zeros(3, a.dtype)), "intercept has shape"),
    "classes are complex": (_array("classes", lambda a: a.astype(np.complex128)), "not a list of labels"),
    "classes include NaN": (lambda h, m: m.__setitem__("classes", np.array([-1.0, np.nan])), "NaN"),
    "config not an object": (_set(["config"], [1, 2]), "training config"),
    "meta missing": (lambda h, m: h.pop("meta"), "no description"),
    "format version 99": (_set(["format_version"], 99), "version 99"),
}


@pytest.mark.parametrize("name", list(MODEL_EDITS))
@pytest.mark.parametrize("resign", [True, False], ids=["resigned", "plain-edit"])
def test_crafted_model_files_are_refused_naming_the_file(tmp_path, data, model, name, resign):
    edit, needle = MODEL_EDITS[name]
    bad = crafted(model, tmp_path / "bad.npz", edit, resign=resign)
    with pytest.raises(ModelFormatError) as caught:
        load_model(bad)
    message = str(caught.value)
    assert message.startswith(f"{bad}: ") and "\n" not in message
    if resign or name == "format version 99":
        assert needle in message, message
    else:
        assert "checksum" in message or needle in message, message
    for command in (["predict", bad, data, "--proba"], ["evaluate", bad, data]):
        one_line(run(*command), 1, str(bad))


def test_header_checksum_catches_a_header_only_edit(tmp_path, model):
    bad = crafted(model, tmp_path / "bad.npz", _set(["meta", "multiclass"], "softmax"), resign=False)
    with pytest.raises(ModelFormatError, match="header does not match its checksum"):
        load_model(bad)


def test_compressed_or_renamed_members_are_refused(tmp_path, model):
    bad = crafted(model, tmp_path / "zipped.npz", lambda h, m: None, compressed=True)
    with pytest.raises(ModelFormatError, match="compressed"):
        load_model(bad)


def test_mlp_model_edits_are_refused(tmp_path, data):
    path = tmp_path / "mlp.npz"
    assert run("train", data, "--model", "mlp", "--hidden", 4, "--epochs", 1, "--save", path, "--quiet").exit_code == 0
    edits = {
        "output edited to softmax": (_set(["meta", "output"], "softmax"), "softmax"),
        "output edited to identity": (_set(["meta", "output"], "identity"), "identity"),
        "unknown activation": (_set(["meta", "activation"], "gelu"), "activation"),
        "dims edited": (lambda h, m: h["meta"].update(dims=[8, 5, 1], hidden=[5]), "layer 0"),
        "dims not integers": (_set(["meta", "dims"], [8, "4", 1]), "layer sizes"),
        "four hidden layers": (_set(["meta", "dims"], [8, 4, 4, 4, 4, 1]), "layer sizes"),
        "layer missing": (_drop("coef_1"), "holds coef_0"),
        "NaN weight": (_array("coef_0", lambda a: np.full_like(a, np.nan)), "NaN"),
        "float64 layer in a float32 model": (_array("coef_1", lambda a: a.astype(np.float64)), "float64"),
    }
    for name, (edit, needle) in edits.items():
        bad = crafted(path, tmp_path / f"{name}.npz", edit)
        with pytest.raises(ModelFormatError, match=needle):
            load_model(bad)
        one_line(run("predict", bad, data, "--proba"), 1, str(bad))


def test_compatible_files_still_load(tmp_path, data, model):
    """Format 1 files (no header checksum) and big-endian arrays load and predict like the original."""
    original = load_model(model)
    X, _ = hogwild.datasets.libsvm.load_libsvm(data, cache=False)

    def as_version_1(header, members):
        header["format_version"] = 1
        header.pop("header_sha256", None)

    old = crafted(model, tmp_path / "v1.npz", as_version_1, resign=False)
    members = members_of(old)
    header = json.loads(members["__header__"].tobytes())
    header["sha256"] = _checksum({k: v for k, v in members.items() if k != "__header__"})
    write_members(old, members, header, resign=False)
    assert np.array_equal(load_model(old).predict(X), original.predict(X))

    def big_endian(header, members):
        for key in ("coef", "intercept"):
            members[key] = members[key].astype(members[key].dtype.newbyteorder(">"))

    swapped = crafted(model, tmp_path / "be.npz", big_endian)
    np.testing.assert_allclose(load_model(swapped).decision_function(X), original.decision_function(X))


def test_saving_non_finite_weights_is_refused(tmp_path):
    X, y = make_problem(n_rows=40, n_features=4)
    trained = hogwild.train(X, y, mode="serial", epochs=1).model
    trained.coef[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN or infinite"):
        save_model(trained, tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


# ======================================================================================= 4. checkpoint files


def write_checkpoint(folder, state, edit_header=None):
    """A checkpoint written by the real manager, then its header edited and re-signed (a deliberate forgery)."""
    X, y = make_problem(n_rows=30, n_features=4)
    manager = CheckpointManager(folder, TrainConfig(mode="serial"), data_fingerprint(X, y))
    path = manager.save(state, 1)
    if edit_header is None:
        return path
    with zipfile.ZipFile(path) as archive:
        contents = {info.filename: archive.read(info.filename) for info in archive.infolist()}
    header = json.loads(contents["header.json"])
    edit_header(header)
    header["header_sha256"] = _header_digest(header)
    contents["header.json"] = json.dumps(header).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, raw in contents.items():
            archive.writestr(name, raw)
    return path


CHECKPOINT_CASES = {
    "NaN weights": ({"engine": {"W": np.array([1.0, np.nan])}}, None, "NaN or infinite"),
    "float16 array": ({"engine": {"W": np.ones(3, np.float16)}}, None, "float16"),
    "complex array": ({"engine": {"W": np.ones(3, np.complex64)}}, None, "complex64"),
    "epoch not a number": ({"engine": {"W": np.ones(2)}}, lambda h: h.__setitem__("epoch", "two"),
                           "epoch is not a non-negative integer"),
    "negative position": ({"engine": {"W": np.ones(2)}}, lambda h: h.__setitem__("position", -5),
                          "position is not a non-negative integer"),
    "no state": ({"engine": {"W": np.ones(2)}}, lambda h: h.pop("state"), "has no state"),
    "empty state": ({"engine": {"W": np.ones(2)}}, lambda h: h.__setitem__("state", {}), "state is not"),
    "arrays not a list": ({"engine": {"W": np.ones(2)}}, lambda h: h.__setitem__("arrays", {"a": 1}), "arrays is not"),
    "array spec mangled": ({"engine": {"W": np.ones(2)}}, lambda h: h["arrays"][0].__setitem__("shape", "big"),
                           "lists an array wrongly"),
    "array spec points elsewhere": ({"engine": {"W": np.ones(2)}},
                                    lambda h: h["arrays"][0].__setitem__("member", "../../etc/passwd"),
                                    "lists an array wrongly"),
    "config not an object": ({"engine": {"W": np.ones(2)}}, lambda h: h.__setitem__("config", None), "config is not"),
}


@pytest.mark.parametrize("name", list(CHECKPOINT_CASES))
def test_crafted_checkpoints_are_refused_naming_the_file(tmp_path, name):
    state, edit, needle = CHECKPOINT_CASES[name]
    if edit is None:
        # the writer never writes these (hogwild.resilience refuses non-finite states): craft by hand
        path = write_checkpoint(tmp_path / "ckpt", {"engine": {"W": np.ones(2)}})
        _replace_array(path, state["engine"]["W"])
    else:
        path = write_checkpoint(tmp_path / "ckpt", state, edit)
    with pytest.raises(CheckpointError) as caught:
        read_checkpoint(path)
    assert str(path) in str(caught.value) and needle in str(caught.value), str(caught.value)


def _replace_array(path, array):
    """Put ``array`` into member a0.npy and re-sign its header entry, as a hand edit that knows the format would."""
    import hashlib

    with zipfile.ZipFile(path) as archive:
        contents = {info.filename: archive.read(info.filename) for info in archive.infolist()}
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    contents["a0.npy"] = buffer.getvalue()
    header = json.loads(contents["header.json"])
    header["arrays"][0].update(dtype=array.dtype.str, shape=list(array.shape),
                               sha256=hashlib.sha256(array.tobytes()).hexdigest())
    header["header_sha256"] = _header_digest(header)
    contents["header.json"] = json.dumps(header).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, raw in contents.items():
            archive.writestr(name, raw)


def test_resume_from_crafted_checkpoints_is_one_line(tmp_path, data):
    ckpt = tmp_path / "ckpt"
    assert run("train", data, "--epochs", 1, "--mode", "serial", "--checkpoint-dir", ckpt, "--quiet").exit_code == 0
    for path in ckpt.glob("checkpoint-*.npz"):
        with zipfile.ZipFile(path) as archive:
            contents = {info.filename: archive.read(info.filename) for info in archive.infolist()}
        header = json.loads(contents["header.json"])
        spec = next(s for s in header["arrays"] if s["dtype"] in ("<f4", "<f8"))
        array = np.load(io.BytesIO(contents[spec["member"]]))
        array = np.full_like(array, np.nan)
        _replace_member(path, contents, header, spec, array)
    one_line(run("train", data, "--epochs", 2, "--mode", "serial", "--checkpoint-dir", ckpt, "--resume", "--quiet"),
             1, "no usable checkpoint", str(ckpt))


def _replace_member(path, contents, header, spec, array):
    import hashlib

    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    contents[spec["member"]] = buffer.getvalue()
    spec["sha256"] = hashlib.sha256(array.tobytes()).hexdigest()
    header["header_sha256"] = _header_digest(header)
    contents["header.json"] = json.dumps(header).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, raw in contents.items():
            archive.writestr(name, raw)


def test_resume_from_a_checkpoint_without_engine_state_is_one_line(tmp_path, data):
    ckpt = tmp_path / "ckpt"
    assert run("train", data, "--epochs", 1, "--mode", "serial", "--checkpoint-dir", ckpt, "--quiet").exit_code == 0
    for path in ckpt.glob("checkpoint-*.npz"):
        with zipfile.ZipFile(path) as archive:
            contents = {info.filename: archive.read(info.filename) for info in archive.infolist()}
        header = json.loads(contents["header.json"])
        header["state"] = {"history": header["state"].get("history", [])}
        header["header_sha256"] = _header_digest(header)
        contents["header.json"] = json.dumps(header).encode()
        with zipfile.ZipFile(path, "w") as archive:
            for name, raw in contents.items():
                archive.writestr(name, raw)
    one_line(run("train", data, "--epochs", 2, "--mode", "serial", "--checkpoint-dir", ckpt, "--resume", "--quiet"), 1)


# ================================================================================================ 5. options

# Every rule of hogwild.option_scope.SCOPES, typed where it does not apply (exit 2 naming the flag).
INAPPLICABLE = {
    "hidden": ["--hidden", "0"],
    "activation": ["--activation", "tanh"],
    "optimizer": ["--optimizer", "adam"],
    "clip_norm": ["--clip-norm", "1"],
    "momentum": ["--model", "mlp", "--optimizer", "adam", "--momentum", "0.5"],
    "beta1": ["--model", "mlp", "--optimizer", "rmsprop", "--beta1", "0.5"],
    "beta2": ["--model", "mlp", "--beta2", "0.5"],
    "adam_epsilon": ["--model", "mlp", "--optimizer", "momentum", "--adam-epsilon", "1e-6"],
    "multiclass": ["--multiclass", "softmax", "--loss", "squared_error"],
    "penalty": ["--model", "mlp", "--penalty", "l2"],
    "l1": ["--penalty", "l2", "--l1", "0.01"],
    "l2": ["--penalty", "l1", "--l1", "0.01", "--l2", "0.01"],
    "epsilon": ["--loss", "hinge", "--epsilon", "0.2"],
    "fit_intercept": ["--model", "mlp", "--no-intercept"],
    "intercept_decay": ["--no-intercept", "--intercept-decay", "0.5"],
    "clip": ["--model", "mlp", "--clip", "1"],
    "average": ["--model", "mlp", "--hidden", "4", "--average", "5"],
    "lr": ["--schedule", "optimal", "--lr", "0.5"],
    "decay": ["--decay", "0.5"],
    "power_t": ["--schedule", "constant", "--power-t", "0.3"],
    "aggregate": ["--aggregate", "weighted"],
    "average_every": ["--average-every", "10"],
    "batch_size": ["--batch-size", "64"],
    "threads": ["--mode", "serial", "--threads", "2"],
    "n_iter_no_change": ["--n-iter-no-change", "3"],
    "checkpoint_every": ["--checkpoint-every", "2"],
    "checkpoint_seconds": ["--checkpoint-seconds", "5"],
    # the cluster section: each applies only with --cluster (the ps knobs only with --cross-node ps too)
    "nodes": ["--nodes", "2"],
    "cross_node": ["--cross-node", "ps"],
    "sync_every": ["--sync-every", "100"],
    "on_node_loss": ["--on-node-loss", "abort"],
    "cluster_timeout": ["--cluster-timeout", "5"],
    "ps_shards": ["--ps-shards", "2"],
    "max_staleness": ["--max-staleness", "3"],
    "ps_step": ["--ps-step", "sum"],
}


def test_every_scope_rule_has_a_case():
    from hogwild.option_scope import SCOPES

    missing = set(SCOPES) - set(INAPPLICABLE) - {"class_weight", "shard_weights"}  # neither has a CLI flag
    assert not missing, f"add cases for {sorted(missing)}"


@pytest.mark.parametrize("name", list(INAPPLICABLE))
def test_options_that_do_not_apply_are_refused(tmp_path, data, name, monkeypatch):
    from hogwild.config import _flag

    monkeypatch.delenv("HOGWILD_THREADS", raising=False)
    line = one_line(run("train", data, "--epochs", 1, *INAPPLICABLE[name]), 2, "applies only", _flag(name))
    assert f"'{_flag(name)}'" in line


def test_flags_that_do_apply_and_inert_values_run(tmp_path, data):
    for args in (["--model", "mlp", "--hidden", "4", "--optimizer", "adam", "--beta1", "0.8"],
                 ["--l2", "0"], ["--mode", "serial", "--threads", "1"], ["--schedule", "decay", "--decay", "0.5"],
                 ["--mode", "sync", "--aggregate", "weighted", "--batch-size", "16"]):
        result = run("train", data, "--epochs", 1, "--quiet", *args)
        assert result.exit_code == 0, (args, result.stderr)


@pytest.mark.parametrize("changes, option", [
    ({"hidden": (0,)}, "hidden"),
    ({"multiclass": "softmax", "loss": "squared_error"}, "multiclass"),
    ({"optimizer": "adam"}, "optimizer"),
    ({"model": "mlp", "l1": 0.1}, "l1"),
    ({"epsilon": 0.5}, "epsilon"),
    ({"checkpoint_seconds": 3.0}, "checkpoint_seconds"),
    ({"multiclass": "softmax", "loss": "hinge"}, "multiclass"),
])
def test_python_api_refuses_options_that_do_not_apply(changes, option):
    X, y = make_problem(n_rows=30, n_features=4)
    with pytest.raises(ConfigError) as caught:
        hogwild.train(X, y, epochs=1, **changes)
    assert caught.value.option == option


def test_python_sweeps_over_modes_may_pass_per_mode_knobs():
    """One set of knobs for every mode and schedule (the tests' and the benchmark's idiom) is accepted in Python."""
    X, y = make_problem(n_rows=30, n_features=4)
    for mode in ("serial", "async", "sync", "average"):
        hogwild.train(X, y, mode=mode, threads=1 if mode == "serial" else 2, epochs=1, batch_size=8, average_every=10,
                      aggregate="weighted", decay=0.5)


NUMERIC_BAD = {
    "int": ["0", "-1", "99999999999999999999999"],
    "float": ["nan", "inf", "-1"],
}


def _numeric_fields():
    from hogwild.cli.options import _field_type, config_fields

    for f in config_fields():
        kind = _field_type(f)
        if kind in (int, float) and not f.metadata.get("choices"):
            yield f, kind


@pytest.mark.parametrize("field", [f for f, _ in _numeric_fields()], ids=lambda f: f.name)
def test_every_numeric_option_documents_and_enforces_a_range(tmp_path, data, field):
    import re

    kind = dict((f.name, k) for f, k in _numeric_fields())[field.name]
    assert re.search(r"(>=? ?0|in [\[(]|\d+ to |1 to |each 1)", field.metadata["help"]), \
        f"{field.metadata['cli']} does not state its range in its help text"
    flag = field.metadata["cli"].split("/")[0]
    for value in NUMERIC_BAD["int" if kind is int else "float"]:
        if value == "0" and field.name in ("seed", "average"):  # seed 0 and average 0 (no ASGD) are valid
            continue
        if value == "-1" and field.name == "seed":
            value = "-5"
        result = run("train", data, "--epochs", 1, flag, value)
        assert result.exit_code == 2 and "Traceback" not in result.stderr, (flag, value, result.stderr)
        assert flag in result.stderr, (flag, value, result.stderr)


def test_thread_count_is_capped(data):
    from hogwild._io import max_threads

    one_line(run("train", data, "--threads", 100000), 2, "--threads must be at most", str(max_threads()))
    with pytest.raises(ConfigError, match="at most"):
        TrainConfig(threads=max_threads() + 1).validate()
    assert TrainConfig(threads=np.int64(2)).validate().threads == 2


def test_python_values_of_the_wrong_type_are_config_errors():
    for changes in ({"lr": "0.1"}, {"epochs": 2.5}, {"shuffle": "no"}, {"seed": 2**40}, {"hidden": 5, "model": "mlp"},
                    {"checkpoint_dir": 3}, {"class_weight": [1, 2]}, {"adam_epsilon": -1.0}):
        with pytest.raises(ConfigError):
            TrainConfig(**changes).validate()


def test_other_commands_bound_their_numbers(tmp_path, model, data):
    for argv in (["predict", model, data, "--chunk-rows", "0"], ["predict", model, data, "--chunk-rows", str(1 << 40)],
                 ["data", "synth", "--rows", "10", "--classes", "99999999", "--task", "multiclass", "-o", "x.svm"],
                 ["data", "synth", "--rows", "10", "--classes", "3", "-o", "x.svm"],
                 ["data", "synth", "--rows", str(1 << 40), "-o", "x.svm"],
                 ["data", "fetch", "a9a", "--timeout", "inf"],
                 ["train", data, "--no-cache", "--cache-dir", tmp_path]):
        result = run(*argv)
        assert result.exit_code == 2 and "Traceback" not in result.stderr, (argv, result.stderr)


# ============================================================================================ 6. unbounded


@pytest.mark.parametrize("index", [2**40, 2**33])
def test_feature_index_beyond_the_supported_width_names_the_line(tmp_path, index):
    wide = tmp_path / "wide.svm"
    wide.write_text(f"+1 1:1\n# a comment\n-1 2:1 {index}:1\n")
    for argv in (["data", "info", wide, "--no-cache"], ["train", wide, "--no-cache", "--epochs", 1]):
        one_line(run(*argv), 1, "wide.svm:3:", "features wide")


def test_feature_index_too_wide_for_memory_names_the_line(tmp_path, monkeypatch):
    from hogwild.cli import stream

    monkeypatch.setattr(stream, "available_memory", lambda: 1 << 20)
    wide = tmp_path / "wide.svm"
    wide.write_text(f"+1 1:1\n-1 {2**24}:1\n")
    one_line(run("data", "info", wide, "--no-cache"), 1, "wide.svm:2:", "GiB")
    one_line(run("train", wide, "--no-cache", "--epochs", 1), 1, "wide.svm:2:", "GiB")


def test_options_that_ask_for_more_memory_than_there_is(tmp_path, data, monkeypatch):
    from hogwild.cli import stream

    monkeypatch.setattr(stream, "available_memory", lambda: 1 << 30)
    before = snapshot(tmp_path)
    one_line(run("train", data, "--model", "mlp", "--hidden", "4096", "--batch-size", "65536", "--save",
                 tmp_path / "m.npz"), 2, "'--batch-size'", "GiB of scratch")
    one_line(run("train", "--synthetic", "kdda", "--rows", "100000000"), 2, "'--rows'", "nonzeros")
    one_line(run("data", "synth", "--like", "dense", "--rows", "10000000", "-o", tmp_path / "d.svm"), 2, "'--rows'")
    assert snapshot(tmp_path) == before


def test_an_environment_value_out_of_range_names_the_variable(data, monkeypatch):
    monkeypatch.setenv("HOGWILD_THREADS", "100000")
    one_line(run("train", data), 2, "--threads", "$HOGWILD_THREADS")
