"""The clients carry task headers, and the caller's current span as the task's trace parent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from servers import Server, running_server

from oncue import Client

TOKEN = "headers-test-token"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running_server("--workers", "1", env={"ONCUE_API_TOKENS": f"tester:{TOKEN}"}) as served:
        yield served


def test_headers_round_trip_through_the_client(server: Server) -> None:
    with Client(server.url, token=TOKEN) as client:
        task = client.submit("echo", 1, headers={"tenant": "acme"})
        plain = client.submit("echo", 2)
        assert task.headers == {"tenant": "acme"}
        assert client.get(task.id).headers == {"tenant": "acme"}
        assert plain.headers is None


def test_the_callers_current_span_becomes_the_tasks_parent(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("opentelemetry.sdk", reason="the oncue[otel] extra is not installed")
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    with Client(server.url, token=TOKEN) as client:
        with trace.get_tracer("web").start_as_current_span("request") as span:
            task = client.submit("echo", 1, headers={"tenant": "acme"})
        untraced = client.submit("echo", 2)
    context = span.get_span_context()
    assert task.headers is not None
    _, trace_id, parent, _ = task.headers["traceparent"].split("-")
    assert (trace_id, parent) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    assert task.headers["tenant"] == "acme"
    assert untraced.headers is None  # no span current: nothing to carry
