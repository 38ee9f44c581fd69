"""``hogwild model``: read a saved model (``show``) and write it for another tool (``export --format liblinear``).

``show`` prints the header (kind, loss, classes, features, dtype, hashing, format and library versions, the
training options that matter), each output's intercept, its largest weights by magnitude with their feature
indices, and how sparse the weights are. Feature indices are shown as LIBSVM writes them (1-based: column ``j``
of the model is feature ``j + 1`` of a one-based file, which is how ``predict`` reads DATA unless --zero-based);
a hashed model's columns are buckets and are shown 0-based. For an MLP the "weight" of an input feature is the
L2 norm of its first-layer weights.

``export --format liblinear`` writes a LIBLINEAR model file (the format ``save_model`` of LIBLINEAR 2.x writes
and its ``predict`` and ``load_model`` read): ``w`` holds the model's weights and one more row for the intercept,
with ``bias 1``, so LIBLINEAR's decision values are hogwild's ``predict --raw`` ones. LIBLINEAR numbers
features from 1, as ``predict`` reads DATA by default. MLPs, hashed models and classes that are not integers
have no LIBLINEAR form and are refused in one sentence.
"""

from __future__ import annotations

import json

import click

from hogwild.cli.train import _jsonable, _label

CONTEXT = {"max_content_width": 100, "help_option_names": ["-h", "--help"]}

# hogwild loss -> LIBLINEAR solver_type written in the file. LIBLINEAR's predict reads only the weights, the
# labels and the bias; the solver name tells a reader how the weights were meant (probabilities for L2R_LR).
LIBLINEAR_SOLVERS = {
    "log_loss": "L2R_LR",
    "hinge": "L2R_L1LOSS_SVC_DUAL",
    "squared_hinge": "L2R_L2LOSS_SVC",
    "modified_huber": "L2R_L2LOSS_SVC",
    "perceptron": "L2R_L1LOSS_SVC_DUAL",
    "squared_error": "L2R_L2LOSS_SVR",
    "huber": "L2R_L2LOSS_SVR",
    "epsilon_insensitive": "L2R_L1LOSS_SVR_DUAL",
}


@click.group(
    context_settings=CONTEXT,
    epilog="""Examples:

\b
  hogwild model show a9a.npz
  hogwild model show news20.npz --top 5 --json
  hogwild model export a9a.npz --format liblinear -o a9a.liblinear
""",
)
def model():
    """Show a saved model, or export it for another tool."""


@model.command(context_settings=CONTEXT)
@click.argument("model_path", metavar="MODEL")
@click.option("--top", type=click.IntRange(0, 1_000_000), default=10, show_default=True,
              help="Weights to list per output, largest magnitude first; 0 to 1,000,000.")
@click.option("--zero-based", is_flag=True, help="Show feature indices 0-based (the model's columns) instead of as "
                                                  "a one-based LIBSVM file numbers them.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout instead of text.")
def show(model_path, top, zero_based, as_json):
    """Print MODEL's header, its largest weights with their feature indices, and its sparsity."""
    from hogwild.model_io import load_model_and_header

    loaded, header = load_model_and_header(model_path)
    report = describe(loaded, header, top, zero_based)
    if as_json:
        click.echo(json.dumps(_jsonable(report), indent=1, allow_nan=False))
    else:
        click.echo(format_report(report, model_path))


def _feature_label(model, zero_based):
    hashed = getattr(model, "hash_bits", None) is not None
    if hashed:
        return "bucket", 0
    return ("column", 0) if zero_based else ("feature", 1)


def describe(model, header, top=10, zero_based=False):
    """A JSON-able dict: header facts, per-output intercept and top weights, sparsity."""
    import numpy as np

    config = header.get("config") or {}
    facts = {
        "kind": model.kind,
        "loss": model.loss,
        "n_features": int(model.n_features),
        "dtype": str(model.dtype),
        "classes": None if model.classes is None else [_label(c) for c in np.asarray(model.classes)],
        "hash_bits": getattr(model, "hash_bits", None),
        "format_version": header.get("format_version"),
        "library_version": header.get("library_version"),
        "training": {key: config.get(key) for key in ("mode", "schedule", "lr", "l2", "l1", "epochs", "threads", "seed")
                     if key in config},
    }
    name, offset = _feature_label(model, zero_based)
    facts["index"] = {"name": name, "first": offset}
    if model.kind == "linear":
        facts["multiclass"] = model.multiclass
        coef = np.asarray(model.coef, dtype=np.float64)
        intercept = np.asarray(model.intercept, dtype=np.float64)
        outputs = _output_names(model, coef.shape[1])
        facts["outputs"] = [
            {"output": outputs[k], "intercept": float(intercept[k]), "top": _top(coef[:, k], top, offset)}
            for k in range(coef.shape[1])
        ]
        zero = coef == 0.0
        facts["sparsity"] = {
            "weights": int(coef.size),
            "zero_weights": int(zero.sum()),
            "zero_fraction": float(zero.mean()) if coef.size else 0.0,
            "features_all_zero": int(zero.all(axis=1).sum()),
        }
    else:
        first = np.asarray(model.coefs[0], dtype=np.float64)
        facts.update(hidden=list(model.hidden), activation=model.activation, output=model.output)
        norms = np.sqrt((first * first).sum(axis=1))
        facts["outputs"] = [{"output": "first layer (L2 norm of each input's weights)", "intercept": None,
                             "top": _top(norms, top, offset)}]
        weights = np.concatenate([np.asarray(c).ravel() for c in model.coefs])
        facts["sparsity"] = {
            "weights": int(weights.size),
            "zero_weights": int((weights == 0.0).sum()),
            "zero_fraction": float((weights == 0.0).mean()) if weights.size else 0.0,
            "features_all_zero": int((norms == 0.0).sum()),
        }
    return facts


