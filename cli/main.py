"""Entry point of the ``hogwild`` console script: a click group whose subcommands load on first use.

Loading lazily keeps ``hogwild --help`` and start-up fast: NumPy, SciPy and Numba are imported only by the
command that needs them. Every error a user can cause reaches `main` as a `HogwildError`, `OSError` or click
exception and leaves as one line on stderr with a non-zero exit; a traceback appears only with ``--debug``.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys

import click

from hogwild import __version__

# name -> (module, attribute, one-line help shown by `hogwild --help` without importing the module)
COMMANDS = {
    "train": ("hogwild.cli.train", "train", "Train a model on a LIBSVM file (or a synthetic set)."),
    "predict": ("hogwild.cli.predict", "predict", "Write one prediction per input row."),
    "evaluate": ("hogwild.cli.predict", "evaluate", "Score a saved model on a labelled file."),
    "data": ("hogwild.cli.data", "data", "Convert, inspect, list, fetch and synthesize datasets."),
    "model": ("hogwild.cli.model", "model", "Show a saved model, or export it (LIBLINEAR)."),
    "plot": ("hogwild.cli.plot", "plot", "Draw a --log-jsonl log: loss and throughput against time."),
    "bench": ("hogwild.cli.bench", "bench", "Speedup study: modes x threads x devices, against peers."),
    "rl": ("hogwild.cli.rl", "rl", "Reinforcement learning: A3C/A2C actor-learners on compiled environments."),
}

EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell convention
EXIT_TERMINATED = 143  # 128 + SIGTERM


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module_name, attribute, _ = COMMANDS[name]
        return getattr(importlib.import_module(module_name), attribute)

    def format_commands(self, ctx, formatter):
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Examples:\n\n\b\n  hogwild data synth --like rcv1 --rows 100000 -o synth.svm\n"
    "  hogwild train synth.svm --validation-fraction 0.2 --threads 2 --save model.npz\n"
    "  hogwild evaluate model.npz synth.svm --json",
)
@click.version_option(__version__, "--version", prog_name="hogwild")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors (also HOGWILD_DEBUG=1).")
def cli(debug):
    """Hogwild!: lock-free parallel SGD for sparse linear models and small MLPs."""


def _debug_requested(args):
    return "--debug" in args or os.environ.get("HOGWILD_DEBUG", "") not in ("", "0")


def main(args=None):
    """Run the CLI and turn every user-caused error into one line on stderr and an exit code."""
    args = list(sys.argv[1:] if args is None else args)
    debug = _debug_requested(args)
    from hogwild.errors import ConfigError, HogwildError, TrainingInterrupted

    try:
        cli.main(args=args, prog_name="hogwild", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TrainingInterrupted as exc:
        click.echo(f"hogwild: {exc}", err=True)
        sys.exit(EXIT_TERMINATED if exc.signum == signal.SIGTERM else EXIT_INTERRUPTED)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("hogwild: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except ConfigError as exc:
        if debug:
            raise
        click.echo(f"hogwild: error: {exc}", err=True)
        sys.exit(2)
    except HogwildError as exc:
        if debug:
            raise
        click.echo(f"hogwild: error: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        if debug:
            raise
        click.echo(f"hogwild: error: {_describe_os_error(exc)}", err=True)
        sys.exit(1)
    except MemoryError:
        if debug:
            raise
        click.echo("hogwild: error: out of memory; try fewer rows, --dtype float32 or a smaller model", err=True)
        sys.exit(1)
    except Exception as exc:  # a bug: say so in one line, keep the traceback for --debug
        if debug:
            raise
        click.echo(
            f"hogwild: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
            err=True,
        )
        sys.exit(1)


def _describe_os_error(exc):
    """'<file>: <reason>' for the usual file errors, without Python's errno noise."""
    reason = exc.strerror or str(exc)
    if exc.filename:
        return f"{exc.filename}: {reason.lower() if reason[:1].isupper() and reason[1:2].islower() else reason}"
    return reason


if __name__ == "__main__":  # python -m hogwild.cli.main
    main()
