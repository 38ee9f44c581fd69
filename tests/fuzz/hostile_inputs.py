"""Run every hostile input of docs/reliability.md through the real ``hogwild`` CLI and print the table rows.

Usage: ``python tests/fuzz/hostile_inputs.py [--markdown]``. Each case builds its bad input in a temp folder,
runs the console script in a subprocess and reports the exit code and the stderr line the user sees.
A case "passes" when the exit code is the expected one, stderr is one line and has no traceback.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

GOOD = "+1 1:0.5 3:1.25\n-1 2:1 3:-0.5\n+1 1:2 2:0.25\n-1 3:0.75\n" * 10


def run(*args, cwd, stdin=None):
    child = subprocess.run([sys.executable, "-m", "hogwild.cli.main", *map(str, args)], cwd=cwd,
                           capture_output=True, input=stdin if stdin is not None else b"", timeout=600)
    return child.returncode, child.stderr.decode("utf-8", "replace").strip()


def build(folder):
    """name -> (argv, expected exit code); writes the files the cases need into ``folder``."""
    f = Path(folder)
    (f / "good.svm").write_text(GOOD)
    train = ["train", "--epochs", "1", "--threads", "1", "--no-cache", "--quiet"]
    cases = {}

    def text_case(name, content, **kw):
        path = f / f"{name}.svm"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        cases[name] = ([*train, path.name], 1)

    text_case("missing colon", "+1 1:0.5 3\n")
    text_case("non-numeric label", "abc 1:0.5\n")
    text_case("non-numeric index", "+1 x:0.5\n")
    text_case("non-numeric value", "+1 1:abc\n")
    text_case("negative index", "+1 -3:0.5\n")
    text_case("zero index (auto zero-based, accepted)", "+1 0:0.5 2:1\n-1 1:1\n")
    cases["zero index (auto zero-based, accepted)"] = (cases["zero index (auto zero-based, accepted)"][0], 0)
    text_case("indices not ascending", "+1 3:0.5 2:1\n")
    text_case("duplicate index", "+1 2:0.5 2:1\n")
    text_case("trailing junk", "+1 1:0.5 junk\n")
    text_case("empty value", "+1 1:\n")
    text_case("index beyond 2**31", f"+1 {2**31 + 5}:1\n")
    text_case("index beyond int64", f"+1 {2**64 + 5}:1\n")
    text_case("NaN value", "+1 1:nan\n")
    text_case("inf value", "+1 1:inf\n")
    text_case("NaN label", "nan 1:1\n")
    text_case("empty file", "")
    text_case("only comments", "# a comment\n# another\n")
    text_case("only blank lines", "\n\n   \n")
    text_case("non-UTF-8 bytes", b"+1 1:0.5\n\xff\xfe 2:1\n")
    text_case("NUL bytes", b"+1 1:0.5\x00 2:1\n")
    text_case("one class only", "+1 1:0.5\n+1 2:1\n")
    raw = GOOD.encode() * 50
    for suffix, compress in (("gz", gzip.compress), ("bz2", bz2.compress), ("xz", lzma.compress)):
        path = f / f"truncated.svm.{suffix}"
        blob = compress(raw)
        path.write_bytes(blob[: len(blob) // 2])
        cases[f"truncated .{suffix}"] = ([*train, path.name], 1)
        path = f / f"notreally.svm.{suffix}"
        path.write_bytes(b"this is not compressed\n")
        cases[f"not really .{suffix}"] = ([*train, path.name], 1)
    (f / "adir").mkdir()
    cases["directory instead of file"] = ([*train, "adir"], 1)
    cases["missing file"] = ([*train, "nope.svm"], 1)
    if os.geteuid() != 0:  # root reads files whatever their mode, so this case needs an ordinary user
        locked = f / "unreadable.svm"
        locked.write_text(GOOD)
        locked.chmod(0)
        cases["unreadable file"] = ([*train, locked.name], 1)

    # Model files.
    model = f / "model.npz"
    subprocess.run([sys.executable, "-m", "hogwild.cli.main", *train, "good.svm", "--save", "model.npz"], cwd=f,
                   check=True, capture_output=True)
    blob = model.read_bytes()
    (f / "truncated.model").write_bytes(blob[: len(blob) // 2])
    cases["model truncated"] = (["predict", "truncated.model", "good.svm"], 1)
    (f / "empty.model").write_bytes(b"")
    cases["model empty"] = (["predict", "empty.model", "good.svm"], 1)
    (f / "text.model").write_text("hello\n")
    cases["model is a text file"] = (["predict", "text.model", "good.svm"], 1)
    _edit_model(model, f / "version.model", lambda h: h.replace('"format_version": 2', '"format_version": 99'))
    cases["model of a future format version"] = (["predict", "version.model", "good.svm"], 1)
    _edit_weights(model, f / "edited.model")
    cases["model weights edited"] = (["predict", "edited.model", "good.svm"], 1)
    (f / "wide.svm").write_text("+1 1:1 9:1\n-1 2:1\n")
    cases["more features at predict"] = (["predict", "model.npz", "wide.svm"], 1)
    (f / "newlabel.svm").write_text("+1 1:1\n+7 2:1\n")
    cases["labels not in the model's classes at evaluate"] = (["evaluate", "model.npz", "newlabel.svm"], 1)
    cases["predict: model path is a directory"] = (["predict", "adir", "good.svm"], 1)

    # Checkpoints.
    ckpt = f / "ckpt"
    subprocess.run([sys.executable, "-m", "hogwild.cli.main", *train, "good.svm", "--checkpoint-dir", "ckpt",
                    "--epochs", "2"], cwd=f, check=True, capture_output=True)
    for path in ckpt.glob("checkpoint-*.npz"):
        path.write_bytes(path.read_bytes()[:200])
    cases["every checkpoint damaged, --resume"] = ([*train, "good.svm", "--checkpoint-dir", "ckpt", "--resume"], 1)
    subprocess.run([sys.executable, "-m", "hogwild.cli.main", *train, "good.svm", "--checkpoint-dir", "ckpt2"],
                   cwd=f, check=True, capture_output=True)
    cases["checkpoint of another config, --resume"] = (
        [*train, "good.svm", "--checkpoint-dir", "ckpt2", "--resume", "--lr", "0.5"], 1)
    cases["checkpoint of another dataset, --resume"] = (
        [*train, "wide.svm", "--checkpoint-dir", "ckpt2", "--resume"], 1)
    cases["--resume without --checkpoint-dir"] = ([*train, "good.svm", "--resume"], 2)
    cases["bad option value (--threads -3)"] = (["train", "good.svm", "--threads", "-3"], 2)
    cases["diverging run (--lr 1e30, constant)"] = (
        ["train", "good.svm", "--loss", "squared_error", "--schedule", "constant", "--lr", "1e30", "--epochs", "3",
         "--quiet", "--no-cache", "--save", "diverged.model"], 1)

    # Streams (issue 20): read once, in order, bounded; the bytes after each name go to stdin.
    cases["predict from a pipe (/dev/stdin)"] = (["predict", "model.npz", "/dev/stdin"], 0, GOOD.encode())
    cases["train from stdin (-), gzip"] = ([*train, "-"], 0, gzip.compress(GOOD.encode()))
    cases["train from stdin, random bytes"] = ([*train, "-"], 1, random.Random(20).randbytes(200_000))
    cases["DATA and --test both stdin"] = ([*train, "-", "--test", "-"], 2, GOOD.encode())
    cases["predict /dev/zero (no line ends)"] = (["predict", "model.npz", "/dev/zero"], 1)
    cases["model is /dev/zero"] = (["predict", "/dev/zero", "good.svm"], 1)

    # Output paths.
    os.symlink("good.svm", f / "good-link.svm")
    cases["--save onto the training data"] = ([*train, "good.svm", "--save", "good.svm"], 1)
    cases["--save onto a symlink to the training data"] = ([*train, "good.svm", "--save", "good-link.svm"], 1)
    cases["-o onto the model"] = (["predict", "model.npz", "good.svm", "-o", "model.npz"], 1)
    cases["--metrics-json in a missing folder"] = ([*train, "good.svm", "--save", "m2.npz", "--metrics-json",
                                                    "no-such-dir/sub/m.json"], 1)
    cases["--save is a folder"] = ([*train, "good.svm", "--save", "adir"], 1)
    cases["--save and --metrics-json the same file"] = ([*train, "good.svm", "--save", "x", "--metrics-json", "x"], 1)
    cases["--save - (stdout)"] = ([*train, "good.svm", "--save", "-"], 2)
    cases["--checkpoint-dir is a file"] = ([*train, "good.svm", "--checkpoint-dir", "good.svm"], 1)
    if os.path.exists("/dev/full"):
        cases["-o /dev/full (device full)"] = (["predict", "model.npz", "good.svm", "-o", "/dev/full"], 1)

    # Crafted model files: the header re-signed after an edit, or arrays a writer never produces.
    _craft(model, f / "softmax.model", lambda h, m: h["meta"].update(multiclass="softmax"))
    cases["model header edited binary -> softmax (re-signed)"] = (["predict", "softmax.model", "good.svm", "--proba"], 1)
    _craft(model, f / "softmax-plain.model", lambda h, m: h["meta"].update(multiclass="softmax"), resign=False)
    cases["model header edited, checksum not updated"] = (["predict", "softmax-plain.model", "good.svm"], 1)
    _craft(model, f / "oneclass.model", lambda h, m: (h.update(classes=h["classes"][:1]),
                                                      m.update(classes=m["classes"][:1])))
    cases["model with one class"] = (["predict", "oneclass.model", "good.svm"], 1)
    _craft(model, f / "nan.model", lambda h, m: m.update(coef=m["coef"] * float("nan")))
    cases["model with NaN weights"] = (["predict", "nan.model", "good.svm"], 1)
    _craft(model, f / "half.model", lambda h, m: m.update(coef=m["coef"].astype("float16")))
    cases["model with float16 weights"] = (["predict", "half.model", "good.svm"], 1)

    # Options that do not apply, and ranges.
    cases["--multiclass softmax with a regression loss"] = (
        [*train, "good.svm", "--multiclass", "softmax", "--loss", "squared_error"], 2)
    cases["--hidden 0 on a linear model"] = ([*train, "good.svm", "--hidden", "0"], 2)
    cases["--threads 100000"] = (["train", "good.svm", "--threads", "100000"], 2)
    cases["--seed 2**70"] = ([*train, "good.svm", "--seed", str(2**70)], 2)
    cases["--lr nan"] = ([*train, "good.svm", "--lr", "nan"], 2)

    # Inputs without bounds.
    (f / "huge index.svm").write_text(f"+1 1:1\n-1 {2**40}:1\n")
    cases["data info: feature index 2**40"] = (["data", "info", "--no-cache", "huge index.svm"], 1)
    return cases


def _craft(src, dst, edit, resign=True):
    """Copy a model with its header and arrays edited by ``edit(header, arrays)``; ``resign`` updates both
    checksums as someone who knows the format would."""
    import json

    import numpy as np

    from hogwild.model_io import _checksum, _header_checksum

    members = {name[: -len(".npy")]: array for name, array in _members(src).items()}
    header = json.loads(members.pop("__header__").tobytes().decode())
    edit(header, members)
    if resign:
        header["sha256"] = _checksum(members)
        header["header_sha256"] = _header_checksum(header)
    np.savez(dst, __header__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **members)
    Path(str(dst) + ".npz").replace(dst)


def _members(src):
    import io

    import numpy as np

    with zipfile.ZipFile(src) as archive:
        return {info.filename: np.load(io.BytesIO(archive.read(info.filename)), allow_pickle=False)
                for info in archive.infolist()}


def _write(dst, members):
    import numpy as np

    np.savez(dst, **{name[: -len(".npy")]: array for name, array in members.items()})
    Path(str(dst) + ".npz").replace(dst)


def _edit_model(src, dst, edit):
    """Copy a model with its JSON header (a uint8 array, model_io's layout) edited by ``edit`` as text."""
    import numpy as np

    members = _members(src)
    header = members["__header__.npy"].tobytes().decode()
    members["__header__.npy"] = np.frombuffer(edit(header).encode(), dtype=np.uint8)
    _write(dst, members)


def _edit_weights(src, dst):
    """Copy a model with one weight changed (as a hand edit would), the header left as it was."""
    members = _members(src)
    for name, array in members.items():
        if name != "__header__.npy" and array.dtype.kind == "f" and array.size:
            array = array.copy()
            array.flat[0] += 1.0
            members[name] = array
            break
    _write(dst, members)


def main():
    markdown = "--markdown" in sys.argv
    folder = tempfile.mkdtemp(prefix="hogwild-hostile-")
    failures = 0
    try:
        for name, (argv, expected, *stdin) in build(folder).items():
            code, err = run(*argv, cwd=folder, stdin=stdin[0] if stdin else None)
            lines = err.splitlines()
            shown = (lines[-1] if lines else "(nothing)").replace(folder + "/", "").replace(folder, ".")
            shown = shown.replace("|", "\\|").replace("`", "'")
            # Usage errors (exit 2) keep click's three-line usage message; every other error is one line.
            one_line = len(lines) <= 1 or (expected == 2 and lines[-1].startswith("Error:"))
            ok = code == expected and one_line and "Traceback" not in err and "internal error" not in err
            failures += not ok
            if markdown:
                print(f"| {name} | `hogwild {' '.join(argv)}` | {code} | `{shown}` | {'ok' if ok else 'NOT OK'} |")
            else:
                print(f"{'ok    ' if ok else 'NOT OK'} [{code}] {name}: {shown}" + ("" if ok else f"\n{err}"))
    finally:
        for path in Path(folder).rglob("*"):
            try:
                path.chmod(stat.S_IRWXU)
            except OSError:
                pass
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{failures} case(s) not ok", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
