"""The cluster's aggregation arithmetic against slow, obvious reference loops (runs everywhere; no Ray)."""

import numpy as np
import pytest

from hogwild.cluster import aggregate


def _replicas(rng, n_nodes=3, d=7, k=2, dtype=np.float64, zero_rows=()):
    replicas = []
    for node in range(n_nodes):
        acc_W = rng.uniform(0.0, 3.0, size=(d, k))
        for row in zero_rows:
            if node > 0:
                acc_W[row] = 0.0  # only node 0 saw these features
        replicas.append({
            "W": rng.normal(size=(d, k)).astype(dtype),
            "b": rng.normal(size=k).astype(dtype),
            "acc_W": acc_W.astype(dtype),
            "acc_b": rng.uniform(0.1, 2.0, size=k).astype(dtype),
        })
    return replicas


def _reference(replicas, rows, rule):
    """Coordinate by coordinate, the rules as the module docstring states them."""
    out = {}
    n = len(replicas)
    for name in ("W", "b", "acc_W", "acc_b"):
        shape = replicas[0][name].shape
        value = np.zeros(shape)
        for index in np.ndindex(*shape):
            xs = [float(r[name][index]) for r in replicas]
            if rule == "mean":
                value[index] = sum(xs) / n
            elif rule == "weighted":
                value[index] = sum(w * x for w, x in zip(rows, xs)) / sum(rows)
            elif name in ("W", "b"):
                gs = [float(r["acc_" + name][index]) for r in replicas]
                value[index] = sum(g * x for g, x in zip(gs, xs)) / sum(gs) if sum(gs) > 0 else sum(xs) / n
            else:
                value[index] = sum(x * x for x in xs) / sum(xs) if sum(xs) > 0 else 0.0
        out[name] = value
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule", aggregate.RULES)
def test_combine_matches_reference(rule, dtype):
    rng = np.random.default_rng(3)
    replicas = _replicas(rng, dtype=dtype, zero_rows=(2, 5))
    rows = [300, 100, 50]
    got = aggregate.combine(replicas, rows, rule)
    want = _reference(replicas, rows, rule)
    tolerance = 1e-12 if dtype == np.float64 else 1e-6
    for name in want:
        assert got[name].dtype == dtype, f"{name} came back as {got[name].dtype}, not {dtype}"
        np.testing.assert_allclose(got[name], want[name], rtol=tolerance, atol=tolerance, err_msg=f"{rule} {name}")


def test_adagrad_rule_keeps_the_only_node_that_saw_a_feature():
    rng = np.random.default_rng(0)
    replicas = _replicas(rng, zero_rows=(4,))
    got = aggregate.combine(replicas, [1, 1, 1], "adagrad")
    np.testing.assert_allclose(got["W"][4], replicas[0]["W"][4])
    # and a coordinate nobody touched keeps the plain mean
    for r in replicas:
        r["acc_W"][1] = 0.0
    got = aggregate.combine(replicas, [1, 1, 1], "adagrad")
    np.testing.assert_allclose(got["W"][1], np.mean([r["W"][1] for r in replicas], axis=0))
    assert np.all(got["acc_W"][1] == 0.0)


def test_weighted_equals_mean_on_even_rows_and_zero_rows_fall_back():
    rng = np.random.default_rng(1)
    replicas = _replicas(rng)
    even = aggregate.combine(replicas, [10, 10, 10], "weighted")
    plain = aggregate.combine(replicas, [10, 10, 10], "mean")
    for name in plain:
        np.testing.assert_allclose(even[name], plain[name], rtol=1e-12)
    nothing = aggregate.combine(replicas, [0, 0, 0], "weighted")
    np.testing.assert_allclose(nothing["W"], plain["W"], rtol=1e-12)


def test_combine_without_adagrad_sums():
    replicas = [{"W": np.full((3, 1), float(i)), "b": np.array([i * 2.0]), "acc_W": np.zeros((0, 1)),
                 "acc_b": np.zeros(0)} for i in range(4)]
    got = aggregate.combine(replicas, [1, 1, 1, 5], "weighted")
    assert got["acc_W"].shape == (0, 1)
    np.testing.assert_allclose(got["W"], np.full((3, 1), (0 + 1 + 2 + 15) / 8))
    with pytest.raises(ValueError, match="AdaGrad sums"):
        aggregate.combine(replicas, [1, 1, 1, 1], "adagrad")
    with pytest.raises(ValueError, match="unknown aggregation rule"):
        aggregate.combine(replicas, [1, 1, 1, 1], "median")


