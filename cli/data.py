"""``hogwild data``: convert LIBSVM text to the binary cache, describe a set, list, fetch and synthesize sets.

NumPy, SciPy and Numba are imported inside the subcommands so that ``hogwild data --help`` stays fast.
Errors are `hogwild.errors` types or click exceptions; `hogwild.cli.main` turns them into one line on stderr.
"""

from __future__ import annotations

import json
import math

import click

SYNTH_SHAPES = ("rcv1", "url", "kdda", "dense")
MAX_ROWS = 2**31 - 1  # the engine's limit for rows and features (int32 indices inside kernels)
MAX_SEED = 2**32 - 1
MAX_CLASSES = 10_000
SYNTH_TASKS = ("binary", "multiclass", "regression")
CONTEXT = {"max_content_width": 100, "help_option_names": ["-h", "--help"]}


@click.group(
    context_settings=CONTEXT,
    epilog="""Examples:

\b
  hogwild data synth --like rcv1 --rows 200000 -o synth.svm
  hogwild data info synth.svm
  hogwild data list
  hogwild data fetch a9a --dir data
  hogwild data convert data/a9a
""",
)
def data():
    """Convert, inspect, list, fetch and synthesize datasets."""


# ------------------------------------------------------------------------------------------------ convert


@data.command(
    context_settings=CONTEXT,
    epilog="""Examples:

\b
  hogwild data convert a9a                      # cache under $HOGWILD_CACHE_DIR or ~/.cache/hogwild
  hogwild data convert rcv1.svm.xz --cache-dir .  # cache beside the file
  hogwild data convert news20.bz2 --dtype float64

\b
Later loads of FILE (hogwild train FILE, load_libsvm) memory-map the cache; a cache whose source
changed is detected and rebuilt. The cache folder's path is printed on stdout. The text is parsed and
written about 64 MB at a time, so memory stays bounded whatever the file's size (a compressed FILE is
decompressed to a temporary file beside the cache first).
""",
)
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False), metavar="FILE...")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    envvar="HOGWILD_CACHE_DIR",
    show_envvar=True,
    default=None,
    help="Folder for the cache [default: $XDG_CACHE_HOME/hogwild, else ~/.cache/hogwild].",
)
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True,
              help="Floating type of the stored values.")
@click.option("--zero-based", type=click.Choice(["auto", "yes", "no"]), default="auto", show_default=True,
              help="Index base of the file: 'auto' guesses zero-based when an index 0 appears (as scikit-learn does).")
@click.option("--query-id/--no-query-id", default=False, show_default=True,
              help="Keep qid: tokens (stored beside the labels) instead of ignoring them.")
def convert(files, cache_dir, dtype, zero_based, query_id):
    """Parse LIBSVM FILE(s) once and write the binary cache (CSR arrays as .npy plus a JSON header)."""
    from hogwild.datasets.cache import convert as convert_file

    from hogwild.datasets._compressed import is_stream

    zero = {"auto": "auto", "yes": True, "no": False}[zero_based]
    for file in files:
        if is_stream(file):
            raise click.BadParameter(f"{file} is a stream (a pipe or device); a cache belongs to a file that can be "
                                     "read again: save the stream to a file first", param_hint="'FILE...'")
    for file in files:
        target = convert_file(file, cache_dir=cache_dir, dtype=dtype, zero_based=zero, query_id=query_id)
        click.echo(str(target))


# --------------------------------------------------------------------------------------------------- info


@data.command(
    context_settings=CONTEXT,
    epilog="""Examples:

\b
  hogwild data info a9a
  hogwild data info news20.bz2 --json > news20.json
  hogwild data info synth.hwcache --exact

\b
Omega, Delta and rho are the sparsity measures of the Hogwild! paper (Niu et al., 2011): the largest
row support, the largest fraction of rows sharing one feature, and the largest fraction of rows whose
features meet a given row's. Small values predict near-linear speed-up of lock-free updates. rho is
exact up to --exact-max-rows rows and otherwise the maximum over --sample random rows (a lower bound).
""",
)
@click.argument("file", type=click.Path(exists=True, allow_dash=True), metavar="FILE")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as one JSON object on stdout.")
@click.option("--exact", is_flag=True, help="Compute rho over every row whatever the size (can be slow).")
@click.option("--exact-max-rows", type=click.IntRange(1, MAX_ROWS), default=20_000, show_default=True,
              help="Largest row count for which rho is computed exactly without --exact; 1 to 2^31-1.")
@click.option("--sample", type=click.IntRange(1, MAX_ROWS), default=1_000, show_default=True,
              help="Rows sampled to estimate rho on larger sets; 1 to 2^31-1.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True,
              help="Seed of the rho sample; 0 to 2^32-1.")
