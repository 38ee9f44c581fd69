"""``hogwild data``: synth, info, list, convert and fetch through click's CliRunner and the main() error funnel."""

import gzip
import json

import numpy as np
import pytest
from click.testing import CliRunner

from hogwild.cli.data import data
from hogwild.cli.main import main
from hogwild.datasets import registry
from local_http import serve_folder


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOGWILD_CACHE_DIR", str(tmp_path / "cache"))


def invoke(*args):
    return CliRunner().invoke(data, [str(a) for a in args])


def run_main(capsys, *args):
    """Run the real entry point (with its error funnel); return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["data", *[str(a) for a in args]])
        raise SystemExit(0)
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


@pytest.fixture
def small_svm(tmp_path):
    path = tmp_path / "small.svm"
    result = invoke("synth", "--like", "rcv1", "--rows", 300, "--features", 500, "--seed", 1, "-o", path)
    assert result.exit_code == 0, result.output
    return path


# -------------------------------------------------------------------------------------------- help


@pytest.mark.parametrize("command", ["convert", "info", "list", "fetch", "synth"])
def test_every_subcommand_has_examples_and_defaults(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.output and f"hogwild data {command}" in result.output
    if command not in ("list",):
        assert "[default:" in result.output


def test_group_help_lists_the_subcommands():
    result = invoke("--help")
    for command in ("convert", "info", "list", "fetch", "synth"):
        assert command in result.output


# ------------------------------------------------------------------------------------------- synth


def test_synth_writes_libsvm_text_that_scikit_learn_reads(tmp_path):
    from sklearn.datasets import load_svmlight_file

    path = tmp_path / "s.svm"
    result = invoke("synth", "--like", "url", "--rows", 200, "--features", 1_000, "--nnz-per-row", 8, "-o", path)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stderr and "200 rows x 1,000 features" in result.stderr
    assert result.stdout == ""
    X, y = load_svmlight_file(str(path), n_features=1_000)
    assert X.shape == (200, 1_000) and set(np.unique(y)) == {-1.0, 1.0}
    assert abs(X.nnz / 200 - 8) < 1.5


def test_synth_is_deterministic_per_seed(tmp_path):
    paths = [tmp_path / f"{name}.svm" for name in ("a", "b", "c")]
    for path, seed in zip(paths, (3, 3, 4)):
        assert invoke("synth", "--like", "kdda", "--rows", 100, "--features", 300, "--seed", seed, "-o", path).exit_code == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


@pytest.mark.parametrize("output, fmt", [("s.hwcache", None), ("plain", "cache")])
def test_synth_writes_the_binary_cache(tmp_path, output, fmt):
    from hogwild.datasets.libsvm import load_libsvm

    args = ["synth", "--like", "dense", "--rows", 50, "--features", 6, "--task", "regression", "-o", tmp_path / output]
    if fmt:
        args += ["--format", fmt]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    folder = tmp_path / ("s.hwcache" if fmt is None else "plain.hwcache")
    assert (folder / "header.json").is_file()
    X, y = load_libsvm(folder)
    assert X.shape == (50, 6) and X.nnz == 300
    assert len(np.unique(y)) > 10  # real-valued targets


def test_synth_multiclass(tmp_path):
    from sklearn.datasets import load_svmlight_file

    path = tmp_path / "m.svm"
    result = invoke("synth", "--like", "dense", "--rows", 300, "--features", 10, "--task", "multiclass",
                    "--classes", 3, "-o", path)
    assert result.exit_code == 0, result.output
    _, y = load_svmlight_file(str(path))
    assert set(np.unique(y)) == {1.0, 2.0, 3.0}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--rows", 0], "Invalid value for '--rows'"),
        (["--rows", 10, "--like", "news"], "Invalid value for '--like'"),
        (["--rows", 10, "--task", "ranking"], "Invalid value for '--task'"),
        (["--rows", 10, "--like", "dense", "--nnz-per-row", 3], "dense preset stores every feature"),
        (["--rows", 10, "--label-noise", 1.0], "Invalid value for '--label-noise'"),
        (["--like", "rcv1"], "Missing option '--rows'"),
    ],
)
def test_synth_bad_options_exit_2(tmp_path, args, message):
    result = invoke("synth", *args, "-o", tmp_path / "x.svm")
    assert result.exit_code == 2
    assert message in result.stderr, result.stderr
    assert not (tmp_path / "x.svm").exists()


# -------------------------------------------------------------------------------------------- info


def test_info_table(small_svm):
    result = invoke("info", small_svm)
    assert result.exit_code == 0, result.output
    for key in ("rows", "300", "features", "500", "nnz per row", "labels", "-1:", "+1:",
                "Omega", "Delta", "rho", "(exact)"):
        assert key in result.stdout, key


def test_info_json_agrees_with_dataset_stats(small_svm):
    from hogwild.datasets.libsvm import load_libsvm
    from hogwild.datasets.stats import dataset_stats

    result = invoke("info", small_svm, "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    X, y = load_libsvm(small_svm, cache=False)
    expected = dataset_stats(X, y)
    for key in ("rows", "features", "nnz", "omega", "delta", "rho", "labels", "nnz_per_row_mean"):
        assert stats[key] == expected[key], key


def test_info_sampled_rho_and_exact(small_svm):
    result = invoke("info", small_svm, "--json", "--exact-max-rows", 100, "--sample", 20)
    stats = json.loads(result.stdout)
    assert stats["rho_exact"] is False and stats["rho_sample_rows"] == 20
    table = invoke("info", small_svm, "--exact-max-rows", 100, "--sample", 20).stdout
    assert "estimated from 20 sampled rows" in table
    exact = json.loads(invoke("info", small_svm, "--json", "--exact").stdout)
    assert exact["rho_exact"] is True and exact["rho_sample_rows"] == 300
    # --exact makes the sampling options moot: typed together they are refused, not ignored
    refused = invoke("info", small_svm, "--exact", "--exact-max-rows", 100)
    assert refused.exit_code == 2 and "--exact-max-rows is not used with --exact" in refused.stderr


def test_info_reads_gzip_and_cache(small_svm, tmp_path):
    gz = tmp_path / "small.svm.gz"
    gz.write_bytes(gzip.compress(small_svm.read_bytes()))
    plain = json.loads(invoke("info", small_svm, "--json").stdout)
    zipped = json.loads(invoke("info", gz, "--json").stdout)
    assert zipped["nnz"] == plain["nnz"] and zipped["labels"] == plain["labels"]
    cache = tmp_path / "small.hwcache"
    assert invoke("synth", "--like", "rcv1", "--rows", 300, "--features", 500, "--seed", 1, "-o", cache).exit_code == 0
    cached = json.loads(invoke("info", cache, "--json").stdout)
    assert cached["nnz"] == plain["nnz"] and cached["omega"] == plain["omega"]


def test_info_on_a_malformed_file_is_one_line_naming_the_line(tmp_path, capsys):
    bad = tmp_path / "bad.svm"
    bad.write_text("+1 1:0.5 2:1\n-1 3:abc\n")
    code, out, err = run_main(capsys, "info", bad)
    assert code == 1
    assert err.startswith("hogwild: error: ") and "bad.svm:2" in err, err
    assert err.count("\n") == 1 and out == ""


def test_info_on_a_missing_file_exits_2(tmp_path):
    result = invoke("info", tmp_path / "nope.svm")
    assert result.exit_code == 2 and "does not exist" in result.stderr


# ----------------------------------------------------------------------------------- list, convert


def test_list_table_and_json():
    result = invoke("list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["name", "task", "rows", "x"]
    assert any(line.startswith("a9a ") and "32,561 x 123" in line and line.endswith("/binary/a9a") for line in lines)
    entries = json.loads(invoke("list", "--json").stdout)
    assert set(entries) == set(registry.DATASETS)
    assert entries["rcv1.binary"]["url"].endswith("rcv1_train.binary.bz2")
    assert entries["news20"]["task"] == "multiclass" and entries["news20"]["classes"] == 20


def test_convert_writes_a_cache_that_loads(small_svm, tmp_path):
    from hogwild.datasets.libsvm import load_libsvm

    result = invoke("convert", small_svm, "--cache-dir", tmp_path / "c")
    assert result.exit_code == 0, result.output
    folder = result.stdout.strip()
    assert folder.endswith(".hwcache") and folder.startswith(str(tmp_path / "c"))
    X, y = load_libsvm(folder)
    X2, y2 = load_libsvm(small_svm, cache=False)
    assert (X != X2).nnz == 0 and np.array_equal(y, y2)


def test_convert_missing_file_exits_2(tmp_path):
    result = invoke("convert", tmp_path / "nope.svm")
    assert result.exit_code == 2 and "does not exist" in result.stderr


# -------------------------------------------------------------------------------------------- fetch


def test_fetch_by_name_through_a_mirror(small_svm, tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "binary").mkdir(parents=True)
    (site / "binary" / "tiny.svm").write_bytes(small_svm.read_bytes())
    monkeypatch.setitem(registry.DATASETS, "tiny", registry.Dataset(
        "tiny", "binary/tiny.svm", "binary", 300, 500, "a test file", compressed_size=small_svm.stat().st_size))
    with serve_folder(site, drop_after={"binary/tiny.svm": 1000}) as server:
        monkeypatch.setenv(registry.MIRROR_ENV, server.url)
        result = invoke("fetch", "tiny", "--dir", tmp_path / "dl", "--timeout", 5)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "dl" / "tiny.svm")
    assert (tmp_path / "dl" / "tiny.svm").read_bytes() == small_svm.read_bytes()
    assert ("binary/tiny.svm", "bytes=1000-") in server.requests


def test_fetch_errors_are_one_line(tmp_path, capsys):
    with serve_folder(tmp_path) as server:
        code, out, err = run_main(capsys, "fetch", server.url + "missing.svm", "--dir", tmp_path / "dl",
                                  "--timeout", 5, "--no-progress")
    assert code == 1 and out == ""
    assert err.startswith("hogwild: error: ") and "HTTP 404" in err and err.count("\n") == 1, err
    code, _, err = run_main(capsys, "fetch", "no-such-set", "--dir", tmp_path / "dl")
    assert code == 1 and "unknown dataset 'no-such-set'" in err
