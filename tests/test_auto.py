"""``--mode auto``'s chooser (`hogwild.runners._auto.AutoChooser`), driven with made-up timings: what it probes, how
long its measuring rounds are, what it picks, when it re-checks and when it switches. Its clock is the training
time it is told of, so none of this depends on the machine."""

import numpy as np
import pytest

import hogwild
from hogwild.runners._auto import (
    DRIFT, MARGIN, MAX_RECHECK_SECONDS, MIN_RECHECK_SECONDS, MIN_ROUND_ROWS, PROBE_ROUNDS, PROBE_SECONDS, RECENT,
    AutoChooser,
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
    """Rounds until the choice is made: a block per candidate, one untimed warm-up round and PROBE_ROUNDS timed."""
    return _run(chooser, speed, (1 + PROBE_ROUNDS) * len(chooser.candidates))


def test_probing_visits_every_candidate_and_picks_the_fastest():
    chooser = AutoChooser(2)
    assert chooser.candidates == [SERIAL, ASYNC, AVERAGE]
    ran = _probe(chooser, {SERIAL: 1e6, ASYNC: 0.6e6, AVERAGE: 1.8e6}.get)
    block = PROBE_ROUNDS + 1
    assert ran == [SERIAL] * block + [ASYNC] * block + [AVERAGE] * block  # one block each, one after the other
    assert chooser.choice == AVERAGE and chooser.settled()
    report = chooser.report()
    assert report["choice"] == "average x2" and report["rows_per_s"]["async x2"] == pytest.approx(0.6e6)


def test_a_parallel_mode_must_beat_serial_by_the_margin():
    chooser = AutoChooser(2)
    _probe(chooser, {SERIAL: 1e6, ASYNC: 0.5e6, AVERAGE: 1e6 * (MARGIN - 0.01)}.get)
    assert chooser.choice == SERIAL


@pytest.mark.parametrize("async_lead, choice", [(MARGIN - 0.02, AVERAGE), (MARGIN + 0.02, ASYNC)])
def test_a_near_tie_goes_to_average_before_async(async_lead, choice):
    """average (reproducible for a seed and a thread count) wins unless async beats it by the margin."""
    chooser = AutoChooser(2)
    _probe(chooser, {SERIAL: 1e6, ASYNC: 1.6e6 * async_lead, AVERAGE: 1.6e6}.get)
    assert chooser.choice == choice


def test_measuring_rounds_last_about_the_probe_time_and_settled_rounds_a_chunk():
    chooser = AutoChooser(2)
    speed = {SERIAL: 2e6, ASYNC: 1e6, AVERAGE: 3e6}.get
    assert chooser.round_rows(SERIAL, 16_384) == 1024  # nothing measured yet
    _run(chooser, speed, 2)  # serial's warm-up round, then its first timed one
    rows = chooser.round_rows(ASYNC, 16_384)  # async has no rate yet: the best one seen sizes it
    assert rows == int(2e6 * PROBE_SECONDS / 2)
    _probe(chooser, speed)
    assert chooser.round_rows(AVERAGE, 16_384) == 16_384
    slow = AutoChooser(2)
    _run(slow, lambda c: 1e3, 4)
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
        if candidate != AVERAGE and not chooser.recheck:  # a re-check block (warm-up + timed round) ended
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


def test_a_candidate_whose_probe_was_disturbed_is_measured_again():
    """A disturbance during average x2's probe rounds makes serial the choice and async (by its stale rate) the
    runner-up; every other re-check takes the candidate measured longest ago, so average x2 is measured again."""
    chooser = AutoChooser(2)
    _probe(chooser, {SERIAL: 1e6, ASYNC: 0.6e6, AVERAGE: 0.5e6}.get)
    assert chooser.choice == SERIAL and chooser._runner_up() == ASYNC
    speed = {SERIAL: 1e6, ASYNC: 0.6e6, AVERAGE: 1.8e6}.get
    while chooser.elapsed < 10.0 and chooser.choice == SERIAL:
        _run(chooser, speed, 1)
    assert chooser.choice == AVERAGE and chooser.elapsed < 2.0
    assert chooser.switches[0]["to"] == "average x2"


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


def test_warm_up_rounds_and_rounds_cut_short_are_not_timed():
    chooser = AutoChooser(2)
    # every first round of a candidate is 10x slower (cold caches, fresh replicas): it must not count
    last = [None]

    def record(candidate, rows_per_worker, speed):
        rows = rows_per_worker * candidate[1]
        factor = 10.0 if candidate != last[0] else 1.0
        last[0] = candidate
        chooser.record(candidate, rows, factor * rows / speed, 0)

    speeds = {SERIAL: 1e6, ASYNC: 0.5e6, AVERAGE: 1.8e6}
    while chooser.choice is None:
        candidate = chooser.next()
        record(candidate, chooser.round_rows(candidate, 16_384), speeds[candidate])
    assert chooser.choice == AVERAGE
    assert chooser.report()["rows_per_s"]["average x2"] == pytest.approx(1.8e6)
    # a round of a tenth of what was asked (the epoch ended) at a crawl leaves the rates as they were
    chooser.round_rows(AVERAGE, 16_384)
    chooser.record(AVERAGE, 1638 * 2 // 10, 1.0, 1)
    assert chooser.report()["rows_per_s"]["average x2"] == pytest.approx(1.8e6)


def test_the_choice_adds_back_the_hand_off_at_the_size_of_settled_rounds():
    # rows' own rates: average x2 1.3x serial; a hand-off of 200 us per round
    chooser = AutoChooser(2, handoff={2: 200e-6})
    speeds = {SERIAL: 8e6, ASYNC: 2e6, AVERAGE: 10.4e6}

    def measured(candidate, rows):  # what a round takes: the rows, plus the hand-off for a parallel one
        return rows / speeds[candidate] + chooser.handoff.get(candidate[1], 0.0)

    while chooser.choice is None:
        candidate = chooser.next()
        rows = chooser.round_rows(candidate, 16_384, 26_000) * candidate[1]
        chooser.record(candidate, rows, measured(candidate, rows), 0)
    # measured in short rounds average x2 looked barely faster than serial; over the 26,000-row epoch it runs as
    # one round of 13,000 rows a worker, where one hand-off costs ~8%
    assert chooser.choice == AVERAGE
    expected = 26_000 / (200e-6 + 26_000 / 10.4e6)
    assert chooser.report()["rows_per_s"]["average x2"] == pytest.approx(expected, rel=1e-6)


def test_handoff_seconds_times_empty_rounds():
    from hogwild._workers import WorkerPool
    from hogwild.runners._auto import handoff_seconds

    with WorkerPool(3) as pool:
        handoff = handoff_seconds(pool, 3, rounds=3)
    assert set(handoff) == {2, 3} and all(0 < seconds < 1 for seconds in handoff.values())


def test_a_slowdown_the_runner_up_does_not_cure_triggers_one_re_check_not_one_a_round():
    chooser = AutoChooser(2)
    _probe(chooser, {SERIAL: 1e6, ASYNC: 0.5e6, AVERAGE: 1.8e6}.get)
    # everything slows (another process): average x2 still beats serial, so it stays chosen
    slower = {SERIAL: 0.5e6, ASYNC: 0.25e6, AVERAGE: 1.8e6 / (2 * DRIFT)}.get
    ran = _run(chooser, slower, 40)
    assert chooser.choice == AVERAGE and chooser.switches == []
    # the drift is noticed within RECENT rounds and re-checked once (a warm-up and a timed round of serial);
    # then the slower rate is the baseline, and only the backing-off schedule re-checks (at most 2 more blocks)
    assert ran[RECENT:RECENT + 2] == [SERIAL, SERIAL] and ran.count(SERIAL) <= 6


@pytest.mark.parametrize("n_rows, threads", [(1000, 2), (3000, 8), (26_000, 2)])
def test_probing_ends_on_a_small_set(n_rows, threads):
    """A measuring round asks for at most half an epoch, so it is never cut short by every epoch's end."""
    chooser = AutoChooser(threads)
    speed = {c: 5e6 * (1.5 if c[0] == "average" else 0.5 if c[0] == "async" else 1.0) for c in chooser.candidates}
    for epoch in range(60):
        cursor = 0
        while cursor < n_rows:
            candidate = chooser.next()
            rows = min(n_rows - cursor, chooser.round_rows(candidate, 16_384, n_rows) * candidate[1])
            chooser.record(candidate, rows, rows / speed[candidate], epoch)
            cursor += rows
        if chooser.choice is not None:
            break
    assert chooser.choice is not None and chooser.choice[0] == "average", (epoch, chooser.report())


def test_a_re_check_compares_only_the_choice_and_the_runner_up():
    chooser = AutoChooser(2)
    _probe(chooser, {SERIAL: 8e6, ASYNC: 9.5e6, AVERAGE: 10e6}.get)
    assert chooser.choice == AVERAGE
    # everything halves: serial's stale 8M would beat average's fresh 5M, but serial is not re-measured (async is
    # the runner-up), so the choice stays
    half = {SERIAL: 4e6, ASYNC: 4.75e6, AVERAGE: 5e6}.get
    ran = _run(chooser, half, 12)
    assert SERIAL not in ran and chooser.switches == [] and chooser.choice == AVERAGE