@click.option("--cache/--no-cache", default=True, show_default=True,
              help="Use (and write) the binary cache of a text FILE.")
@click.option("--cache-dir", type=click.Path(file_okay=False), envvar="HOGWILD_CACHE_DIR", show_envvar=True,
              default=None, help="Folder for the cache [default: $XDG_CACHE_HOME/hogwild, else ~/.cache/hogwild].")
@click.option("--hash-bits", type=int, default=None, metavar="B",
              help="Also count the collisions of hashing the features into 2^B columns, as train --hash-bits B "
                   "would; 1 to 30.")
def info(file, as_json, exact, exact_max_rows, sample, seed, cache, cache_dir, hash_bits):
    """Print rows, features, nnz, density, row lengths, labels and the Hogwild! sparsity measures of FILE.

    FILE is LIBSVM text (plain, .gz, .bz2 or .xz) or a binary cache folder (.hwcache); ``-`` (stdin) or a pipe
    is read once and not cached.
    """
    from hogwild.cli.stream import check_feature_memory, check_width, load_streamed
    from hogwild.datasets._compressed import display_name, is_stream
    from hogwild.datasets.libsvm import load_libsvm
    from hogwild.datasets.stats import dataset_stats

    _refuse_unused(exact and "--exact", ["exact_max_rows", "sample"])
    _refuse_unused(not cache and "--no-cache", ["cache_dir"])
    if hash_bits is not None:
        from hogwild.errors import ConfigError
        from hogwild.hashing import check_hash_bits

        try:
            check_hash_bits(hash_bits)
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="'--hash-bits'") from None
    if is_stream(file):
        (X, y), = load_streamed([file], "float32")
    else:
        X, y = load_libsvm(file, cache=cache, cache_dir=cache_dir)
        check_width(X, file, file)
    check_feature_memory(X, file, _STATS_BYTES_PER_FEATURE, "describing it")
    stats = dataset_stats(X, y, exact_max_rows=None if exact else exact_max_rows, sample=sample, seed=seed)
    stats = {"file": display_name(file), **stats}
    if hash_bits is not None:
        from hogwild.hashing import collisions

        stats["hashing"] = collisions(X, hash_bits)
    if as_json:
        click.echo(json.dumps(stats, indent=1))
        return
    click.echo(format_stats(stats))


# Bytes per feature that `dataset_stats` holds at once (feature degrees, masks, the rho scan's bounds).
_STATS_BYTES_PER_FEATURE = 24


def check_synthetic_memory(like, rows, features=None, nnz_per_row=None, dtype="float32", option="--rows"):
    """A usage error on ``option`` when a synthetic set's arrays would need more than half the available memory."""
    from hogwild.cli.stream import available_memory
    from hogwild.datasets.synth import default_rows, nnz_estimate

    rows = default_rows(like) if rows is None else rows
    nnz = nnz_estimate(like, rows, features, nnz_per_row)
    # values, indices (int32 or int64) and the generator's temporaries: a lower bound of what it holds at once
    needed = nnz * ((4 if dtype == "float32" else 8) + 8)
    available = available_memory()
    if available is not None and needed > available // 2:
        raise click.BadParameter(
            f"a --like {like} set of {rows:,} rows holds about {nnz:,} nonzeros, about {needed / 2**30:.1f} GiB; "
            f"{available / 2**30:.1f} GiB of memory are available",
            param_hint=f"'{option}'",
        )


