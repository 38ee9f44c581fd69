"""The compiled kernels under Numba's bounds checking, over adversarial-but-valid data.

Run in a subprocess with ``NUMBA_BOUNDSCHECK=1`` (it is read when Numba starts) and ``NUMBA_CACHE_DIR`` in a
temp folder, so the bounds-checked machine code never lands in the normal cache. An index bug then raises
``IndexError`` in the child instead of reading or writing out of bounds. The cases (empty rows, one row with
every feature, every row sharing one feature, a single feature, all rows empty) live in
tests/boundscheck_driver.py.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

DRIVER = Path(__file__).with_name("boundscheck_driver.py")


def run_driver(part, tmp_path):
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    env.pop("NUMBA_DISABLE_JIT", None)
    child = subprocess.run([sys.executable, str(DRIVER), part], env=env, capture_output=True, text=True, timeout=900)
    assert child.returncode == 0, f"bounds-checked {part} kernels failed:\n{child.stdout[-2000:]}\n{child.stderr[-4000:]}"
    lines = child.stdout.splitlines()
    assert lines and all(line.startswith("ok ") for line in lines), child.stdout[-2000:]
    return lines


def test_linear_kernels_under_boundscheck(tmp_path):
    lines = run_driver("linear", tmp_path)
    for case in ("empty_rows", "one_huge_row", "all_share_one_feature", "single_feature", "all_rows_empty"):
        assert any(case in line and "sync_batches" in line and "workers=2" in line for line in lines), case
        assert any(case in line and "sgd_rows" in line and "locks=True" in line for line in lines), case


def test_parse_kernels_under_boundscheck(tmp_path):
    lines = run_driver("parse", tmp_path)
    for case in ("no_final_newline", "long_values", "digits_to_the_end", "undecided", "bad_value_at_end"):
        assert f"ok parse {case}" in lines, case


def test_every_engine_mode_under_boundscheck(tmp_path):
    lines = run_driver("engine", tmp_path)
    assert any("mode=async" in line for line in lines) and any("mode=sync" in line for line in lines)


def test_mlp_kernels_under_boundscheck(tmp_path):
    lines = run_driver("mlp", tmp_path)
    assert any("one_huge_row" in line for line in lines)
