"""`hogwild bench`: the JSON schema, the files it writes, skipped peers, the shared objective, the process ceiling
and the time to a target accuracy. No speed asserts."""

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hogwild.bench import measures
from hogwild.bench.problem import BenchProblem, margin_loss, residual_loss, split_train_test
from hogwild.bench.report import replace_section, summary_lines, to_markdown
from hogwild.bench.study import RUN_KEYS, run_bench
from hogwild.cli.main import cli
from hogwild.config import TrainConfig

from conftest import make_sparse_classification

TINY = ["--synthetic", "rcv1", "--rows", "400", "--epochs", "2", "--repeats", "1", "--quiet"]


def _problem(n=300, l2=1e-3, seed=0):
    X, y = make_sparse_classification(n_samples=n, n_features=30, density=0.3, seed=seed)
    return BenchProblem(*split_train_test(X, y, 0.25, seed), loss="log_loss", l2=l2)


def test_end_to_end_writes_json_markdown_and_plot(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    out, table, picture = tmp_path / "r.json", tmp_path / "t.md", tmp_path / "p.png"
    result = CliRunner().invoke(
        cli, ["bench", *TINY, "--threads", "1,2", "--modes", "serial,async", "--peers", "sklearn",
              "--l2", "1e-4", "--out", str(out), "--markdown", str(table), "--plot", str(picture)],
    )
    assert result.exit_code == 0, result.output
    results = json.loads(out.read_text())
    assert set(results) >= {"machine", "dataset", "runs", "ceiling", "target_accuracy"}
    assert set(results["machine"]) >= {"cpu", "cores", "memory_bytes", "numba", "numpy", "gpu"}
    assert set(results["dataset"]) >= {"rows", "features", "nnz", "omega", "delta", "rho"}
    assert results["dataset"]["rows"] == 400
    runs = results["runs"]
    for run in runs:
        assert list(run)[: len(RUN_KEYS)] == list(RUN_KEYS), list(run)
    ours = {(r["mode"], r["threads"]) for r in runs if r["system"] == "hogwild" and not r.get("skipped")}
    assert ours == {("serial", 1), ("async", 1), ("async", 2)}
    sklearn_runs = [r for r in runs if r["system"] == "sklearn"]
    assert len(sklearn_runs) == 1 and not sklearn_runs[0].get("skipped")
    for run in runs:
        assert run["seconds_min"] <= run["seconds_per_epoch"] <= run["seconds_max"]
        assert np.isfinite(run["train_loss"]) and 0 < run["train_loss"] < 10, run["train_loss"]
        assert 0.0 <= run["test_accuracy"] <= 1.0
        assert run["rows_per_s"] > 0 and run["nnz_per_s"] >= run["rows_per_s"]
        assert len(run["trace"]) == 2  # one point per epoch: seconds, objective, test accuracy
        assert all(len(point) == 3 and 0.0 <= point[2] <= 1.0 for point in run["trace"]), run["trace"]
        assert run["trace"][-1][2] == pytest.approx(run["test_accuracy"])
        assert run["oversubscribed"] is (run["threads"] > results["machine"]["cores"])
        assert "trace_source" not in run  # the CPU runs' traces are the bench's own scores of the live weights
    async_1 = next(r for r in runs if r["mode"] == "async" and r["threads"] == 1)
    assert async_1["speedup"] == pytest.approx(1.0)
    assert results["target_loss"] == pytest.approx(1.01 * min(r["train_loss"] for r in runs))
    best = min(runs, key=lambda r: r["train_loss"])
    assert best["time_to_target"] is not None
    # the process ceiling for 2 workers, measured in the same run, and async x2's share of it
    ceiling = results["ceiling"]
    assert [entry["processes"] for entry in ceiling["processes"]] == [2]
    two = ceiling["processes"][0]
    assert not two.get("skipped"), two
    assert two["ceiling"] == pytest.approx(2 * ceiling["seconds_alone"] / two["seconds_together"])
    async_2 = next(r for r in runs if r["mode"] == "async" and r["threads"] == 2)
    assert async_2["ceiling_fraction"] == pytest.approx(async_2["speedup"] / two["ceiling"])
    assert async_1["ceiling_fraction"] is None
    # the default target accuracy is the peer's final accuracy, which the peer itself reaches
    assert results["target_accuracy"] == sklearn_runs[0]["test_accuracy"]
    assert sklearn_runs[0]["time_to_target_accuracy"] is not None
    for run in runs:
        assert (run["time_to_target_accuracy"] is None) == (run["test_accuracy"] < results["target_accuracy"])
    markdown = table.read_text()
    assert "| hogwild | async | 2 |" in markdown
    assert "Process ceiling" in markdown and "target test accuracy" in markdown
    assert re.search(r"\| hogwild \| async \| 2 \| cpu \|( [^|]+ \|){5} \d+% \|", markdown), markdown
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_peer_is_reported_skipped(monkeypatch):
    monkeypatch.setitem(sys.modules, "vowpalwabbit", None)  # import vowpalwabbit now raises ImportError
    X, y = make_sparse_classification(n_samples=200, n_features=20, seed=1)
    results = run_bench(X=X, y=y, threads=(1,), modes=("serial",), peers=("vw",), epochs=1, repeats=1)
    vw = [r for r in results["runs"] if r["system"] == "vw"]
    assert len(vw) == 1 and vw[0]["skipped"] is True
    assert "vowpalwabbit is not installed" in vw[0]["reason"]
    assert "Skipped: vw" in to_markdown(results)


def test_peer_that_cannot_run_the_setting_is_skipped():
    X, y = make_sparse_classification(n_samples=200, n_features=20, seed=2)
    results = run_bench(X=X, y=y, threads=(1,), modes=("serial",), peers=("torch", "liblinear"), epochs=1,
                        repeats=1, loss="modified_huber")
    by_system = {r["system"]: r for r in results["runs"]}
    assert by_system["torch"]["skipped"] and "MLPs only" in by_system["torch"]["reason"]
    assert by_system["liblinear"]["skipped"] and "modified_huber" in by_system["liblinear"]["reason"]


@pytest.mark.parametrize("loss", ["log_loss", "hinge", "squared_hinge", "modified_huber", "perceptron"])
def test_margin_losses_match_their_definitions(loss):
    margins = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
    expected = {
        "log_loss": [np.log1p(np.exp(-m)) for m in margins],
        "hinge": [max(0.0, 1 - m) for m in margins],
        "squared_hinge": [max(0.0, 1 - m) ** 2 for m in margins],
        "modified_huber": [-4 * m if m < -1 else (max(0.0, 1 - m) ** 2) for m in margins],
        "perceptron": [max(0.0, -m) for m in margins],
    }[loss]
    np.testing.assert_allclose(margin_loss(loss, margins), expected, rtol=1e-12)


def test_residual_losses_match_their_definitions():
    r = np.array([-2.0, -0.05, 0.0, 0.3])
    np.testing.assert_allclose(residual_loss("squared_error", r), 0.5 * r * r)
    np.testing.assert_allclose(residual_loss("huber", r, 0.1), [0.2 - 0.005, 0.00125, 0.0, 0.03 - 0.005])
    np.testing.assert_allclose(residual_loss("epsilon_insensitive", r, 0.1), [1.9, 0.0, 0.0, 0.2])


def test_objective_is_the_regularized_mean_loss():
    problem = _problem()
    rng = np.random.default_rng(3)
    coef, intercept = rng.normal(size=problem.n_features), 0.3
    margins = problem.signed_labels() * (problem.X_train @ coef + intercept)
    expected = np.mean(np.log1p(np.exp(-margins))) + 0.5 * problem.l2 * coef @ coef
    assert problem.linear_objective(coef, intercept) == pytest.approx(expected, rel=1e-12)


def test_sklearn_and_liblinear_objectives_agree_with_the_exact_optimum():
    """Both peers' weights are read back in our convention: LIBLINEAR lands on the optimum, SGD near it."""
    pytest.importorskip("sklearn")
    pytest.importorskip("liblinear")
    from scipy.optimize import minimize

    from hogwild.bench.peers import run_peer

    problem = _problem(n=400, l2=1e-2)
    d = problem.n_features
    optimum = minimize(lambda v: problem.linear_objective(v[:d], v[d]), np.zeros(d + 1), method="L-BFGS-B").fun
    config = TrainConfig(l2=1e-2, schedule="optimal").validate()
    liblinear = run_peer("liblinear", problem, config)[0]
    sgd = run_peer("sklearn", problem, config, epochs=20)[0]
    # LIBLINEAR regularizes its bias (-B 1): a small, stated difference from our unregularized intercept
    assert liblinear["train_loss"] == pytest.approx(optimum, rel=1e-2), (liblinear["train_loss"], optimum)
    assert sgd["train_loss"] < 1.05 * optimum, f"sklearn SGD objective {sgd['train_loss']} vs optimum {optimum} (5%)"


def test_vw_weights_read_back_match_its_predictions():
    pytest.importorskip("vowpalwabbit")
    from hogwild.bench.peers import run_peer

    problem = _problem(n=300, l2=1e-3)
    record = run_peer("vw", problem, TrainConfig(l2=1e-3).validate(), epochs=3)[0]
    assert not record.get("skipped"), record
    assert "reason_objective" not in record, record
    assert record["test_accuracy"] > 0.6, f"VW test accuracy {record['test_accuracy']} <= 0.6"
    # the per-pass trace (an untimed run saving each pass) ends where the timed run ends
    assert [point[0] for point in record["trace"]] == pytest.approx([k * record["repeat_seconds"][0] / 3 for k in (1, 2, 3)])
    assert record["trace"][-1][1] == pytest.approx(record["train_loss"], rel=1e-6)
    assert record["trace"][-1][2] == pytest.approx(record["test_accuracy"])


def test_replace_section_keeps_the_rest_of_the_file():
    text = "# t\n<!-- bench:a -->\nold\n<!-- /bench:a -->\ntail\n"
    assert replace_section(text, "a", "new table\n") == "# t\n<!-- bench:a -->\nnew table\n<!-- /bench:a -->\ntail\n"
    with pytest.raises(Exception, match="bench:b"):
        replace_section(text, "b", "x")


def test_markdown_section_is_written_into_an_existing_file(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("intro\n<!-- bench:tiny -->\n_to be filled_\n<!-- /bench:tiny -->\nend\n")
    result = CliRunner().invoke(cli, ["bench", *TINY, "--threads", "1", "--modes", "serial",
                                      "--markdown", str(doc), "--section", "tiny"])
    assert result.exit_code == 0, result.output
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("end\n")
    assert "| hogwild | serial | 1 |" in text and "_to be filled_" not in text


def test_bad_peer_name_is_a_usage_error():
    result = CliRunner().invoke(cli, ["bench", *TINY, "--peers", "sklearn,nope"])
    assert result.exit_code == 2
    assert "'nope' is not one of" in result.output


def test_torch_sparse_batch_keeps_the_full_width():
    """A CSR batch whose last columns are empty must still be as wide as the model's first layer."""
    torch = pytest.importorskip("torch")
    import scipy.sparse as sp

    from hogwild.bench.torch_peer import _torch_batch

    X = sp.csr_matrix(np.array([[1.0, 0, 0, 0], [0, 2.0, 0, 0]], dtype=np.float32))
    batch = _torch_batch(torch, (X.indptr, X.indices, X.data, 4), np.array([0, 1]))
    assert tuple(batch.shape) == (2, 4)


def _regenerate_script():
    """docs/regenerate.py, the maintainer's script beside the document (not an installed module)."""
    path = Path(__file__).resolve().parents[1] / "docs" / "regenerate.py"
    spec = importlib.util.spec_from_file_location("docs_regenerate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regenerate_finds_each_block_command_and_skips_unmarked_fences():
    generated_blocks = _regenerate_script().generated_blocks

    text = (
        "```sh\npython by_hand.py\n```\n\nprose\n\n```text\noutput\n```\n\n"
        "```sh\nhogwild bench --synthetic rcv1 \\\n    --epochs 2\n```\n<!-- bench:small -->\nold\n<!-- /bench:small -->\n"
    )
    assert generated_blocks(text) == [("small", "hogwild bench --synthetic rcv1 --epochs 2")]


# --- the process ceiling and the time to a target accuracy (hogwild.bench.measures), on hand-made records ----------
def _run(system="hogwild", mode="async", threads=1, device="cpu", seconds=(1.0,), trace=None, accuracy=None, **extra):
    return {"system": system, "mode": mode, "threads": threads, "device": device, "repeat_seconds": list(seconds),
            "trace": trace, "test_accuracy": accuracy, **extra}


CEILING = {"seconds_alone": 1.0, "processes": [{"processes": 2, "seconds_together": 1.25, "ceiling": 1.6},
                                               {"processes": 4, "skipped": True, "reason": "a process failed"}]}


def test_ceiling_fraction_is_the_speedup_over_the_measured_ceiling():
    assert measures.ceiling_for(CEILING, 2) == 1.6
    assert measures.ceiling_fraction(1.2, 2, CEILING) == pytest.approx(0.75)
    assert measures.ceiling_fraction(1.0, 1, CEILING) is None  # one thread has no parallel share
    assert measures.ceiling_fraction(2.0, 4, CEILING) is None  # that ceiling was not measured
    assert measures.ceiling_fraction(1.2, 2, None) is None  # --no-ceiling, or results from before the ceiling
    assert measures.ceiling_fraction(None, 2, CEILING) is None


def test_speedup_is_over_one_thread_of_the_same_system_mode_and_device():
    runs = [_run(threads=1, seconds=(4.0, 2.0, 3.0)), _run(threads=2, seconds=(2.0,)),
            _run(mode="sync", threads=2, seconds=(1.0,)), _run(device="cuda", threads=None, seconds=(0.5,))]
    assert measures.speedup(runs[1], runs) == pytest.approx(1.5)  # median 3.0 over 2.0
    assert measures.speedup(runs[2], runs) is None  # no sync run at 1 thread
    assert measures.speedup(runs[3], runs) is None
    assert measures.speedup_over_cpu(runs[3], runs) == (pytest.approx(2.0), "sync x2")  # the fastest CPU run
    assert measures.speedup_over_cpu(runs[1], runs) == (None, None)


def test_time_to_accuracy_is_the_first_epoch_at_or_over_the_target():
    run = _run(trace=[[0.5, 0.6, 0.80], [1.0, 0.5, 0.85], [1.5, 0.45, 0.84]], accuracy=0.84)
    assert measures.time_to_accuracy(run, 0.85) == (1.0, 2, None)
    assert measures.time_to_accuracy(run, 0.80) == (0.5, 1, None)
    assert measures.time_to_accuracy(run, 0.9) == (None, None, "did not reach the target accuracy")
    assert measures.time_to_accuracy(run, None)[0] is None
    assert measures.time_to_accuracy(run, 0.85 + 1e-14)[0] == 1.0  # an equal count over the same rows
    old = _run(trace=[[0.5, 0.6], [1.0, 0.5]])  # results written before traces had accuracies
    assert measures.time_to_accuracy(old, 0.5) == (None, None, "no test accuracy per epoch")
    solve = _run(system="liblinear", mode="s0", seconds=(0.2, 0.4, 0.3), accuracy=0.86, seconds_total_is_solve=True)
    assert measures.time_to_accuracy(solve, 0.85) == (0.3, None, None)  # the whole solve (median)
    assert measures.time_to_accuracy(solve, 0.87)[0] is None
    untraced = _run(system="vw", trace_reason="one driver call")
    assert measures.time_to_accuracy(untraced, 0.5) == (None, None, "one driver call")


def test_default_target_accuracy_is_the_best_peers_final_accuracy():
    runs = [_run(accuracy=0.99), _run(system="sklearn", mode="SGD", accuracy=0.84),
            _run(system="vw", mode="passes", accuracy=0.85), _run(system="torch", skipped=True),
            _run(system="liblinear", mode="s11", accuracy=None)]
    target, rule = measures.target_accuracy(runs)
    assert target == 0.85 and "vw passes" in rule  # our own runs never set the bar
    assert measures.target_accuracy(runs, 0.9) == (0.9, "given (--target-accuracy)")
    target, rule = measures.target_accuracy(runs[:1])
    assert target is None and "--target-accuracy" in rule


def test_summary_and_table_show_the_ceiling_share_and_the_times_to_target():
    run = {key: None for key in RUN_KEYS}
    run.update(system="hogwild", mode="async", threads=2, device="cpu", seconds_per_epoch=0.5, seconds_min=0.5,
               seconds_max=0.5, rows_per_s=10.0, nnz_per_s=100.0, speedup=1.2, ceiling_fraction=0.75, train_loss=0.5,
               test_accuracy=0.85, time_to_target_accuracy=1.0, epochs_to_target_accuracy=2)
    peer = {**run, "system": "vw", "mode": "passes", "threads": 1, "speedup": 1.0, "ceiling_fraction": None,
            "time_to_target_accuracy": None, "epochs_to_target_accuracy": None,
            "time_to_target_accuracy_reason": "did not reach the target accuracy", "test_accuracy": 0.84}
    results = {"machine": {"cpu": "cpu", "cores": 2, "numba": "x", "numpy": "y"},
               "dataset": {"name": "d", "rows": 10, "features": 3, "nnz": 20, "train_rows": 8, "test_rows": 2},
               "config": {"epochs": 3, "repeats": 1}, "ceiling": CEILING, "target_loss": 0.4, "target_rule": "given",
               "target_accuracy": 0.85, "target_accuracy_rule": "given (--target-accuracy)", "runs": [run, peer]}
    lines = summary_lines(results)
    assert "process ceiling: 2 independent processes run 1.60x one alone" in lines
    assert "hogwild async x2: 1.20x over 1 thread = 75% of the 2-process ceiling" in lines
    assert "  hogwild async x2: 1 s (epoch 2); final 85.00%" in lines
    assert "  vw passes x1: not reached (did not reach the target accuracy); final 84.00%" in lines
    table = to_markdown(results)
    assert "| 1.20x | 75% |" in table and "| 1 (epoch 2) |" in table
    assert "2 processes together 1.25 s/epoch -> **1.60x**" in table and "4 processes: not measured" in table


def test_results_written_before_the_ceiling_still_render():
    old = json.loads((Path(__file__).resolve().parents[1] / "docs" / "results" / "a9a.json").read_text())
    assert "ceiling" not in old
    table = to_markdown(old)
    assert "Process ceiling" not in table and "| hogwild |" in table
    summary_lines(old)


def test_ceiling_process_failure_is_reported_not_hung():
    from hogwild.bench.machine import process_ceiling

    X = np.full((8, 2), np.nan)  # the engine refuses it in every process (the given epochs skip the probe here)
    ceiling = process_ceiling(X, np.arange(8) % 2, TrainConfig(), [2], epochs=1, rounds=1, timeout=120)
    assert ceiling["seconds_alone"] is None
    assert ceiling["processes"][0]["skipped"], ceiling
    assert "NaN" in ceiling["processes"][0]["reason"], ceiling


def test_the_library_never_imports_the_bench():
    """Imports point down: hogwild/, kernels/ and datasets/ never name the bench package or its modules."""
    root = Path(__file__).resolve().parents[1]
    upward = re.compile(r"^\s*(from|import)\s+(hogwild\.bench|\.bench|\.\.bench|hogwild\.peers|\.peers)\b|"
                        r"import_module\([\"']hogwild\.bench", re.M)
    offenders = [str(path.relative_to(root)) for folder in ("hogwild", "kernels", "datasets")
                 for path in (root / folder).rglob("*.py") if upward.search(path.read_text(encoding="utf-8"))]
    assert offenders == [], offenders


# --- the device axis (what the separate GPU benchmark measured), under NUMBA_ENABLE_CUDASIM=1 without a GPU -------
def _cuda_or_skip():
    numba_cuda = pytest.importorskip("numba.cuda", reason="numba-cuda is not installed")
    if not numba_cuda.is_available():
        pytest.skip("no CUDA GPU and NUMBA_ENABLE_CUDASIM is not set")


@pytest.mark.cuda
def test_gpu_modes_run_beside_the_cpu_in_one_study():
    """nnz/s of each CUDA mode and its speedup over the fastest CPU run (figures mean nothing under the simulator)."""
    _cuda_or_skip()
    X, y = make_sparse_classification(n_samples=80, n_features=24, seed=4)
    results = run_bench(X=X, y=y, threads=(1,), modes=("async", "atomic", "sync", "average"), devices=("cpu", "cuda"),
                        epochs=2, repeats=1, ceiling=False, l2=1e-3, target_accuracy=0.5)
    by_key = {(r["mode"], r["device"]): r for r in results["runs"]}
    assert "--mode atomic is not available" in by_key[("atomic", "cpu")]["reason"]  # a mode the device lacks: one skipped record
    assert by_key[("average", "cuda")]["skipped"]
    for mode in ("async", "atomic", "sync"):
        run = by_key[(mode, "cuda")]
        assert not run.get("skipped"), run
        assert run["threads"] is None and run["nnz_per_s"] > 0 and run["speedup_over_cpu"] > 0
        assert run["speedup_over_cpu_of"] in ("async x1", "sync x1", "average x1")
        assert run["trace_source"].startswith("engine history")  # no hooks on the GPU: its own records
        assert len(run["trace"]) == 2 and all(0.0 <= point[2] <= 1.0 for point in run["trace"])
    assert "vs CPU" in to_markdown(results)


@pytest.mark.cuda
def test_gpu_mlp_runs_in_the_same_study():
    _cuda_or_skip()
    results = run_bench(synthetic="dense", rows=24, features=8, classes=3, model="mlp", hidden=(4,), threads=(1,),
                        modes=("async", "sync"), devices=("cpu", "cuda"), epochs=2, repeats=1, ceiling=False,
                        batch_size=4)
    gpu = [r for r in results["runs"] if r["device"] == "cuda"]
    assert [r["mode"] for r in gpu] == ["async", "sync"]
    assert all(not r.get("skipped") and r["rows_per_s"] > 0 and r["speedup_over_cpu"] > 0 for r in gpu), gpu


def test_torch_gpu_peer_is_skipped_without_a_cuda_device():
    torch = pytest.importorskip("torch")
    from hogwild.bench.torch_peer import torch_gpu_minibatch

    X = np.random.default_rng(0).normal(size=(40, 6))
    problem = BenchProblem(*split_train_test(X, (X[:, 0] > 0).astype(int), 0.25, 0))
    config = TrainConfig(model="mlp", hidden=(4,), batch_size=8).validate()
    record = torch_gpu_minibatch(problem, config, epochs=2, repeats=1, progress=lambda message: None)[0]
    assert record["device"] == "cuda"
    if torch.cuda.is_available():
        assert not record.get("skipped") and len(record["trace"]) == 2, record
    else:
        assert record["skipped"] and "no CUDA device" in record["reason"]
