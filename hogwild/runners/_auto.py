"""``--mode auto``: the CPU runners measure their own throughput and pick the update mode and thread count.

Why: whether Hogwild! threads beat one thread depends on the machine more than on the data. On one 2-vCPU VM
two independent processes run 1.98x one alone and ``async`` x2 gains 1.26x; on another the two vCPUs give
1.1-1.3x together and the same ``async`` x2 runs at half the speed of ``serial``, because every row writes the
cache lines of the popular features and the intercept, and a line's round trip between those cores costs
hundreds of nanoseconds. No static default is right on both, so the runner measures.

How it decides (`AutoChooser`):

1. The candidates are ``serial`` (one thread), and ``async`` and ``average`` (per-worker replicas merged every
   ``--average-every`` rows) at each thread count from 2 to the cores available (or ``--threads``). ``sync`` and
   ``locked`` are never chosen: they exist to be compared against.
2. An epoch is processed in ROUNDS taken from the epoch's row order at the cursor, one contiguous piece per
   worker; each round runs one candidate and is timed (wall clock, rows per second, thread hand-offs included).
   Once the choice is made a round is ``chunk_rows`` rows per worker; a measuring round is sized to last about
   `PROBE_SECONDS` at the rate seen so far (at least `MIN_ROUND_ROWS` rows per worker): long beside a thread
   hand-off (tens of microseconds), which would otherwise make short rounds favour one thread, and short beside
   an epoch. ``average`` keeps its replicas across its rounds and merges them every ``--average-every`` rows
   and at the epoch's end, as ``--mode average`` does.
3. Probing: the candidates run one after the other, each a block of rounds: one WARM-UP round that trains but
   is not timed, then ``PROBE_ROUNDS`` timed ones. The first round after a change of candidate pays for caches
   and pages the previous one left cold (``average``'s fresh replicas, on news20 four arrays of 5 MB), for
   loading a compiled kernel, or for waking threads; timed, it made ``serial`` win on sets where ``average`` x2
   runs 1.8x faster. A round cut short by the epoch's end (under half the rows asked for; at the end of a pass
   ``average`` also merges its replicas) trains but is not timed either, which is why a measuring round asks
   for at most half an epoch. On a small set probing can take more than one epoch; those rounds still train.
   The winner is the highest median rate, except that a tie goes to the deterministic, cheaper choice: a
   candidate within ``MARGIN`` (5%) of the fastest wins over it when it comes first in the order ``serial``,
   ``average`` (fewer threads first), ``async`` (`_preference`).
4. Re-checking: the runner-up runs a block again (a warm-up round and a timed one; every other re-check, the
   candidate measured longest ago instead, so that one whose probe a passing disturbance spoiled is measured
   again even when its stale rate never makes it the runner-up), and the runner switches
   when it now beats the choice's rounds since the last decision by ``MARGIN``; only those two are compared, the
   two with fresh rates (the machine's load changed, another process took a core). When: after an interval of
   training time in which the block's cost (its time beyond what the choice would have taken) is at most
   `RECHECK_BUDGET` (2%) of the time, doubling while the choice holds (up to `MAX_RECHECK_SECONDS`) and starting
   again short after a switch; and at once when the choice's rounds since the last decision run `DRIFT` times
   slower than when it was chosen. The rates, the choice, each switch and the machine's core-to-core latency are
   in every history record (``auto``), hence in ``--metrics-json``, and the final choice is in the model file's
   config.

Convergence: the three candidates visit the same rows in the same epoch order and apply the same per-row
rule, ``average`` on replicas it merges every ``--average-every`` rows, each replica taking T times the step
(`hogwild.runners.linear_cpu.replica_gain`), so that a pass moves the weights about as far in every mode. The
chooser compares throughput only, which is fair because of that: with plain averaging (steps not scaled),
``average`` x2 trailed ``serial`` by ~0.4 points of accuracy after 3 epochs on the rcv1-shaped set; with the
scaled steps the two agree to ~0.1 point (docs/benchmarks.md).
"""

from __future__ import annotations

