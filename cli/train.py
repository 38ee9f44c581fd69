"""``hogwild train``: fit a model on a LIBSVM file (or a synthetic set), report metrics, save the model.

Every training option is generated from `hogwild.config.TrainConfig` by `hogwild.cli.options`; this module adds
only what concerns files (data, test set, model, metrics JSON) and output. NumPy, SciPy and Numba are imported
inside the command so that ``hogwild --help`` and ``hogwild train --help`` stay fast.
"""

from __future__ import annotations

import json
import math
import os

import click

from hogwild.cli.options import build_config, config_options

SYNTHETIC_SHAPES = ("rcv1", "url", "kdda", "dense")
DEFAULT_HOLDOUT = 0.2  # test fraction held out of a synthetic set when no --test file is given
STDIO = "-"  # DATA or --test read from stdin; --metrics-json written to stdout

EPILOG = """Examples:

\b
  hogwild train a9a --test a9a.t --epochs 5 --threads 2 --save a9a.model
  hogwild train news20.bz2 --multiclass softmax --lr 0.05 --test-fraction 0.2 --metrics-json news20.json
  hogwild train rcv1.svm.xz --mode sync --batch-size 512 --schedule decay --lr 0.5 --decay 0.9
  hogwild train --synthetic rcv1 --rows 200000 --threads 2 --quiet
  hogwild train mnist.svm --model mlp --hidden 128 --optimizer adam --lr 0.001 --save mnist.model
  hogwild train big.svm --checkpoint-dir ckpt --checkpoint-every 1   # Ctrl-C, then rerun with --resume

\b
Progress goes to stderr (a live bar on a terminal, one line per epoch otherwise);
the final summary goes to stdout. HOGWILD_THREADS and HOGWILD_CACHE_DIR set defaults.
"""


