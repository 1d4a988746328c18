"""Prometheus metrics for one app: a registry of its own (never the global one), so two apps in
one process (tests) keep separate counts.

Task counters follow the engine's event stream (`observe_events`, fed by follow.py while the
app is served); gauges (queue depth, busy workers, restarts) are read from the engine at scrape
time (`refresh`). The labelled children are looked up once per label set and kept: `labels()`
takes a lock and builds a tuple on every call, and these run per request and per transition.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterator
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Metric

from oncue.actors import Engine, TaskEvent, TaskState
from oncue.actors.task import FINISHED

logger = logging.getLogger(__name__)

CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST

_TRANSITIONS = {
    TaskState.PENDING: "created",
    TaskState.COMPLETED: "completed",
    TaskState.FAILED: "failed",
    TaskState.RETRYING: "retried",
    TaskState.CANCELLED: "cancelled",
}
# The transitions that end an attempt: the duration histogram times them from `running`.
_TIMED = frozenset({TaskState.RETRYING, *FINISHED})
# The method label: the client chooses the method, so anything else counts as "other" (each
# label set is a series kept forever).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


class Registry(CollectorRegistry):
    """A registry that leaves out the `*_created` series (the Unix time each counter, histogram
    and summary series was created, which reads as "1.79e9 tasks created" on a dashboard).

    `prometheus_client.disable_created_metrics()` would do it process-wide, for an embedding
    application's own metrics too; this filters only ours.
    """

    def collect(self) -> Iterator[Metric]:
        """Every metric family of the registry, without its `_created` samples."""
        for family in super().collect():
            if family.type in _WITH_CREATED:
                created = family.name + "_created"
                family.samples = [sample for sample in family.samples if sample.name != created]
            yield family


_WITH_CREATED = frozenset({"counter", "histogram", "summary", "gaugehistogram"})


class Metrics:
    """The app's metrics and the registry they live in."""

    def __init__(self) -> None:
        self.registry = Registry(auto_describe=True)
        registry = self.registry
        self.tasks = Counter(
            "oncue_tasks",
            "Task transitions by task type and event (created, completed, failed, ...)",
            ["type", "event"],
            registry=registry,
        )
        self.task_duration = Histogram(
            "oncue_task_duration_seconds",
            "Run time of finished tasks by type (started to finished, last attempt)",
            ["type"],
            registry=registry,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300),
        )
        self.queue_depth = Gauge("oncue_queue_depth", "Tasks waiting to run", registry=registry)
        self.queue_depth_by_priority = Gauge(
            "oncue_queue_depth_by_priority",
            "Tasks waiting to run by priority (on PostgreSQL and Redis: every node's)",
            ["priority"],
            registry=registry,
        )
        self.busy_workers = Gauge("oncue_workers_busy", "Workers running a task", registry=registry)
        self.workers = Gauge("oncue_workers", "Workers in the pool", registry=registry)
        self.restarts = Gauge(
            "oncue_supervisor_restarts", "Worker restarts by their supervisor", registry=registry
        )
        self.http_requests = Counter(
            "oncue_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "oncue_http_request_duration_seconds",
            "HTTP request handling time by route",
            ["route"],
            registry=registry,
        )
        self._started: dict[str, float] = {}
        self._request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._task_series: dict[tuple[str, str], Any] = {}
        self._duration_series: dict[str, Any] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one HTTP request (route is the URL rule, so the label set stays small)."""
        method = method if method in METHODS else "other"
        key = (route, method, status)
        series = self._request_series.get(key)
        if series is None:
            series = (
                self.http_requests.labels(route, method, str(status)),
                self.http_duration.labels(route),
            )
            self._request_series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    def observe_event(self, event: TaskEvent) -> None:
        """Count one task transition (:meth:`observe_events`, for one)."""
        self.observe_events([event])

    def observe_events(self, events: list[TaskEvent]) -> None:
        """Count task transitions; a finished (or retrying) task also feeds the duration
        histogram. Each counter and each histogram bucket is added to once a batch
        (prometheus_client takes a lock per ``inc``; the hub hands over thousands at a time)."""
        started, pop = self._started, self._started.pop
        counted: dict[tuple[str, TaskState], int] = {}
        durations: dict[str, list[float]] = {}
        running, timed = TaskState.RUNNING, _TIMED
        for event in events:
            state = event.state
            if state is running:
                started[event.task_id] = event.at
                continue
            began = pop(event.task_id, None)
            if began is not None and state in timed:
                elapsed = event.at - began
                durations.setdefault(event.type, []).append(elapsed if elapsed > 0.0 else 0.0)
            key = (event.type, state)  # every state but running is counted (_TRANSITIONS)
            counted[key] = counted.get(key, 0) + 1
        for task_type, values in durations.items():
            observe_all(self._duration(task_type), values)
        for (task_type, state), count in counted.items():
            self._transitions(task_type, _TRANSITIONS[state]).inc(count)

    def _duration(self, task_type: str) -> Any:
        series = self._duration_series.get(task_type)
        if series is None:
            series = self._duration_series[task_type] = self.task_duration.labels(task_type)
        return series

    def _transitions(self, task_type: str, name: str) -> Any:
        series = self._task_series.get((task_type, name))
        if series is None:
            series = self._task_series[task_type, name] = self.tasks.labels(task_type, name)
        return series

    async def refresh(self, engine: Engine) -> None:
        """Read the gauges from the engine (the /metrics route calls this before rendering)."""
        stats = await engine.stats()
        workers = await engine.workers()
        self.queue_depth.set(stats.queue_length)
        by_priority = self.queue_depth_by_priority
        by_priority.clear()  # a priority with none waiting any more leaves the scrape
        for priority, count in stats.queued_by_priority.items():
            by_priority.labels(str(priority)).set(count)
        self.workers.set(len(workers))
        self.busy_workers.set(stats.workers_busy)
        self.restarts.set(sum(worker.restarts for worker in workers))

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return prometheus_client.generate_latest(self.registry)


def observe_all(histogram: Any, values: list[float]) -> None:
    """`histogram.observe(value)` for each of `values` (one labelled child of a Histogram),
    with one ``inc`` a bucket touched and one for the sum, instead of two a value.

    A value goes in the first bucket whose upper bound is >= it, as `Histogram.observe` puts
    it (a NaN in none); the sum is added in one step, so it may differ from one-at-a-time
    adding in the last bits. Reads prometheus_client's `_upper_bounds`, `_buckets` and `_sum`
    (tests/http/test_metrics.py checks this against `observe`); without them, `observe` each.
    """
    bounds = getattr(histogram, "_upper_bounds", None)
    if bounds is None:  # a prometheus_client without these internals: one at a time
        for value in values:
            histogram.observe(value)
        return
    counts = [0] * len(bounds)
    total = 0.0
    for value in values:
        index = bisect.bisect_left(bounds, value)
        if index < len(bounds) and value <= bounds[index]:
            counts[index] += 1
        total += value
    histogram._sum.inc(total)
    buckets = histogram._buckets
    for index, count in enumerate(counts):
        if count:
            buckets[index].inc(count)
