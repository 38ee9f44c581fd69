"""Training checkpoints: one self-checking file per save, written atomically, the last few good ones kept.

A checkpoint is a ZIP archive in NumPy's ``.npz`` layout (stored, not compressed), so ``numpy.load`` can
open it for inspection, but it is read back here without ``numpy.load`` and without pickle:

- ``header.json``: format version, library version, the training config (all fields) and a fingerprint of
  the fields that change results, the dataset fingerprint, epoch/position, a timestamp, the JSON-able part
  of the engine's state (scalars, RNG states given as ints or lists), and for every array its member name,
  dtype, shape and SHA-256; the header carries a SHA-256 of itself.
- ``a0.npy``, ``a1.npy``, ...: the state's arrays (weights, intercept, optimizer state, per-worker RNG states).

Reading checks everything before trusting anything: a member's declared shape must match its bytes before
memory is allocated for it, so a damaged file cannot ask for terabytes. A damaged file (bad checksum,
truncated, bad JSON) is skipped with a one-line warning and the previous good one is used; a checkpoint of
another dataset or config is refused with `CheckpointError`, because resuming it would silently train a
different model.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ._io import atomic_write, read_npy_header
from .errors import CheckpointError

FORMAT = "hogwild-checkpoint"
FORMAT_VERSION = 1

# Config fields that do not change the numbers a run produces, so a resumed run may change them:
# where and how often to checkpoint, whether to resume, what to do on a worker fault, and how many
# epochs to run in total (resuming with a larger --epochs continues training).
NON_RESULT_FIELDS = frozenset(
    {"checkpoint_dir", "checkpoint_every", "checkpoint_seconds", "resume", "on_worker_error", "epochs",
     "cluster_timeout", "on_node_loss"}
)

_NAME = re.compile(r"^checkpoint-(\d{6,})\.npz$")
_TMP_PREFIX = ".tmp-checkpoint-"
_HEADER_MEMBER = "header.json"
_MAX_HEADER_BYTES = 64 << 20  # a header is a few KiB; anything this large is damage, not a config
_STALE_TMP_SECONDS = 600.0  # a temp file untouched this long belongs to a writer that died (SIGKILL)
_SAMPLE = 4096  # elements hashed per array by `data_fingerprint`


class CheckpointWarning(UserWarning):
    """A checkpoint file was skipped because it is damaged."""


class _Damaged(Exception):
    """A checkpoint file cannot be trusted; the message says why (internal: becomes a warning or an error)."""


def _default_warn(message):
    warnings.warn(message, CheckpointWarning, stacklevel=3)


# --- fingerprints ------------------------------------------------------------------------------------


def _sample(values, n=_SAMPLE):
    """Up to ``n`` evenly spaced elements of a 1-D array, plus its first and last few (cheap on any size)."""
    values = np.asarray(values).reshape(-1)
    if values.size <= n:
        return values
    picks = np.unique(np.concatenate([np.linspace(0, values.size - 1, n).astype(np.int64), np.arange(16),
                                      np.arange(values.size - 16, values.size)]))
    return values[picks]


def data_fingerprint(X, y):
    """A JSON-able fingerprint of a dataset: shape, nnz and a SHA-256 of sampled indptr/indices/data/y.

    Sampling keeps it O(1) in the data size while any real change of dataset (another file, another
    split, another row order) changes it. Integer arrays are hashed as int64 and values as float64 so that
    the fingerprint does not depend on the index dtype the loader happened to choose. Compute it on the
    data as given, before any in-place shuffle.
    """
    digest = hashlib.sha256()
    if all(hasattr(X, name) for name in ("indptr", "indices", "data", "shape")):
        if getattr(X, "format", "csr") != "csr":
            X = X.tocsr()
        shape = tuple(int(s) for s in X.shape)
        nnz = int(X.indptr[-1]) if len(X.indptr) else 0
        parts = {"indptr": (X.indptr, np.int64), "indices": (X.indices, np.int64), "data": (X.data, np.float64)}
    elif hasattr(X, "tocsr"):  # any other scipy.sparse format
        return data_fingerprint(X.tocsr(), y)
    else:
        X = np.asarray(X)
        shape = tuple(int(s) for s in X.shape)
        flat = X.reshape(-1)
        sampled = _sample(flat).astype(np.float64)
        nnz = int(np.count_nonzero(X)) if X.size <= 1 << 24 else -1
        parts = {"dense": (sampled, np.float64)}
    for name, (values, dtype) in parts.items():
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(_sample(values), dtype=dtype).tobytes())
    y = np.asarray(y).reshape(-1)
    digest.update(b"y")
    if y.dtype.kind in "biuf":
        digest.update(np.ascontiguousarray(_sample(y), dtype=np.float64).tobytes())
    else:  # string class labels
        digest.update("\x00".join(map(str, _sample(y))).encode())
    return {"shape": list(shape), "nnz": nnz, "n_labels": int(y.size), "sample_sha256": digest.hexdigest()}


def _config_dict(config):
    """A plain dict of the config, from a `TrainConfig`, a dict or None."""
    if config is None:
        return {}
    if hasattr(config, "to_dict"):
        return config.to_dict()
    return {key: (list(value) if isinstance(value, tuple) else value) for key, value in dict(config).items()}


def config_fingerprint(config):
    """SHA-256 of the config fields that change results (everything but `NON_RESULT_FIELDS`)."""
    values = {k: v for k, v in _config_dict(config).items() if k not in NON_RESULT_FIELDS}
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


# --- state <-> (JSON tree, arrays) -------------------------------------------------------------------


def _split_state(state, arrays, path="state"):
    """The JSON-able tree of ``state`` with every ndarray replaced by ``{"$array": member}`` (appended)."""
    if isinstance(state, np.ndarray):
        if state.dtype.hasobject:
            raise TypeError(f"checkpoint state {path} is an object array; only numeric arrays can be saved")
        member = f"a{len(arrays)}.npy"
        # Not np.ascontiguousarray: it turns 0-d arrays into 1-d ones.
        arrays.append((member, state if state.flags.c_contiguous else state.copy(order="C")))
        return {"$array": member}
    if isinstance(state, dict):
        out = {}
        for key, value in state.items():
            if not isinstance(key, str):
                raise TypeError(f"checkpoint state keys must be strings; {path} has {key!r}")
            out[key] = _split_state(value, arrays, f"{path}.{key}")
        return out
    if isinstance(state, (list, tuple)):
        return [_split_state(value, arrays, f"{path}[{i}]") for i, value in enumerate(state)]
    if isinstance(state, np.generic):
        return state.item()
    if state is None or isinstance(state, (bool, int, float, str)):
        return state
    raise TypeError(f"checkpoint state {path} has a {type(state).__name__}, which cannot be saved")


def _join_state(tree, arrays):
    """Inverse of `_split_state`."""
    if isinstance(tree, dict):
        if set(tree) == {"$array"}:
            member = tree["$array"]
            if member not in arrays:
                raise _Damaged(f"its header refers to a missing array {member!r}")
            return arrays[member]
        return {key: _join_state(value, arrays) for key, value in tree.items()}
    if isinstance(tree, list):
        return [_join_state(value, arrays) for value in tree]
    return tree


def _header_digest(header):
    body = {k: v for k, v in header.items() if k != "header_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# --- reading one file ---------------------------------------------------------------------------------


# Array dtypes a checkpoint may hold: what the engines' states are made of (weights, optimizer sums, counters,
# RNG words, flags, class labels as text). Anything else (float16, complex, records) was not written by us.
_STATE_DTYPE_KINDS = frozenset("biuU")
_STATE_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _read_npy(raw, spec, member):
    """The array stored in one ``.npy`` member's bytes, checked against its header entry before allocating."""
    shape, fortran, dtype, body = read_npy_header(raw, member, _Damaged)
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise _Damaged(f"array {member} holds Python objects or records")
    if not (dtype.kind in _STATE_DTYPE_KINDS or dtype.newbyteorder("=") in _STATE_FLOATS):
        raise _Damaged(f"array {member} has dtype {dtype}, which no training state holds")
    if list(shape) != list(spec["shape"]) or dtype.str != spec["dtype"] or fortran:
        raise _Damaged(f"array {member} does not match its header (shape {shape}, dtype {dtype.str})")
    expected = math.prod(shape) * dtype.itemsize
    if len(body) != expected:
        raise _Damaged(f"array {member} is truncated ({len(body)} of {expected} bytes)")
    if hashlib.sha256(body).hexdigest() != spec["sha256"]:
        raise _Damaged(f"array {member} fails its SHA-256 checksum")
    array = np.frombuffer(body, dtype=dtype).reshape(shape).copy()
    if dtype.kind == "f" and not np.all(np.isfinite(array)):
        # never written: a state with non-finite numbers is not checkpointed (hogwild.resilience)
        raise _Damaged(f"array {member} holds NaN or infinite values")
    return array.astype(dtype.newbyteorder("="), copy=False)