@click.command(epilog=EPILOG, context_settings={"max_content_width": 100})
@click.argument("data", required=False, metavar="[DATA]")
@click.option("--test", "test_path", metavar="FILE", help="Labelled test file (LIBSVM text, .gz/.bz2/.xz, or a binary cache).")
@click.option(
    "--test-fraction",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=None,
    help=f"Hold out this fraction of DATA as the test set when --test is not given [default: {DEFAULT_HOLDOUT} "
    "with --synthetic, otherwise no test set].",
)
@click.option(
    "--synthetic",
    type=click.Choice(SYNTHETIC_SHAPES),
    default=None,
    help="Train on a generated set shaped like this one instead of DATA (a held-out test split is made).",
)
@click.option("--rows", type=click.IntRange(2, 2**31 - 1), default=None, help="Rows of the --synthetic set, 2 to 2^31-1 [default: the generator's].")
@config_options()
@click.option("--sample-weight", "sample_weight_path", metavar="FILE", help="Weigh each row of DATA: one number >= 0 per line, one line per row, in order (a --test-fraction split splits them too); multiplies --class-weight. Linear models and MLPs.")
@click.option("--class-weight", "class_weight_spec", metavar="balanced|LABEL:W,...", help="Weigh each class's rows: balanced (rows / (classes x rows of the class), as scikit-learn's) or LABEL:W,... such as 1:5,-1:1 (classes not named weigh 1). Classification losses; linear models and MLPs.")
@click.option("--save", "save_path", metavar="PATH", help="Write the trained model here (.npz + JSON header, atomic).")
@click.option("--init-model", "init_model_path", metavar="MODEL", help="Continue training this saved model (new data, or more epochs): its weights are the start, its classes kept. Its kind, --hidden, --activation and --hash-bits must match if given; --loss, --multiclass and --dtype are its own unless given. DATA may have fewer features, not more.")
@click.option("--metrics-json", "metrics_path", metavar="PATH", help="Write config, per-epoch history, final metrics, throughput and dataset facts as JSON.")
@click.option("--log-jsonl", "log_path", metavar="FILE", help="Append one JSON record per chunk (time, epoch, rows done, rows/s overall and per worker, progressive loss, resident memory) and per epoch (its history record; per node on a cluster) to FILE, each flushed as written: follow a long run with tail -f, draw it with hogwild plot. '-' is stdout.")
@click.option(
    "--cache-dir",
    envvar="HOGWILD_CACHE_DIR",
    show_envvar=True,
    metavar="DIR",
    help="Folder for the binary cache of parsed LIBSVM files [default: the loader's, beside the data].",
)
@click.option("--cache/--no-cache", default=True, show_default=True, help="Cache parsed LIBSVM files (memory-mapped .npy) for fast reloads.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors (no progress, no summary).")
def train(data, test_path, test_fraction, synthetic, rows, save_path, metrics_path, cache_dir, cache, quiet,
          sample_weight_path, class_weight_spec, init_model_path, log_path, **values):
    """Train a model on DATA (a LIBSVM file) and report test metrics.

    DATA may be LIBSVM/svmlight text, compressed with gzip, bzip2 or xz, or a binary cache written by
    `hogwild data convert`; a cache larger than memory is streamed through its memory map, a window of rows at
    a time. ``-`` (stdin), a pipe or process substitution is read once: its rows go to a temporary binary cache
    as they are parsed, and later epochs read that (with --no-cache they are held in memory). Train and test
    files are read with one feature count. Every output path is checked before the data is read, and the model is
    written before the metrics.
    """
    _check_sources(data, test_path, test_fraction, synthetic, rows, save_path, cache_dir, cache)
    if sample_weight_path == STDIO and STDIO in (data, test_path):
        raise click.UsageError("--sample-weight and DATA (or --test) cannot both be '-': stdin can be read only once")
    from hogwild.cli.weights import attach_weights, parse_class_weight

    init_model = None
    if init_model_path:
        if init_model_path == STDIO and STDIO in (data, test_path, sample_weight_path):
            raise click.UsageError("--init-model and DATA (or --test, --sample-weight) cannot both be '-': stdin can "
                                   "be read only once")
        from hogwild.cli.warm import adopt_init_model, load_init_model

        init_model = load_init_model(init_model_path)
        values = adopt_init_model(values, init_model, init_model_path, _given)
    config = build_config(values, class_weight=parse_class_weight(class_weight_spec))
    check_explicit_options(config)
    _check_mlp_buffers(config)
    if synthetic:
        from hogwild.cli.data import check_synthetic_memory

        check_synthetic_memory(synthetic, rows, dtype=config.dtype)
    _check_outputs(data, test_path, save_path, metrics_path, config, [("--sample-weight", sample_weight_path)],
                   [("--log-jsonl", log_path)])
    if config.device == "cuda":
        # fail before loading a big file: `--device cuda` without a GPU is one line, exit 1
        from hogwild.device import resolve_device

        resolve_device("cuda")

    from hogwild.cli.progress import Progress

    progress = Progress(epochs=config.epochs, quiet=quiet)
    loaded = load_train_test(
        data,
        test_path,
        synthetic=synthetic,
        rows=rows,
        test_fraction=test_fraction,
        seed=config.seed,
        dtype=config.dtype,
        cache=cache,
        cache_dir=cache_dir,
    )
    attach_weights(loaded, sample_weight_path, config.class_weight, loaded.info["train"])
    if init_model is not None:
        from hogwild.cli.warm import fit_to_init_model

        fit_to_init_model(loaded, init_model, init_model_path)
    _check_training_memory(loaded, data, test_path, config)
    try:
        result = _run_training(loaded, config, progress, init_model, log_path)
    except MemoryError:
        _explain_memory_error(loaded, data, test_path)
        raise
    model = result.model
    if save_path:
        # the model first: a report that cannot be written must not cost the trained model
        from hogwild.model_io import save_model

        save_model(model, save_path)
    final = final_metrics(result, loaded)
    report = metrics_report(config, result, final, loaded)
    if metrics_path:
        try:
            write_json(metrics_path, report)
        except OSError as exc:
            if not save_path:
                raise
            from hogwild.errors import OutputError

            raise OutputError(f"--metrics-json {metrics_path}: {(exc.strerror or str(exc)).lower()} "
                              f"(the model was saved to {save_path})") from None
    if not quiet:
        summary = format_summary(report, save_path=save_path, metrics_path=metrics_path)
        # when an output goes to stdout (--metrics-json -, --save /dev/stdout) the summary must not mix into it
        from hogwild._io import writes_to_stdout

        click.echo(summary, err=any(writes_to_stdout(path) for path in (metrics_path, save_path, log_path)))


