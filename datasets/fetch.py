"""Download a LIBSVM set: resumable, size- and content-checked, and renamed into place only when whole.

The bytes go to ``<file>.part`` beside the destination. A broken transfer is resumed with an HTTP Range
request (within the same call, up to ``retries`` times, and again by a later call), so a multi-gigabyte
file never restarts from zero. Once complete, the size is compared with the expected one, the file is parsed
(decompressing .bz2/.xz/.gz on the fly) to check its row and feature counts, and only then renamed to its
final name: a file under the final name is always a complete, parseable download.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPException
from pathlib import Path

from hogwild import __version__
from hogwild.errors import DataError, HogwildError

from . import registry as _registry

CHUNK_BYTES = 1 << 20
USER_AGENT = f"hogwild/{__version__} (+https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/)"


def fetch(name_or_url, dest_dir, progress=True, expected_size=None, expected_rows=None, expected_features=None,
          *, expected_sha256=None, registry=None, check=True, timeout=30.0, retries=3):
    """Download a registered set (by name) or any URL into ``dest_dir``; return the path of the file.

    A registered name supplies the URL and the expected size, rows and features (explicit arguments win).
    ``progress`` draws a progress line on stderr. With ``check`` the finished file is parsed with
    `load_libsvm` and its row count must equal ``expected_rows`` and its feature count (the largest index)
    must not exceed ``expected_features`` (the collection counts features over the train and test splits).
    A file already under the final name is returned as it is. ``timeout`` (seconds) bounds each network
    wait; ``retries`` is how many broken transfers are resumed before giving up.

    Raises `DataError` for an unknown name, an HTTP error, an unreachable host, a size, checksum or
    row/feature mismatch, or a file that does not parse.
    """
    entry = _registry.get(name_or_url, registry)
    if entry is not None:
        url, filename = entry.url, entry.filename
        expected_size = entry.compressed_size if expected_size is None else expected_size
        expected_sha256 = entry.sha256 if expected_sha256 is None else expected_sha256
        expected_rows = entry.rows if expected_rows is None else expected_rows
        expected_features = entry.features if expected_features is None else expected_features
    elif "://" in str(name_or_url):
        url = str(name_or_url)
        filename = _filename_of(url)
    else:
        raise DataError(
            f"unknown dataset {name_or_url!r}; run 'hogwild data list' for the names, or give a full URL"
        )
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise DataError(f"cannot download {url}: only http:// and https:// URLs are supported")

    dest_dir = Path(dest_dir)
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the download folder {dest_dir}: {exc.strerror or exc}") from None
    final = dest_dir / filename
    if final.exists():
        return final
    part = dest_dir / (filename + ".part")

    _download(url, part, expected_size, progress, timeout, retries)
    if expected_sha256 is not None:
        digest = _sha256(part)
        if digest != expected_sha256.lower():
            part.unlink()
            raise DataError(f"{url} downloaded with sha256 {digest}, not the expected {expected_sha256}; "
                            "the partial file was deleted, so run the command again")
    if check:
        _check_contents(url, part, expected_rows, expected_features)
    os.replace(part, final)
    return final


def _filename_of(url):
    """The last path segment of a URL, decoded; a URL naming a folder is an error."""
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise DataError(f"cannot tell a file name from the URL {url}; give a URL that ends in a file name")
    return name


def _download(url, part, expected_size, progress, timeout, retries):
    """Fill ``part`` with the bytes of ``url``, resuming from whatever ``part`` already holds."""
    broken = 0
    host = urllib.parse.urlsplit(url).netloc
    while True:
        offset = part.stat().st_size if part.exists() else 0
        if expected_size is not None and offset > expected_size:
            part.unlink()  # longer than the file can be: not a prefix of it
            offset = 0
        headers = {"User-Agent": USER_AGENT}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset:
                # Nothing left past our offset: the .part is already whole (its size is checked below).
                exc.close()
                break
            exc.close()
            raise DataError(f"{url}: the server answered HTTP {exc.code} ({exc.reason}); "
                            "check the dataset name or URL") from None
        except urllib.error.URLError as exc:
            reason = exc.reason.strerror if isinstance(exc.reason, OSError) and exc.reason.strerror else exc.reason
            raise DataError(f"cannot reach {host} ({reason}); check the network connection, or download "
                            f"{url} by hand into {part.parent}") from None
        except (socket.timeout, TimeoutError):
            raise DataError(f"{host} did not answer within {timeout:g} seconds; check the network connection, "
                            f"or download {url} by hand into {part.parent}") from None
        except (OSError, HTTPException) as exc:
            raise DataError(f"cannot download {url}: {exc}") from None

        with response:
            if offset and response.status == 206 and _range_start(response) == offset:
                mode = "ab"
            else:
                mode, offset = "wb", 0  # the server ignored the Range header: start again
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None and length.isdigit() else None
            if expected_size is not None and total is not None and total != expected_size:
                raise DataError(f"{url} is {total:,} bytes on the server but {expected_size:,} were expected; "
                                "the file has changed or the URL is wrong")
            done = offset
            meter = _Progress(part.name[:-5], total, sys.stderr) if progress else None
            try:
                with open(part, mode) as handle:
                    while True:
                        chunk = response.read(CHUNK_BYTES)
                        if not chunk:
                            break
                        handle.write(chunk)
                        done += len(chunk)
                        if meter:
                            meter.update(done)
                failure = None
            except (OSError, HTTPException, socket.timeout) as exc:
                if isinstance(exc, OSError) and exc.filename is not None:
                    raise  # a local file error (disk full, permissions): not the network's fault
                failure = exc
            finally:
                if meter:
                    meter.close()
        if failure is None and (total is None or done >= total):
            break
        broken += 1
        if broken > retries:
            why = f"{type(failure).__name__}: {failure}" if failure else "the connection closed early"
            raise DataError(f"the download of {url} broke off at {done:,} bytes after {retries} resumes ({why}); "
                            "run the command again to resume it")
        time.sleep(min(2.0, 0.1 * broken))

    size = part.stat().st_size
    if expected_size is not None and size != expected_size:
        part.unlink()
        raise DataError(f"{url} downloaded as {size:,} bytes, not the expected {expected_size:,}; "
                        "the partial file was deleted, so run the command again")


def _range_start(response):
    """The first byte offset of a 206 response's Content-Range ('bytes 100-199/200' -> 100), or None."""
    value = response.headers.get("Content-Range", "")
    try:
        unit, spec = value.split(" ", 1)
        return int(spec.split("-", 1)[0]) if unit.strip().lower() == "bytes" else None
    except ValueError:
        return None


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_contents(url, part, expected_rows, expected_features):
    """Parse the downloaded file and compare its shape with the expected one (the file stays a .part if not)."""
    from .libsvm import load_libsvm

    try:
        X, _ = load_libsvm(part, cache=False)
    except HogwildError as exc:
        raise DataError(f"{url} did not download as a LIBSVM file ({exc}); it was kept as {part}") from None
    rows, features = X.shape
    if expected_rows is not None and rows != expected_rows:
        raise DataError(f"{url} has {rows:,} rows, not the expected {expected_rows:,}; it was kept as {part}")
    if expected_features is not None and features > expected_features:
        raise DataError(f"{url} has {features:,} features, more than the expected {expected_features:,}; "
                        f"it was kept as {part}")


class _Progress:
    """A one-line progress meter on a stream: bytes done, total and rate, redrawn at most 10 times a second."""

    def __init__(self, label, total, stream):
        self.label, self.total, self.stream = label, total, stream
        self.start = self.last = time.monotonic()
        self.done = 0
        self.drawn = False

    def update(self, done):
        self.done = done
        now = time.monotonic()
        if now - self.last >= 0.1:
            self.last = now
            self._draw(now)

    def _draw(self, now):
        rate = self.done / max(now - self.start, 1e-9) / 1e6
        if self.total:
            percent = 100.0 * self.done / self.total
            text = (f"{self.label}: {self.done / 1e6:,.1f} of {self.total / 1e6:,.1f} MB ({percent:.0f}%), "
                    f"{rate:.1f} MB/s")
        else:
            text = f"{self.label}: {self.done / 1e6:,.1f} MB, {rate:.1f} MB/s"
        self.stream.write("\r" + text)
        self.stream.flush()
        self.drawn = True

    def close(self):
        self._draw(time.monotonic())
        self.stream.write("\n")
        self.stream.flush()


__all__ = ["fetch"]
