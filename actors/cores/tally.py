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
from collections.abc import Hashable, Mapping
from typing import Generic, TypeVar

import attrs

from ..task import TaskState

K = TypeVar("K", bound=Hashable)

# Upper bounds (seconds) of the run-time buckets: from a no-op's millisecond to a five-minute job.
RUN_TIME_BOUNDS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)


@attrs.frozen
class RunTimes:
    """A histogram of durations (one task type's attempts, one route's requests): how many
    fell in each bucket of ``bounds`` (``counts[i]``: those above ``bounds[i - 1]`` and at most
    ``bounds[i]``; the last count, those above every bound), and their sum in seconds."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]  # one a bound, then one for the rest: len(bounds) + 1
    total: float  # seconds, all of them together

    @property
    def count(self) -> int:
        """Durations counted."""
        return sum(self.counts)


@attrs.frozen
class Tally:
    """What ``engine.tally()`` answers: transitions by (task type, state entered) since the
    engine started (``PENDING`` counts submits and re-admissions, ``RUNNING`` attempts begun),
    and each type's attempts' run times."""

    transitions: Mapping[tuple[str, TaskState], int]
    run_times: Mapping[str, RunTimes]


class Timings(Generic[K]):
    """Durations by key, bucketed as they come (a bisect and two adds each): what a
    Prometheus histogram keeps, without its lock a value, read whole when wanted."""

    __slots__ = ("_buckets", "_totals", "bounds")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self._buckets: dict[K, list[int]] = {}
        self._totals: dict[K, float] = {}

    def add(self, key: K, seconds: float) -> None:
        """One duration of ``key`` (a clock step back counts 0)."""
        if seconds < 0.0:
            seconds = 0.0
        buckets = self._buckets.get(key)
        if buckets is None:
            buckets = self._buckets[key] = [0] * (len(self.bounds) + 1)
            self._totals[key] = 0.0
        buckets[bisect.bisect_left(self.bounds, seconds)] += 1
        self._totals[key] += seconds

    def absorb(self, other: Timings[K]) -> None:
        """Add what ``other`` (with the same bounds) counted to these, and empty it."""
        for key, buckets in other._buckets.items():
            mine = self._buckets.get(key)
            if mine is None:
                self._buckets[key] = buckets
                self._totals[key] = other._totals[key]
                continue
            for index, count in enumerate(buckets):
                mine[index] += count
            self._totals[key] += other._totals[key]
        if other._buckets:
            other._buckets, other._totals = {}, {}

    def read(self) -> dict[K, RunTimes]:
        """A copy, by key."""
        bounds, totals = self.bounds, self._totals
        return {
            key: RunTimes(bounds, tuple(buckets), totals[key])
            for key, buckets in self._buckets.items()
        }


class Counting:
    """The store core's running tally (it lives as long as the engine: a store restart keeps it)."""

    __slots__ = ("run_times", "transitions")

    def __init__(self) -> None:
        self.transitions: defaultdict[tuple[str, TaskState], int] = defaultdict(int)
        self.run_times = Timings[str](RUN_TIME_BOUNDS)

    def ran(self, task_type: str, seconds: float) -> None:
        """One attempt of ``task_type`` ended after ``seconds``."""
        self.run_times.add(task_type, seconds)

    def absorb(self, other: Counting) -> None:
        """Add what ``other`` counted (a batch's, once committed) to these, and empty it."""
        transitions = self.transitions
        for key, count in other.transitions.items():
            transitions[key] += count
        other.transitions.clear()
        self.run_times.absorb(other.run_times)

    def read(self) -> Tally:
        """A copy, for whoever asked."""
        transitions = {key: count for key, count in self.transitions.items() if count}
        return Tally(transitions, self.run_times.read())