def _check_sources(data, test_path, test_fraction, synthetic, rows, save_path=None, cache_dir=None, cache=True):
    """Usage errors for combinations click cannot express (exit 2 with click's usage message)."""
    if data and synthetic:
        raise click.UsageError("give DATA or --synthetic, not both")
    if not data and not synthetic:
        raise click.UsageError("missing DATA (a LIBSVM file), or --synthetic NAME to generate one")
    if rows is not None and not synthetic:
        raise click.UsageError("--rows goes with --synthetic")
    if test_path and test_fraction is not None:
        raise click.UsageError("give --test FILE or --test-fraction, not both")
    if data == STDIO and test_path == STDIO:
        raise click.UsageError("DATA and --test cannot both be '-': stdin can be read only once")
    if save_path == STDIO:
        raise click.BadParameter("the model is a binary file; give a file name (or /dev/stdout to mean it)",
                                 param_hint="'--save'")
    if cache_dir is not None and not cache and _given("cache_dir"):
        raise click.BadParameter("--cache-dir does nothing with --no-cache; remove one of them",
                                 param_hint="'--cache-dir'")


def _given(name):
    """Whether the user typed the option ``name`` on the command line (not a default or an environment value)."""
    from click.core import ParameterSource

    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE


def check_explicit_options(config):
    """Refuse a training option typed on the command line where it does not apply (`hogwild.option_scope`).

    `TrainConfig.validate` catches values that differ from their defaults; this also catches a flag typed at its
    default value (``--hidden 128`` on a linear model) and the rules that Python callers are spared.
    """
    import dataclasses

    from hogwild.config import TrainConfig
    from hogwild.errors import ConfigError
    from hogwild.option_scope import check_applicable

    given = {f.name for f in dataclasses.fields(TrainConfig) if _given(f.name)}
    try:
        check_applicable(config, given)
    except ConfigError as exc:
        from hogwild.config import _flag

        raise click.BadParameter(str(exc), param_hint=f"'{_flag(exc.option)}'") from None


# Per-feature arrays of a run, in units of the weights' item size per output, at the least: the weights,
# plus the optimizer's state (AdaGrad sums; MLP moments). Linear runs also keep one float64 row frequency.
_OPTIMIZER_COPIES = {"sgd": 0, "momentum": 1, "rmsprop": 1, "adam": 2}


def _check_training_memory(loaded, data, test_path, config):
    """Refuse, naming the line of the largest feature index, a set too wide for this machine's memory.

    The estimate is a lower bound (one output, no per-worker buffers), so only hopeless runs are refused:
    a two-line file with feature index 2^30 would otherwise end in the kernel's OOM killer, without a word.
    """
    from hogwild.cli.stream import check_feature_memory

    if not loaded.info.get("train") or loaded.info.get("synthetic"):
        return
    itemsize = 4 if config.dtype == "float32" else 8
    if config.model == "mlp":
        per_feature = itemsize * config.hidden[0] * (1 + _OPTIMIZER_COPIES[config.optimizer])
    else:
        # weights, then the per-coordinate state: squared-gradient sums (+ ftrl's z, + normalized's scale)
        copies = {"adagrad": 2, "normalized": 3, "ftrl": 3}.get(config.effective_schedule, 1)
        per_feature = 8 + itemsize * copies + (8 if config.average else 0)
    if config.hash_bits is not None:
        # hashed features: the weights are 2^B wide whatever the data's indices
        from hogwild.cli.stream import available_memory

        needed, available = (1 << config.hash_bits) * per_feature, available_memory()
        if available is not None and needed > available // 2:
            raise click.BadParameter(
                f"--hash-bits {config.hash_bits} needs about {needed / 2**30:.1f} GiB for its 2^{config.hash_bits} "
                f"weights and their state; {available / 2**30:.1f} GiB are available", param_hint="'--hash-bits'")
        return
    X, source = _widest(loaded, data, test_path)
    check_feature_memory(X, source, per_feature, "training on it")


