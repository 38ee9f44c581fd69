"""``hogwild predict`` and ``hogwild evaluate``: use a saved model on a LIBSVM file.

``predict`` streams the file in chunks of rows (`hogwild.cli.stream`), so memory stays bounded for any file
size, and writes one line per input row: the predicted label (printed like the training labels: ``1``, not
``1.0``), the regression value, or with ``--proba`` the K class probabilities. ``evaluate`` reports the metrics
of `hogwild.metrics.evaluate_model` under the names ``--metrics-json`` uses.
"""

from __future__ import annotations

import json
import os
import sys

import click

MAX_CHUNK_ROWS = 1 << 24

PREDICT_EPILOG = """Examples:

\b
  hogwild predict a9a.model a9a.t > predictions.txt
  hogwild predict a9a.model a9a.t --proba -o proba.txt
  hogwild predict a9a.model a9a.t --raw > decision_values.txt
  hogwild predict news20.model unlabelled.svm.gz --ignore-extra-features
  zcat big.svm.gz | hogwild predict a9a.model - -o predictions.txt

\b
Labels in DATA are optional and ignored. With --proba each line holds the probabilities
of the model's classes in sorted order (the order `hogwild evaluate --json` lists them).
"""

EVALUATE_EPILOG = """Examples:

\b
  hogwild evaluate a9a.model a9a.t
  hogwild evaluate news20.model news20.t.bz2 --json > metrics.json

\b
Classification: accuracy, log_loss (models with probabilities), roc_auc (binary),
per-class precision/recall (multiclass). Regression: rmse, mae.
"""


@click.command(epilog=PREDICT_EPILOG, context_settings={"max_content_width": 100})
@click.argument("model_path", metavar="MODEL")
@click.argument("data", metavar="DATA")
@click.option("-o", "--output", metavar="FILE", default="-", show_default=True, help="Write predictions here ('-' is stdout); a file is replaced atomically, a symlink written through, a device or FIFO written directly. Neither MODEL nor DATA.")
@click.option("--proba", is_flag=True, help="Write the class probabilities (K per line) instead of labels.")
@click.option("--raw", is_flag=True, help="Write the decision values instead of labels: one per line for two classes "
              "(positive: the second class) and regression, K per line (class order) for K classes.")
@click.option("--ignore-extra-features", is_flag=True, help="Drop features beyond the model's count instead of refusing the file.")
@click.option("--chunk-rows", type=click.IntRange(1, MAX_CHUNK_ROWS), default=65_536, show_default=True, help="Rows read and predicted at a time (bounds memory; a chunk also ends at 64 MiB of text); 1 to 2^24.")
@click.option("--zero-based", is_flag=True, help="Feature indices in DATA start at 0 (default: at 1, LIBSVM's convention).")
def predict(model_path, data, output, proba, raw, ignore_extra_features, chunk_rows, zero_based):
    """Write one prediction per row of DATA (a LIBSVM file) using the model saved in MODEL.

    DATA may be ``-`` (stdin), a pipe or process substitution: it is read once, in order.
    """
    from hogwild._io import check_outputs
    from hogwild.cli.stream import iter_chunks
    from hogwild.model_io import load_model

    if model_path == "-" and data == "-":
        raise click.UsageError("MODEL and DATA cannot both be '-': stdin can be read only once")
    if proba and raw:
        raise click.UsageError("give --proba or --raw, not both")
    check_outputs([("-o", output)], inputs=[("MODEL", model_path), ("DATA", data)])
    model = load_model(model_path)
    if proba and not model.has_proba:
        raise click.UsageError(
            f"--proba needs a model that gives probabilities; {model_path} was trained with loss "
            f"{getattr(model, 'loss', '?')} (use log_loss or modified_huber)"
        )
    chunks = iter_chunks(
        data,
        _input_width(model, ignore_extra_features),
        chunk_rows=chunk_rows,
        dtype=_model_dtype(model),
        ignore_extra_features=ignore_extra_features,
        zero_based=zero_based,
    )
    if output == "-":
        try:
            _write_predictions(model, chunks, proba, click.get_text_stream("stdout"), raw)
            sys.stdout.flush()
        except BrokenPipeError:
            # `hogwild predict ... | head`: the reader left; stop quietly as Unix tools do
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)
    else:
        from hogwild._io import atomic_write

        with atomic_write(output, "w") as handle:
            _write_predictions(model, chunks, proba, handle, raw)


def _write_predictions(model, chunks, proba, handle, raw=False):
    """Predict chunk by chunk and write one line per row to ``handle``."""
    import numpy as np

    for chunk in chunks:
        scores = model.decision_function(chunk.X)
        if raw:
            values = np.asarray(scores, dtype=np.float64).reshape(scores.shape[0], -1)
            text = "\n".join(" ".join(f"{v:.9g}" for v in row) for row in values.tolist())
        elif proba:
            values = np.atleast_2d(model.proba_from_scores(scores))
            if values.shape[0] != chunk.X.shape[0]:  # a binary model may give P(positive) only
                values = values.T
            if values.shape[1] == 1:
                values = np.column_stack([1.0 - values[:, 0], values[:, 0]])
            text = "\n".join(" ".join(f"{p:.6g}" for p in row) for row in values.tolist())
        else:
            text = "\n".join(format_labels(model.predict_from_scores(scores)))
        if text:
            handle.write(text + "\n")


