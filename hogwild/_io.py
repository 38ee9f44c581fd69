"""Writing outputs safely: atomic replacement of regular files, and checks of output paths before any work.

`atomic_write` writes a regular file through a temporary file in the target's folder, fsync and a rename, so a
crash, a full disk or Ctrl-C mid-write leaves the old file intact and at most a stray ``.tmp-*`` file. What the
user named is what gets written: a symlink is written through to its target (the link stays a link), and a
device, FIFO or socket (``/dev/null``, ``/dev/stdout``, a named pipe) is written directly, because a rename
would replace the device node with a regular file. Every `OSError` that leaves it names the user's path, never
the temporary one.

`check_outputs` runs before training or prediction starts: each output's folder exists and is writable, the
output is not a folder, not a read-only file, not one of the inputs and not another output, so a run never
fails (or destroys its own input) after the work is done.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
from pathlib import Path

from .errors import OutputError

STDIO = "-"  # the path that means stdin (inputs) or stdout (outputs)

# Threads beyond this many per available core only add contention (and, far enough, exhaust the OS's thread
# limit: "can't start new thread"); a floor keeps small machines able to oversubscribe for experiments.
THREADS_PER_CORE = 4
MIN_THREAD_CAP = 16
MAX_THREADS = 1024


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Yield a file object whose contents replace ``path`` only if the block finishes without error.

    A symlink is followed (its target is replaced, the link kept); a device, FIFO or socket is opened and
    written directly. Errors are `OSError`s whose ``filename`` is ``path`` as given.
    """
    shown = str(path)
    target = Path(os.path.realpath(path))
    try:
        info = os.stat(path)  # follows links, also /proc's links to pipes that realpath cannot spell
    except (FileNotFoundError, NotADirectoryError):
        info = None  # mkstemp below says which folder is missing
    except OSError as exc:
        raise _named(exc, shown) from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", shown)
    if info is not None and (not stat.S_ISREG(info.st_mode) or names_an_open_file(path)):
        # a device, FIFO or socket, or /dev/stdout and /dev/fd/N (an open file: `>> log` must stay an append)
        with _direct_write(path, mode, shown) as handle:
            yield handle
        return
    if info is not None and not os.access(target, os.W_OK):
        raise PermissionError(errno.EACCES, "the file is read-only", shown)
    directory = target.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".tmp-{target.name}-", dir=directory)
    except OSError as exc:
        raise _named(exc, shown, folder=directory) from None
    try:
        handle = os.fdopen(fd, mode)
        try:
            yield _NamedWrites(handle, shown)
            try:
                handle.flush()
                os.fsync(handle.fileno())
                handle.close()
            except OSError as exc:
                raise _named(exc, shown) from None
        finally:
            _close_quietly(handle)
        try:
            # mkstemp makes 0600 files: keep the mode of the file replaced, else what open() would give.
            os.chmod(tmp, stat.S_IMODE(info.st_mode) if info is not None else 0o666 & ~_current_umask())
            os.replace(tmp, target)
        except OSError as exc:
            raise _named(exc, shown) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # The rename is durable only once the folder entry is on disk too.
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.contextmanager
def _direct_write(target, mode, shown):
    """Write straight into a device, FIFO or socket; errors name ``shown``."""
    try:
        descriptor = _descriptor_of(target)
        if descriptor is not None:
            # write through our own descriptor: reopening /dev/stdout would truncate a `>> log` redirection
            handle = os.fdopen(os.dup(descriptor), mode)
        else:
            handle = open(target, mode)
    except OSError as exc:
        raise _named(exc, shown) from None
    try:
        yield _NamedWrites(handle, shown)
        try:
            handle.close()  # flushes: a full device fails here
        except OSError as exc:
            raise _named(exc, shown) from None
    finally:
        _close_quietly(handle)


def _close_quietly(handle):
    """Close ``handle`` after an error; a second failing flush must not replace the error being raised."""
    with contextlib.suppress(OSError):
        handle.close()