def _check_mlp_buffers(config):
    """A usage error when the MLP workers' scratch (activations and deltas: batch x layer widths each) cannot fit.

    ``--hidden 4096 --batch-size 1048576`` asks for 32 GiB per worker; refused before any data is read.
    """
    if config.model != "mlp":
        return
    from hogwild._io import available_cores
    from hogwild.cli.stream import available_memory

    workers = 1 if config.mode == "serial" else (config.threads or available_cores())
    width = sum(config.hidden) + 1  # the hidden layers and at least one output unit
    needed = workers * 2 * config.batch_size * width * (4 if config.dtype == "float32" else 8)
    available = available_memory()
    if available is not None and needed > available // 2:
        raise click.BadParameter(
            f"--batch-size {config.batch_size} with --hidden {','.join(map(str, config.hidden))} needs about "
            f"{needed / 2**30:.1f} GiB of scratch for {workers} worker(s); {available / 2**30:.1f} GiB are available",
            param_hint="'--batch-size'",
        )


def _explain_memory_error(loaded, data, test_path):
    """Turn running out of memory on a very wide set into a `DataError` naming the line that made it so wide."""
    from hogwild.cli.stream import where_widest
    from hogwild.errors import DataError

    if loaded.info.get("synthetic"):
        return
    X, source = _widest(loaded, data, test_path)
    if X.shape[1] >= 1 << 24:
        raise DataError(
            f"{where_widest(X, source)}: a feature index there makes the set {X.shape[1]:,} features wide, and "
            "training ran out of memory for its per-feature arrays"
        ) from None


def _widest(loaded, data, test_path):
    """The matrix (train or test) with the largest feature index, and the file it came from."""
    from hogwild.memory import streamed_max

    def largest(X):
        # a piece at a time: a memory-mapped set larger than memory must not become resident for this
        return int(streamed_max(X.indices)) if getattr(X, "nnz", 0) and hasattr(X, "indices") else -1

    if loaded.X_test is not None and test_path and largest(loaded.X_test) > largest(loaded.X):
        return loaded.X_test, test_path
    return loaded.X, data


def _check_outputs(data, test_path, save_path, metrics_path, config, other_inputs=(), other_outputs=()):
    """Every output is writable and none is an input, checked before any data is read (`hogwild._io`)."""
    from hogwild._io import check_output_folder, check_outputs

    inputs = [("DATA", data), ("--test", test_path), *other_inputs]
    check_outputs([("--save", save_path), ("--metrics-json", metrics_path), *other_outputs], inputs)
    if config.checkpoint_dir:
        check_output_folder(config.checkpoint_dir, "--checkpoint-dir")
        for label, path in inputs:
            if (path and path != STDIO and os.path.exists(path) and os.path.exists(config.checkpoint_dir)
                    and os.path.samefile(path, config.checkpoint_dir)):
                from hogwild.errors import OutputError

                raise OutputError(f"--checkpoint-dir {config.checkpoint_dir}: is also the input {label}")


