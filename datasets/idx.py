"""MNIST's IDX format: ``load_idx(images, labels)`` -> ``(X, y)``, plain or gzip-compressed.

An IDX file is a 4-byte magic (two zero bytes, a type code, the number of dimensions), one big-endian
uint32 per dimension, then the values in big-endian C order (http://yann.lecun.com/exdb/mnist/).
The reader is strict: a bad magic, an unknown type code, a truncated body, trailing bytes, or images and
labels that disagree on the number of rows raise `hogwild.errors.DataError` naming the file.
Memory is bounded by the declared shape: a damaged header cannot make it read more than the file holds.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from hogwild.errors import DataError

# type code -> big-endian NumPy dtype
_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _open(path):
    with open(path, "rb") as handle:
        compressed = handle.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def _read_exactly(handle, n_bytes, path, what):
    try:
        chunk = handle.read(n_bytes)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{path}: the compressed stream is damaged or truncated ({type(exc).__name__}: {exc})") from None
    if len(chunk) != n_bytes:
        raise DataError(f"{path}: file is truncated: expected {n_bytes} bytes of {what}, found {len(chunk)}")
    return chunk


def read_idx(path):
    """The array stored in one IDX file (native byte order), with its declared shape."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not an IDX file")
    try:
        handle = _open(path)
    except FileNotFoundError:
        raise DataError(f"{path}: IDX file not found") from None
    except PermissionError:
        raise DataError(f"{path}: IDX file is not readable (permission denied)") from None
    with handle:
        magic = _read_exactly(handle, 4, path, "the IDX magic")
        if magic[0] != 0 or magic[1] != 0 or magic[2] not in _TYPES or magic[3] == 0:
            raise DataError(f"{path}: not an IDX file (bad magic {magic.hex()})")
        dtype, n_dims = _TYPES[magic[2]], magic[3]
        shape = tuple(int(d) for d in np.frombuffer(_read_exactly(handle, 4 * n_dims, path, "the shape"), dtype=">u4"))
        n_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        body = _read_exactly(handle, n_bytes, path, f"values for shape {shape}")
        try:
            extra = handle.read(1)
        except (EOFError, OSError, zlib.error) as exc:
            raise DataError(f"{path}: the compressed stream is damaged ({type(exc).__name__}: {exc})") from None
        if extra:
            raise DataError(f"{path}: has bytes beyond the {n_bytes} its header declares for shape {shape}")
    return np.frombuffer(body, dtype=dtype).astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def load_idx(images_path, labels_path=None, flatten=True, dtype=np.float32, scale=True):
    """Images (and labels) from IDX files: ``X`` alone, or ``(X, y)`` when ``labels_path`` is given.

    ``flatten`` turns ``(n, 28, 28)`` into ``(n, 784)``; ``dtype`` is the type of X; ``scale`` divides
    8-bit pixel values by 255 so that X lies in [0, 1] (ignored for non-float dtypes and non-uint8 files).
    ``y`` keeps the file's integer type as int64.
    """
    images = read_idx(images_path)
    if images.ndim < 1:
        raise DataError(f"{images_path}: an image file needs at least one dimension")
    raw_dtype = images.dtype
    if flatten:
        images = images.reshape(images.shape[0], -1)
    dtype = np.dtype(dtype)
    X = images.astype(dtype)
    if scale and raw_dtype == np.uint8 and np.issubdtype(dtype, np.floating):
        X /= dtype.type(255.0)
    if labels_path is None:
        return X
    labels = read_idx(labels_path)
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: a label file must be one-dimensional; got shape {labels.shape}")
    if labels.shape[0] != X.shape[0]:
        raise DataError(f"{labels_path}: has {labels.shape[0]} labels but {images_path} has {X.shape[0]} images")
    return X, labels.astype(np.int64)
