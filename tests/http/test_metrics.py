"""/metrics follows Prometheus' naming conventions, and the example dashboard queries it.

The exposition is read back with prometheus_client's own text parser, after enough traffic
that every labelled series exists (a labelled metric shows no sample until it has one).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from oncue.actors import TaskState
from oncue.http.metrics import _TRANSITIONS, Metrics, observe_all

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "oncue-dashboard.json"
NAME = re.compile(r"oncue_[a-z][a-z0-9_]*[a-z0-9]")
LABEL = re.compile(r"[a-z][a-z0-9_]*")
SUFFIXES = ("_total", "_count", "_sum", "_bucket", "_created", "_info")
# Prometheus wants base units: seconds, bytes; not ms, minutes, kilobytes...
NOT_BASE_UNITS = re.compile(r"_(ms|milliseconds|microseconds|minutes|hours|days|kilobytes|mb)\b")
HIGH_CARDINALITY = {"id", "task_id", "key", "path", "worker", "node", "payload"}


async def scrape(client: Any) -> str:
    """/metrics after a task completes, one fails (with a retry) and a few requests."""
    for body in ({"type": "double", "payload": 2}, {"type": "boom"}):
        task = await (await client.post("/api/v1/tasks", json=body)).json
        await client.get(f"/api/v1/tasks/{task['id']}/wait?timeout=10")
    await client.get("/api/v1/tasks/nope")
    return (await (await client.get("/metrics")).get_data()).decode()  # type: ignore[no-any-return]


def families(text: str) -> list[Metric]:
    return list(text_string_to_metric_families(text))


async def test_no_created_series(client) -> None:
    text = await scrape(client)
    assert "oncue_tasks_total" in text
    samples = [sample.name for family in families(text) for sample in family.samples]
    assert not [name for name in samples if name.endswith("_created")]


def test_the_registry_filters_created_series_only_of_its_own() -> None:
    import prometheus_client

    metrics = Metrics()
    metrics.observe_request("/health", "GET", 200, 0.01)
    assert b"_created" not in metrics.render()
    other = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("app_things", "an embedding app's counter", registry=other)
    assert b"app_things_created" in prometheus_client.generate_latest(other)


async def test_names_and_labels_follow_prometheus_conventions(client) -> None:
    parsed = families(await scrape(client))
    assert {family.type for family in parsed} == {"counter", "gauge", "histogram"}
    for family in parsed:
        assert NAME.fullmatch(family.name), family.name
        assert family.documentation, f"{family.name} has no HELP"
        assert not NOT_BASE_UNITS.search(family.name), f"{family.name}: use base units"
        if family.type == "counter":
            assert {s.name for s in family.samples} == {family.name + "_total"}
        elif family.type == "histogram":
            assert family.name.endswith("_seconds"), f"{family.name}: a histogram of seconds"
        else:
            assert not family.name.endswith(SUFFIXES), f"{family.name}: a gauge's suffix"
        for sample in family.samples:
            labels = set(sample.labels) - ({"le"} if family.type == "histogram" else set())
            assert all(LABEL.fullmatch(label) for label in labels), sample
            assert not labels & HIGH_CARDINALITY, f"{family.name}: unbounded label {labels}"


# The dashboard ------------------------------------------------------------------------------


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_the_dashboard_is_grafana_json_with_panels() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] == "oncue"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)) >= 8
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"


async def test_every_series_the_dashboard_queries_exists(client) -> None:
    parsed = families(await scrape(client))
    series: dict[str, set[str]] = {}  # sample name -> its label names
    for family in parsed:
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    values: dict[str, set[str]] = {}  # label -> values seen
    for family in parsed:
        for sample in family.samples:
            for label, value in sample.labels.items():
                values.setdefault(label, set()).add(value)
    for query in dashboard_queries():
        names = set(re.findall(r"\boncue_[a-z0-9_]+", query))
        assert names, query
        for name in names:
            assert name in series, f"{name} (in {query!r}) is not on /metrics"
        grouped = {
            label.strip()
            for group in re.findall(r"by \(([^)]*)\)", query)
            for label in group.split(",")
        }
        known = set().union(*(series[name] for name in names))
        assert grouped <= known, f"{query!r} groups by labels {grouped - known} that no series has"
        for label, value in re.findall(r'(\w+)="([^"]*)"', query):
            assert value in values.get(label, set()), f"{label}={value!r} never appears"


def test_a_batch_of_events_counts_as_the_events_one_by_one() -> None:
    """The hub hands the metrics thousands of transitions at once (observe_events): the
    counters and the duration histogram end as they would from one event at a time."""
    from oncue.actors import TaskEvent, TaskState

    events = []
    for n in range(50):
        kind = "double" if n % 2 else "boom"
        events.append(TaskEvent(f"t{n}", kind, TaskState.PENDING, 1.0, 0))
        events.append(TaskEvent(f"t{n}", kind, TaskState.RUNNING, 2.0, 1))
        ending = TaskState.COMPLETED if n % 3 else TaskState.RETRYING
        events.append(TaskEvent(f"t{n}", kind, ending, 2.5 + n, 1))
    one_by_one, batched = Metrics(), Metrics()
    for event in events:
        one_by_one.observe_event(event)
    batched.observe_events(events[:70])
    batched.observe_events(events[70:])

    def samples(metrics: Metrics) -> list[Any]:
        return sorted(
            (sample.name, sorted(sample.labels.items()), sample.value)
            for family in families(metrics.render().decode())
            if family.name.startswith("oncue_task")
            for sample in family.samples
        )

    assert samples(batched) == samples(one_by_one)
    counted = {
        (labels["type"], labels["event"]): value
        for name, pairs, value in samples(batched)
        if name == "oncue_tasks_total"
        for labels in [dict(pairs)]
    }
    for kind, odd in (("double", 1), ("boom", 0)):
        numbers = [n for n in range(50) if n % 2 == odd]
        assert counted[kind, "created"] == 25
        assert counted[kind, "completed"] == sum(1 for n in numbers if n % 3)
        assert counted[kind, "retried"] == sum(1 for n in numbers if not n % 3)
    durations = {
        dict(pairs)["type"]: value
        for name, pairs, value in samples(batched)
        if name.endswith("_count") and "duration" in name
    }
    assert durations == {"double": 25, "boom": 25}


def test_observe_all_fills_the_histogram_as_observe_does_one_by_one() -> None:
    """The duration histogram takes a batch's values at once (observe_all): every bucket and
    the count end as prometheus_client's own `observe` leaves them, the sum up to rounding; a
    NaN lands in no bucket, as with `observe`."""
    bounds = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300)
    values = [0.0, 0.001, 0.0010001, 0.004, 0.005, 0.3, 1.0, 7.5, 299.0, 300.0, 301.0, 1e9]
    values += [float("inf"), *(n / 97 for n in range(500))]
    for batch in (values, [float("nan"), 0.5]):
        registry = CollectorRegistry()
        histogram = Histogram("h", "h", ["kind"], buckets=bounds, registry=registry)
        for value in batch:
            histogram.labels("one").observe(value)
        observe_all(histogram.labels("all"), batch[:7])
        observe_all(histogram.labels("all"), batch[7:])
        one, all_ = _histogram(registry, "one"), _histogram(registry, "all")
        assert all_.pop(("h_sum", None)) == pytest.approx(one.pop(("h_sum", None)), nan_ok=True)
        assert one == all_
        assert len(one) == len(bounds) + 2  # every bucket, +Inf and the count


def _histogram(registry: CollectorRegistry, kind: str) -> dict[tuple[str, str | None], float]:
    (family,) = [family for family in registry.collect() if family.name == "h"]
    return {
        (sample.name, sample.labels.get("le")): sample.value
        for sample in family.samples
        if sample.labels["kind"] == kind and not sample.name.endswith("_created")
    }


def test_every_state_but_running_is_counted() -> None:
    """observe_events counts each transition by its state's name: each state has one."""
    assert set(_TRANSITIONS) == set(TaskState) - {TaskState.RUNNING}


def test_observe_all_without_the_histogram_internals_observes_each() -> None:
    """A prometheus_client whose Histogram lacks the internals read: one observe a value."""

    class Plain:
        def __init__(self) -> None:
            self.seen: list[float] = []

        def observe(self, value: float) -> None:
            self.seen.append(value)

    histogram = Plain()
    observe_all(histogram, [0.5, 2.0, 0.001])
    assert histogram.seen == [0.5, 2.0, 0.001]