def read_checkpoint(path):
    """``(state, meta)`` from one checkpoint file; raises `CheckpointError` naming the file if it is damaged."""
    try:
        return _read(Path(path))
    except _Damaged as exc:
        raise CheckpointError(f"checkpoint {path} is damaged: {exc}") from None


def _read(path):
    try:
        size = path.stat().st_size
        with zipfile.ZipFile(path) as archive:
            return _read_archive(archive, size)
    except _Damaged:
        raise
    except zipfile.BadZipFile as exc:
        raise _Damaged(f"not a readable archive ({exc})") from None
    except (EOFError, struct.error, zlib.error) as exc:
        raise _Damaged(f"it is truncated ({type(exc).__name__}: {exc})") from None
    except json.JSONDecodeError as exc:
        raise _Damaged(f"its header is not valid JSON ({exc.msg} at character {exc.pos})") from None
    except UnicodeDecodeError:
        raise _Damaged("its header is not UTF-8 text") from None
    except (KeyError, TypeError, ValueError, IndexError, OverflowError, RecursionError, NotImplementedError,
            RuntimeError) as exc:
        # Missing or mistyped header fields, and whatever a mangled zip directory makes zipfile trip on
        # (RuntimeError: an "encrypted" flag bit; NotImplementedError: an unknown compression method).
        raise _Damaged(f"its contents are inconsistent ({type(exc).__name__}: {exc})") from None
    except OSError as exc:
        raise _Damaged(f"it cannot be read ({exc.strerror or exc})") from None