class _NamedWrites:
    """A file object whose write errors (a full disk) name the user's path; everything else is the file's own.

    Only writes are wrapped: an `OSError` raised by the caller's own code inside the block (reading an input)
    must keep naming the input.
    """

    def __init__(self, handle, shown):
        self._handle, self._shown = handle, shown

    def write(self, data):
        try:
            return self._handle.write(data)
        except OSError as exc:
            raise _named(exc, self._shown) from None

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        try:
            self._handle.flush()
        except OSError as exc:
            raise _named(exc, self._shown) from None

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __iter__(self):
        return iter(self._handle)


def names_an_open_file(path):
    """True for /dev/stdout, /dev/stderr, /dev/fd/N and /proc/PID/fd/N: a descriptor the shell opened for us."""
    spelled = os.path.abspath(str(path))
    return spelled in ("/dev/stdout", "/dev/stderr") or bool(re.match(r"^/(dev|proc/[^/]+)/fd/", spelled))


def writes_to_stdout(path):
    """Whether an output path ends up on this process's stdout (``-``, /dev/stdout, /dev/fd/1, the same file)."""
    if path is None:
        return False
    if str(path) == STDIO or _descriptor_of(path) == 1:
        return True
    try:
        return os.path.samestat(os.stat(path), os.fstat(1))
    except (OSError, ValueError):
        return False


def _descriptor_of(path):
    """The descriptor number of this process that ``path`` names (/dev/stdout, /dev/fd/N, /proc/self/fd/N), or None."""
    spelled = os.path.abspath(str(path))
    if spelled in ("/dev/stdout", "/dev/stderr"):
        return 1 if spelled.endswith("out") else 2
    match = re.match(r"^/(?:dev|proc/(self|thread-self|\d+))/fd/(\d+)$", spelled)
    if match and match.group(1) in (None, "self", "thread-self", str(os.getpid())):
        return int(match.group(2))
    return None


def _named(exc, shown, folder=None):
    """``exc`` again, naming the user's path (and saying which folder is missing when that is the cause)."""
    reason = exc.strerror or str(exc)
    if folder is not None and exc.errno == errno.ENOENT:
        reason = f"its folder {_shown_folder(shown, folder)} does not exist"
    elif folder is not None and exc.errno == errno.ENOTDIR:
        reason = f"{_shown_folder(shown, folder)} is not a folder"
    elif folder is not None and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = f"its folder {_shown_folder(shown, folder)} is not writable ({reason.lower()})"
    return OSError(exc.errno, reason, shown)


def _shown_folder(shown, real_folder):
    """The folder of ``shown`` as the user spelled it (the real one when a symlink was followed)."""
    if os.path.realpath(os.path.dirname(shown) or ".") == str(real_folder):
        return os.path.dirname(shown) or "."
    return str(real_folder)


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def open_log(path):
    """A text file appended to a line at a time, each line flushed as written (``--log-jsonl``, followed with
    ``tail -f``): created if missing, a symlink written through, ``-``, /dev/stdout and /dev/fd/N written through
    this process's own descriptor. Not atomic: a log is read while it grows. Errors name ``path``."""
    shown = str(path)
    descriptor = 1 if shown == STDIO else _descriptor_of(path)
    try:
        if descriptor is not None:
            handle = os.fdopen(os.dup(descriptor), "a", buffering=1)
        else:
            handle = open(path, "a", buffering=1)
    except OSError as exc:
        raise _named(exc, shown, folder=Path(os.path.realpath(path)).parent) from None
    return _NamedWrites(handle, shown)


# --- checks before the work starts ------------------------------------------------------------------------


