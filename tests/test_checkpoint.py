"""Checkpoint files: round trip, keep-the-last-N, damaged files skipped, foreign ones refused, full disk."""

import errno
import io
import json
import os
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp

import hogwild._io
from hogwild._io import atomic_write
from hogwild.checkpoint import CheckpointManager, CheckpointWarning, data_fingerprint, read_checkpoint
from hogwild.config import TrainConfig
from hogwild.errors import CheckpointError

from conftest import make_sparse_classification


def engine_like_state(seed=0, n_features=40):
    """The shape of what the engine exports: arrays (weights, optimizer, RNG) and JSON-able scalars."""
    rng = np.random.default_rng(seed)
    return {
        "weights": rng.normal(size=n_features).astype(np.float32),
        "intercept": np.array(rng.normal(), dtype=np.float64),  # a 0-d array
        "optimizer": {"sum_sq_grad": rng.random(n_features), "t": 1234},
        "rng_states": rng.integers(1, 2**63, size=(2, 2), dtype=np.uint64),
        "epoch": 3,
        "global_step": 2**40 + 7,
        "rows_done": 12345,
        "lr": 0.05,
        "history": [{"epoch": 1, "train_loss": 0.5}, {"epoch": 2, "train_loss": float("nan")}],
        "mode": "serial",
    }


def assert_same_state(got, want, path="state"):
    assert type(got) is type(want) or isinstance(want, np.generic), f"{path}: {type(got)} vs {type(want)}"
    if isinstance(want, np.ndarray):
        assert got.dtype == want.dtype and got.shape == want.shape, f"{path}: {got.dtype}{got.shape}"
        assert got.tobytes() == want.tobytes(), f"{path}: values differ"
    elif isinstance(want, dict):
        assert set(got) == set(want), path
        for key in want:
            assert_same_state(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), path
        for i, (a, b) in enumerate(zip(got, want)):
            assert_same_state(a, b, f"{path}[{i}]")
    elif isinstance(want, float) and np.isnan(want):
        assert np.isnan(got), path
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


@pytest.fixture
def data():
    return make_sparse_classification(n_samples=60, n_features=40, seed=1)


@pytest.fixture
def config():
    return TrainConfig(mode="serial", epochs=4, checkpoint_dir="unused")


def manager(tmp_path, config, data, **kw):
    warnings_seen = kw.pop("warnings_seen", None)
    warn = warnings_seen.append if warnings_seen is not None else None
    return CheckpointManager(tmp_path / "ckpt", config, data_fingerprint(*data), warn=warn, **kw)


def test_round_trip_is_bitwise_and_records_everything(tmp_path, config, data):
    mgr = manager(tmp_path, config, data)
    state = engine_like_state()
    path = mgr.save(state, epoch=3, position=17)
    assert path.name == "checkpoint-000001.npz" and path.exists()
    got, meta = mgr.latest_valid()
    assert_same_state(got, state)
    assert got["weights"].flags.writeable, "restored arrays must be writable: the engine trains on them"
    assert meta["epoch"] == 3 and meta["position"] == 17
    assert meta["config"]["mode"] == "serial" and meta["path"] == str(path)
    assert meta["data_fingerprint"]["shape"] == [60, 40]
    # The layout is NumPy's .npz, so numpy can inspect a checkpoint without hogwild.
    with np.load(path, allow_pickle=False) as archive:
        assert np.array_equal(archive["a0"], state["weights"])


def test_keeps_only_the_last_two(tmp_path, config, data):
    mgr = manager(tmp_path, config, data)
    for epoch in range(1, 6):
        mgr.save(engine_like_state(epoch), epoch)
    names = [p.name for p in mgr.paths()]
    assert names == ["checkpoint-000004.npz", "checkpoint-000005.npz"], names
    state, meta = mgr.latest_valid()
    assert meta["epoch"] == 5
    assert_same_state(state, engine_like_state(5))
    assert not list((tmp_path / "ckpt").glob(".tmp-*")), "no temp file may be left behind"


def test_pruning_does_not_count_a_damaged_file_as_good(tmp_path, config, data):
    mgr = manager(tmp_path, config, data)
    mgr.save(engine_like_state(1), 1)
    second = mgr.save(engine_like_state(2), 2)
    second.write_bytes(second.read_bytes()[:-40])
    mgr.save(engine_like_state(3), 3)
    # checkpoint 1 is still one of the two newest *good* ones, so it survives.
    assert (tmp_path / "ckpt" / "checkpoint-000001.npz").exists()


def flip_byte(path, offset=None):
    """Flip one byte of the first array's data (``offset`` None) or at ``offset`` in the file."""
    raw = bytearray(path.read_bytes())
    if offset is None:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("a0.npy")
        # local header: 30 bytes + name + extra; then the .npy header (128 bytes here), then the data
        offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 128 + 4
        local_extra = int.from_bytes(raw[info.header_offset + 28: info.header_offset + 30], "little")
        offset += local_extra - len(info.extra)
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


