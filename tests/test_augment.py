"""Shifted copies of images (the MNIST-like bench set) and the bench's split by original image."""

import numpy as np
import pytest

from hogwild.bench.problem import split_train_test
from hogwild.datasets.augment import shifted_images
from hogwild.errors import ConfigError, DataError


def naive_shift(image, dy, dx):
    out = np.zeros_like(image)
    side = image.shape[0]
    for i in range(side):
        for j in range(side):
            if 0 <= i - dy < side and 0 <= j - dx < side:
                out[i, j] = image[i - dy, j - dx]
    return out


def test_every_row_is_a_shift_of_its_original_within_two_pixels():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 255, size=(5, 8, 8)).astype(np.float32)
    X, y, source = shifted_images(images, np.arange(5) * 10, 23, side=8, seed=3)
    assert X.shape == (23, 64) and np.array_equal(y, source * 10)
    assert sorted(np.bincount(source)) == [4, 4, 5, 5, 5]
    assert np.array_equal(X[:5], images.reshape(5, 64)), "the originals come first, unshifted"
    shifts = set()
    for row, original in zip(X.reshape(23, 8, 8), source):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if np.array_equal(row, naive_shift(images[original], dy, dx))]
        assert matches, "a row is not a whole-pixel shift of its original"
        shifts.add(matches[0])
    assert len(shifts) > 5, "the shifts should vary"


def test_shifted_images_is_seeded_and_checks_its_input():
    images = np.ones((3, 4, 4))
    a = shifted_images(images, [0, 1, 2], 10, side=4, max_shift=1, seed=1)
    b = shifted_images(images, [0, 1, 2], 10, side=4, max_shift=1, seed=1)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    with pytest.raises(ConfigError, match="fewer than the 3 originals"):
        shifted_images(images, [0, 1, 2], 2, side=4)
    with pytest.raises(DataError, match="not 5x5"):
        shifted_images(images, [0, 1, 2], 10, side=5)


def test_group_split_keeps_every_group_on_one_side():
    groups = np.repeat(np.arange(50), 4)
    X = np.arange(200, dtype=float).reshape(200, 1)
    y = groups % 2
    X_train, y_train, X_test, y_test = split_train_test(X, y, 0.2, seed=0, groups=groups)
    train_groups, test_groups = set(groups[X_train[:, 0].astype(int)]), set(groups[X_test[:, 0].astype(int)])
    assert not train_groups & test_groups
    assert len(test_groups) == 10 and X_test.shape[0] == 40 and X_train.shape[0] == 160


def test_bench_refuses_augment_rows_without_an_idx_file(tmp_path):
    from hogwild.bench.data import load_dataset

    with pytest.raises(ConfigError, match="--augment-rows needs one MNIST IDX images file"):
        load_dataset(synthetic="dense", rows=10, augment_rows=100)


def test_cli_bench_on_shifted_idx_images(tmp_path):
    """`hogwild bench IMAGES --augment-rows N`: the labels file is found beside the images, the set grows to N
    rows, and the split puts every copy of an original on one side."""
    import gzip
    import json
    import struct

    from click.testing import CliRunner

    from hogwild.cli.main import cli

    rng = np.random.default_rng(1)
    labels = np.arange(40) % 2
    images = (rng.random((40, 28, 28)) * 60).astype(np.uint8)
    images[labels == 1, 10:18, 10:18] = 255  # a square the network can find after a 2-pixel shift
    for name, array in (("tiny-images-idx3-ubyte.gz", images), ("tiny-labels-idx1-ubyte.gz", labels.astype(np.uint8))):
        header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
        (tmp_path / name).write_bytes(gzip.compress(header + array.tobytes()))
    out = tmp_path / "r.json"
    result = CliRunner().invoke(cli, [
        "bench", str(tmp_path / "tiny-images-idx3-ubyte.gz"), "--augment-rows", "200", "--model", "mlp",
        "--hidden", "8", "--threads", "1", "--modes", "serial", "--epochs", "2", "--repeats", "1", "--quiet",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    results = json.loads(out.read_text())
    dataset = results["dataset"]
    assert dataset["rows"] == 200 and "40 images shifted to 200 rows" in dataset["name"]
    assert dataset["train_rows"] + dataset["test_rows"] == 200
    assert dataset["test_rows"] == 40  # 8 whole originals (20% of 40), 5 copies each
