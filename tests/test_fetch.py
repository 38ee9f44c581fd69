"""Downloads against a local HTTP server on 127.0.0.1: full, compressed, resumed, and every error path."""

import bz2
import hashlib
import socket

import numpy as np
import pytest
import scipy.sparse as sp

from hogwild.datasets import registry
from hogwild.datasets.fetch import fetch
from hogwild.errors import DataError
from local_http import serve_folder

TIMEOUT = 5.0
N_ROWS, N_FEATURES = 60, 25


def _libsvm_text(n_rows=N_ROWS, n_features=N_FEATURES, seed=0):
    """Small LIBSVM text whose largest index is exactly n_features (one-based)."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n_rows):
        cols = np.sort(rng.choice(n_features, size=rng.integers(1, 6), replace=False)) + 1
        if i == 0:
            cols = np.unique(np.append(cols, n_features))
        label = "+1" if rng.random() < 0.5 else "-1"
        lines.append(label + "".join(f" {c}:{rng.random():.4f}" for c in cols))
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    text = _libsvm_text()
    (root / "small.svm").write_bytes(text)
    (root / "small.svm.bz2").write_bytes(bz2.compress(text))
    (root / "page.html").write_bytes(b"<html><body>Not the file you wanted</body></html>\n")
    return root


def test_full_download_by_url(site, tmp_path):
    dest = tmp_path / "dest"
    with serve_folder(site) as server:
        path = fetch(server.url + "small.svm", dest, progress=False, timeout=TIMEOUT,
                     expected_rows=N_ROWS, expected_features=N_FEATURES)
    assert path == dest / "small.svm"
    assert path.read_bytes() == (site / "small.svm").read_bytes()
    assert not (dest / "small.svm.part").exists()
    assert server.requests == [("small.svm", None)]


def test_compressed_download_is_checked_after_decompression(site, tmp_path):
    with serve_folder(site) as server:
        path = fetch(server.url + "small.svm.bz2", tmp_path, progress=False, timeout=TIMEOUT,
                     expected_size=(site / "small.svm.bz2").stat().st_size, expected_rows=N_ROWS,
                     expected_features=N_FEATURES)
    assert path.read_bytes() == (site / "small.svm.bz2").read_bytes()


def test_interrupted_transfer_resumes_with_range(site, tmp_path):
    size = (site / "small.svm").stat().st_size
    cut = size // 3
    with serve_folder(site, drop_after={"small.svm": cut}) as server:
        path = fetch(server.url + "small.svm", tmp_path, progress=False, timeout=TIMEOUT, expected_size=size)
    assert path.read_bytes() == (site / "small.svm").read_bytes()
    assert server.requests == [("small.svm", None), ("small.svm", f"bytes={cut}-")], server.requests


def test_interrupted_transfer_resumes_on_the_next_call(site, tmp_path):
    size = (site / "small.svm.bz2").stat().st_size
    cut = size // 2
    with serve_folder(site, drop_after={"small.svm.bz2": cut}) as server:
        with pytest.raises(DataError, match="broke off at .* run the command again to resume"):
            fetch(server.url + "small.svm.bz2", tmp_path, progress=False, timeout=TIMEOUT, retries=0)
        part = tmp_path / "small.svm.bz2.part"
        assert part.stat().st_size == cut
        assert not (tmp_path / "small.svm.bz2").exists()
        path = fetch(server.url + "small.svm.bz2", tmp_path, progress=False, timeout=TIMEOUT, retries=0)
    assert path.read_bytes() == (site / "small.svm.bz2").read_bytes()
    assert server.requests[-1] == ("small.svm.bz2", f"bytes={cut}-")
    assert not part.exists()


def test_server_without_range_support_restarts_cleanly(site, tmp_path):
    with serve_folder(site, drop_after={"small.svm": 100}, honour_range=False) as server:
        path = fetch(server.url + "small.svm", tmp_path, progress=False, timeout=TIMEOUT)
    assert path.read_bytes() == (site / "small.svm").read_bytes()


def test_size_mismatch_is_an_error(site, tmp_path):
    size = (site / "small.svm").stat().st_size
    with serve_folder(site) as server:
        with pytest.raises(DataError, match=f"{size:,} bytes on the server but {size + 7:,} were expected"):
            fetch(server.url + "small.svm", tmp_path, progress=False, timeout=TIMEOUT, expected_size=size + 7)
    assert not (tmp_path / "small.svm").exists()


def test_checksum_mismatch_is_an_error(site, tmp_path):
    good = hashlib.sha256((site / "small.svm").read_bytes()).hexdigest()
    with serve_folder(site) as server:
        with pytest.raises(DataError, match="sha256"):
            fetch(server.url + "small.svm", tmp_path, progress=False, timeout=TIMEOUT, expected_sha256="0" * 64)
        assert fetch(server.url + "small.svm", tmp_path, progress=False, timeout=TIMEOUT, expected_sha256=good)


def test_404_names_the_url_and_status(site, tmp_path):
    with serve_folder(site) as server:
        with pytest.raises(DataError) as info:
            fetch(server.url + "missing.svm", tmp_path, progress=False, timeout=TIMEOUT)
    message = str(info.value)
    assert "missing.svm" in message and "HTTP 404" in message, message
    assert "\n" not in message


def test_unreachable_host_is_one_clear_sentence(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DataError, match=f"cannot reach 127.0.0.1:{port}"):
        fetch(f"http://127.0.0.1:{port}/small.svm", tmp_path, progress=False, timeout=TIMEOUT)


def test_row_count_mismatch_keeps_the_part_file(site, tmp_path):
    with serve_folder(site) as server:
        with pytest.raises(DataError, match=f"has {N_ROWS} rows, not the expected {N_ROWS + 1}"):
            fetch(server.url + "small.svm", tmp_path, progress=False, timeout=TIMEOUT, expected_rows=N_ROWS + 1)
        with pytest.raises(DataError, match="more than the expected"):
            fetch(server.url + "small.svm", tmp_path, progress=False, timeout=TIMEOUT,
                  expected_features=N_FEATURES - 1)
    assert (tmp_path / "small.svm.part").exists()
    assert not (tmp_path / "small.svm").exists()


def test_a_page_that_is_not_libsvm_is_rejected(site, tmp_path):
    with serve_folder(site) as server:
        with pytest.raises(DataError, match="did not download as a LIBSVM file"):
            fetch(server.url + "page.html", tmp_path, progress=False, timeout=TIMEOUT)
    assert not (tmp_path / "page.html").exists()


def test_registry_name_through_a_mirror(site, tmp_path, monkeypatch, capsys):
    tiny = registry.Dataset("tiny", "small.svm.bz2", "binary", N_ROWS, N_FEATURES, "a test file",
                            compressed_size=(site / "small.svm.bz2").stat().st_size)
    with serve_folder(site) as server:
        monkeypatch.setenv(registry.MIRROR_ENV, server.url)
        path = fetch("tiny", tmp_path, registry={"tiny": tiny}, timeout=TIMEOUT)
        assert path.name == "small.svm.bz2"
        assert "small.svm.bz2: " in capsys.readouterr().err  # the progress line
        # Already there: returned without another request.
        before = len(server.requests)
        assert fetch("tiny", tmp_path, registry={"tiny": tiny}, timeout=TIMEOUT, progress=False) == path
        assert len(server.requests) == before
        wrong = registry.Dataset("wrong", "small.svm", "binary", N_ROWS * 2, N_FEATURES, "a test file")
        with pytest.raises(DataError, match="rows, not the expected"):
            fetch("wrong", tmp_path / "other", registry={"wrong": wrong}, timeout=TIMEOUT, progress=False)


def test_unknown_name_and_bad_scheme(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'no-such-set'.*hogwild data list"):
        fetch("no-such-set", tmp_path)
    with pytest.raises(DataError, match="only http:// and https://"):
        fetch("ftp://127.0.0.1/small.svm", tmp_path)


def test_registry_entries_are_consistent():
    assert {"a9a", "w8a", "rcv1.binary", "news20.binary", "news20", "real-sim", "url", "kdda", "webspam",
            "covtype.binary", "epsilon", "mnist"} <= set(registry.DATASETS)
    for name, entry in registry.DATASETS.items():
        assert entry.name == name
        assert entry.url.startswith(registry.BASE_URL), entry.url
        assert entry.task in ("binary", "multiclass", "regression")
        assert entry.citation
        assert entry.rows is None or entry.rows > 0
        assert entry.sha256 is None or len(entry.sha256) == 64


def test_fetched_file_loads_like_the_original(site, tmp_path):
    from sklearn.datasets import load_svmlight_file

    with serve_folder(site) as server:
        path = fetch(server.url + "small.svm.bz2", tmp_path, progress=False, timeout=TIMEOUT)
    X, y = load_svmlight_file(str(site / "small.svm"))
    from hogwild.datasets.libsvm import load_libsvm

    X2, y2 = load_libsvm(path, cache=False, dtype=np.float64)
    assert X2.shape == X.shape and np.array_equal(y, y2)
    assert abs(X2 - sp.csr_matrix(X)).max() == 0