def _output_names(model, n_outputs):
    import numpy as np

    if model.classes is None:
        return ["value"]
    classes = [_label(c) for c in np.asarray(model.classes)]
    if n_outputs == 1:
        return [f"{classes[1]} (vs {classes[0]})"]
    return [f"class {c}" for c in classes]


def _top(values, k, offset):
    """The ``k`` entries of largest magnitude: [(index + offset, value)], largest first (ties: lower index)."""
    import numpy as np

    k = min(k, values.shape[0])
    if k == 0:
        return []
    chosen = np.argpartition(-np.abs(values), k - 1)[:k] if k < values.shape[0] else np.arange(values.shape[0])
    chosen = chosen[np.lexsort((chosen, -np.abs(values[chosen])))]
    return [[int(j) + offset, float(values[j])] for j in chosen]


def format_report(report, source):
    lines = [f"{source}: {report['kind']} model, loss {report['loss']}"
             + (f", {report['multiclass']}" if report.get("multiclass") not in (None, "binary") else "")]
    lines.append(f"  features   {report['n_features']:,}" + (f" (hashed: --hash-bits {report['hash_bits']})"
                                                              if report["hash_bits"] is not None else ""))
    if report["classes"] is not None:
        shown = report["classes"][:20]
        lines.append(f"  classes    {len(report['classes'])}: {', '.join(map(str, shown))}"
                     + (", ..." if len(report["classes"]) > 20 else ""))
    if report["kind"] == "mlp":
        lines.append(f"  layers     hidden {','.join(map(str, report['hidden']))}, {report['activation']}, "
                     f"{report['output']} output")
    lines.append(f"  dtype      {report['dtype']}")
    lines.append(f"  file       format {report['format_version']}, hogwild {report['library_version']}")
    if report["training"]:
        lines.append("  trained    " + ", ".join(f"{k} {v}" for k, v in report["training"].items() if v is not None))
    sparsity = report["sparsity"]
    lines.append(f"  sparsity   {sparsity['zero_weights']:,} of {sparsity['weights']:,} weights are zero "
                 f"({100 * sparsity['zero_fraction']:.1f}%); {sparsity['features_all_zero']:,} features have only "
                 "zero weights")
    index = report["index"]
    for output in report["outputs"]:
        head = f"  {output['output']}"
        if output["intercept"] is not None:
            head += f": intercept {output['intercept']:.6g}"
        lines.append(head)
        if output["top"]:
            lines.append(f"    {index['name']:>10}  weight")
            lines += [f"    {j:>10}  {w: .6g}" for j, w in output["top"]]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------- export


@model.command(context_settings=CONTEXT, epilog="""Examples:

\b
  hogwild model export a9a.npz --format liblinear -o a9a.liblinear
  python -c "from liblinear.liblinearutil import *; m = load_model('a9a.liblinear'); ..."
""")
@click.argument("model_path", metavar="MODEL")
@click.option("--format", "fmt", type=click.Choice(["liblinear"]), required=True,
              help="The file format to write: liblinear (a LIBLINEAR 2.x model file).")
@click.option("-o", "--output", required=True, metavar="FILE",
              help="Where to write it ('-' is stdout; a file is replaced atomically). Not MODEL.")
def export(model_path, fmt, output):
    """Write MODEL in another tool's model format."""
    from hogwild._io import atomic_write, check_outputs
    from hogwild.model_io import load_model

    check_outputs([("-o", output)], inputs=[("MODEL", model_path)])
    loaded = load_model(model_path)
    text = liblinear_text(loaded, model_path)
    if output == "-":
        click.echo(text, nl=False)
        return
    with atomic_write(output, "w") as handle:
        handle.write(text)


def liblinear_text(model, source="MODEL"):
    """The LIBLINEAR model file of a linear ``model`` as text; `DataError` (one sentence) when it has none."""
    import numpy as np

    from hogwild.errors import DataError

    if model.kind != "linear":
        raise DataError(f"{source}: is an MLP; a LIBLINEAR model is linear, so only linear models can be exported")
    if getattr(model, "hash_bits", None) is not None:
        raise DataError(f"{source}: hashes its features (--hash-bits {model.hash_bits}) and LIBLINEAR cannot; "
                        "train without --hash-bits to export it")
    coef = np.asarray(model.coef, dtype=np.float64)
    intercept = np.asarray(model.intercept, dtype=np.float64)
    lines = [f"solver_type {LIBLINEAR_SOLVERS[model.loss]}"]
    if model.classes is None:
        lines += ["nr_class 2"]
        w = coef[:, :1]
    else:
        classes = np.asarray(model.classes)
        if classes.dtype.kind not in "iuf" or not np.all(np.asarray(classes, dtype=np.float64) % 1 == 0):
            raise DataError(f"{source}: has classes that are not integers ({', '.join(map(str, classes[:5]))}); "
                            "LIBLINEAR's labels are integers")
        labels = [int(c) for c in classes]
        if coef.shape[1] == 1:
            # one output: a positive score is classes[1]; LIBLINEAR gives label[0] for a positive score
            labels = [labels[1], labels[0]]
        lines += [f"nr_class {len(labels)}", "label " + " ".join(map(str, labels))]
        w = coef
    b = intercept[: w.shape[1]]
    lines += [f"nr_feature {coef.shape[0]}", "bias 1", "w"]
    body = "\n".join(" ".join(_g17(v) for v in row) + " " for row in np.vstack([w, b[None, :]]))
    return "\n".join(lines) + "\n" + body + "\n"


def _g17(value):
    return "0" if value == 0 else format(float(value), ".17g")
