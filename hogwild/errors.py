"""Errors a user can cause. Each carries one sentence that names the file, line or option at fault.

The CLI prints ``str(error)`` on one line and exits 1 (2 for `ConfigError`); a traceback is shown only
with ``--debug``. Library code raises these and never calls ``sys.exit``.
"""


class HogwildError(Exception):
    """Base class of every error that is the user's to fix (bad input, bad option, diverged run)."""


class ConfigError(HogwildError, ValueError):
    """An option has a bad value. ``option`` is the Python name of the option (a `TrainConfig` field)."""

    def __init__(self, option, message):
        super().__init__(message)
        self.option = option


class LibsvmFormatError(HogwildError, ValueError):
    """A LIBSVM/svmlight text file is malformed; the message names the file, the line and the bad token."""

    def __init__(self, path, line, token, reason):
        self.path, self.line, self.token, self.reason = str(path), line, token, reason
        where = f"{self.path}:{line}" if line else self.path
        shown = f" near {token!r}" if token else ""
        super().__init__(f"{where}: {reason}{shown}")


class DataError(HogwildError, ValueError):
    """Data that parses but cannot be used as asked (empty file, shape or label mismatch, bad cache)."""


class ModelFormatError(HogwildError, ValueError):
    """A model file is missing, truncated, edited, or of an unknown format version."""


class OutputError(HogwildError, OSError):
    """An output path cannot be written as asked: its folder is missing or read-only, it is a folder, or it is
    one of the run's inputs. Raised before any work starts, so nothing is lost after the fact."""


class CheckpointError(HogwildError):
    """No usable checkpoint: damaged, or from another dataset or configuration."""


class DivergenceError(HogwildError, FloatingPointError):
    """Training produced non-finite weights or loss."""


class WorkerError(HogwildError, RuntimeError):
    """A worker raised; the others were stopped. Names the worker and the row range it was on."""

    def __init__(self, worker, row_start, row_stop, cause):
        self.worker, self.row_start, self.row_stop, self.cause = worker, row_start, row_stop, cause
        super().__init__(
            f"worker {worker} failed on rows {row_start}..{row_stop}: {type(cause).__name__}: {cause}"
        )


class NoCudaError(HogwildError, RuntimeError):
    """``device='cuda'`` was asked for and no CUDA GPU is usable."""

    def __init__(self, detail=""):
        extra = f" ({detail})" if detail else ""
        super().__init__(f"no CUDA GPU was found{extra}; use --device cpu (or device='cpu')")


class TrainingInterrupted(HogwildError):
    """Ctrl-C or SIGTERM stopped training at a chunk boundary; ``checkpoint`` is the path written, if any."""

    def __init__(self, signum, checkpoint=None, model=None, history=None):
        self.signum, self.checkpoint, self.model, self.history = signum, checkpoint, model, history
        where = f"; checkpoint saved to {checkpoint}" if checkpoint else "; no checkpoint was configured"
        super().__init__(f"training interrupted{where}")