class LoadedData:
    """Train and test matrices plus the facts about them that ``--metrics-json`` records under "dataset".

    ``train_rows``: the rows of DATA kept for training when a test set was held out of it (else None);
    ``sample_weight``: one weight per training row (``--sample-weight``), or None.
    """

    train_rows = None
    sample_weight = None

    def __init__(self, X, y, X_test=None, y_test=None, info=None):
        self.X, self.y, self.X_test, self.y_test = X, y, X_test, y_test
        self.info = dict(info or {})
        self.info.update(
            n_train=int(X.shape[0]),
            n_features=int(X.shape[1]),
            nnz_train=_nnz(X),
            n_test=int(X_test.shape[0]) if X_test is not None else 0,
        )


def load_train_test(data, test_path=None, *, synthetic=None, rows=None, test_fraction=None, seed=0,
                    dtype="float32", cache=True, cache_dir=None):
    """`LoadedData` for the train command: files read with one feature count, or a synthetic set split."""
    import numpy as np

    np_dtype = np.float32 if dtype == "float32" else np.float64
    if synthetic:
        from hogwild.datasets.synth import make_synthetic

        X, y, synth_info = make_synthetic(like=synthetic, n_rows=rows, seed=seed, dtype=np_dtype)
        # the planted model's arrays are the generator's business; the report keeps the scalar facts
        facts = {k: v for k, v in synth_info.items() if not hasattr(v, "shape") or v.shape == ()}
        info = {"train": f"synthetic:{synthetic}", "test": None, "synthetic": _jsonable(facts)}
        fraction = DEFAULT_HOLDOUT if test_fraction is None else test_fraction
        return _holdout(X, y, fraction, seed, info)

    for path in (data, test_path):
        if path:
            _check_file(path)
    from hogwild.cli.stream import check_width, load_streamed
    from hogwild.datasets._compressed import display_name, is_stream

    info = {"train": display_name(data), "test": display_name(test_path) if test_path else None}
    paths = [p for p in (data, test_path) if p]
    if any(is_stream(p) for p in paths):
        # stdin, a pipe or process substitution: read once (a pipe cannot be read twice); with the cache on, its
        # rows go to a temporary binary cache as they are parsed and every epoch reads them from there, memory-
        # mapped; with --no-cache they are held in memory
        if cache:
            from hogwild.cli.stream import spill_streamed

            loaded = spill_streamed(paths, np_dtype, cache_dir)
        else:
            loaded = load_streamed(paths, np_dtype)
        X, y = loaded[0]
        if test_path:
            X_test, y_test = loaded[1]
            return LoadedData(X, y, X_test, y_test, dict(info, test_split="file"))
        if test_fraction is not None:
            return _holdout(X, y, test_fraction, seed, info)
        return LoadedData(X, y, info=info)

    from hogwild.datasets.cache import is_cache_path
    from hogwild.datasets.libsvm import load_libsvm, load_libsvm_files

    load_kwargs = {"dtype": np_dtype, "cache": cache, "cache_dir": cache_dir}
    if test_path:
        if is_cache_path(data) or is_cache_path(test_path):
            # binary caches are read one by one; give both the wider feature count afterwards
            (X, y), (X_test, y_test) = load_libsvm(data, **load_kwargs), load_libsvm(test_path, **load_kwargs)
            X, X_test = _same_width(X, X_test)
        else:
            (X, y), (X_test, y_test) = _pairs(load_libsvm_files([data, test_path], **load_kwargs))
        check_width(X, data, data)
        check_width(X_test, test_path, test_path)
        info["test_split"] = "file"
        return LoadedData(X, y, X_test, y_test, info)
    X, y = load_libsvm(data, **load_kwargs)
    check_width(X, data, data)
    if test_fraction is not None:
        return _holdout(X, y, test_fraction, seed, info)
    return LoadedData(X, y, info=info)


def _same_width(*matrices):
    """The CSR matrices widened with empty columns to the largest feature count among them."""
    import scipy.sparse as sp

    width = max(X.shape[1] for X in matrices)
    return [
        X if X.shape[1] == width else sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], width))
        for X in matrices
    ]