def test_row_delta_and_apply_rows_round_trip():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(50, 3)).astype(np.float32)
    current = base.copy()
    touched = np.array([3, 17, 41])
    current[touched] += rng.normal(size=(3, 3)).astype(np.float32)
    rows, values = aggregate.row_delta(current, base)
    np.testing.assert_array_equal(rows, touched)
    server = base.copy()
    aggregate.apply_rows(server, rows, values)
    np.testing.assert_allclose(server, current, rtol=1e-6)
    # the intercept is 1-D; its delta is one row per output
    b0, b1 = np.zeros(2, np.float32), np.array([0.5, 0.0], np.float32)
    rows, values = aggregate.row_delta(b1, b0)
    np.testing.assert_array_equal(rows, [0])
    target = b0.copy()
    aggregate.apply_rows(target, rows, values, scale=0.5)
    np.testing.assert_allclose(target, [0.25, 0.0])


@pytest.mark.parametrize("staleness, scale", [(0, 1.0), (1, 0.5), (3, 0.25), (-1, 1.0)])
def test_staleness_scale(staleness, scale):
    assert aggregate.staleness_scale(staleness) == scale


def test_staleness_scaled_pushes_match_a_reference_server():
    """Pushes applied in arrival order with 1/(1 + staleness): the reference is a plain loop."""
    rng = np.random.default_rng(5)
    d = 20
    server = np.zeros((d, 1))
    reference = np.zeros((d, 1))
    version = 0
    pulled = {0: 0, 1: 0, 2: 0}
    for step in range(30):
        node = int(rng.integers(3))
        base = reference.copy()
        current = base.copy()
        current[rng.choice(d, 4, replace=False)] += rng.normal(size=(4, 1))
        rows, values = aggregate.row_delta(current, base)
        staleness = version - pulled[node]
        aggregate.apply_rows(server, rows, values, aggregate.staleness_scale(staleness))
        reference += (current - base) / (1 + staleness)
        version += 1
        pulled[node] = version
    np.testing.assert_allclose(server, reference, rtol=1e-12, atol=1e-12)


def test_row_staleness_scale_counts_each_rows_writers_and_wraps():
    now = np.array([5, 7, 0, 2], dtype=np.uint32)
    seen = np.array([5, 4, np.iinfo(np.uint32).max, 2], dtype=np.uint32)  # row 2's counter wrapped past 2**32
    np.testing.assert_allclose(aggregate.row_staleness_scale(now, seen), [1.0, 0.25, 0.5, 1.0])


def test_apply_rows_with_a_scale_per_row():
    target = np.zeros((4, 2), dtype=np.float32)
    aggregate.apply_rows(target, np.array([1, 3]), np.ones((2, 2)), np.array([0.5, 0.25]))
    np.testing.assert_allclose(target, [[0, 0], [0.5, 0.5], [0, 0], [0.25, 0.25]])


def test_a_damped_server_matches_a_per_row_reference():
    """Three nodes pushing into one server: each row's change divided by 1 + the pushes that wrote that row
    after the node pulled it; the reference keeps one counter per (node, row) in plain Python."""
    rng = np.random.default_rng(9)
    d = 12
    server = np.zeros((d, 1))
    touched = np.zeros(d, dtype=np.uint32)
    seen = {node: np.zeros(d, dtype=np.uint32) for node in range(3)}
    reference = np.zeros((d, 1))
    writes_since = {node: [0] * d for node in range(3)}
    for _ in range(40):
        node = int(rng.integers(3))
        rows = np.sort(rng.choice(d, 3, replace=False)).astype(np.int32)
        values = rng.normal(size=(3, 1))
        aggregate.apply_rows(server, rows, values, aggregate.row_staleness_scale(touched[rows], seen[node][rows]))
        touched[rows] += np.uint32(1)
        seen[node] = touched.copy()  # the pull after the push
        for r, v in zip(rows, values):
            reference[r] += v / (1 + writes_since[node][r])
            for other in range(3):
                if other != node:
                    writes_since[other][r] += 1
        writes_since[node] = [0] * d
    np.testing.assert_allclose(server, reference, rtol=1e-12, atol=1e-12)
