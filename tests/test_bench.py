"""`hogwild bench`: the JSON schema, the files it writes, skipped peers, and the shared objective. No speed asserts."""

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from hogwild.bench import RUN_KEYS, replace_section, run_bench, to_markdown
from hogwild.bench_problem import BenchProblem, margin_loss, residual_loss, split_train_test
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
    assert set(results) >= {"machine", "dataset", "runs"}
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
        assert len(run["trace"]) == 2  # one objective per epoch
        assert run["oversubscribed"] is (run["threads"] > results["machine"]["cores"])
    async_1 = next(r for r in runs if r["mode"] == "async" and r["threads"] == 1)
    assert async_1["speedup"] == pytest.approx(1.0)
    assert results["target_loss"] == pytest.approx(1.01 * min(r["train_loss"] for r in runs))
    best = min(runs, key=lambda r: r["train_loss"])
    assert best["time_to_target"] is not None
    assert "| hogwild | async | 2 |" in table.read_text()
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

    from hogwild.peers import run_peer

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
    from hogwild.peers import run_peer

    problem = _problem(n=300, l2=1e-3)
    record = run_peer("vw", problem, TrainConfig(l2=1e-3).validate(), epochs=3)[0]
    assert not record.get("skipped"), record
    assert "reason_objective" not in record, record
    assert record["test_accuracy"] > 0.6, f"VW test accuracy {record['test_accuracy']} <= 0.6"


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

    from hogwild.peers import _torch_batch

    X = sp.csr_matrix(np.array([[1.0, 0, 0, 0], [0, 2.0, 0, 0]], dtype=np.float32))
    batch = _torch_batch(torch, (X.indptr, X.indices, X.data, 4), np.array([0, 1]))
    assert tuple(batch.shape) == (2, 4)


def test_bench_docs_finds_each_block_command_and_skips_unmarked_fences():
    from hogwild.bench_docs import generated_blocks

    text = (
        "```sh\npython by_hand.py\n```\n\nprose\n\n```text\noutput\n```\n\n"
        "```sh\nhogwild bench --synthetic rcv1 \\\n    --epochs 2\n```\n<!-- bench:small -->\nold\n<!-- /bench:small -->\n"
    )
    assert generated_blocks(text) == [("small", "hogwild bench --synthetic rcv1 --epochs 2")]
