"""Tracing (the `oncue[otel]` extra): a span per submit and per attempt, in the submitter's
trace, recorded with the OpenTelemetry SDK's in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the oncue[otel] extra is not installed")

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from oncue.actors import QueueFull, Registry, TaskContext, open_engine
from oncue.actors.backends.shared_memory import SharedMemory, SharedMemoryBackend
from oncue.http.app import create_app

REMOTE_TRACE = "0af7651916cd43dd8448eb211c80319c"
REMOTE_PARENT = "b7ad6b7169203331"


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """An SDK provider for this test only (the global one can be set once per process)."""
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    yield exported
    provider.shutdown()


def named(spans: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name.startswith(prefix)]


def flaky_registry() -> Registry:
    registry = Registry()

    @registry.task("flaky", max_retries=1, retry_base=0.1, retry_cap=0.1)
    async def flaky(ctx: TaskContext, payload: Any) -> str:
        with trace.get_tracer("handler").start_as_current_span("handler.work"):
            if ctx.attempt == 1:
                raise RuntimeError("first attempt fails")
        return "ok"

    return registry


async def test_submit_and_each_attempt_join_the_submitters_trace(
    autojump_clock, exporter: InMemorySpanExporter
) -> None:
    tracer = trace.get_tracer("app")
    async with open_engine(registry=flaky_registry(), workers=1) as engine:
        with tracer.start_as_current_span("request") as request:
            task = await engine.submit("flaky", None, headers={"tenant": "acme"})
        await engine.wait(task.id)
    spans = exporter.get_finished_spans()
    [submit] = named(spans, "oncue.submit")
    runs = named(spans, "oncue.run")
    trace_id = request.get_span_context().trace_id
    assert submit.context.trace_id == trace_id
    assert submit.parent is not None
    assert submit.parent.span_id == request.get_span_context().span_id
    assert submit.kind is SpanKind.PRODUCER
    assert submit.attributes["oncue.task.id"] == task.id
    assert [run.attributes["oncue.task.attempt"] for run in runs] == [1, 2]
    for run in runs:
        assert run.kind is SpanKind.CONSUMER
        assert run.context.trace_id == trace_id
        assert run.parent is not None
        assert run.parent.span_id == submit.context.span_id
    assert [run.status.status_code for run in runs] == [StatusCode.ERROR, StatusCode.UNSET]
    assert [run.attributes["oncue.outcome"] for run in runs] == ["JobFailed", "JobSucceeded"]
    # a span the handler opens nests under its attempt
    for work in named(spans, "handler.work"):
        assert work.parent is not None
        assert work.parent.span_id in {run.context.span_id for run in runs}
    # the trace context travels in the task's headers, beside the submitter's own
    assert task.headers is not None
    assert task.headers["tenant"] == "acme"
    assert task.headers["traceparent"].split("-")[1] == f"{trace_id:032x}"


async def test_a_traceparent_in_the_headers_is_the_parent_over_http(
    autojump_clock, exporter: InMemorySpanExporter
) -> None:
    async with open_engine(registry=flaky_registry(), workers=1) as engine:
        app = create_app(engine)
        async with app.test_app() as test_app:
            client = test_app.test_client()
            traceparent = f"00-{REMOTE_TRACE}-{REMOTE_PARENT}-01"
            body = {"type": "flaky", "headers": {"traceparent": traceparent, "tenant": "a"}}
            created = await (await client.post("/api/v1/tasks", json=body)).get_json()
            await engine.wait(created["id"])
            shown = await (await client.get(f"/api/v1/tasks/{created['id']}")).get_json()
            bad = {"type": "flaky", "headers": {"tenant": 5}}
            refused = await client.post("/api/v1/tasks", json=bad)
    assert refused.status_code == 422
    assert (await refused.get_json())["error"]["field"].startswith("headers")
    spans = exporter.get_finished_spans()
    [submit] = named(spans, "oncue.submit")
    assert f"{submit.context.trace_id:032x}" == REMOTE_TRACE
    assert submit.parent is not None
    assert f"{submit.parent.span_id:016x}" == REMOTE_PARENT
    assert {f"{run.context.trace_id:032x}" for run in named(spans, "oncue.run")} == {REMOTE_TRACE}
    assert shown["headers"]["tenant"] == "a"
    assert shown["headers"]["traceparent"].split("-")[2] == f"{submit.context.span_id:016x}"


async def test_an_attempt_on_another_node_joins_the_trace(
    autojump_clock, exporter: InMemorySpanExporter
) -> None:
    hub = SharedMemory()
    registry = flaky_registry()
    async with (
        open_engine(registry=registry, store=SharedMemoryBackend(hub), node="a", workers=0) as a,
        open_engine(registry=registry, store=SharedMemoryBackend(hub), node="b", workers=1) as b,
    ):
        task = await a.submit("flaky", None)
        await b.wait(task.id)
    spans = exporter.get_finished_spans()
    [submit] = named(spans, "oncue.submit")
    runs = named(spans, "oncue.run")
    assert {run.attributes["oncue.node"] for run in runs} == {"b"}
    assert {run.context.trace_id for run in runs} == {submit.context.trace_id}


async def test_submit_nowait_is_traced_too(autojump_clock, exporter: InMemorySpanExporter) -> None:
    async with open_engine(registry=flaky_registry(), workers=1) as engine:
        task = engine.submit_nowait("flaky", None)
        await engine.wait(task.id)
    spans = exporter.get_finished_spans()
    [submit] = named(spans, "oncue.submit")
    assert submit.attributes["oncue.task.id"] == task.id
    assert task.headers is not None
    assert "traceparent" in task.headers  # the Task answered carries what the store records
    assert len(named(spans, "oncue.run")) == 2


async def test_a_refused_submit_ends_its_span_with_the_error(
    exporter: InMemorySpanExporter,
) -> None:
    async with open_engine(workers=0, queue_size=1) as engine:
        await engine.submit("echo", None)
        with pytest.raises(QueueFull):
            await engine.submit("echo", None)
    refused = [span for span in named(exporter.get_finished_spans(), "oncue.submit")][-1]
    assert refused.status.status_code is StatusCode.ERROR
    assert "QueueFull" in (refused.status.description or "")


async def test_without_a_provider_nothing_is_traced_and_headers_pass_through() -> None:
    async with open_engine(workers=0) as engine:
        task = await engine.submit("echo", None, headers={"a": "b"})
    assert task.headers == {"a": "b"}
