"""The study's one dataset: LIBSVM files, an MNIST IDX image set or a synthetic preset, in the engine's layout."""

from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp

from hogwild.errors import ConfigError, DataError

SYNTHETIC_PRESETS = ("rcv1", "url", "kdda", "dense")


def load_dataset(data=(), *, synthetic=None, rows=None, seed=0, model="linear", dtype="float32", features=None,
                 classes=None, augment_rows=None):
    """``(X, y, name, groups)`` from LIBSVM paths (several share one feature space and are stacked), an MNIST
    IDX images file (its labels file beside it), or a synthetic preset.

    ``augment_rows`` grows an IDX image set to that many rows by whole-pixel shifts
    (`hogwild.datasets.augment.shifted_images`); ``groups`` then gives each row's original image, so the
    train/test split keeps all copies of an original on one side. Otherwise ``groups`` is None.
    """
    if data and synthetic:
        raise ConfigError("synthetic", "give DATA files or --synthetic, not both")
    idx = _idx_pair(data)
    if augment_rows is not None and idx is None:
        raise ConfigError("augment_rows", "--augment-rows needs one MNIST IDX images file as DATA (*-images-idx3-ubyte[.gz])")
    if idx is not None:
        from hogwild.datasets.augment import shifted_images
        from hogwild.datasets.idx import load_idx

        X, y = load_idx(*idx, dtype=np.dtype(dtype))
        if rows is not None:
            X, y = X[:rows], y[:rows]
        name = os.path.basename(idx[0])
        if augment_rows is None:
            return X, y, name, None
        n_originals = X.shape[0]
        X, y, groups = shifted_images(X, y, int(augment_rows), seed=seed)
        return X, y, f"{name} ({n_originals:,} images shifted to {int(augment_rows):,} rows)", groups
    if data:
        from hogwild.datasets.libsvm import load_libsvm_files

        parts = load_libsvm_files(list(data), dtype=np.dtype(dtype))
        X = sp.vstack([part[0] for part in parts], format="csr") if len(parts) > 1 else parts[0][0]
        y = np.concatenate([np.asarray(part[1]) for part in parts])
        name = "+".join(os.path.basename(str(path)) for path in data)
        if rows is not None:
            X, y = X[:rows], y[:rows]
        return X, y, name, None
    if synthetic is None:
        raise ConfigError("synthetic", "give DATA files or --synthetic rcv1|url|kdda|dense")
    if synthetic not in SYNTHETIC_PRESETS:
        raise ConfigError("synthetic", f"--synthetic must be one of {', '.join(SYNTHETIC_PRESETS)}; got {synthetic!r}")
    from hogwild.datasets.synth import make_synthetic

    task = {"task": "multiclass", "n_classes": int(classes)} if classes and classes > 2 else {}
    X, y, _ = make_synthetic(like=synthetic, n_rows=rows, n_features=features, seed=seed, dtype=np.dtype(dtype), **task)
    if synthetic == "dense" and model == "mlp":
        X = X.toarray() if sp.issparse(X) else X
    return X, y, f"synthetic-{synthetic}", None


def _idx_pair(data):
    """``(images, labels)`` paths when ``data`` is one MNIST-style IDX images file, else None."""
    if len(data) != 1:
        return None
    path = str(data[0])
    base = os.path.basename(path)
    if "-images-idx" not in base:
        return None
    labels = os.path.join(os.path.dirname(path), base.replace("-images-idx3", "-labels-idx1"))
    if not os.path.exists(labels):
        raise DataError(f"{path}: no labels file {labels} beside it")
    return path, labels


def prepared(X, dtype):
    """X in the layout the engine reads without copying: canonical CSR, ``dtype`` data, int32 indices."""
    if not sp.issparse(X):
        return np.ascontiguousarray(X, dtype=dtype)
    X = X.tocsr()
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    if X.data.dtype != dtype:
        X = X.astype(dtype)
    if X.indices.dtype != np.int32 and X.shape[1] < 2**31:
        X.indices = X.indices.astype(np.int32)
    if X.indptr.dtype != np.int64:
        X.indptr = X.indptr.astype(np.int64)
    return X


def dataset_info(X, y, name, problem):
    """Sizes and the Hogwild! paper's sparsity measures (omega, delta, rho) of the whole dataset."""
    info = {"name": name, "rows": int(X.shape[0]), "features": int(X.shape[1]),
            "nnz": int(X.nnz) if sp.issparse(X) else int(np.count_nonzero(X)),
            "train_rows": int(problem.n_train), "test_rows": int(problem.X_test.shape[0]), "task": problem.task}
    try:
        from hogwild.datasets.stats import dataset_stats

        stats = dataset_stats(X if sp.issparse(X) else sp.csr_matrix(X))
        info.update({key: stats.get(key) for key in ("omega", "delta", "rho", "density", "nnz_per_row_mean")})
        info["rho_exact"] = stats.get("rho_exact")
    except ImportError as exc:
        info.update(omega=None, delta=None, rho=None, stats_reason=str(exc))
    return info