import statistics

PROBE_ROUNDS = 2
MARGIN = 1.05
PROBE_SECONDS = 0.001
MIN_PROBE_SECONDS = 0.0005
MIN_ROUND_ROWS = 256
RECHECK_BUDGET = 0.02
MIN_RECHECK_SECONDS = 0.25
MAX_RECHECK_SECONDS = 30.0
DRIFT = 1.25
RECENT = 4  # rounds of the choice its recent rate is the median of


def _preference(candidate):
    """Order of preference on a near tie: ``serial``, then ``average`` (fewer threads first), then ``async``: the
    reproducible modes before the racy one (``serial`` and ``average`` give the same model for a seed and a thread
    count), and the cheaper before the dearer. On news20 ``average`` x2 and ``async`` x2 are within a few percent of
    each other, and either could win the probe's 1-ms rounds."""
    mode, threads = candidate
    return ({"serial": 0, "average": 1}.get(mode, 2), threads)


def candidate_name(candidate):
    mode, threads = candidate
    return f"{mode} x{threads}"


class AutoChooser:
    """Which ``(mode, threads)`` runs the next round, and how many rows, from the rates measured so far.

    Its clock is the training time it is told of (the rounds' seconds), so a test can drive it with any timings.
    """

    def __init__(self, max_threads, parallel_modes=("async", "average"), handoff=None):
        self.handoff = dict(handoff or {})  # threads -> seconds of an empty round (`handoff_seconds`)
        self.chunk_rows, self.epoch_rows = None, None  # the settled rounds' size, as `round_rows` was last told
        self.candidates = [("serial", 1)] + [(mode, t) for t in range(2, max_threads + 1) for mode in parallel_modes]
        self.rates = {c: [] for c in self.candidates}
        self.last = None  # the candidate of the previous round: a round after a change is a warm-up
        self.planned = 0  # rows per worker the last `round_rows` asked for
        self.sizing = {}  # each candidate's last rate, warm-up rounds included: it sizes measuring rounds only
        self.choice = None if len(self.candidates) > 1 else self.candidates[0]
        self.recheck = []
        self.rechecks = 0  # re-checks begun: every other one measures the stalest candidate (`_recheck_candidate`)
        self.measured = {c: float("-inf") for c in self.candidates}  # training time of each one's last timed round
        self.switches = []
        self.elapsed = 0.0  # training seconds recorded so far
        self.chosen_rate = None  # the choice's rate when chosen, or over its first rounds after a re-check
        self.since_decision = []  # the choice's timed rates since the last decision (at most RECENT)
        self.interval = 0.0
        self.next_check = float("inf")

    def settled(self):
        """Whether the choice is made and no re-check is under way."""
        return self.choice is not None and not self.recheck

    def next(self):
        """The candidate of the next round."""
        if self.recheck:
            return self.recheck[0]
        if self.choice is not None:
            return self.choice
        if self.last is not None and len(self.rates[self.last]) < PROBE_ROUNDS:
            return self.last  # finish the block
        return min(self.candidates, key=lambda c: (len(self.rates[c]), self.candidates.index(c)))

    def round_rows(self, candidate, chunk_rows, epoch_rows=None):
        """Rows per worker of the next round of ``candidate``: ``chunk_rows`` once settled, else a measuring
        round of about `PROBE_SECONDS` at the candidate's last rate (or the best rate seen, before it has one).

        On a set whose whole epoch lasts a few milliseconds (``epoch_rows`` at the best rate seen; a9a: ~3 ms)
        the measuring rounds shrink to a 24th of an epoch, down to `MIN_PROBE_SECONDS`, so that probing ends
        within an epoch or two instead of running over ten.
        """
        self.chunk_rows, self.epoch_rows = chunk_rows, epoch_rows
        if self.settled():
            self.planned = chunk_rows
        else:
            best = max(self.sizing.values(), default=0.0)
            rate = self.sizing.get(candidate, best)
            seconds = PROBE_SECONDS
            if epoch_rows and best > 0:
                seconds = min(PROBE_SECONDS, max(MIN_PROBE_SECONDS, epoch_rows / best / 24))
            rows = int(rate * seconds / candidate[1]) if rate > 0 else 1024
            self.planned = max(1, min(chunk_rows, max(MIN_ROUND_ROWS, rows)))
            if epoch_rows:  # at most half an epoch: a round cut short by the epoch's end is not timed
                self.planned = min(self.planned, max(1, epoch_rows // (2 * candidate[1])))
        return self.planned

    def record(self, candidate, rows, seconds, epoch):
        """A finished round: ``rows`` rows in ``seconds``."""
        warm_up = candidate != self.last
        self.last = candidate
        self.elapsed += max(seconds, 0.0)
        full = rows >= 0.5 * self.planned * candidate[1]  # not cut short by the epoch's end
        if full and seconds > 0 and rows > 0:
            self.sizing[candidate] = rows / seconds
        timed = not warm_up and full and seconds > 0 and rows > 0
        if timed:
            # the rows' own rate: without the round's fixed thread hand-off, which `_rate` adds back at the size
            # of the rounds the candidate would run once chosen
            busy = max(seconds - self.handoff.get(candidate[1], 0.0), 0.5 * seconds)
            self.rates[candidate].append(rows / busy)
            del self.rates[candidate][:-8]  # recent rounds only: the machine's load changes
            self.measured[candidate] = self.elapsed
            if candidate == self.choice and not self.recheck:
                self.since_decision.append(rows / busy)
                del self.since_decision[:-RECENT]
        if self.recheck and candidate == self.recheck[0]:
            self.recheck.pop(0)
            if not self.recheck and not timed:
                # the block's timed round (never a warm-up: it follows the block's first) was cut short by the
                # epoch's end: run it again
                self.recheck = [candidate]
            elif not self.recheck:
                # compare now with now: the runner-up's fresh round against the choice's rounds since it was
                # chosen, not against rates from before the load changed
                self.rates[candidate] = self.rates[candidate][-1:]
                if self.since_decision:
                    self.rates[self.choice] = list(self.since_decision)
                switched = self._decide(epoch, among=(self.choice, candidate))
                self.chosen_rate = None  # re-established from the choice's next rounds
                # the block's cost: its time beyond what the choice would have taken for the same rows, twice
                # (the warm-up round cost about as much as this one)
                cost = 2 * max(0.0, seconds - rows / max(self._rate(self.choice), 1e-300))
                base = max(MIN_RECHECK_SECONDS, cost / RECHECK_BUDGET)
                self.interval = base if switched else min(MAX_RECHECK_SECONDS, max(base, 2 * self.interval))
                self.next_check = self.elapsed + self.interval
        elif self.choice is None and all(len(self.rates[c]) >= PROBE_ROUNDS for c in self.candidates):
            self._decide(epoch)
            runner_up = self._runner_up()
            cost = 0.0 if runner_up is None else 2 * max(
                0.0, PROBE_SECONDS * (1.0 - self._rate(runner_up) / max(self._rate(self.choice), 1e-300)))
            self.interval = max(MIN_RECHECK_SECONDS, cost / RECHECK_BUDGET)
            self.next_check = self.elapsed + self.interval
        elif self.settled() and candidate == self.choice and len(self.candidates) > 1:
            # Drift is judged on the choice's rounds since the last decision only, against the rate it was chosen
            # at or, after a re-check, the rate of its first RECENT rounds since: otherwise a slowdown that the
            # re-check found the runner-up no cure for would trigger a re-check after every round.
            recent = self.since_decision
            if self.chosen_rate is None and len(recent) == RECENT:
                self.chosen_rate = statistics.median(recent)
            drifted = (len(recent) == RECENT and self.chosen_rate is not None
                       and statistics.median(recent) * DRIFT < self.chosen_rate)
            if drifted or self.elapsed >= self.next_check:
                self.recheck = [self._recheck_candidate()] * 2  # a warm-up round, then a timed one

    def _runner_up(self):
        others = [c for c in self.candidates if c != self.choice]
        return max(others, key=self._rate) if others else None

    def _recheck_candidate(self):
        """The runner-up, or every other time the candidate whose last timed round is the oldest: on the
        rcv1-shaped set one run in twenty chose serial after a disturbance slowed average x2's probe rounds, and
        re-checking only the runner-up (async x2, by stale rates) never measured average x2 again."""
        self.rechecks += 1
        if self.rechecks % 2:
            return self._runner_up()
        others = [c for c in self.candidates if c != self.choice]
        return min(others, key=lambda c: self.measured[c])

    def _rate(self, candidate):
        """The candidate's expected rows per second once chosen: its rows' median rate, with a thread hand-off
        per settled round (``chunk_rows`` rows per worker, or the epoch if smaller). Short measuring rounds would
        otherwise charge a parallel candidate a hand-off every millisecond, which on a set whose epoch is one round
        (a9a: ~3 ms) made ``serial`` look as fast as ``average`` x2, which runs 1.3x faster."""
        rate = self._raw_rate(candidate)
        handoff = self.handoff.get(candidate[1], 0.0)
        if rate <= 0 or handoff <= 0 or not self.chunk_rows:
            return rate
        rows = self.chunk_rows * candidate[1]
        if self.epoch_rows:
            rows = min(rows, self.epoch_rows)
        return rows / (handoff + rows / rate)

    def _raw_rate(self, candidate):
        rates = self.rates[candidate]
        return statistics.median(rates) if rates else 0.0

    def _decide(self, epoch, among=None):
        """Make or confirm the choice, among ``among`` (a re-check: the choice and the runner-up, the two with
        fresh rates) or all candidates; whether it changed."""
        pool = list(among) if among is not None else self.candidates
        best = max(pool, key=self._rate)
        # a tie (within MARGIN of the fastest) goes to the most preferred candidate (`_preference`)
        best = min((c for c in pool if MARGIN * self._rate(c) >= self._rate(best)), key=_preference)
        current = self.choice
        if current is not None and best != current and self._rate(best) < MARGIN * self._rate(current):
            best = current  # not enough better to switch
        switched = current is not None and best != current
        if switched:
            self.switches.append({"epoch": epoch + 1, "from": candidate_name(current), "to": candidate_name(best)})
        self.choice = best
        self.chosen_rate = self._raw_rate(best)
        self.since_decision = []
        return switched

    def report(self):
        """JSON-able summary: the choice, median rows/s of each candidate, the switches so far."""
        return {
            "choice": None if self.choice is None else candidate_name(self.choice),
            "rows_per_s": {candidate_name(c): round(self._rate(c), 1) for c in self.candidates},
            "switches": list(self.switches),
        }

    def state(self):
        return {"choice": None if self.choice is None else list(self.choice),
                "rates": [[c[0], c[1], list(self.rates[c])] for c in self.candidates],
                "switches": list(self.switches)}

    def restore(self, state):
        if not state:
            return
        choice = state.get("choice")
        known = set(self.candidates)
        self.choice = tuple(choice) if choice and tuple(choice) in known else self.choice
        for mode, threads, rates in state.get("rates", []):
            if (mode, threads) in known:
                self.rates[(mode, threads)] = [float(r) for r in rates]
        self.switches = list(state.get("switches", []))
        if self.choice is not None and len(self.candidates) > 1:  # a resumed run re-checks soon after starting
            self.chosen_rate = self._raw_rate(self.choice)
            self.interval = MIN_RECHECK_SECONDS
            self.next_check = self.elapsed + self.interval


def handoff_seconds(pool, max_threads, rounds=3):
    """``{threads: seconds}``: the median time of an empty round of ``threads`` workers on ``pool`` (waking the
    pool's threads and waiting for them), for each thread count from 2 to ``max_threads``; about 50 us a round
    on a 2-vCPU VM."""
    import time

    out = {}
    for threads in range(2, max_threads + 1):
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            pool.run(lambda w: None, workers=range(threads))
            samples.append(time.perf_counter() - started)
        out[threads] = statistics.median(samples)
    return out