def rewrite_header(path, edit):
    """Rebuild the archive with ``edit(header_text) -> text`` applied (the ZIP CRCs stay consistent)."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info.filename) for info in archive.infolist()}
    members["header.json"] = edit(members["header.json"].decode()).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, raw in members.items():
            archive.writestr(name, raw)
    path.write_bytes(buffer.getvalue())


DAMAGE = {
    "flipped array byte": (lambda p: flip_byte(p), "damaged"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "damaged"),
    "empty file": (lambda p: p.write_bytes(b""), "damaged"),
    "bad JSON": (lambda p: rewrite_header(p, lambda text: text[:-5]), "not valid JSON"),
    "edited header": (lambda p: rewrite_header(p, lambda text: text.replace('"epoch": 2', '"epoch": 9')),
                      "header fails its SHA-256"),
    "array checksum": (lambda p: rewrite_header(p, lambda t: t.replace('"sha256": "', '"sha256": "0', 1)),
                       "header fails"),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_newest_is_skipped_with_one_line_naming_it(tmp_path, config, data, kind):
    seen = []
    mgr = manager(tmp_path, config, data, warnings_seen=seen)
    mgr.save(engine_like_state(1), 1)
    newest = mgr.save(engine_like_state(2), 2)
    damage, reason = DAMAGE[kind]
    damage(newest)
    state, meta = mgr.latest_valid()
    assert meta["epoch"] == 1, f"{kind}: should fall back to the previous good checkpoint"
    assert_same_state(state, engine_like_state(1))
    assert len(seen) == 1 and "\n" not in seen[0], seen
    assert str(newest) in seen[0] and "damaged" in seen[0], seen[0]
    with pytest.raises(CheckpointError, match=reason):
        read_checkpoint(newest)


def test_default_warn_uses_warnings(tmp_path, config, data):
    mgr = CheckpointManager(tmp_path, config, data_fingerprint(*data))
    mgr.save(engine_like_state(1), 1)
    flip_byte(mgr.save(engine_like_state(2), 2))
    with pytest.warns(CheckpointWarning, match="skipping damaged checkpoint"):
        assert mgr.latest_valid()[1]["epoch"] == 1


def test_all_damaged_is_an_error_and_none_is_none(tmp_path, config, data):
    mgr = manager(tmp_path, config, data, warnings_seen=[])
    assert mgr.latest_valid() is None, "an empty (even absent) folder has no checkpoint"
    path = mgr.save(engine_like_state(1), 1)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="no usable checkpoint .* all 1 are damaged"):
        mgr.latest_valid()


def test_other_dataset_is_refused(tmp_path, config, data):
    manager(tmp_path, config, data).save(engine_like_state(), 1)
    other = make_sparse_classification(n_samples=61, n_features=40, seed=1)
    with pytest.raises(CheckpointError, match=r"another dataset \(shape \[60, 40\] there, \[61, 40\] here\)"):
        manager(tmp_path, config, other).latest_valid()
    X, y = data
    flipped = (X, -y)
    with pytest.raises(CheckpointError, match="another dataset"):
        manager(tmp_path, config, flipped).latest_valid()


def test_other_config_is_refused_naming_the_option(tmp_path, config, data):
    manager(tmp_path, config, data).save(engine_like_state(), 1)
    # (lr: None is the schedule's default rate)
    with pytest.raises(CheckpointError, match=r"another configuration \(lr: None there, 0.2 here\)"):
        manager(tmp_path, config.replace(lr=0.2), data).latest_valid()
    # Options that do not change the numbers may change on resume (e.g. train longer, checkpoint less often).
    relaxed = config.replace(epochs=9, checkpoint_every=3, resume=True, on_worker_error="restart")
    assert manager(tmp_path, relaxed, data).latest_valid() is not None


def test_maybe_save_every_n_epochs_and_every_s_seconds(tmp_path, data):
    now = [0.0]
    cfg = TrainConfig(mode="serial", checkpoint_dir="x", checkpoint_every=2, checkpoint_seconds=10.0)
    mgr = manager(tmp_path, cfg, data, clock=lambda: now[0])
    calls = []

    def state():
        calls.append(1)
        return engine_like_state()

    assert mgr.maybe_save(state, 1, end_of_epoch=True) is None
    assert calls == [], "the state must not be exported when no checkpoint is due"
    assert mgr.maybe_save(state, 2, end_of_epoch=True) is not None
    assert mgr.maybe_save(state, 2, position=100) is None
    now[0] = 9.9
    assert mgr.maybe_save(state, 2, position=200) is None
    now[0] = 10.0
    written = mgr.maybe_save(state, 2, position=300)
    assert written is not None and read_checkpoint(written)[1]["position"] == 300
    now[0] = 15.0
    assert mgr.maybe_save(state, 3, end_of_epoch=True) is None
    assert mgr.maybe_save(state, 3, end_of_epoch=True, force=True) is not None
    assert len(calls) == 3


def test_unsaveable_state_is_a_programming_error(tmp_path, config, data):
    mgr = manager(tmp_path, config, data)
    with pytest.raises(TypeError, match="object array"):
        mgr.save({"w": np.array([object()])}, 1)
    with pytest.raises(TypeError, match="set"):
        mgr.save({"w": {1, 2}}, 1)
    assert mgr.paths() == []


# --- dataset fingerprint --------------------------------------------------------------------------------


def test_fingerprint_sees_changes_and_ignores_index_dtype():
    X, y = make_sparse_classification(n_samples=50, n_features=30, seed=2)
    base = data_fingerprint(X, y)
    assert base == data_fingerprint(X.copy(), y.copy())
    X64 = sp.csr_matrix((X.data, X.indices.astype(np.int64), X.indptr.astype(np.int64)), shape=X.shape)
    assert data_fingerprint(X64, y) == base, "index dtype is a loader detail, not another dataset"
    assert data_fingerprint(X.tocoo(), y) == base
    changed = X.copy()
    changed.data[3] += 1.0
    assert data_fingerprint(changed, y) != base
    order = np.random.default_rng(0).permutation(50)
    assert data_fingerprint(X[order], y[order]) != base, "row order changes a run, so it changes the fingerprint"
    assert data_fingerprint(X.toarray(), y)["shape"] == [50, 30]
    assert data_fingerprint(X.toarray(), y) != data_fingerprint(X.toarray(), -y)


def test_fingerprint_of_a_large_array_samples_instead_of_reading_everything():
    n = 200_000
    X = sp.csr_matrix((np.ones(n), np.zeros(n, dtype=np.int32), np.arange(n + 1, dtype=np.int32)), shape=(n, 1))
    y = np.ones(n)
    fingerprint = data_fingerprint(X, y)
    assert fingerprint["nnz"] == n and fingerprint["n_labels"] == n
    y2 = y.copy()
    y2[-1] = -1.0  # the last elements are always sampled
    assert data_fingerprint(X, y2) != fingerprint


# --- a disk that fills up mid-write ---------------------------------------------------------------------


class FullDisk:
    """Wraps a file object so that writes fail with ENOSPC once ``limit`` bytes have been written."""

    def __init__(self, handle, limit):
        self._handle, self._left = handle, limit

    def write(self, data):
        size = len(memoryview(data).cast("B"))
        if size > self._left:
            self._handle.write(bytes(memoryview(data).cast("B")[: self._left]))
            self._left = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._left -= size
        return self._handle.write(data)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()
        return False


@pytest.fixture
def disk_fills_after(monkeypatch):
    """Make every `atomic_write` in the test fail with ENOSPC after ``limit`` bytes."""

    def arm(limit):
        real_fdopen = os.fdopen
        monkeypatch.setattr(hogwild._io.os, "fdopen", lambda fd, mode="r", *a, **k: FullDisk(real_fdopen(fd, mode, *a, **k), limit))

    return arm


@pytest.mark.parametrize("limit", [0, 10, 5000])
def test_atomic_write_keeps_the_old_file_when_the_disk_fills(tmp_path, disk_fills_after, limit):
    target = tmp_path / "model.npz"
    target.write_bytes(b"old contents")
    disk_fills_after(limit)
    with pytest.raises(OSError) as caught:
        with atomic_write(target) as handle:
            handle.write(b"x" * 8000)
    assert caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"], "the temp file must be removed"


@pytest.mark.parametrize("limit", [0, 100, 2000])
def test_checkpoint_save_on_a_full_disk_keeps_the_previous_checkpoints(tmp_path, config, data, disk_fills_after, limit):
    mgr = manager(tmp_path, config, data)
    first = mgr.save(engine_like_state(1), 1)
    before = first.read_bytes()
    disk_fills_after(limit)
    with pytest.raises(OSError):
        mgr.save(engine_like_state(2, n_features=1000), 2)
    assert [p.name for p in mgr.paths()] == [first.name]
    assert first.read_bytes() == before
    assert not list((tmp_path / "ckpt").glob(".tmp-*"))
    state, meta = mgr.latest_valid()
    assert meta["epoch"] == 1
    assert_same_state(state, engine_like_state(1))


def test_header_is_plain_json(tmp_path, config, data):
    path = manager(tmp_path, config, data).save(engine_like_state(), 2, position=5)
    with zipfile.ZipFile(path) as archive:
        header = json.loads(archive.read("header.json"))
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
    assert header["format"] == "hogwild-checkpoint" and header["format_version"] == 1
    assert header["epoch"] == 2 and header["position"] == 5 and header["timestamp"] > 0
    assert len(header["config_fingerprint"]) == 64 and len(header["header_sha256"]) == 64
    assert {spec["member"] for spec in header["arrays"]} == {"a0.npy", "a1.npy", "a2.npy", "a3.npy"}


def test_zip_flag_tricks_are_damage_not_crashes(tmp_path, config, data):
    """Found by fuzzing: an 'encrypted' flag bit made zipfile raise RuntimeError out of the loader."""
    path = manager(tmp_path, config, data).save(engine_like_state(), 1)
    raw = bytearray(path.read_bytes())
    central = raw.find(b"PK\x01\x02")  # first central-directory entry: header.json
    raw[central + 8] |= 0x1  # general-purpose flag: encrypted
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="damaged"):
        read_checkpoint(path)
