"""Model files: one ``.npz`` of the model's arrays plus a ``__header__`` member holding a JSON header.

No pickle anywhere: the header is UTF-8 JSON stored as a uint8 array and every member is read back with
NumPy's ``.npy`` header parser and ``frombuffer``, never with ``allow_pickle``. The header records the format
version, the library version, the model kind, loss, classes, n_features, dtype, the training config, a SHA-256
of the arrays, (format 2) a SHA-256 of the header itself and (format 3) ``hash_bits`` for a model trained on
hashed features (`hogwild.hashing`).

A model file is something a user can damage, edit or hand us from anywhere, so loading trusts nothing:

1. the archive: members stored (not compressed, so no decompression bomb), each a ``.npy`` whose declared shape
   and dtype match its size before anything is allocated;
2. integrity: the header's checksum (format 2) and the arrays' checksum;
3. meaning: the header against the arrays: kind, loss, multiclass or output layer, classes against the number
   of outputs, the dtype of every array, the feature count, finite weights, exactly the members the kind has.

Each failure is a `ModelFormatError` of one sentence naming the file. Format 1 files (before the header
checksum) are still read; their header is checked for meaning only. A path that is a pipe or ``/dev/stdin`` is
read once into memory. Files are written through `hogwild._io.atomic_write`, so a crash mid-save leaves the old
file intact.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import math
import os
import stat
import zipfile

import numpy as np

from ._io import atomic_write, read_npy_header
from .errors import DataError, ModelFormatError

FORMAT = "hogwild-model"
FORMAT_VERSION = 2
# 3: a model trained on hashed features (the header's ``hash_bits``): versions that cannot hash refuse the file
# instead of scoring unhashed features with it. Unhashed models are still written as 2.
HASHED_FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)  # 1: no header checksum (read, with every check of meaning)
_HEADER = "__header__"

# kind -> "module:Class"; imported on first use, so loading a linear model never imports the MLP code.
MODEL_REGISTRY = {"linear": "hogwild.models:LinearModel", "mlp": "hogwild.models:MLPModel"}

WEIGHT_DTYPES = ("float32", "float64")
_MAX_HEADER_BYTES = 16 << 20  # a header is a few KiB; this much is damage, not a config
_MAX_MEMBERS = 64  # a model has at most 9 (an MLP of three hidden layers with classes, plus the header)
_MAX_STREAM_BYTES = 8 << 30  # a model read from a pipe is held in memory; refuse more than this
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def model_class(kind):
    """The class registered for a model kind."""
    module_name, _, class_name = MODEL_REGISTRY[kind].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def _checksum(arrays):
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(name.encode())
        digest.update(str(array.dtype).encode())
        digest.update(repr(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _header_checksum(header):
    """SHA-256 of the header's canonical JSON without its own checksum field."""
    body = {key: value for key, value in header.items() if key != "header_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _json_classes(classes):
    if classes is None:
        return None
    return [c.item() if hasattr(c, "item") else c for c in np.asarray(classes).tolist()]


def save_model(model, path):
    """Write ``model`` to ``path`` atomically; returns ``path``.

    Raises `DataError` (nothing is written) when the model holds NaN or infinite weights: no loader would
    accept that file.
    """
    from hogwild import __version__

    arrays = {name: np.ascontiguousarray(value) for name, value in model.arrays().items()}
    if _HEADER in arrays:
        raise ValueError(f"array name {_HEADER!r} is reserved")
    for name, array in arrays.items():
        if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
            raise DataError(f"{path}: the model's {name} holds NaN or infinite values; it was not saved")
    meta = model.meta()
    hash_bits = getattr(model, "hash_bits", None)
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION if hash_bits is None else HASHED_FORMAT_VERSION,
        "library_version": __version__,
        "kind": model.kind,
        "loss": model.loss,
        "classes": _json_classes(model.classes),
        "n_features": int(model.n_features),
        "dtype": meta.get("dtype"),
        "config": meta.get("config"),
        "sha256": _checksum(arrays),
        "meta": meta,
    }
    if hash_bits is not None:
        header["hash_bits"] = int(hash_bits)
    header["header_sha256"] = _header_checksum(header)
    encoded = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    with atomic_write(path, "wb") as handle:
        np.savez(handle, **{_HEADER: encoded}, **arrays)
    return path


