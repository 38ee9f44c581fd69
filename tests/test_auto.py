"""``--mode auto``'s chooser (`hogwild.runners._auto.AutoChooser`), driven with made-up timings: what it probes, how
long its measuring rounds are, what it picks, when it re-checks and when it switches. Its clock is the training
time it is told of, so none of this depends on the machine."""

import numpy as np
import pytest

import hogwild
from hogwild.runners._auto import (
    DRIFT, MARGIN, MAX_RECHECK_SECONDS, MIN_RECHECK_SECONDS, MIN_ROUND_ROWS, PROBE_ROUNDS, PROBE_SECONDS, AutoChooser,
)

SERIAL, ASYNC, AVERAGE = ("serial", 1), ("async", 2), ("average", 2)


def _run(chooser, speed, rounds, chunk_rows=16_384, epoch=0):
    """Run ``rounds`` rounds; ``speed(candidate)`` is its rows per second. Returns the candidates run."""
    ran = []
    for _ in range(rounds):
        candidate = chooser.next()
        rows = chooser.round_rows(candidate, chunk_rows) * candidate[1]
        chooser.record(candidate, rows, rows / speed(candidate), epoch)
        ran.append(candidate)
    return ran


def _probe(chooser, speed):
    """Rounds until the choice is made (the untimed first round plus PROBE_ROUNDS of each candidate)."""
    return _run(chooser, speed, 1 + PROBE_ROUNDS * len(chooser.candidates))


def test_probing_visits_every_candidate_and_picks_the_fastest():
    chooser = AutoChooser(2)
    assert chooser.candidates == [SERIAL, ASYNC, AVERAGE]
    ran = _probe(chooser, {SERIAL: 1e6, ASYNC: 0.6e6, AVERAGE: 1.8e6}.get)
    assert {c: ran.count(c) for c in chooser.candidates} == {SERIAL: PROBE_ROUNDS + 1, ASYNC: PROBE_ROUNDS,
                                                           AVERAGE: PROBE_ROUNDS}
    assert chooser.choice == AVERAGE and chooser.settled()
    report = chooser.report()
    assert report["choice"] == "average x2" and report["rows_per_s"]["async x2"] == pytest.approx(0.6e6)


def test_a_parallel_mode_must_beat_serial_by_the_margin():
    chooser = AutoChooser(2)
    _probe(chooser, {SERIAL: 1e6, ASYNC: 0.5e6, AVERAGE: 1e6 * (MARGIN - 0.01)}.get)
    assert chooser.choice == SERIAL


def test_measuring_rounds_last_about_the_probe_time_and_settled_rounds_a_chunk():
    chooser = AutoChooser(2)
    speed = {SERIAL: 2e6, ASYNC: 1e6, AVERAGE: 3e6}.get
    assert chooser.round_rows(SERIAL, 16_384) == 1024  # nothing measured yet
    _run(chooser, speed, 2)  # the untimed round, then serial's first timed one
    rows = chooser.round_rows(ASYNC, 16_384)  # async has no rate yet: the best one seen sizes it
    assert rows == int(2e6 * PROBE_SECONDS / 2)
    _probe(chooser, speed)
    assert chooser.round_rows(AVERAGE, 16_384) == 16_384
    slow = AutoChooser(2)
    _run(slow, lambda c: 1e3, 3)
    assert slow.round_rows(SERIAL, 16_384) == MIN_ROUND_ROWS  # never below the floor
    assert slow.round_rows(SERIAL, 100) == 100  # nor above a chunk


def test_re_checks_are_rare_and_back_off_while_the_choice_holds():
    chooser = AutoChooser(2)
    speed = {SERIAL: 1e6, ASYNC: 0.5e6, AVERAGE: 1.8e6}.get
    _probe(chooser, speed)
    assert chooser.choice == AVERAGE and chooser.interval >= MIN_RECHECK_SECONDS
    checks, intervals = [], []
    while chooser.elapsed < 40.0:
        candidate = _run(chooser, speed, 1)[0]
        if candidate != AVERAGE:
            checks.append(chooser.elapsed)
            intervals.append(chooser.interval)
    assert len(checks) >= 3 and all(later == pytest.approx(2 * earlier) or later == MAX_RECHECK_SECONDS
                                     for earlier, later in zip(intervals, intervals[1:]))
    # a re-check round costs its time beyond the choice's: at most ~RECHECK_BUDGET of the training time
    assert chooser.choice == AVERAGE and chooser.switches == []


def test_the_runner_up_takes_over_when_it_becomes_faster():
    chooser = AutoChooser(2)
    _probe(chooser, {SERIAL: 1e6, ASYNC: 0.5e6, AVERAGE: 1.8e6}.get)
    # another process takes a core: the parallel modes slow to a crawl, serial is unchanged
    crowded = {SERIAL: 1e6, ASYNC: 0.3e6, AVERAGE: 1.8e6 / (2 * DRIFT)}.get
    _run(chooser, crowded, 8, epoch=3)
    assert chooser.choice == SERIAL
    assert chooser.switches == [{"epoch": 4, "from": "average x2", "to": "serial x1"}]


def test_a_run_without_a_choice_to_make_never_measures():
    chooser = AutoChooser(1)
    assert chooser.choice == SERIAL and chooser.settled()
    assert _run(chooser, lambda c: 1e6, 5) == [SERIAL] * 5 and chooser.round_rows(SERIAL, 4096) == 4096


def test_a_restored_choice_is_kept_and_re_checked_soon():
    chooser = AutoChooser(2)
    _probe(chooser, {SERIAL: 1e6, ASYNC: 0.5e6, AVERAGE: 1.8e6}.get)
    resumed = AutoChooser(2)
    resumed.restore(chooser.state())
    assert resumed.choice == AVERAGE and resumed.next_check == pytest.approx(MIN_RECHECK_SECONDS)


def test_auto_records_its_choice_in_the_history_and_the_model():
    rng = np.random.default_rng(0)
    X = rng.random((20_000, 20)).astype(np.float32)
    y = (X[:, :10].sum(axis=1) > 5).astype(int)
    result = hogwild.train(X, y, epochs=6, mode="auto", threads=2)  # probing may span a few epochs this small
    auto = result.history[-1]["auto"]
    assert auto["choice"] in ("serial x1", "async x2", "average x2")
    assert set(auto["rows_per_s"]) == {"serial x1", "async x2", "average x2"}
    assert "core_to_core_ns" in auto
    assert result.model.config["auto"]["choice"] == auto["choice"]
