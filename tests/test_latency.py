"""The core-to-core round-trip probe (`hogwild._latency`, kept in the library for the engine) that the bench's
machine record (`hogwild.bench.machine`) reports next to its speedups."""

import math

import pytest

from hogwild._io import available_cores


@pytest.mark.skipif(available_cores() < 2, reason="needs two cores to bounce a cache line between")
def test_round_trip_is_a_positive_finite_time():
    from hogwild._latency import core_to_core_round_trip_ns

    value = core_to_core_round_trip_ns(rounds=2_000)
    assert math.isfinite(value) and value > 0, value


def test_ping_pong_alternates_players():
    import threading

    import numpy as np

    from hogwild.kernels.pingpong import ping_pong

    flag = np.zeros(1, dtype=np.int64)
    other = threading.Thread(target=ping_pong, args=(flag, 1, 50))
    other.start()
    assert ping_pong(flag, 0, 50) == 50
    other.join(timeout=30)
    assert not other.is_alive() and flag[0] == 100  # each of the 100 moves incremented the shared value once


@pytest.mark.skipif(available_cores() < 2, reason="needs two cores to bounce a cache line between")
def test_bench_machine_record_carries_the_round_trip(monkeypatch):
    from hogwild import _latency
    from hogwild.bench.machine import machine_info

    monkeypatch.setattr(_latency, "core_to_core_round_trip_ns", lambda rounds=0: 123.456)
    info = machine_info()
    assert info["core_to_core_round_trip_ns"] == 123.5
    assert info["cores"] == available_cores() and info["cpu"]