def _refuse_unused(reason, names):
    """A usage error for any of ``names`` typed on the command line although ``reason`` makes it unused."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    for name in names:
        if reason and ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE:
            flag = "--" + name.replace("_", "-")
            raise click.BadParameter(f"{flag} is not used with {reason}; remove one of them", param_hint=f"'{flag}'")


def format_stats(stats):
    """A readable two-column table of `dataset_stats` output."""
    rho_how = ("exact" if stats["rho_exact"]
               else f"estimated from {stats['rho_sample_rows']:,} sampled rows, a lower bound")
    rows = [
        ("file", stats.get("file", "")),
        ("rows", f"{stats['rows']:,}"),
        ("features", f"{stats['features']:,}"),
        ("nnz", f"{stats['nnz']:,}"),
        ("density", f"{stats['density']:.3g}"),
        ("nnz per row", f"min {stats['nnz_per_row_min']:,}, mean {stats['nnz_per_row_mean']:.1f}, "
                        f"max {stats['nnz_per_row_max']:,}"),
        ("empty rows", f"{stats['empty_rows']:,}"),
        ("unused features", f"{stats['empty_features']:,}"),
    ]
    if stats.get("labels"):
        rows.append(("labels", ", ".join(f"{k}: {v:,}" for k, v in stats["labels"].items())))
    elif "label_min" in stats:
        rows.append(("labels (real)", f"min {stats['label_min']:.4g}, mean {stats['label_mean']:.4g}, "
                                      f"max {stats['label_max']:.4g}"))
    rows += [
        ("Omega (max row support)", f"{stats['omega']:,}"),
        ("Delta (max feature share)", f"{stats['delta']:.4g} (feature {stats['delta_feature']})"),
        ("rho (max overlap share)", f"{stats['rho']:.4g} ({rho_how})"),
    ]
    hashing = stats.get("hashing")
    if hashing:
        rows += [
            (f"hashed to 2^{hashing['hash_bits']}", f"{hashing['buckets_used']:,} of {hashing['buckets']:,} columns "
                                                     f"used by {hashing['features_used']:,} features"),
            ("colliding features", f"{hashing['features_colliding']:,} share a column with another "
                                   f"({hashing['features_used'] - hashing['buckets_used']:,} fewer columns than "
                                   "features)"),
            ("collisions in rows", f"{hashing['row_collisions']:,} non-zeros summed into another of their row "
                                   f"({hashing['nnz_hashed']:,} of {hashing['nnz']:,} left)"),
        ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


# --------------------------------------------------------------------------------------------------- list


@data.command(
    "list",
    context_settings=CONTEXT,
    epilog="""Examples:

\b
  hogwild data list
  hogwild data list --json | python -c "import json,sys; print(list(json.load(sys.stdin)))"

\b
Sizes shown as '?' are not known here; fetch then checks the row and feature counts only.
$HOGWILD_LIBSVM_MIRROR replaces the base URL (a local mirror).
""",
)
@click.option("--json", "as_json", is_flag=True, help="Print the registry as a JSON object (name -> entry) on stdout.")
def list_(as_json):
    """List the standard LIBSVM sets that 'hogwild data fetch' knows: task, shape, size and URL."""
    from hogwild.datasets.registry import DATASETS

    if as_json:
        click.echo(json.dumps({name: entry.as_dict() for name, entry in DATASETS.items()}, indent=1))
        return
    table = [("name", "task", "rows x features", "size", "url")]
    for name, entry in DATASETS.items():
        shape = f"{entry.rows:,} x {entry.features:,}" if entry.rows and entry.features else "?"
        table.append((name, entry.task, shape, _format_bytes(entry.compressed_size), entry.url))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths)) + "  " + row[4])


def _format_bytes(size):
    if size is None:
        return "?"
    units = ("B", "KB", "MB", "GB", "TB")
    power = min(len(units) - 1, int(math.log(max(size, 1), 1000)))
    return f"{size / 1000 ** power:.1f} {units[power]}" if power else f"{size} B"


# -------------------------------------------------------------------------------------------------- fetch


@data.command(
    context_settings=CONTEXT,
    epilog="""Examples:

\b
  hogwild data fetch a9a
  hogwild data fetch rcv1.binary --dir ~/data
  hogwild data fetch https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary/a9a.t --dir data

\b
An interrupted download resumes (HTTP Range) when the command is run again. The finished file is
parsed to check its row and feature counts before it gets its final name; its path is printed on stdout.
""",
)
@click.argument("name", metavar="NAME|URL")
@click.option("--dir", "dest_dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder to download into.")
@click.option("--check/--no-check", default=True, show_default=True,
              help="Parse the download to check its row and feature counts before keeping it.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress line on stderr.")
@click.option("--timeout", type=click.FloatRange(0, 86_400, min_open=True), default=30.0, show_default=True,
              help="Seconds to wait for the server before giving up; more than 0, at most 86,400.")
@click.option("--retries", type=click.IntRange(0, 100), default=3, show_default=True,
              help="Broken transfers resumed before giving up; 0 to 100.")
def fetch(name, dest_dir, check, progress, timeout, retries):
    """Download a standard LIBSVM set by NAME (see 'hogwild data list'), or any URL, into --dir."""
    from hogwild._io import check_output_folder
    from hogwild.datasets.fetch import fetch as fetch_file

    check_output_folder(dest_dir, "--dir")
    path = fetch_file(name, dest_dir, progress=progress, check=check, timeout=timeout, retries=retries)
    click.echo(str(path))


# -------------------------------------------------------------------------------------------------- synth


@data.command(
    context_settings=CONTEXT,
    epilog="""Examples:

\b
  hogwild data synth --like rcv1 --rows 200000 -o synth.svm
  hogwild data synth --like url --rows 100000 --features 500000 -o url.hwcache
  hogwild data synth --like kdda --rows 1000000 --nnz-per-row 20 --seed 7 -o kdda.svm.xz
  hogwild data synth --like dense --rows 50000 --features 200 --task regression -o dense.svm
  hogwild data synth --like rcv1 --rows 50000 --task multiclass --classes 5 -o multi.svm

