"""The IDX (MNIST) reader: round trips of every type code, .gz, and strict errors naming the file."""

import gzip
import struct

import numpy as np
import pytest

from conftest import shared_file
from hogwild.datasets.idx import load_idx, read_idx
from hogwild.errors import DataError

CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(array, code=None):
    array = np.asarray(array)
    code = CODES[array.dtype.type] if code is None else code
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, payload, compress=False):
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


@pytest.mark.parametrize("kind", list(CODES))
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
def test_round_trip_every_type(tmp_path, kind, compress):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(kind)
    if kind == np.uint8:
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = write(tmp_path / "a.idx", idx_bytes(array), compress)
    loaded = read_idx(path)
    assert loaded.dtype == np.dtype(kind) and loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, array)


def test_images_and_labels(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 4, 4), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    X, y = load_idx(write(tmp_path / "i.gz", idx_bytes(images), True), write(tmp_path / "l", idx_bytes(labels)))
    assert X.shape == (5, 16) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(X, images.reshape(5, 16) / 255.0, rtol=1e-6)
    assert y.tolist() == [3, 1, 4, 1, 5]
    raw = load_idx(tmp_path / "i.gz", flatten=False, dtype=np.uint8, scale=False)
    np.testing.assert_array_equal(raw, images)


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"\x00\x00\x08", "truncated"),
        (b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"\x00", "bad magic"),
        (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "bad magic"),
        (b"\x00\x00\x08\x02" + struct.pack(">I", 3), "truncated"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"\x00\x01", "truncated"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 2) + b"\x00\x01\x02", "beyond"),
        (b"", "truncated"),
    ],
    ids=["short-magic", "magic-bytes", "type-code", "short-shape", "short-body", "trailing", "empty"],
)
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
def test_bad_files_name_the_file(tmp_path, payload, message, compress):
    path = write(tmp_path / "bad.idx", payload, compress)
    with pytest.raises(DataError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_gzip_stream(tmp_path):
    blob = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    path = write(tmp_path / "cut.gz", blob[: len(blob) // 2])
    with pytest.raises(DataError, match="cut.gz"):
        read_idx(path)


def test_label_count_mismatch_and_missing_files(tmp_path):
    images = write(tmp_path / "i", idx_bytes(np.zeros((3, 2, 2), dtype=np.uint8)))
    labels = write(tmp_path / "l", idx_bytes(np.zeros(4, dtype=np.uint8)))
    with pytest.raises(DataError, match="4 labels"):
        load_idx(images, labels)
    matrix_labels = write(tmp_path / "m", idx_bytes(np.zeros((3, 2), dtype=np.uint8)))
    with pytest.raises(DataError, match="one-dimensional"):
        load_idx(images, matrix_labels)
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "missing")
    with pytest.raises(DataError, match="directory"):
        read_idx(tmp_path)


def test_shared_mnist_test_set():
    X, y = load_idx(shared_file("mnist/t10k-images-idx3-ubyte.gz"), shared_file("mnist/t10k-labels-idx1-ubyte.gz"))
    assert X.shape == (10_000, 784) and y.shape == (10_000,)
    assert 0.0 <= X.min() and X.max() <= 1.0
    assert sorted(np.unique(y).tolist()) == list(range(10))
