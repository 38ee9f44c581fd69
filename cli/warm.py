"""``train --init-model MODEL``: continue training a saved model, on new data or for more epochs.

The run starts from MODEL's weights (`hogwild.engine.train`'s ``init_model``) and keeps its class set. What
fixes the shape of the weights comes from MODEL unless typed on the command line, and must then agree: the model
kind (``--model``), an MLP's ``--hidden`` and ``--activation``, ``--hash-bits``; ``--loss``, ``--multiclass``
and ``--dtype`` are taken from MODEL when not typed and may be changed (the weights are the same shape). DATA
may have fewer features than MODEL (they are added, empty) but not more, unless MODEL hashes its features;
its labels must be among MODEL's classes. Every mismatch is one sentence: exit 2 when an option disagrees
with MODEL, 1 when DATA does.
"""

from __future__ import annotations

import click


def load_init_model(path):
    """The model in ``path`` (`hogwild.model_io.load_model`: a damaged file is one line naming it)."""
    from hogwild.model_io import load_model

    return load_model(path)


def _describe(model):
    if model.kind == "mlp":
        return f"an MLP (--hidden {','.join(str(h) for h in model.hidden)}, --activation {model.activation})"
    return "a linear model"


def _shape_facts(model):
    """The options that fix the shape or meaning of ``model``'s weights: they must agree when typed."""
    facts = {"model": model.kind, "hash_bits": getattr(model, "hash_bits", None)}
    if model.kind == "mlp":
        facts.update(hidden=tuple(int(h) for h in model.hidden), activation=model.activation)
    return facts


def _adoptable_facts(model):
    """Options taken from ``model`` when not typed, which a run may change (same shapes)."""
    facts = {"loss": model.loss, "dtype": str(model.dtype)}
    multiclass = getattr(model, "multiclass", None)
    if model.kind == "linear" and multiclass in ("ovr", "softmax"):
        facts["multiclass"] = multiclass
    return facts


def adopt_init_model(values, model, path, given):
    """``values`` (the command's TrainConfig options) with MODEL's shape and defaults; `click.BadParameter`
    naming the option that disagrees with MODEL. ``given(name)``: whether the user typed that option."""
    from hogwild.config import _flag

    values = dict(values)
    for name, value in _shape_facts(model).items():
        if given(name):
            typed = values.get(name)
            typed = tuple(typed) if isinstance(typed, (list, tuple)) else typed
            if typed != value:
                shown = "no hashing" if value is None and name == "hash_bits" else (
                    ",".join(map(str, value)) if isinstance(value, tuple) else value)
                raise click.BadParameter(
                    f"--init-model {path} is {_describe(model)} with {_flag(name)} {shown}; this run has "
                    f"{_flag(name)} {','.join(map(str, typed)) if isinstance(typed, tuple) else typed}: remove "
                    f"{_flag(name)} to continue that model, or start without --init-model",
                    param_hint=f"'{_flag(name)}'",
                )
        else:
            values[name] = value
    for name, value in _adoptable_facts(model).items():
        if not given(name):
            values[name] = value
    return values


def fit_to_init_model(loaded, model, path):
    """``loaded`` checked against MODEL: labels among its classes, no more features than it has (fewer are
    padded, as predict pads them); a `DataError` of one sentence naming DATA and MODEL otherwise."""
    import numpy as np

    from hogwild.errors import DataError

    from .train import _label

    classes = getattr(model, "classes", None)
    if classes is not None:
        for name, y in (("train", loaded.y), ("test", loaded.y_test)):
            if y is None:
                continue
            unknown = np.setdiff1d(np.unique(np.asarray(y)), np.asarray(classes))
            if unknown.size:
                shown = ", ".join(str(_label(v)) for v in unknown[:10]) + (", ..." if unknown.size > 10 else "")
                known = ", ".join(str(_label(v)) for v in np.asarray(classes)[:20])
                raise DataError(f"{loaded.info.get(name) or loaded.info['train']}: labels {shown} are not among the "
                                f"classes of --init-model {path} ({known})")
    if getattr(model, "hash_bits", None) is not None:
        return loaded  # any width: the features are hashed into the model's
    for name, attribute in (("train", "X"), ("test", "X_test")):
        X = getattr(loaded, attribute)
        if X is not None and X.shape[1] > model.n_features:
            raise DataError(f"{loaded.info.get(name) or loaded.info['train']}: has {X.shape[1]:,} features but "
                            f"--init-model {path} was trained on {model.n_features:,}; continue on data with the "
                            "same features (or train a new model)")
    loaded.X = _widened(loaded.X, model.n_features)
    loaded.X_test = _widened(loaded.X_test, model.n_features)
    loaded.info["n_features"] = int(model.n_features)
    loaded.info["init_model"] = str(path)
    return loaded


def _widened(X, width):
    """A CSR matrix with ``width`` columns (empty ones added; no copy of the rows)."""
    import scipy.sparse as sp

    if X is None or X.shape[1] == width or not sp.issparse(X):
        return X
    X = X.tocsr()
    return sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], width), copy=False)