\b
Feature popularity is Zipf-like, labels come from a planted linear model with noise, so a linear
model learns the data (to about 90% accuracy with the default noise). The same seed gives the same file.
A summary goes to stderr.
""",
)
@click.option("--like", type=click.Choice(SYNTH_SHAPES), default="rcv1", show_default=True,
              help="Public set whose shape and texture to imitate (rcv1: tf-idf unit rows; url: mostly binary; "
                   "kdda: binary, very sparse; dense: every feature present).")
@click.option("--rows", type=click.IntRange(1, MAX_ROWS), required=True, help="Number of rows to generate; 1 to 2^31-1.")
@click.option("--features", type=click.IntRange(1, MAX_ROWS), default=None,
              help="Number of features, 1 to 2^31-1 [default: the preset's: rcv1 47,236, url 3,231,961, "
                   "kdda 20,216,830, dense 300].")
@click.option("--nnz-per-row", type=click.IntRange(1, MAX_ROWS), default=None,
              help="Mean nonzeros per row, 1 to the feature count [default: the preset's: rcv1 75, url 115, "
                   "kdda 36; dense: all].")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True, help="Random seed; 0 to 2^32-1.")
@click.option("--task", type=click.Choice(SYNTH_TASKS), default="binary", show_default=True,
              help="Labels: binary (-1/+1), multiclass (1..K) or regression (real).")
@click.option("--classes", type=click.IntRange(2, MAX_CLASSES), default=4, show_default=True,
              help="Number of classes K for --task multiclass; 2 to 10,000.")
@click.option("--label-noise", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.05, show_default=True,
              help="Fraction of labels replaced by a wrong one (regression: noise sd relative to the signal's); "
                   "in [0, 1).")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True,
              help="Floating type of the values.")
@click.option("--format", "fmt", type=click.Choice(["auto", "libsvm", "cache"]), default="auto", show_default=True,
              help="Output format; 'auto' writes the binary cache when FILE ends in .hwcache, else LIBSVM text "
                   "(compressed when FILE ends in .gz, .bz2 or .xz).")
@click.option("-o", "--output", required=True, metavar="FILE",
              help="Where to write the set (its folder must exist; a symlink is written through).")
def synth(like, rows, features, nnz_per_row, seed, task, classes, label_noise, dtype, fmt, output):
    """Generate a synthetic set shaped like a public one, with a planted linear model, and write it."""
    import numpy as np

    from hogwild.datasets.synth import make_synthetic

    from hogwild._io import check_output, check_output_folder

    if like == "dense" and nnz_per_row is not None:
        raise click.BadParameter("the dense preset stores every feature; leave it out", param_hint="'--nnz-per-row'")
    if features is not None and nnz_per_row is not None and nnz_per_row > features:
        raise click.BadParameter(f"{nnz_per_row} nonzeros per row do not fit in {features} features",
                                 param_hint="'--nnz-per-row'")
    _refuse_unused(task != "multiclass" and f"--task {task}", ["classes"])
    check_synthetic_memory(like, rows, features, nnz_per_row, dtype)
    if fmt == "cache" or (fmt == "auto" and output.endswith(".hwcache")):
        check_output_folder(output if output.endswith(".hwcache") else output + ".hwcache", "-o")
    else:
        check_output(output, "-o")
    X, y, info_ = make_synthetic(like=like, n_rows=rows, n_features=features, nnz_per_row=nnz_per_row, seed=seed,
                                 dtype=np.dtype(dtype), label_noise=label_noise, task=task, n_classes=classes)
    if fmt == "auto":
        fmt = "cache" if output.endswith(".hwcache") else "libsvm"
    if fmt == "cache":
        from hogwild.datasets.cache import write_cache

        target = output if output.endswith(".hwcache") else output + ".hwcache"
        # Synthetic data are written one-based in text; the cache records the same base.
        written = write_cache(X, y, target, index_shift=1, raw_min_index=1, dtype=X.dtype)
    else:
        from hogwild.datasets.libsvm import dump_libsvm

        dump_libsvm(X, y, output)
        written = output
    quality = (f"planted model accuracy {info_['planted_accuracy']:.3f}" if "planted_accuracy" in info_
               else f"planted model R^2 {info_['planted_r2']:.3f}")
    click.echo(
        f"wrote {written}: {info_['n_rows']:,} rows x {info_['n_features']:,} features, {info_['nnz']:,} nonzeros "
        f"({info_['mean_nnz_per_row']:.1f} per row), task {task}, {quality}",
        err=True,
    )
