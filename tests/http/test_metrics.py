"""/metrics follows Prometheus' naming conventions, and the example dashboard queries it.

The exposition is read back with prometheus_client's own text parser, after enough traffic
that every labelled series exists (a labelled metric shows no sample until it has one).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from oncue.actors import RUN_TIME_BOUNDS, TaskState
from oncue.actors.cores.tally import Counting
from oncue.http.metrics import _TRANSITIONS, Metrics

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


def test_the_tally_renders_as_prometheus_own_histogram_and_counter_would() -> None:
    """/metrics exports the engine's tally (read at scrape time): the run-time buckets, count
    and sum, and the transition counters come out as prometheus_client's own Histogram and
    Counter render the same values observed one at a time."""
    values = [0.0, 0.001, 0.0010001, 0.004, 0.005, 0.3, 1.0, 7.5, 299.0, 300.0, 301.0, 1e9]
    values += [n / 97 for n in range(500)]
    counting = Counting()
    for value in values:
        counting.run_times.add("double", value)
    counting.by_state[TaskState.PENDING]["double"] = 7
    counting.by_state[TaskState.RUNNING]["double"] = 5  # not exported: a gauge's business
    counting.by_state[TaskState.RETRYING]["boom"] = 2
    metrics = Metrics()
    metrics.tasks.tally = counting.read()
    ours = families(metrics.render().decode())

    registry = CollectorRegistry()
    histogram = Histogram(
        "oncue_task_duration_seconds", "d", ["type"], buckets=RUN_TIME_BOUNDS, registry=registry
    )
    counter = Counter("oncue_tasks", "t", ["type", "event"], registry=registry)
    for value in values:
        histogram.labels("double").observe(value)
    counter.labels("double", "created").inc(7)
    counter.labels("boom", "retried").inc(2)
    theirs = families(prometheus_client.generate_latest(registry).decode())

    name = "oncue_task_duration_seconds"
    mine, expected = samples_of(ours, name), samples_of(theirs, name)
    sums = [key for key in expected if key[0].endswith("_sum")]
    assert [mine.pop(key) for key in sums] == pytest.approx([expected.pop(key) for key in sums])
    assert mine == expected
    assert samples_of(ours, "oncue_tasks") == samples_of(theirs, "oncue_tasks")


def test_request_metrics_render_as_prometheus_own_would() -> None:
    """The gateway counts requests in plain dicts and buckets: they come out as a
    prometheus_client Counter and Histogram (default buckets) fed the same requests."""
    requests = [("/api/v1/tasks", "POST", 201, n / 37) for n in range(200)]
    requests += [("/health", "GET", 200, 0.0001), ("unmatched", "BREW", 405, 0.002)]
    metrics = Metrics()
    registry = CollectorRegistry()
    counter = Counter("oncue_http_requests", "r", ["route", "method", "status"], registry=registry)
    histogram = Histogram("oncue_http_request_duration_seconds", "d", ["route"], registry=registry)
    for route, method, status, seconds in requests:
        metrics.observe_request(route, method, status, seconds)
        counter.labels(route, method if method != "BREW" else "other", str(status)).inc()
        histogram.labels(route).observe(seconds)
    ours = families(metrics.render().decode())
    theirs = families(prometheus_client.generate_latest(registry).decode())
    for name in ("oncue_http_requests", "oncue_http_request_duration_seconds"):
        mine, expected = samples_of(ours, name), samples_of(theirs, name)
        sums = [key for key in expected if key[0].endswith("_sum")]
        assert [mine.pop(k) for k in sums] == pytest.approx([expected.pop(k) for k in sums])
        assert mine == expected


def samples_of(parsed: list[Metric], name: str) -> dict[tuple[str, tuple[Any, ...]], float]:
    """A family's samples by (sample name, labels), without `_created` ones."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in parsed
        if family.name == name
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


async def test_metrics_count_what_the_engine_did(autojump_clock) -> None:
    """Transitions and run times come from the engine's tally: a completed task, a retried
    then failed one, a cancelled one; counted whether or not anything followed the events."""
    from oncue.actors import Registry, TaskContext, open_engine

    async def double(ctx: TaskContext, value: int) -> int:
        return value * 2

    async def boom(ctx: TaskContext, payload: Any) -> None:
        raise RuntimeError("boom")

    registry = Registry()
    registry.register("double", double)
    registry.register("boom", boom, retry_base=0.01, retry_cap=0.01)
    async with open_engine(registry=registry, workers=2) as engine:
        done = await engine.submit("double", 2)
        failed = await engine.submit("boom", max_retries=1)
        later = await engine.submit("double", 3, delay=3600)
        await engine.cancel(later.id)
        await engine.wait(done.id)
        await engine.wait(failed.id)
        metrics = Metrics()
        await metrics.refresh(engine)
    counted = {
        (sample.labels["type"], sample.labels["event"]): sample.value
        for family in families(metrics.render().decode())
        if family.name == "oncue_tasks"
        for sample in family.samples
    }
    assert counted == {
        ("double", "created"): 2,
        ("double", "completed"): 1,
        ("double", "cancelled"): 1,
        ("boom", "created"): 1,
        ("boom", "retried"): 1,
        ("boom", "failed"): 1,
    }
    timed = {
        sample.labels["type"]: sample.value
        for family in families(metrics.render().decode())
        if family.name == "oncue_task_duration_seconds"
        for sample in family.samples
        if sample.name.endswith("_count")
    }
    assert timed == {"double": 1, "boom": 2}  # the cancelled one never ran


def test_every_state_but_running_is_counted() -> None:
    """Each state a task enters but running is exported by its event's name."""
    assert set(_TRANSITIONS) == set(TaskState) - {TaskState.RUNNING}