def _pairs(loaded):
    """``[(X, y), (X_test, y_test)]`` from `load_libsvm_files`, whichever of the two usual shapes it returns."""
    loaded = list(loaded)
    if len(loaded) == 4:  # X, y, X_test, y_test, as scikit-learn's load_svmlight_files
        return (loaded[0], loaded[1]), (loaded[2], loaded[3])
    return tuple(loaded[0]), tuple(loaded[1])


def _holdout(X, y, fraction, seed, info):
    """Split rows at random (seeded) into train and a held-out test set of ``fraction`` of the rows."""
    import numpy as np

    from hogwild.errors import DataError

    n = X.shape[0]
    n_test = int(round(n * fraction))
    if n_test < 1 or n - n_test < 1:
        raise DataError(f"{info['train']}: {n} rows cannot be split into train and a {fraction:g} test fraction")
    order = np.random.default_rng(seed).permutation(n)
    test_rows, train_rows = np.sort(order[:n_test]), np.sort(order[n_test:])
    info = dict(info, test_split="holdout", test_fraction=fraction)
    y = np.asarray(y)
    from hogwild.problem import take_rows  # a memory-mapped set is split into temporary mapped files

    loaded = LoadedData(take_rows(X, train_rows), y[train_rows], take_rows(X, test_rows), y[test_rows],
                        dict(info, n_data_rows=n))
    loaded.train_rows = train_rows
    return loaded


def _check_file(path):
    """A one-line `DataError` for a path that is missing or a plain folder, before any parser sees it."""
    from hogwild.errors import DataError

    if path == STDIO:
        return
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, "header.json")):
        raise DataError(f"{path}: is a directory, not a data file (nor a binary cache)")


def _run_training(loaded, config, progress, init_model=None, log_path=None):
    """Call the engine with progress reporting (and the ``--log-jsonl`` log); each warning (a device fallback, a
    resumed or skipped checkpoint) becomes a one-line notice the moment it is raised, not after training."""
    import warnings

    import hogwild.engine as engine

    callback, hooks, log = progress, (), None
    if log_path:
        from hogwild.monitor import JsonlLog

        log = JsonlLog(log_path, config)
        hooks = (log.on_chunk,)

        def callback(event):
            progress(event)
            log.on_event(event)

    def show(message, category, filename, lineno, file=None, line=None):
        progress.notice(str(message))

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = show  # restored by catch_warnings on exit
            result = engine.train(
                loaded.X,
                loaded.y,
                config,
                X_test=loaded.X_test,
                y_test=loaded.y_test,
                callback=callback,
                hooks=hooks,
                sample_weight=loaded.sample_weight,
                init_model=init_model,
                classes=getattr(init_model, "classes", None),
            )
    finally:
        progress.close()
        if log is not None:
            log.close()
    _refuse_diverged(result, config)
    return result


def _refuse_diverged(result, config):
    """Raise `DivergenceError` when the last epoch's loss is not finite, so no model of a diverged run is saved."""
    from hogwild.errors import DivergenceError

    if result.history:
        loss = result.history[-1].get("train_loss")
        if loss is not None and not math.isfinite(loss):
            raise DivergenceError(
                f"training diverged (train loss {loss}) at epoch {result.history[-1].get('epoch')}; "
                f"try a smaller --lr than {config.effective_lr:g} or another --schedule"
            )


def final_metrics(result, loaded):
    """The "final" block: last train/validation values, then the saved model's metrics on the test set."""
    from hogwild.metrics import evaluate_model

    final = {}
    last = result.history[-1] if result.history else {}
    final["train_loss"] = last.get("train_loss")
    for key, value in last.items():
        if key.startswith("validation_"):
            final[key] = value
    model = result.model
    classification = getattr(model, "classes", None) is not None
    if loaded.X_test is None:
        keys = ("test_accuracy", "test_loss", "test_auc") if classification else ("test_rmse", "test_mae")
        final.update(dict.fromkeys(keys))
    else:
        metrics = evaluate_model(model, loaded.X_test, loaded.y_test)
        if classification:
            final["test_accuracy"] = metrics.get("accuracy")
            final["test_loss"] = metrics.get("log_loss", last.get("test_loss"))
            if "roc_auc" in metrics:
                final["test_auc"] = metrics["roc_auc"]
            if "per_class" in metrics:
                final["test_per_class"] = metrics["per_class"]
        else:
            final["test_rmse"] = metrics["rmse"]
            final["test_mae"] = metrics["mae"]
            final["test_loss"] = last.get("test_loss")
    final["epochs"] = result.epochs_run
    final["seconds"] = result.seconds
    final["stopped_early"] = bool(getattr(result, "stopped_early", False))
    return final


