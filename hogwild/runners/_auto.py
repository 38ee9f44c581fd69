"""``--mode auto``: the CPU runners measure their own throughput and pick the update mode and thread count.

Why: whether Hogwild! threads beat one thread depends on the machine more than on the data. On one 2-vCPU VM
two independent processes run 1.98x one alone and ``async`` x2 gains 1.26x; on another the two vCPUs give
1.1-1.3x together and the same ``async`` x2 runs at half the speed of ``serial``, because every row writes the
cache lines of the popular features and the intercept, and a line's round trip between those cores costs
hundreds of nanoseconds. No static default is right on both, so the runner measures.

How it decides (`AutoChooser`):

1. The candidates are ``serial`` (one thread), and ``async`` and ``average`` (per-worker replicas averaged
   after every round) at each thread count from 2 to the cores available (or ``--threads``). ``sync`` and
   ``locked`` are never chosen: they exist to be compared against.
2. An epoch is processed in ROUNDS: ``chunk_rows`` rows per worker (a quarter of that, at least 1024 or the whole
   chunk, while probing or re-checking, so that measuring costs little of an epoch), taken from the epoch's row order at the
   cursor, split into one contiguous piece per worker. Each round runs one candidate and is timed (wall clock,
   rows per second, thread hand-offs included). ``average`` keeps its replicas across its rounds and averages
   them every ``--average-every`` rows and at the epoch's end, as ``--mode average`` does.
3. Probing: the first rounds cycle through the candidates until each has run ``PROBE_ROUNDS`` timed rounds
   (the run's very first round is not timed: it loads the compiled kernel). On a small set this takes more
   than one epoch; until then the rounds still train. The winner is the highest median rate; a
   parallel candidate must beat ``serial`` by ``MARGIN`` (5%), since a tie should go to the deterministic,
   cheaper choice.
4. Re-checking: at the start of every later epoch the runner-up runs one short round again; if it now beats
   the choice's recent median by ``MARGIN``, the runner switches (the machine's load changed, another process
   took a core). The rates, the choice, each switch and the machine's core-to-core latency are in every
   history record (``auto``), hence in ``--metrics-json``, and the final choice is in the model file's config.

Convergence: the three candidates visit the same rows in the same epoch order and apply the same per-row
rule (``average`` on replicas it averages every round), so on sparse data they reach the same accuracy per
epoch; the chooser compares throughput only.
"""

from __future__ import annotations

import statistics

PROBE_ROUNDS = 2
MARGIN = 1.05


def candidate_name(candidate):
    mode, threads = candidate
    return f"{mode} x{threads}"


class AutoChooser:
    """Which ``(mode, threads)`` runs the next round, from the rates measured so far."""

    def __init__(self, max_threads, parallel_modes=("async", "average")):
        self.candidates = [("serial", 1)] + [(mode, t) for t in range(2, max_threads + 1) for mode in parallel_modes]
        self.rates = {c: [] for c in self.candidates}
        self.seen = {c: 0 for c in self.candidates}
        self.choice = None if len(self.candidates) > 1 else self.candidates[0]
        self.recheck = []
        self.switches = []

    def settled(self):
        """Whether the choice is made and no re-check is under way."""
        return self.choice is not None and not self.recheck

    def next(self):
        """The candidate of the next round."""
        if self.recheck:
            return self.recheck[0]
        if self.choice is not None:
            return self.choice
        return min(self.candidates, key=lambda c: (len(self.rates[c]), self.candidates.index(c)))

    def record(self, candidate, rows, seconds, epoch):
        """A finished round: ``rows`` rows in ``seconds``."""
        first = not any(self.seen.values())
        self.seen[candidate] += 1
        if not first and seconds > 0 and rows > 0:  # the run's first round loads the compiled kernel
            self.rates[candidate].append(rows / seconds)
            del self.rates[candidate][:-8]  # recent rounds only: the machine's load changes
        if self.recheck and candidate == self.recheck[0]:
            self.recheck.pop(0)
            if not self.recheck:
                self._decide(epoch)
        elif self.choice is None and all(len(self.rates[c]) >= PROBE_ROUNDS for c in self.candidates):
            self._decide(epoch)

    def start_epoch(self, epoch):
        """Re-measure the runner-up for one (short) round (from the second epoch on)."""
        if self.choice is not None and epoch > 0 and len(self.candidates) > 1:
            others = [c for c in self.candidates if c != self.choice]
            self.recheck = [max(others, key=self._rate)]

    def _rate(self, candidate):
        rates = self.rates[candidate]
        return statistics.median(rates) if rates else 0.0

    def _decide(self, epoch):
        serial = ("serial", 1)
        best = max(self.candidates, key=self._rate)
        if best != serial and self._rate(best) < MARGIN * self._rate(serial):
            best = serial
        current = self.choice
        if current is not None and best != current and self._rate(best) < MARGIN * self._rate(current):
            best = current  # not enough better to switch
        if best != current:
            if current is not None:
                self.switches.append({"epoch": epoch + 1, "from": candidate_name(current), "to": candidate_name(best)})
            self.choice = best

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
                self.seen[(mode, threads)] = len(rates)
        self.switches = list(state.get("switches", []))
