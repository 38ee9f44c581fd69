"""More rows from a small image set: whole-pixel shifts of the originals (the classic MNIST augmentation).

`shifted_images` turns MNIST's 10,000 test images into a 60,000-row "MNIST-like" training set for the dense
MLP benchmark, since the 60,000-image training files cannot be downloaded here. A shift of up to two pixels
keeps a digit recognisable while changing most of its 784 inputs, which is what makes the copies useful to a
network (and makes the set behave like MNIST, unlike Gaussian features with a planted linear model).
Each row remembers the original it came from (``source``), so a benchmark can put all copies of one original
on the same side of its train/test split: copies of a test image in the training rows would leak the answer.
"""

from __future__ import annotations

import numpy as np

from hogwild.errors import ConfigError, DataError


def shifted_images(images, labels, n_rows, *, side=28, max_shift=2, seed=0):
    """``(X, y, source)``: ``n_rows`` shifted copies of the square images in ``images``.

    ``images`` is ``(n, side*side)`` or ``(n, side, side)``; every original is used ``n_rows // n`` or one more
    times (in a seeded random order), each copy moved by a random whole-pixel offset in
    ``[-max_shift, max_shift]`` along both axes, with zeros shifted in. The first ``n`` rows are the
    originals themselves, unshifted. ``source[i]`` is the index of the original behind row ``i``.
    """
    images = np.asarray(images)
    n = images.shape[0]
    if n == 0:
        raise DataError("there are no images to shift")
    if images.reshape(n, -1).shape[1] != side * side:
        raise DataError(f"images of {images.reshape(n, -1).shape[1]} pixels are not {side}x{side}")
    if int(n_rows) < n:
        raise ConfigError("rows", f"asked for {n_rows} shifted rows, fewer than the {n} originals")
    if not 0 <= int(max_shift) < side:
        raise ConfigError("max_shift", f"max_shift must be in [0, {side}); got {max_shift}")
    labels = np.asarray(labels)
    if labels.shape[0] != n:
        raise DataError(f"{labels.shape[0]} labels for {n} images")
    rng = np.random.default_rng([int(seed), 0x5348])
    square = images.reshape(n, side, side)
    extra = int(n_rows) - n
    source = np.concatenate([np.arange(n), rng.permutation(np.resize(np.arange(n), extra))]).astype(np.int64)
    shifts = rng.integers(-max_shift, max_shift + 1, size=(int(n_rows), 2))
    shifts[:n] = 0
    pad = int(max_shift)
    padded = np.pad(square, ((0, 0), (pad, pad), (pad, pad)))
    X = np.empty((int(n_rows), side, side), dtype=images.dtype)
    # one slice of the padded originals per offset: (2*max_shift + 1)**2 vectorised copies, not one per row
    for dy in range(-pad, pad + 1):
        for dx in range(-pad, pad + 1):
            rows = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
            if rows.size:
                X[rows] = padded[source[rows], pad - dy : pad - dy + side, pad - dx : pad - dx + side]
    return X.reshape(int(n_rows), side * side), labels[source], source


__all__ = ["shifted_images"]
