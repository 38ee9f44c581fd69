"""Model files: one ``.npz`` of the model's arrays plus a ``__header__`` member holding a JSON header.

No pickle anywhere: arrays are loaded with ``allow_pickle=False`` and the header is UTF-8 JSON stored as a
uint8 array. The header records the format version, the library version, the model kind, loss, classes,
n_features, dtype, the training config and a SHA-256 of the array bytes; loading checks the version, the kind
and the checksum, so a truncated or edited file is refused with one sentence naming it. Files are written
through `hogwild._io.atomic_write`, so a crash mid-save leaves the old file intact.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import zipfile

import numpy as np

from ._io import atomic_write
from .errors import DataError, ModelFormatError

FORMAT = "hogwild-model"
FORMAT_VERSION = 1
_HEADER = "__header__"

# kind -> "module:Class"; imported on first use, so loading a linear model never imports the MLP code.
MODEL_REGISTRY = {"linear": "hogwild.models:LinearModel", "mlp": "hogwild.models:MLPModel"}


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


def _json_classes(classes):
    if classes is None:
        return None
    return [c.item() if hasattr(c, "item") else c for c in np.asarray(classes).tolist()]


def save_model(model, path):
    """Write ``model`` to ``path`` atomically; returns ``path``."""
    from hogwild import __version__

    arrays = {name: np.ascontiguousarray(value) for name, value in model.arrays().items()}
    if _HEADER in arrays:
        raise ValueError(f"array name {_HEADER!r} is reserved")
    meta = model.meta()
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
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
    encoded = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    with atomic_write(path, "wb") as handle:
        np.savez(handle, **{_HEADER: encoded}, **arrays)
    return path


def load_model(path):
    """The model stored at ``path``; `ModelFormatError` (one sentence naming the file) if it is unusable."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            members = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise ModelFormatError(f"{path}: model file not found") from None
    except IsADirectoryError:
        raise ModelFormatError(f"{path}: is a directory, not a model file") from None
    except PermissionError:
        raise ModelFormatError(f"{path}: model file is not readable (permission denied)") from None
    except Exception as exc:  # noqa: BLE001
        # This block only decodes the archive, and a damaged one fails in many ways: zipfile raises
        # NotImplementedError/RuntimeError for an edited compression method, version or "encrypted" flag, and
        # NumPy's .npy header parser raises tokenize/syntax errors for an edited header (all found by fuzzing).
        # Whatever the type, the file is not one save_model wrote.
        raise ModelFormatError(f"{path}: not a readable hogwild model file ({type(exc).__name__})") from None
    if not all(isinstance(value, np.ndarray) for value in members.values()):
        # NpzFile hands back raw bytes for a member that is not a .npy file: never written by save_model.
        raise ModelFormatError(f"{path}: not a hogwild model file (a member is not an array)")
    header_bytes = members.pop(_HEADER, None)
    if header_bytes is None or header_bytes.dtype != np.uint8:
        raise ModelFormatError(f"{path}: not a hogwild model file (no header)")
    try:
        header = json.loads(header_bytes.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFormatError(f"{path}: the model header is damaged (not valid JSON)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFormatError(f"{path}: not a hogwild model file")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"{path}: model format version {version!r} is not supported by this version (expects {FORMAT_VERSION})"
        )
    kind = header.get("kind")
    if kind not in MODEL_REGISTRY:
        raise ModelFormatError(f"{path}: unknown model kind {kind!r}")
    if header.get("sha256") != _checksum(members):
        raise ModelFormatError(f"{path}: the model weights do not match their checksum (the file was damaged or edited)")
    meta = header.get("meta") or {}
    try:
        model = model_class(kind).from_arrays(members, meta)
    except (KeyError, ValueError, TypeError, DataError) as exc:
        raise ModelFormatError(f"{path}: the model file is inconsistent ({exc})") from None
    if int(model.n_features) != header.get("n_features"):
        raise ModelFormatError(f"{path}: the header's n_features does not match the weights")
    return model