# --- loading ----------------------------------------------------------------------------------------------


class _Bad(Exception):
    """Why a model file cannot be used (internal: becomes a `ModelFormatError` naming the file)."""


def load_model(path):
    """The model stored at ``path``; `ModelFormatError` (one sentence naming the file) if it is unusable."""
    return load_model_and_header(path)[0]


def load_model_and_header(path):
    """``(model, header)`` of the file at ``path``: the model as `load_model` gives it, and its checked JSON header
    (format and library versions, training config, checksums: what ``hogwild model show`` prints)."""
    try:
        source = _open(path)
    except _Bad as exc:
        raise ModelFormatError(f"{path}: {exc}") from None
    try:
        members = _read_members(source)
        header = _read_header(members.pop(_HEADER, None))
        _check_integrity(header, members)
        # Native byte order for the compiled kernels (a file written on a big-endian machine still loads).
        members = {name: array.astype(array.dtype.newbyteorder("="), copy=False) for name, array in members.items()}
        check_model_header(header, members)
        model = _build(header, members)
    except _Bad as exc:
        raise ModelFormatError(f"{path}: {exc}") from None
    finally:
        source.close()
    return model, header


def _open(path):
    """A seekable binary file object over the model file (``-``, stdin, or a pipe is read once into memory)."""
    if str(path) == "-":
        return _read_whole_stream(open(0, "rb", closefd=False))
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise _Bad("model file not found") from None
    except PermissionError:
        raise _Bad("model file is not readable (permission denied)") from None
    except OSError as exc:
        raise _Bad(f"model file cannot be opened ({(exc.strerror or str(exc)).lower()})") from None
    except ValueError:  # an embedded NUL byte
        raise _Bad("is not a usable file name") from None
    if stat.S_ISDIR(info.st_mode):
        raise _Bad("is a directory, not a model file")
    try:
        handle = open(path, "rb")
    except PermissionError:
        raise _Bad("model file is not readable (permission denied)") from None
    except OSError as exc:
        raise _Bad(f"model file cannot be opened ({(exc.strerror or str(exc)).lower()})") from None
    if stat.S_ISREG(info.st_mode):
        return handle
    return _read_whole_stream(handle)


def _read_whole_stream(handle):
    """The bytes of a pipe, stdin or device, read once into memory (a ZIP is read from its end).

    Its first bytes must be a ZIP's, which stops /dev/zero or /dev/urandom at once; at most `_MAX_STREAM_BYTES`.
    """
    with handle:
        try:
            head = handle.read(4)
            if head[:4] not in _ZIP_MAGIC:
                raise _Bad("not a hogwild model file (it does not start as a ZIP archive does)")
            rest = handle.read(_MAX_STREAM_BYTES)
            if handle.read(1):
                raise _Bad(f"a model read from a stream may be at most {_MAX_STREAM_BYTES >> 30} GiB; save it to a file")
        except OSError as exc:
            raise _Bad(f"model file cannot be read ({(exc.strerror or str(exc)).lower()})") from None
    return io.BytesIO(head + rest)


def _read_members(source):
    """``{name: array}`` of every ``.npy`` member, each checked against its size before it is allocated."""
    try:
        source.seek(0, os.SEEK_END)
        size = source.tell()
        source.seek(0)
        with zipfile.ZipFile(source) as archive:
            infos = archive.infolist()
            if len(infos) > _MAX_MEMBERS:
                raise _Bad(f"not a hogwild model file ({len(infos)} members)")
            members = {}
            for info in infos:
                name = info.filename
                if not name.endswith(".npy") or name[:-4] in members:
                    raise _Bad(f"not a hogwild model file (member {name!r} is not one array)")
                if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1 or info.file_size > size:
                    raise _Bad(f"member {name} is not as written (compressed, encrypted or larger than the file)")
                members[name[:-4]] = _read_npy(archive.read(info), name)
            return members
    except _Bad:
        raise
    except MemoryError:
        raise _Bad("not a readable hogwild model file (a member claims more memory than there is)") from None
    except Exception as exc:  # noqa: BLE001
        # Only the archive is decoded here, and a damaged one fails in many ways: zipfile raises BadZipFile,
        # NotImplementedError or RuntimeError for an edited compression method, version or "encrypted" flag,
        # zlib/struct errors for a mangled directory, EOFError for a cut file (all found by fuzzing).
        # Whatever the type, the file is not one save_model wrote.
        raise _Bad(f"not a readable hogwild model file ({type(exc).__name__})") from None


