"""The binary cache: used when fresh, rebuilt (never used) when stale or damaged, skipped when unwritable."""

import json
import os

import numpy as np
import pytest

from hogwild.datasets import cache as cache_module
from hogwild.datasets.cache import CacheInvalid, cache_path_for, convert, read_cache, write_cache
from hogwild.datasets.libsvm import load_libsvm, load_libsvm_files
from hogwild.errors import DataError

TEXT = "1 1:0.5 3:2\n-1 2:1.25\n1 qid:3 4:-1\n"


@pytest.fixture
def source(tmp_path, monkeypatch):
    monkeypatch.setenv("HOGWILD_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "train.txt"
    path.write_text(TEXT)
    return path


def the_cache(source):
    folder = cache_path_for(source, dtype=np.float32, zero_based=False)
    assert folder.parent == source.parent / "cache"
    return folder


def test_first_load_writes_then_later_loads_memory_map(source):
    X, y, info = load_libsvm(source, return_info=True)
    assert info["cached"] is False and the_cache(source).is_dir()
    X2, y2, info2 = load_libsvm(source, return_info=True)
    assert info2["cached"] is True
    assert not X2.data.flags.writeable and not X2.indices.flags.writeable  # read-only maps, not copies
    np.testing.assert_array_equal(X2.toarray(), X.toarray())
    np.testing.assert_array_equal(y2, y)
    header = json.loads((the_cache(source) / "header.json").read_text())
    assert header["source"]["size"] == len(TEXT) and header["shape"] == [3, 4] and header["dtype"] == "float32"


def test_stale_cache_is_rebuilt(source):
    load_libsvm(source)
    source.write_text(TEXT.replace("1.25", "9.5"))
    os.utime(source, ns=(1, 1))  # even an old mtime is caught: size/mtime/fingerprint all recorded
    with pytest.raises(CacheInvalid, match="stale"):
        read_cache(the_cache(source))
    X, _, info = load_libsvm(source, return_info=True)
    assert info["cached"] is False and X[1, 1] == 9.5
    assert load_libsvm(source, return_info=True)[2]["cached"] is True


def _truncate(folder):
    data = folder / "data.npy"
    data.write_bytes(data.read_bytes()[:-4])


def _bad_json(folder):
    (folder / "header.json").write_text("{not json")


def _shape_mismatch(folder):
    header = json.loads((folder / "header.json").read_text())
    header["shape"][0] += 1
    (folder / "header.json").write_text(json.dumps(header))


def _missing_file(folder):
    (folder / "y.npy").unlink()


@pytest.mark.parametrize("damage", [_truncate, _bad_json, _shape_mismatch, _missing_file])
def test_damaged_cache_is_detected_and_rebuilt(source, damage):
    X, y = load_libsvm(source)
    damage(the_cache(source))
    with pytest.raises(CacheInvalid, match="damaged|missing"):
        read_cache(the_cache(source))
    X2, y2, info = load_libsvm(source, return_info=True)
    assert info["cached"] is False
    np.testing.assert_array_equal(X2.toarray(), X.toarray())
    read_cache(the_cache(source))  # rewritten and valid again


def test_unwritable_cache_folder_is_skipped(source, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    X, y = load_libsvm(source, cache_dir=blocked / "sub")
    assert X.shape == (3, 4)
    with pytest.raises(DataError, match="cannot write the cache"):
        convert(source, cache_dir=blocked / "sub")


def test_convert_beside_the_file_and_load_the_cache_folder(source):
    folder = convert(source, cache_dir=source.parent)
    assert folder.parent == source.parent and folder.name.startswith("train.txt.")
    X, y = load_libsvm(folder)
    Xt, yt = load_libsvm(source, cache=False)
    np.testing.assert_array_equal(X.toarray(), Xt.toarray())
    X, y = load_libsvm(folder / "header.json", n_features=6)
    assert X.shape == (3, 6)
    # a stale cache named directly is rebuilt from its recorded source
    source.write_text(TEXT + "1 9:1\n")
    X, y = load_libsvm(folder)
    assert X.shape == (4, 9)


def test_write_cache_without_source_and_qid(tmp_path):
    X, y, qid = load_libsvm_files([_write(tmp_path)], query_id=True, cache=False)[0]
    folder = write_cache(X, y, tmp_path / "plain.hwcache", qid=qid)
    cached = read_cache(folder)
    np.testing.assert_array_equal(cached.qid, [0, 0, 3])
    assert cached.header["source"] is None


def _write(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text(TEXT)
    return path


def test_auto_index_base_across_cached_files(source, tmp_path):
    zero = tmp_path / "test.txt"
    zero.write_text("1 0:1\n")
    first = load_libsvm_files([source, zero])
    second = load_libsvm_files([source, zero])
    for (Xa, _), (Xb, _) in zip(first, second):
        np.testing.assert_array_equal(Xa.toarray(), Xb.toarray())
    assert first[0][0].shape == (3, 5)  # zero-based because test.txt has index 0
    assert load_libsvm(source)[0].shape == (3, 4)  # alone, train.txt is one-based: a different cache entry
    assert cache_module.lookup([source, zero], np.dtype(np.float32), "auto", False, None) is not None


# ------------------------------------------------------------------------------- convert, chunk by chunk


def rcv1_like_text(tmp_path, n_rows, seed=0, name="big.svm", **options):
    from hogwild.datasets.libsvm import dump_libsvm
    from hogwild.datasets.synth import make_synthetic

    X, y, _ = make_synthetic(like="rcv1", n_rows=n_rows, n_features=3000, nnz_per_row=30, seed=seed)
    return dump_libsvm(X, y, tmp_path / name, **options)


@pytest.mark.parametrize("dtype,query_id,zero_based", [("float32", False, "auto"), ("float64", True, True),
                                                       ("float32", False, False)])
def test_convert_in_many_chunks_writes_the_cache_a_load_writes(tmp_path, monkeypatch, dtype, query_id, zero_based):
    from hogwild.datasets import parser

    source = rcv1_like_text(tmp_path, 3000, query_id=np.arange(3000) % 7 if query_id else None)
    monkeypatch.setattr(parser, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(cache_module, "CHUNK_BYTES", 20_000)  # ~25 chunks of ~5 blocks
    streamed = convert(source, tmp_path / "streamed", dtype=dtype, zero_based=zero_based, query_id=query_id, threads=2)
    load_libsvm(source, dtype=dtype, zero_based=zero_based, query_id=query_id, cache_dir=tmp_path / "whole")
    whole = cache_path_for(source, tmp_path / "whole", dtype=dtype, zero_based=zero_based is True,
                           query_id=query_id)
    assert sorted(p.name for p in streamed.iterdir()) == sorted(p.name for p in whole.iterdir())
    for file in whole.iterdir():
        assert (streamed / file.name).read_bytes() == file.read_bytes(), file.name
    X, y, qid, _ = read_cache(streamed)
    assert X.shape[0] == 3000 and (qid is not None) == query_id


def test_convert_of_a_compressed_file_decompresses_beside_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "CHUNK_BYTES", 50_000)
    plain = rcv1_like_text(tmp_path, 500)
    packed = rcv1_like_text(tmp_path, 500, name="big.svm.xz")
    folder = convert(packed, tmp_path / "out")
    X, y, _, _ = read_cache(folder)
    X2, y2 = load_libsvm(plain, cache=False)
    assert (X != X2).nnz == 0 and np.array_equal(y, y2)
    assert [p.name for p in (tmp_path / "out").iterdir()] == [folder.name]  # the decompressed copy is gone


def test_convert_error_leaves_no_cache_and_names_the_line(tmp_path, monkeypatch):
    from hogwild.datasets import parser
    from hogwild.errors import LibsvmFormatError

    monkeypatch.setattr(parser, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(cache_module, "CHUNK_BYTES", 10_000)
    source = rcv1_like_text(tmp_path, 2000)
    lines = source.read_text().splitlines()
    lines[1500] = lines[1500] + " 99999:x"
    source.write_text("\n".join(lines) + "\n")
    with pytest.raises(LibsvmFormatError, match=":1501: .*value is not a number"):
        convert(source, tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())


def test_convert_memory_is_bounded_by_a_chunk_not_the_file(tmp_path, monkeypatch):
    """Peak traced memory while converting a file of ~60 chunks stays a small share of its CSR arrays."""
    import tracemalloc

    from hogwild.datasets import parser

    source = rcv1_like_text(tmp_path, 20_000)
    monkeypatch.setattr(parser, "BLOCK_BYTES", 16_384)
    monkeypatch.setattr(cache_module, "CHUNK_BYTES", 65_536)
    convert(source, tmp_path / "warm", threads=2)  # compile/load the kernels outside the measurement
    tracemalloc.start()
    try:
        folder = convert(source, tmp_path / "out", threads=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    X, y, _, _ = read_cache(folder)
    csr_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes + y.nbytes
    assert source.stat().st_size > 60 * cache_module.CHUNK_BYTES
    assert peak < csr_bytes / 8, f"peak {peak / 1e6:.2f} MB, CSR arrays {csr_bytes / 1e6:.2f} MB (limit: 1/8)"
