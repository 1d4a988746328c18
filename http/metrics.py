"""Prometheus metrics for one app: a registry of its own (never the global one), so two apps in
one process (tests) keep separate counts.

Everything about tasks is read from the engine at scrape time (`refresh`): the task counters
and run-time histogram from its tally (the store counts transitions as it commits them:
`engine.tally()`), the gauges (queue depth, busy workers, restarts) from its stats. Nothing
follows the tasks as they move, so a busy server pays nothing for its metrics until scraped.
The request counters and durations are counted by the gateway in plain dicts and buckets
(`RequestCollector`): prometheus_client's own take a lock an add, three adds a request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from itertools import accumulate

import prometheus_client
from prometheus_client import CollectorRegistry, Gauge, Histogram, Metric
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from oncue.actors import Engine, RunTimes, Tally, TaskState
from oncue.actors.cores.tally import Timings

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
# prometheus_client's default buckets (seconds), as the request histogram always had.
REQUEST_BOUNDS = tuple(bound for bound in Histogram.DEFAULT_BUCKETS if bound != float("inf"))


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
        self.requests = RequestCollector()
        registry.register(self.requests)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one HTTP request (route is the URL rule, so the label set stays small)."""
        requests = self.requests
        key = (route, method if method in METHODS else "other", status)
        counts = requests.counts
        counts[key] = counts.get(key, 0) + 1
        requests.durations.add(route, seconds)

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
            add_histograms(durations, tally.run_times)
        return transitions, durations


class RequestCollector:
    """`oncue_http_requests_total` (by route, method and status) and
    `oncue_http_request_duration_seconds` (by route), counted by the gateway as it answers: a
    dict increment and a bucket a request, where prometheus_client's Counter and Histogram
    take a lock for each of three adds (everything here runs on the app's one trio thread,
    the scrape included)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, int], int] = {}
        self.durations = Timings[str](REQUEST_BOUNDS)

    def describe(self) -> list[Metric]:
        """The families without samples (so registering does not collect)."""
        return list(self._families(False))

    def collect(self) -> Iterator[Metric]:
        """The families with the counts so far."""
        return iter(self._families(True))

    def _families(self, filled: bool) -> tuple[Metric, Metric]:
        requests = CounterMetricFamily(
            "oncue_http_requests",
            "HTTP requests by route, method and status",
            labels=["route", "method", "status"],
        )
        durations = HistogramMetricFamily(
            "oncue_http_request_duration_seconds",
            "HTTP request handling time by route",
            labels=["route"],
        )
        if filled:
            for (route, method, status), count in sorted(self.counts.items()):
                requests.add_metric([route, method, str(status)], count)
            add_histograms(durations, self.durations.read())
        return requests, durations


def add_histograms(family: HistogramMetricFamily, histograms: Mapping[str, RunTimes]) -> None:
    """One labelled histogram a key, in Prometheus' cumulative buckets."""
    for key, times in sorted(histograms.items()):
        bounds = [*map(floatToGoString, times.bounds), "+Inf"]
        family.add_metric(
            [key], list(zip(bounds, accumulate(times.counts), strict=True)), times.total
        )