def format_labels(values):
    """Labels as text the way LIBSVM files write them: integral values without '.0', others with 9 digits."""
    import numpy as np

    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return [str(v) for v in values.tolist()]
    if values.dtype.kind == "f":
        integral = np.isfinite(values) & (values == np.round(values))
        if integral.all():
            return [str(int(v)) for v in values.tolist()]
        return [str(int(v)) if whole else f"{v:.9g}" for v, whole in zip(values.tolist(), integral.tolist())]
    return [str(v) for v in values.tolist()]


@click.command(epilog=EVALUATE_EPILOG, context_settings={"max_content_width": 100})
@click.argument("model_path", metavar="MODEL")
@click.argument("data", metavar="DATA")
@click.option("--json", "as_json", is_flag=True, help="Write the metrics as one JSON object on stdout.")
@click.option("--ignore-extra-features", is_flag=True, help="Drop features beyond the model's count instead of refusing the file.")
@click.option("--chunk-rows", type=click.IntRange(1, MAX_CHUNK_ROWS), default=65_536, show_default=True, help="Rows read and scored at a time; 1 to 2^24.")
@click.option("--zero-based", is_flag=True, help="Feature indices in DATA start at 0 (default: at 1, LIBSVM's convention).")
def evaluate(model_path, data, as_json, ignore_extra_features, chunk_rows, zero_based):
    """Score the model saved in MODEL on the labelled LIBSVM file DATA."""
    from hogwild.metrics import evaluate_model
    from hogwild.model_io import load_model

    model = load_model(model_path)
    X, y = read_labelled(
        data, model, chunk_rows=chunk_rows, ignore_extra_features=ignore_extra_features, zero_based=zero_based
    )
    check_labels(y, model, data)
    metrics = evaluate_model(model, X, y)
    if as_json:
        from hogwild.cli.train import _jsonable

        click.echo(json.dumps(_jsonable(metrics), indent=2, allow_nan=False))
    else:
        click.echo(format_metrics(metrics, data))


def read_labelled(path, model, *, chunk_rows=65_536, ignore_extra_features=False, zero_based=False):
    """``(X, y)`` of a labelled LIBSVM file with the model's column count (read chunk by chunk, then stacked)."""
    import numpy as np
    import scipy.sparse as sp

    from hogwild.cli.stream import iter_chunks
    from hogwild.errors import DataError

    blocks, labels = [], []
    for chunk in iter_chunks(
        path,
        _input_width(model, ignore_extra_features),
        chunk_rows=chunk_rows,
        dtype=_model_dtype(model),
        ignore_extra_features=ignore_extra_features,
        require_labels=True,
        zero_based=zero_based,
    ):
        blocks.append(chunk.X)
        labels.append(chunk.y)
    if not blocks:
        raise DataError(f"{path}: no data rows to evaluate")
    return sp.vstack(blocks, format="csr"), np.concatenate(labels)


def check_labels(y, model, path):
    """Raise `DataError` naming the file and the labels that are not among a classifier's classes."""
    import numpy as np

    from hogwild.errors import DataError

    classes = getattr(model, "classes", None)
    if classes is None:
        return
    unknown = np.setdiff1d(np.unique(y), np.asarray(classes))
    if unknown.size:
        shown = ", ".join(format_labels(unknown[:10])) + (", ..." if unknown.size > 10 else "")
        known = ", ".join(format_labels(np.asarray(classes)[:20]))
        raise DataError(f"{path}: labels {shown} are not among the model's classes ({known})")


def format_metrics(metrics, source):
    """Human-readable metrics: one 'name value' line each, then a per-class table for multiclass."""
    from hogwild.cli.progress import format_value

    lines = [f"{source}: {metrics.get('n_samples', '?')} rows"]
    for key, value in metrics.items():
        if key in ("n_samples", "per_class"):
            continue
        lines.append(f"{key:<10} {format_value(value)}")
    per_class = metrics.get("per_class")
    if per_class:
        lines.append(f"{'class':>10} {'precision':>10} {'recall':>10} {'support':>10}")
        for label, row in per_class.items():
            lines.append(f"{label:>10} {row['precision']:>10.4f} {row['recall']:>10.4f} {row['support']:>10}")
    return "\n".join(lines)


def _input_width(model, ignore_extra_features):
    """The feature count DATA is read with: the model's, or None (any) for a model that hashes its input."""
    if getattr(model, "hash_bits", None) is None:
        return model.n_features
    if ignore_extra_features:
        raise click.BadParameter(f"the model hashes every feature index into its {model.n_features:,} weights "
                                 f"(--hash-bits {model.hash_bits}), so no feature is extra; remove it",
                                 param_hint="'--ignore-extra-features'")
    return None


def _model_dtype(model):
    """The float type to parse data in: the model's weights' type when it has one, else float32."""
    import numpy as np

    dtype = getattr(model, "dtype", None)
    try:
        return np.dtype(dtype) if dtype is not None else np.float32
    except TypeError:
        return np.float32
