"""OpenTelemetry spans for submits and attempts (the optional `oncue[otel]` extra).

A submit opens a span `oncue.submit <type>` (kind PRODUCER) whose context is written into the
task's headers as W3C `traceparent`/`tracestate`; its parent is the trace context the
submitter put in the headers itself, else the current span. Every attempt opens a span
`oncue.run <type>` (kind CONSUMER) whose parent is the context the headers carry, so a task's
attempts (on any node, after a restart from a durable store) join the submitter's trace. The
attempt span is current while the handler runs: spans a handler opens nest under it.

`open_engine` asks `active()` once: with opentelemetry installed and an SDK tracer provider
set by then, the engine traces; otherwise (the API's default provider is a no-op) nothing here
runs and headers pass through untouched. The check is made once because it costs ~1-3 us
(the API reads the environment), too much per task.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.trace import ProxyTracerProvider, SpanKind, Status, StatusCode
except ImportError:  # the extra is not installed
    trace = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from ..messages import Job, Outcome

TRACER = "oncue"
TRACE_HEADERS = ("traceparent", "tracestate")


def active() -> bool:
    """Whether spans are recorded: opentelemetry is installed and an SDK provider is set."""
    return trace is not None and not isinstance(trace.get_tracer_provider(), ProxyTracerProvider)


def with_trace_context(headers: Mapping[str, str] | None) -> dict[str, str] | None:
    """`headers` plus the current span's context (`traceparent`), for a task submitted over
    HTTP; unchanged when tracing is not active or the caller set a `traceparent` itself."""
    carrier = dict(headers or {})
    if active() and "traceparent" not in carrier:
        propagate.inject(carrier)
    return carrier or None


def start_submit(task_type: str, headers: Mapping[str, str] | None) -> tuple[Span, dict[str, str]]:
    """Open the submit span of one task; returns it and the headers carrying its context.

    The caller ends it (`end_submit`) once the store has answered.
    """
    given = dict(headers or {})
    parent = propagate.extract(given, context=otel_context.get_current())
    span = trace.get_tracer(TRACER).start_span(
        f"oncue.submit {task_type}",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes={"oncue.task.type": task_type},
    )
    carrier = {name: value for name, value in given.items() if name not in TRACE_HEADERS}
    propagate.inject(carrier, context=trace.set_span_in_context(span, parent))
    return span, carrier


def end_submit(span: Span, task_id: str | None, error: BaseException | None = None) -> None:
    """Close a submit span: the task's id, or the error that refused it."""
    if task_id is not None:
        span.set_attribute("oncue.task.id", task_id)
    if error is not None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    span.end()


@contextmanager
def attempt_span(job: Job, worker: str, node: str | None) -> Iterator[Span]:
    """The span of one attempt, current for the block, a child of the task's trace context."""
    parent = propagate.extract(dict(job.headers or {}))
    attributes: dict[str, Any] = {
        "oncue.task.id": job.id,
        "oncue.task.type": job.type,
        "oncue.task.attempt": job.attempts + 1,
        "oncue.worker": worker,
    }
    if node is not None:
        attributes["oncue.node"] = node
    tracer = trace.get_tracer(TRACER)
    with tracer.start_as_current_span(
        f"oncue.run {job.type}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    ) as span:
        yield span


def end_attempt(span: Span, outcome: Outcome) -> None:
    """Record how the attempt ended: `oncue.outcome` (the outcome's type: JobSucceeded,
    JobFailed...), and an error status unless it succeeded."""
    kind = type(outcome).__name__
    span.set_attribute("oncue.outcome", kind)
    if kind != "JobSucceeded":
        error = getattr(outcome, "error", None)
        detail = f"{error.type}: {error.message}" if error is not None else kind
        span.set_status(Status(StatusCode.ERROR, detail))