def is_stream(path):
    """True for ``-`` and for paths that exist but are neither regular files nor folders (pipes, devices)."""
    if str(path) == STDIO:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def check_output(path, option=None, inputs=()):
    """Raise `OutputError` (one sentence naming ``option`` and ``path``) unless ``path`` can be written.

    ``inputs`` is a list of ``(label, path)``: an output that is one of them (the same file, through any
    link), or lies inside an input folder, is refused. ``-`` (stdout) is always fine.
    """
    if str(path) == STDIO:
        return
    label = f"{option} {path}" if option else str(path)
    if not str(path):
        raise OutputError(f"{option or 'output'}: the path is empty; give a file name")
    if str(path).endswith(os.sep):
        raise OutputError(f"{label}: ends with {os.sep}, so it names a folder; give a file name")
    real = os.path.realpath(path)
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        info = None  # the folder checks below say what is missing
    except OSError as exc:
        raise OutputError(f"{label}: {(exc.strerror or str(exc)).lower()}") from None
    folder = os.path.dirname(real) or "."
    if info is None:
        _check_folder(label, path, folder)
        return
    if stat.S_ISDIR(info.st_mode):
        raise OutputError(f"{label}: is a folder; give a file name")
    if not os.access(path, os.W_OK):
        raise OutputError(f"{label}: the file is not writable")
    if stat.S_ISREG(info.st_mode) and not names_an_open_file(path):
        _check_folder(label, path, folder)
        for input_label, input_path in inputs:
            if _same_file(real, info, input_path):
                raise OutputError(f"{label}: is also the input {input_label}; writing it would destroy that input")
    for input_label, input_path in inputs:
        if _inside_folder(real, input_path):
            raise OutputError(f"{label}: lies inside the input {input_label}; writing it would change that input")


def check_output_folder(path, option):
    """Raise `OutputError` unless ``path`` is a writable folder or one that can be created (checkpoints)."""
    label = f"{option} {path}"
    real = os.path.realpath(path)
    if os.path.exists(real):
        if not os.path.isdir(real):
            raise OutputError(f"{label}: is a file, not a folder")
        if not os.access(real, os.W_OK | os.X_OK):
            raise OutputError(f"{label}: the folder is not writable")
        return
    ancestor = os.path.dirname(real)
    while ancestor and not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    ancestor = ancestor or "."
    if not os.path.isdir(ancestor):
        raise OutputError(f"{label}: cannot be created, {ancestor} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"{label}: cannot be created, the folder {ancestor} is not writable")


def check_outputs(outputs, inputs=()):
    """`check_output` for every ``(option, path)`` in ``outputs``, and no two of them the same file."""
    seen = {}
    for option, path in outputs:
        if path is None:
            continue
        check_output(path, option, inputs)
        if str(path) == STDIO:
            key = STDIO
        elif is_stream(path):
            continue  # two outputs may both go to /dev/null
        else:
            key = os.path.realpath(path)
        if key in seen:
            raise OutputError(f"{option} {path}: is also the output of {seen[key]}; give each output its own file")
        seen[key] = option


def _check_folder(label, path, folder):
    shown = _shown_folder(str(path), folder)
    if not os.path.isdir(folder):
        if os.path.exists(folder):
            raise OutputError(f"{label}: {shown} is not a folder")
        raise OutputError(f"{label}: the folder {shown} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{label}: the folder {shown} is not writable")


def _same_file(real, info, input_path):
    if input_path is None or str(input_path) == STDIO:
        return False
    try:
        return os.path.samestat(info, os.stat(input_path))
    except OSError:
        return False


def _inside_folder(real, input_path):
    if input_path is None or str(input_path) == STDIO or not os.path.isdir(input_path):
        return False
    return real.startswith(os.path.realpath(input_path) + os.sep)


# --- machine ----------------------------------------------------------------------------------------------


def available_cores():
    """Number of cores this process may run on (respects affinity masks and cgroup pinning)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def max_threads():
    """The most worker threads a run may ask for: 4 per available core, at least 16, at most 1024."""
    return min(MAX_THREADS, max(MIN_THREAD_CAP, THREADS_PER_CORE * available_cores()))


def read_npy_header(raw, name, error):
    """``(shape, fortran_order, dtype, body)`` of one ``.npy`` member's bytes ``raw``, its header parsed without
    allocating anything; an unknown version or a damaged header raises ``error`` (the caller's one-sentence
    exception class) naming the array ``name``. Model files and checkpoints both read their arrays this way, each
    then checking the dtypes, shape and size it expects."""
    import io

    import numpy as np

    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise error(f"array {name} has an unknown .npy version {version}")
    except error:
        raise
    except Exception:  # noqa: BLE001 - NumPy's header parser raises ValueError, SyntaxError, tokenize errors...
        raise error(f"array {name} has a damaged .npy header") from None
    return shape, fortran, dtype, raw[stream.tell():]
