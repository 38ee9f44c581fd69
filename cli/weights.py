"""Row and class weights from the command line: ``train --sample-weight FILE`` and ``--class-weight SPEC``.

``--sample-weight FILE``: one non-negative number per line, one line per row of DATA in order (before any
``--test-fraction`` or ``--validation-fraction`` split, which splits the weights with the rows). ``--class-weight``:
``balanced`` (n_rows / (n_classes x rows of the class), as scikit-learn's) or ``LABEL:W,LABEL:W,...`` (classes not
named weigh 1). Both reach `hogwild.engine.train` (``sample_weight``, ``TrainConfig.class_weight``) and multiply,
for linear models and MLPs alike. Every mistake is one sentence naming the option, and the file and line.
"""

from __future__ import annotations

import math

import click

_SHOWN = 40  # characters of a bad token quoted in an error


def parse_class_weight(spec):
    """The ``class_weight`` of a ``--class-weight`` value: None, ``"balanced"`` or ``{label: weight}``."""
    if spec is None:
        return None
    text = spec.strip()
    if text == "balanced":
        return "balanced"
    weights = {}
    for part in text.split(","):
        label, colon, weight = part.strip().rpartition(":")
        try:
            if not colon or not label:
                raise ValueError
            key, value = float(label), float(weight)
        except ValueError:
            raise click.BadParameter(f"{part.strip()[:_SHOWN]!r} is not LABEL:WEIGHT; give 'balanced' or "
                                     "LABEL:W,LABEL:W,... such as 1:5,-1:1", param_hint="'--class-weight'") from None
        if not math.isfinite(value) or value < 0:
            raise click.BadParameter(f"the weight of class {label} must be a finite number >= 0; got {weight}",
                                     param_hint="'--class-weight'")
        if not math.isfinite(key):
            raise click.BadParameter(f"{label!r} is not a class label", param_hint="'--class-weight'")
        if key in weights:
            raise click.BadParameter(f"class {label} is given twice", param_hint="'--class-weight'")
        weights[int(key) if key.is_integer() else key] = value
    return weights


def check_class_labels(class_weight, y, data_name):
    """`DataError` naming a ``--class-weight`` label that DATA does not have (before any training starts)."""
    import numpy as np

    from hogwild.errors import DataError

    if not isinstance(class_weight, dict):
        return
    present = np.unique(np.asarray(y))
    for label in class_weight:
        if not np.any(present == label):
            shown = ", ".join(_label(v) for v in present[:20]) + (", ..." if present.size > 20 else "")
            raise DataError(f"--class-weight names class {_label(label)}, which is not among the labels of "
                            f"{data_name} ({shown})")


def read_sample_weights(path, n_rows, data_name):
    """The weights of ``--sample-weight path``: a float64 array of ``n_rows`` finite non-negative numbers.

    `DataError` (one sentence naming the file, and the line where there is one) for a missing file, a line that
    is not a number, a negative or non-finite weight, weights summing to zero, or a count other than ``n_rows``.
    """
    import numpy as np

    from hogwild.datasets._compressed import display_name, open_input
    from hogwild.errors import DataError

    name = display_name(path)
    try:
        with open_input(path) as handle:
            text = handle.read()
    except FileNotFoundError:
        raise DataError(f"--sample-weight {name}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"--sample-weight {name}: is a folder, not a file of weights") from None
    lines = text.splitlines()
    if lines and not lines[-1].strip():
        lines = lines[:-1]  # a final empty line (a trailing newline counted twice by some writers)
    try:
        weights = np.array(lines, dtype=np.bytes_).astype(np.float64) if lines else np.zeros(0)
    except ValueError:
        weights = None
    if weights is None:
        for number, line in enumerate(lines, 1):
            try:
                float(line)
            except ValueError:
                token = line.strip().decode("utf-8", "replace")[:_SHOWN]
                what = "is empty" if not token else f"is not a number near {token!r}"
                raise DataError(f"--sample-weight {name}:{number}: the weight {what}; give one number per line") \
                    from None
    bad = np.flatnonzero(~np.isfinite(weights) | (weights < 0))
    if bad.size:
        line = int(bad[0]) + 1
        raise DataError(f"--sample-weight {name}:{line}: the weight must be a finite number >= 0; got "
                        f"{lines[line - 1].strip().decode('utf-8', 'replace')[:_SHOWN]}")
    if weights.shape[0] != n_rows:
        raise DataError(f"--sample-weight {name}: has {weights.shape[0]:,} weights but {data_name} has {n_rows:,} "
                        "rows; give one weight per line, one line per row")
    if not weights.sum() > 0:
        raise DataError(f"--sample-weight {name}: every weight is 0, so there is nothing to train on")
    return weights


def _label(value):
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def attach_weights(loaded, sample_weight_path, class_weight, data_name):
    """Read ``--sample-weight`` for DATA's rows into ``loaded.sample_weight`` (split with the rows when a test set
    was held out of DATA) and check ``--class-weight``'s labels against the training labels."""
    if sample_weight_path:
        n_rows = loaded.info.get("n_data_rows", loaded.info["n_train"])
        weights = read_sample_weights(sample_weight_path, n_rows, data_name)
        loaded.sample_weight = weights if loaded.train_rows is None else weights[loaded.train_rows]
        loaded.info["sample_weight"] = sample_weight_path
    if class_weight is not None:
        check_class_labels(class_weight, loaded.y, data_name)
        loaded.info["class_weight"] = class_weight if isinstance(class_weight, str) else \
            {_label(k): v for k, v in class_weight.items()}