def _read_npy(raw, name):
    """One ``.npy`` member's array; its declared shape and dtype must account for exactly its bytes."""
    shape, fortran, dtype, body = read_npy_header(raw, name, _Bad)
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise _Bad(f"array {name} holds Python objects or records, which a model never has")
    expected = math.prod(shape) * dtype.itemsize if all(s >= 0 for s in shape) else -1
    if len(body) != expected:
        raise _Bad(f"array {name} is truncated or padded ({len(body)} bytes for shape {tuple(shape)}, {dtype})")
    array = np.frombuffer(body, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return np.ascontiguousarray(array).copy()


def _read_header(raw):
    if raw is None:
        raise _Bad("not a hogwild model file (no header)")
    if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size > _MAX_HEADER_BYTES:
        raise _Bad("not a hogwild model file (the header is not JSON text)")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _Bad("the model header is damaged (not valid JSON)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _Bad("not a hogwild model file")
    version = header.get("format_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise _Bad(f"model format version {version!r} is not supported by this version (it reads "
                   f"{min(READABLE_VERSIONS)} to {max(READABLE_VERSIONS)})")
    return header


def _check_integrity(header, members):
    if header["format_version"] >= 2:
        try:
            expected = _header_checksum(header)
        except (TypeError, ValueError, RecursionError):
            expected = None
        if header.get("header_sha256") != expected:
            raise _Bad("the model header does not match its checksum (the file was damaged or edited)")
    if header.get("sha256") != _checksum(members):
        raise _Bad("the model weights do not match their checksum (the file was damaged or edited)")


def _build(header, members):
    """The model object, from arrays and a header already checked for meaning."""
    try:
        model = model_class(header["kind"]).from_arrays(members, header["meta"])
    except Exception as exc:  # noqa: BLE001 - the arrays came from a file; any refusal is the file's fault
        raise _Bad(f"the model file is inconsistent ({exc})") from None
    if int(model.n_features) != header["n_features"] or str(model.dtype) != header["dtype"]:
        raise _Bad("the header's n_features or dtype does not match the weights")
    if header.get("hash_bits") is not None:
        model.hash_bits = int(header["hash_bits"])
    return model


# --- what a header must say about its arrays --------------------------------------------------------------


def check_model_header(header, arrays):
    """Raise `_Bad` (a phrase, no file name) unless ``header`` describes ``arrays`` as `save_model` writes them."""
    from .config import BINARY_LOSSES, LOSSES, REGRESSION_LOSSES

    kind = header.get("kind")
    if not _is_name(kind, MODEL_REGISTRY):
        raise _Bad(f"unknown model kind {kind!r}")
    meta = header.get("meta")
    if not isinstance(meta, dict):
        raise _Bad("the model header has no description of the model (meta)")
    for key in ("kind", "loss", "n_features", "dtype"):
        if key in meta and meta[key] != header.get(key):
            raise _Bad(f"the header says {key} {header.get(key)!r} in one place and {meta[key]!r} in another")
    if not (header.get("config") is None or isinstance(header.get("config"), dict)):
        raise _Bad("the header's training config is not a JSON object")
    loss = header.get("loss")
    if not _is_name(loss, LOSSES):
        raise _Bad(f"unknown loss {loss!r}")
    dtype = header.get("dtype")
    if not _is_name(dtype, WEIGHT_DTYPES):
        raise _Bad(f"the weights' dtype {dtype!r} is not one of {', '.join(WEIGHT_DTYPES)}")
    n_features = header.get("n_features")
    if not _is_int(n_features) or n_features < 1:
        raise _Bad(f"the header's n_features {n_features!r} is not a positive integer")
    _check_hash_bits(header, n_features)
    classes = _check_classes(header, arrays, classification=loss in BINARY_LOSSES)
    weights = {name: array for name, array in arrays.items() if name != "classes"}
    n_outputs = _CHECK_KIND[kind](header, meta, weights, classes, loss in REGRESSION_LOSSES)
    for name, array in weights.items():
        if array.dtype.name != dtype:
            raise _Bad(f"array {name} is {array.dtype.name} but the header says the weights are {dtype}")
        if not np.all(np.isfinite(array)):
            raise _Bad(f"array {name} holds NaN or infinite weights")
    if classes is None and n_outputs != 1:
        raise _Bad(f"a regression model has one output; the weights have {n_outputs}")


def _check_hash_bits(header, n_features):
    """A hashed model (format 3) says how many bits its features were hashed to, and has 2**bits of them."""
    from .hashing import MAX_HASH_BITS, MIN_HASH_BITS

    bits = header.get("hash_bits")
    hashed_format = header.get("format_version") == HASHED_FORMAT_VERSION
    if bits is None:
        if hashed_format:
            raise _Bad(f"a format {HASHED_FORMAT_VERSION} model is trained on hashed features, but the header says "
                       "nothing of hash_bits")
        return
    if not hashed_format:
        raise _Bad(f"a model trained on hashed features is written in format {HASHED_FORMAT_VERSION}, not "
                   f"{header.get('format_version')!r}")
    if not _is_int(bits) or not MIN_HASH_BITS <= bits <= MAX_HASH_BITS:
        raise _Bad(f"the header's hash_bits {bits!r} is not an integer from {MIN_HASH_BITS} to {MAX_HASH_BITS}")
    if n_features != 1 << bits:
        raise _Bad(f"a model hashed to {bits} bits has {1 << bits:,} features; the header says {n_features:,}")


def _is_name(value, names):
    """Whether an untrusted JSON value is one of ``names`` (a list or dict from a file is not, and not hashable)."""
    return isinstance(value, str) and value in names


def _count(n, noun):
    return f"{n} {noun}" if n == 1 else f"{n} {noun}es" if noun.endswith("s") else f"{n} {noun}s"


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_classes(header, arrays, classification):
    """The classes array (None for regression), checked against the header's list and the loss."""
    listed, stored = header.get("classes"), arrays.get("classes")
    if not classification:
        if listed is not None or stored is not None:
            raise _Bad(f"a regression model ({header.get('loss')}) has no classes, but the file lists some")
        return None
    if listed is None or stored is None:
        raise _Bad(f"a classifier ({header.get('loss')}) needs its classes, and the file has none")
    if stored.ndim != 1 or stored.dtype.kind not in "biufU":
        raise _Bad(f"the classes are a {stored.ndim}-D {stored.dtype} array, not a list of labels")
    if stored.dtype.kind == "f" and not np.all(np.isfinite(stored)):
        raise _Bad("the classes include NaN or infinite labels")
    if stored.size < 2:
        raise _Bad(f"a classifier needs at least two classes; the file has {stored.size}")
    if not np.array_equal(np.unique(stored), stored):
        raise _Bad("the classes are not sorted and distinct")
    if _json_classes(stored) != listed:
        raise _Bad("the header's classes do not match the classes array")
    return stored


def _check_linear(header, meta, weights, classes, regression):
    if set(weights) != {"coef", "intercept"}:
        raise _Bad(f"a linear model holds coef and intercept; the file has {', '.join(sorted(weights)) or 'nothing'}")
    coef, intercept = weights["coef"], weights["intercept"]
    if coef.ndim != 2 or coef.shape[0] != header["n_features"] or coef.shape[1] < 1:
        raise _Bad(f"coef has shape {coef.shape}; the header says {header['n_features']} features")
    n_outputs = coef.shape[1]
    if intercept.shape != (n_outputs,):
        raise _Bad(f"intercept has shape {intercept.shape}; coef has {n_outputs} outputs")
    if meta.get("n_outputs", n_outputs) != n_outputs:
        raise _Bad(f"the header says {meta.get('n_outputs')!r} outputs; coef has {n_outputs}")
    multiclass = meta.get("multiclass", "binary")
    if not _is_name(multiclass, ("binary", "ovr", "softmax")):
        raise _Bad(f"unknown multiclass strategy {multiclass!r}")
    if regression or classes is None:
        if multiclass != "binary":
            raise _Bad(f"a regression model cannot be {multiclass}")
        return n_outputs
    n_classes = classes.size
    if multiclass == "binary" and (n_classes != 2 or n_outputs != 1):
        raise _Bad(f"a binary model has 2 classes and 1 output; the file has {_count(n_classes, 'class')} and "
                   f"{_count(n_outputs, 'output')}")
    if multiclass in ("ovr", "softmax") and (n_classes < 3 or n_outputs != n_classes):
        raise _Bad(
            f"a {multiclass} model has one output per class (3 or more); the file has {_count(n_classes, 'class')} "
            f"and {_count(n_outputs, 'output')}"
        )
    if multiclass == "softmax" and header["loss"] != "log_loss":
        raise _Bad(f"a softmax model is trained with log_loss, not {header['loss']}")
    return n_outputs


def _check_mlp(header, meta, weights, classes, regression):
    from .config import ACTIVATIONS

    dims = meta.get("dims")
    if not isinstance(dims, list) or not 3 <= len(dims) <= 5 or not all(_is_int(d) and d >= 1 for d in dims):
        raise _Bad(f"the MLP's layer sizes {dims!r} are not two to five positive integers")
    if dims[0] != header["n_features"]:
        raise _Bad(f"the MLP's input layer has {dims[0]} units; the header says {header['n_features']} features")
    if "hidden" in meta and meta["hidden"] != dims[1:-1]:
        raise _Bad("the MLP's hidden sizes disagree with its layer sizes")
    if not _is_name(meta.get("activation"), ACTIVATIONS):
        raise _Bad(f"unknown MLP activation {meta.get('activation')!r}")
    output = meta.get("output")
    expected = {"identity": "squared_error", "logistic": "log_loss", "softmax": "log_loss"}
    if not _is_name(output, expected):
        raise _Bad(f"unknown MLP output layer {output!r}")
    if header["loss"] != expected[output]:
        raise _Bad(f"an MLP with a {output} output is trained with {expected[output]}, not {header['loss']}")
    names = {f"{part}_{layer}" for layer in range(len(dims) - 1) for part in ("coef", "intercept")}
    if set(weights) != names:
        raise _Bad(f"an MLP of {len(dims) - 1} layers holds {', '.join(sorted(names))}; the file has "
                   f"{', '.join(sorted(weights)) or 'nothing'}")
    for layer, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
        coef, intercept = weights[f"coef_{layer}"], weights[f"intercept_{layer}"]
        if coef.shape != (fan_in, fan_out) or intercept.shape != (fan_out,):
            raise _Bad(f"MLP layer {layer} has shapes {coef.shape} and {intercept.shape}; its sizes say "
                       f"({fan_in}, {fan_out}) and ({fan_out},)")
    n_outputs = dims[-1]
    n_classes = None if classes is None else classes.size
    if output == "identity" and (n_classes is not None or n_outputs != 1):
        raise _Bad("an MLP with an identity output is a regression model with one output")
    if output == "logistic" and (n_classes != 2 or n_outputs != 1):
        raise _Bad(f"a logistic MLP has 2 classes and 1 output; the file has {_count(n_classes or 0, 'class')} and "
                   f"{_count(n_outputs, 'output')}")
    if output == "softmax" and (n_classes is None or n_classes < 3 or n_outputs != n_classes):
        raise _Bad(f"a softmax MLP has one output per class (3 or more); the file has "
                   f"{_count(n_classes or 0, 'class')} and {_count(n_outputs, 'output')}")
    return n_outputs


_CHECK_KIND = {"linear": _check_linear, "mlp": _check_mlp}
