"""What this engine's store has done since the engine started: transitions counted by task type
and state, and how long attempts ran, by type, as a histogram. Pure (no trio, no I/O).

The store core counts as it moves a task (a dict increment a transition, a bucket an attempt
that ended), so whoever wants totals reads them when it wants them (`engine.tally()`: the
HTTP layer's /metrics, at scrape time) instead of following every transition as an event:
following them cost the served HTTP batch route a fifth of its CPU. The counts are this engine's
own transitions (on a shared store, the tasks this node moved), as its events are.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Mapping

import attrs

from ..task import TaskState

# Upper bounds (seconds) of the run-time buckets: from a no-op's millisecond to a five-minute job.
RUN_TIME_BOUNDS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)


@attrs.frozen
class RunTimes:
    """How long one task type's attempts ran (started to finished, retrying or failed): how
    many fell in each bucket of ``bounds`` (``counts[i]``: those above ``bounds[i - 1]`` and at
    most ``bounds[i]``; the last count, those above every bound), and their sum in seconds."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]  # one a bound, then one for the rest: len(bounds) + 1
    total: float  # seconds, all attempts together

    @property
    def count(self) -> int:
        """Attempts timed."""
        return sum(self.counts)


@attrs.frozen
class Tally:
    """What ``engine.tally()`` answers: transitions by (task type, state entered) since the
    engine started (``PENDING`` counts submits and re-admissions, ``RUNNING`` attempts begun),
    and each type's attempts' run times."""

    transitions: Mapping[tuple[str, TaskState], int]
    run_times: Mapping[str, RunTimes]


class Counting:
    """The store core's running tally (it lives as long as the engine: a store restart keeps it)."""

    __slots__ = ("_buckets", "_totals", "transitions")

    def __init__(self) -> None:
        self.transitions: defaultdict[tuple[str, TaskState], int] = defaultdict(int)
        self._buckets: dict[str, list[int]] = {}
        self._totals: dict[str, float] = {}

    def ran(self, task_type: str, seconds: float) -> None:
        """One attempt of ``task_type`` ended after ``seconds`` (a clock step back counts 0)."""
        if seconds < 0.0:
            seconds = 0.0
        buckets = self._buckets.get(task_type)
        if buckets is None:
            buckets = self._buckets[task_type] = [0] * (len(RUN_TIME_BOUNDS) + 1)
            self._totals[task_type] = 0.0
        buckets[bisect.bisect_left(RUN_TIME_BOUNDS, seconds)] += 1
        self._totals[task_type] += seconds

    def absorb(self, other: Counting) -> None:
        """Add what ``other`` counted (a batch's, once committed) to these, and empty it."""
        transitions = self.transitions
        for key, count in other.transitions.items():
            transitions[key] += count
        other.transitions.clear()
        if not other._buckets:
            return
        for task_type, buckets in other._buckets.items():
            mine = self._buckets.get(task_type)
            if mine is None:
                self._buckets[task_type] = buckets
                self._totals[task_type] = other._totals[task_type]
                continue
            for index, count in enumerate(buckets):
                mine[index] += count
            self._totals[task_type] += other._totals[task_type]
        other._buckets, other._totals = {}, {}

    def read(self) -> Tally:
        """A copy, for whoever asked."""
        return Tally(
            {key: count for key, count in self.transitions.items() if count},
            {
                task_type: RunTimes(RUN_TIME_BOUNDS, tuple(buckets), self._totals[task_type])
                for task_type, buckets in self._buckets.items()
            },
        )
