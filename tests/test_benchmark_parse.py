"""The parse benchmark runs end to end on a small file and prints its tables (docs/benchmarks.md's parse block)."""

import pytest

pytest.importorskip("sklearn")


def test_parse_benchmark_prints_both_thread_counts_and_checks_identity(tmp_path, capsys):
    from hogwild.datasets import benchmark_parse

    assert benchmark_parse.main(["--size-mb", "0.2", "--rounds", "1", "--files", "hogwild-synth",
                                 "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("LIBSVM parse benchmark: ") and "cores usable" in out
    assert "identical to scikit-learn's matrices: True" in out
    for row in ("| scikit-learn load_svmlight_file | 1 |", "| hogwild load_libsvm | 1 |", "| hogwild load_libsvm | 2 |",
                "| hogwild cache: open + read every byte |", "| hogwild data convert"):
        assert row in out, row
    assert "2 threads vs 1" in out