def throughput(history):
    """Rows and nonzeros per second over the whole run (epochs weighted by their seconds)."""
    seconds = sum(record.get("seconds", 0.0) for record in history)
    out = {}
    for key in ("rows_per_s", "nnz_per_s"):
        done = sum(record.get(key, 0.0) * record.get("seconds", 0.0) for record in history)
        out[key] = done / seconds if seconds > 0 else None
    return out


def metrics_report(config, result, final, loaded):
    """The ``--metrics-json`` document: config, epochs, final, throughput, dataset."""
    dataset = dict(loaded.info)
    classes = getattr(result.model, "classes", None)
    dataset["classes"] = None if classes is None else [_label(c) for c in classes]
    from hogwild.memory import peak_resident_bytes, resident_bytes

    return {
        "config": config.to_dict(),
        "epochs": [_jsonable(record) for record in result.history],
        "final": _jsonable(final),
        "throughput": _jsonable(throughput(result.history)),
        "dataset": _jsonable(dataset),
        # the process's resident memory (Linux VmHWM, VmRSS; memory-mapped data counts while it is mapped in)
        "memory": {"peak_rss_bytes": peak_resident_bytes(), "rss_bytes": resident_bytes()},
    }


def write_json(path, document):
    """Write ``document`` as strict JSON (non-finite numbers become null), atomically; ``-`` is stdout."""
    from hogwild._io import atomic_write

    text = json.dumps(_jsonable(document), indent=2, allow_nan=False) + "\n"
    if path == STDIO:
        click.echo(text, nl=False)
        return
    with atomic_write(path, "w") as handle:
        handle.write(text)


def format_summary(report, save_path=None, metrics_path=None):
    """The human summary printed on stdout at the end of `hogwild train`."""
    from hogwild.cli.progress import format_value

    final, dataset, speed = report["final"], report["dataset"], report["throughput"]
    config = report["config"]
    lines = [
        f"trained {config['model']} ({config['loss']}) on {dataset['train']}: {dataset['n_train']} rows x "
        f"{dataset['n_features']} features, {final['epochs']} epochs in {final['seconds']:.2f} s"
        + (f" ({_rate(speed.get('rows_per_s'))} rows/s)" if speed.get("rows_per_s") else "")
        + (" (stopped early)" if final.get("stopped_early") else "")
    ]
    shown = [
        f"{key} {format_value(value)}"
        for key, value in final.items()
        if key not in ("epochs", "seconds", "stopped_early", "test_per_class") and value is not None
    ]
    if shown:
        lines.append("  ".join(shown))
    if dataset.get("n_test"):
        lines.append(f"test set: {dataset['test'] or dataset.get('test_split')} ({dataset['n_test']} rows)")
    if save_path:
        lines.append(f"model saved to {save_path}")
    if metrics_path:
        lines.append(f"metrics written to {metrics_path}")
    return "\n".join(lines)


def _rate(value):
    from hogwild.cli.progress import format_rate

    return format_rate(value)


def _nnz(X):
    return int(X.nnz) if hasattr(X, "nnz") else int(X.shape[0] * X.shape[1])


def _label(value):
    """A class label as JSON: integral floats become ints (LIBSVM labels are usually -1/+1 or 1..K)."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _jsonable(value):
    """Plain JSON values: NumPy scalars and arrays unwrapped, tuples to lists, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
