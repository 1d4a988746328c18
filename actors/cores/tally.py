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
    engine started (``PENDING`` counts submits and re-admissions; ``RUNNING`` is not counted:
    every attempt that began ends in one of the others, or is running now), and each type's
    attempts' run times."""

    transitions: Mapping[tuple[str, TaskState], int]
    run_times: Mapping[str, RunTimes]


class Timings(Generic[K]):
    """Durations by key, bucketed as they come (a bisect and two adds each): what a
    Prometheus histogram keeps, without its lock a value, read whole when wanted. The buckets
    are kept by (key, bucket), so adding one batch's to the totals touches only those used."""

    __slots__ = ("_counts", "_totals", "bounds")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self._counts: dict[tuple[K, int], int] = {}  # (key, bucket index) -> how many
        self._totals: dict[K, float] = {}

    def add(self, key: K, seconds: float) -> None:
        """One duration of ``key`` (a clock step back counts 0)."""
        if seconds < 0.0:
            seconds = 0.0
        counts, totals = self._counts, self._totals
        bucket = (key, bisect.bisect_left(self.bounds, seconds))
        counts[bucket] = counts.get(bucket, 0) + 1
        totals[key] = totals.get(key, 0.0) + seconds

    def absorb(self, other: Timings[K]) -> None:
        """Add what ``other`` (with the same bounds) counted to these, and empty it."""
        if not other._totals:
            return
        counts, totals = self._counts, self._totals
        for bucket, count in other._counts.items():
            counts[bucket] = counts.get(bucket, 0) + count
        for key, total in other._totals.items():
            totals[key] = totals.get(key, 0.0) + total
        other._counts.clear()
        other._totals.clear()

    def read(self) -> dict[K, RunTimes]:
        """A copy, by key."""
        buckets: dict[K, list[int]] = {key: [0] * (len(self.bounds) + 1) for key in self._totals}
        for (key, index), count in self._counts.items():
            buckets[key][index] = count
        bounds, totals = self.bounds, self._totals
        return {
            key: RunTimes(bounds, tuple(counts), totals[key]) for key, counts in buckets.items()
        }


class Counting:
    """The store core's running tally (it lives as long as the engine: a store restart keeps
    it): by state entered, the transitions by task type (a dict a state, keyed by the type
    alone: the moves every task makes count with one str-keyed add each; starts are not
    counted, see Tally), and run times."""

    __slots__ = ("by_state", "completed", "pending", "run_times")

    def __init__(self) -> None:
        self.by_state: dict[TaskState, dict[str, int]] = {state: {} for state in TaskState}
        self.pending = self.by_state[TaskState.PENDING]  # the two most tasks enter (counted
        self.completed = self.by_state[TaskState.COMPLETED]  # where they are made, inline)
        self.run_times = Timings[str](RUN_TIME_BOUNDS)  # attempts' run times by task type

    def moved(self, task_type: str, state: TaskState) -> None:
        """A task of ``task_type`` entered ``state``."""
        counts = self.by_state[state]
        counts[task_type] = counts.get(task_type, 0) + 1

    def absorb(self, other: Counting) -> None:
        """Add what ``other`` counted (a batch's, once committed) to these, and empty it."""
        for state, counts in other.by_state.items():
            if counts:
                mine = self.by_state[state]
                for task_type, count in counts.items():
                    mine[task_type] = mine.get(task_type, 0) + count
                counts.clear()
        self.run_times.absorb(other.run_times)

    def read(self) -> Tally:
        """A copy, for whoever asked."""
        transitions = {
            (task_type, state): count
            for state, counts in self.by_state.items()
            for task_type, count in counts.items()
        }
        return Tally(transitions, self.run_times.read())