def _read_archive(archive, file_size):
    infos = {info.filename: info for info in archive.infolist()}
    if _HEADER_MEMBER not in infos:
        raise _Damaged("it has no header")
    for info in infos.values():
        # Stored members only: we never write compressed ones, and this rules out decompression bombs.
        if info.compress_type != zipfile.ZIP_STORED or info.file_size > file_size or info.flag_bits & 0x1:
            raise _Damaged(f"member {info.filename} is not as written (compressed, encrypted or larger than the file)")
    if infos[_HEADER_MEMBER].file_size > _MAX_HEADER_BYTES:
        raise _Damaged("its header is implausibly large")
    header = json.loads(archive.read(_HEADER_MEMBER).decode("utf-8"))
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _Damaged("it is not a hogwild checkpoint")
    if header.get("format_version") != FORMAT_VERSION:
        raise _Damaged(f"its format version {header.get('format_version')!r} is not {FORMAT_VERSION}")
    if header.get("header_sha256") != _header_digest(header):
        raise _Damaged("its header fails its SHA-256 checksum")
    _check_header(header)
    arrays = {}
    for spec in header["arrays"]:
        member = spec["member"]
        if member not in infos:
            raise _Damaged(f"array {member} is missing")
        arrays[member] = _read_npy(archive.read(member), spec, member)
    state = _join_state(header["state"], arrays)
    meta = {key: header[key] for key in ("epoch", "position", "timestamp", "config", "config_fingerprint",
                                           "data_fingerprint", "library_version", "format_version")}
    return state, meta


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# header field -> (check, what it must be): the header's checksum proves it was not damaged, not that whoever
# computed it wrote a sensible file, so every field the reader and the resuming engine rely on is checked.
_HEADER_FIELDS = {
    "epoch": (_is_count, "a non-negative integer"),
    "position": (_is_count, "a non-negative integer"),
    "timestamp": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    "config": (lambda v: isinstance(v, dict), "a JSON object"),
    "config_fingerprint": (lambda v: isinstance(v, str), "a string"),
    "data_fingerprint": (lambda v: isinstance(v, dict), "a JSON object"),
    "library_version": (lambda v: isinstance(v, str), "a string"),
    "state": (lambda v: isinstance(v, dict) and bool(v), "a non-empty JSON object"),
    "arrays": (lambda v: isinstance(v, list), "a list"),
}


