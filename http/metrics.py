"""Prometheus metrics for one app: a registry of its own (never the global one), so two apps in
one process (tests) keep separate counts.

Everything about tasks is read from the engine at scrape time (`refresh`): the task counters
and run-time histogram from its tally (the store counts transitions as it commits them:
`engine.tally()`), the gauges (queue depth, busy workers, restarts) from its stats. Nothing
follows the tasks as they move, so a busy server pays nothing for its metrics until scraped.
The request series are looked up once per label set and kept: `labels()` takes a lock and
builds a tuple on every call, and these run per request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Metric
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from oncue.actors import Engine, Tally, TaskState

logger = logging.getLogger(__name__)

CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST

_TRANSITIONS = {
    TaskState.PENDING: "created",
    TaskState.COMPLETED: "completed",
    TaskState.FAILED: "failed",
    TaskState.RETRYING: "retried",
    TaskState.CANCELLED: "cancelled",
}
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
        self.tasks = TaskCollector()
        registry.register(self.tasks)
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
        self._request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

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

    async def refresh(self, engine: Engine) -> None:
        """Read the tally and the gauges from the engine (the /metrics route calls this before
        rendering)."""
        self.tasks.tally = await engine.tally()
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


class TaskCollector:
    """`oncue_tasks_total` (transitions by type and event) and `oncue_task_duration_seconds`
    (attempts' run times by type), from the engine's tally as last read (`Metrics.refresh`)."""

    def __init__(self) -> None:
        self.tally: Tally | None = None

    def describe(self) -> list[Metric]:
        """The families without samples (so registering does not collect)."""
        return list(self._families(None))

    def collect(self) -> Iterator[Metric]:
        """The families with the last tally's samples."""
        return iter(self._families(self.tally))

    @staticmethod
    def _families(tally: Tally | None) -> tuple[Metric, Metric]:
        transitions = CounterMetricFamily(
            "oncue_tasks",
            "Task transitions by task type and event (created, completed, failed, ...)",
            labels=["type", "event"],
        )
        durations = HistogramMetricFamily(
            "oncue_task_duration_seconds",
            "Run time of task attempts by type (started to completed, retrying, failed or"
            " cancelled)",
            labels=["type"],
        )
        if tally is not None:
            for (task_type, state), count in sorted(tally.transitions.items()):
                event = _TRANSITIONS.get(state)  # running is not counted here
                if event is not None:
                    transitions.add_metric([task_type, event], count)
            for task_type, times in sorted(tally.run_times.items()):
                bounds = [*map(floatToGoString, times.bounds), "+Inf"]
                buckets = list(zip(bounds, accumulate(times.counts), strict=True))
                durations.add_metric([task_type], buckets, times.total)
        return transitions, durations