def _check_header(header):
    """Raise `_Damaged` unless every field `_read_archive` and a resumed run use has the right type."""
    for key, (check, what) in _HEADER_FIELDS.items():
        if key not in header:
            raise _Damaged(f"its header has no {key}")
        if not check(header[key]):
            raise _Damaged(f"its header's {key} is not {what}")
    members = set()
    for spec in header["arrays"]:
        ok = (
            isinstance(spec, dict)
            and isinstance(spec.get("member"), str) and re.fullmatch(r"a\d+\.npy", spec["member"])
            and isinstance(spec.get("dtype"), str) and isinstance(spec.get("sha256"), str)
            and isinstance(spec.get("shape"), list) and all(_is_count(n) for n in spec["shape"])
        )
        if not ok or spec["member"] in members:
            raise _Damaged(f"its header lists an array wrongly ({str(spec)[:80]})")
        members.add(spec["member"])


# --- the manager --------------------------------------------------------------------------------------


class CheckpointManager:
    """Saves checkpoints of one training run into ``directory`` and finds the newest usable one.

    ``config`` is the run's `TrainConfig` (or its dict), ``data_fingerprint`` the value of
    `data_fingerprint(X, y)` for the training data; both are recorded in every file and checked on resume.
    Files are named ``checkpoint-000001.npz``, ``checkpoint-000002.npz``, ... (a counter, so the newest is
    the highest even when a new run writes into an old folder); after each save only the newest ``keep``
    good ones remain. ``warn`` receives one line per damaged file skipped; ``clock`` is for tests.
    """

    def __init__(self, directory, config, data_fingerprint, keep=2, warn=None, clock=time.monotonic):
        if int(keep) < 1:
            raise ValueError(f"keep must be at least 1; got {keep!r}")
        self.directory = Path(directory)
        # Through JSON once, so that what is compared on resume is exactly what a file holds.
        self.config = json.loads(json.dumps(_config_dict(config), sort_keys=True, default=str))
        self.config_fingerprint = config_fingerprint(self.config)
        self.data_fingerprint = json.loads(json.dumps(data_fingerprint, sort_keys=True, default=str))
        self.keep = int(keep)
        self.warn = warn or _default_warn
        self.clock = clock
        self.every = int(self.config.get("checkpoint_every") or 1)
        self.seconds = self.config.get("checkpoint_seconds")
        self.last_path = None
        self._last_time = clock()

    # -- files --
    def paths(self):
        """Checkpoint files in the folder, oldest first (by their counter)."""
        if not self.directory.is_dir():
            return []
        found = []
        for entry in self.directory.iterdir():
            match = _NAME.match(entry.name)
            if match:
                found.append((int(match.group(1)), entry))
        return [entry for _, entry in sorted(found)]

    def _next_path(self):
        existing = self.paths()
        number = int(_NAME.match(existing[-1].name).group(1)) + 1 if existing else 1
        return self.directory / f"checkpoint-{number:06d}.npz"

    # -- writing --
    def save(self, state, epoch, position=0):
        """Write ``state`` (a dict of arrays and JSON-able values) as the newest checkpoint; return its path.

        ``epoch`` is the number of completed epochs and ``position`` the rows already done in the next one.
        The file appears only once complete (temp file + fsync + rename); on any error, including a full
        disk, the previous checkpoints are untouched.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        arrays = []
        tree = _split_state(state, arrays)
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "library_version": _library_version(),
            "epoch": int(epoch),
            "position": int(position),
            "timestamp": time.time(),
            "config": self.config,
            "config_fingerprint": self.config_fingerprint,
            "data_fingerprint": self.data_fingerprint,
            "state": tree,
            "arrays": [
                {"member": member, "dtype": array.dtype.str, "shape": list(array.shape),
                 "sha256": hashlib.sha256(array.data if array.size else b"").hexdigest()}
                for member, array in arrays
            ],
        }
        header["header_sha256"] = _header_digest(header)
        path = self._next_path()
        with atomic_write(path) as handle:
            # Stored, not deflated: weights barely compress, and reading never has to inflate untrusted data.
            with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
                archive.writestr(_HEADER_MEMBER, json.dumps(header, sort_keys=True, indent=1))
                for member, array in arrays:
                    with archive.open(member, "w", force_zip64=array.nbytes > (1 << 30)) as out:
                        np.lib.format.write_array(out, array, allow_pickle=False)
        self.last_path = path
        self._last_time = self.clock()
        self._prune(newest=path)
        return path

    def maybe_save(self, state, epoch, position=0, end_of_epoch=False, force=False):
        """Save when due; return the path written, or None.

        Due: ``force``; or at the end of an epoch when ``epoch`` (completed epochs) is a multiple of
        ``checkpoint_every``; or when ``checkpoint_seconds`` have passed since the last save (checked at
        every chunk boundary). ``state`` may be a callable returning the state dict, so that the engine
        copies its arrays only when a checkpoint is actually written.
        """
        if not self.due(epoch, end_of_epoch, force):
            return None
        return self.save(state() if callable(state) else state, epoch, position)

    def due(self, epoch, end_of_epoch=False, force=False):
        """Whether `maybe_save` would write now (see there)."""
        if force or (end_of_epoch and int(epoch) % self.every == 0):
            return True
        return self.seconds is not None and self.clock() - self._last_time >= float(self.seconds)

    def _prune(self, newest):
        """Keep the newest ``keep`` readable checkpoints (``newest`` among them); delete older ones."""
        kept = 0
        for path in reversed(self.paths()):
            if kept >= self.keep:
                path.unlink(missing_ok=True)
                continue
            if path == newest:
                kept += 1
                continue
            try:
                _read(path)
            except _Damaged:
                continue  # left in place (and reported on resume); it does not count as a good one
            kept += 1
        now = time.time()
        for entry in self.directory.glob(_TMP_PREFIX + "*"):
            try:
                if now - entry.stat().st_mtime > _STALE_TMP_SECONDS:
                    entry.unlink()
            except OSError:
                pass

    # -- reading --
    def latest_valid(self):
        """``(state, meta)`` of the newest undamaged checkpoint, or None when the folder has none at all.

        A damaged file is skipped with a one-line ``warn`` naming it. Raises `CheckpointError` when every
        file is damaged, or when the newest readable one was written for another dataset or config.
        """
        paths = self.paths()
        damaged = []
        for path in reversed(paths):
            try:
                state, meta = _read(path)
            except _Damaged as exc:
                damaged.append(path)
                self.warn(f"skipping damaged checkpoint {path}: {exc}")
                continue
            self._check_compatible(path, meta)
            meta["path"] = str(path)
            return state, meta
        if damaged:
            raise CheckpointError(
                f"no usable checkpoint in {self.directory}: all {len(damaged)} are damaged; "
                "remove them or start without --resume"
            )
        return None

    def _check_compatible(self, path, meta):
        if meta["data_fingerprint"] != self.data_fingerprint:
            theirs, ours = meta["data_fingerprint"] or {}, self.data_fingerprint or {}
            detail = ""
            if isinstance(theirs, dict) and theirs.get("shape") != ours.get("shape"):
                detail = f" (shape {theirs.get('shape')} there, {ours.get('shape')} here)"
            raise CheckpointError(
                f"checkpoint {path} was written for another dataset{detail}; "
                "resume with the same training data or use another --checkpoint-dir"
            )
        if meta["config_fingerprint"] != self.config_fingerprint:
            theirs = meta["config"] if isinstance(meta["config"], dict) else {}
            changed = sorted(
                key for key in set(theirs) | set(self.config)
                if key not in NON_RESULT_FIELDS and theirs.get(key) != self.config.get(key)
            )
            shown = ", ".join(f"{k}: {theirs.get(k)!r} there, {self.config.get(k)!r} here" for k in changed[:3])
            raise CheckpointError(
                f"checkpoint {path} was written with another configuration ({shown or 'fingerprint differs'}); "
                "resume with the same options or use another --checkpoint-dir"
            )


def _library_version():
    from . import __version__

    return __version__
