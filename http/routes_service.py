"""The service's own resources: queue pause/resume, workers, stats, health and metrics."""

from __future__ import annotations

import time
from typing import Any

import attrs
import msgspec
import trio
from quart import Blueprint, Response
from quart_schema import document_request, document_response, hide

from oncue.actors import ActorError, EngineClosed, StoreUnavailable, WorkerInfo

from .auth import require_admin
from .body import read_body
from .errors import ApiError, unavailable_reason
from .metrics import CONTENT_TYPE
from .models import ErrorOut, WorkersIn, iso
from .reply import json_response
from .service import service

MAX_WORKERS = 1000

service_routes = Blueprint("service", __name__)


class WorkerOut(msgspec.Struct):
    name: str
    state: str
    current_task: str | None
    tasks_done: int
    restarts: int
    last_error: str | None


class WorkerList(msgspec.Struct):
    workers: list[WorkerOut]


class QueueOut(msgspec.Struct):
    paused: bool


class StatsOut(msgspec.Struct):
    """What GET /api/v1/stats answers (oncue.actors.Stats)."""

    total_processed: int
    successful: int
    failed: int
    cancelled: int
    queue_length: int
    running: int
    by_state: dict[str, int]
    by_type: dict[str, dict[str, int]]
    workers_busy: int
    workers_idle: int
    paused: bool
    # priority (as a JSON key: a string) -> tasks waiting to run, highest priority first; on a
    # shared store (PostgreSQL, Redis) the whole store's, every node's
    queued_by_priority: dict[str, int]


class HealthQueue(msgspec.Struct):
    size: int
    closed: bool


class HealthOut(msgspec.Struct):
    status: str
    timestamp: str
    workers: int
    queue_depth: int
    queue: HealthQueue
    reason: str | None = None  # why not `ok`, when the store is the cause


def worker_json(worker: WorkerInfo) -> dict[str, Any]:
    return attrs.asdict(worker)


@service_routes.post("/api/v1/queue/pause")
@document_response(QueueOut)
async def pause() -> Response:
    """Stop handing tasks to workers (submissions are still accepted)."""
    require_admin()
    with service().deadline():
        await service().engine.pause()
    return json_response({"paused": True})


@service_routes.post("/api/v1/queue/resume")
@document_response(QueueOut)
async def resume() -> Response:
    """Hand tasks to workers again."""
    require_admin()
    with service().deadline():
        await service().engine.resume()
    return json_response({"paused": False})


@service_routes.get("/api/v1/workers")
@document_response(WorkerList)
async def list_workers() -> Response:
    """Each worker: name, state, current task, tasks done, restarts, last error."""
    with service().deadline():
        workers = await service().engine.workers()
    return json_response({"workers": [worker_json(worker) for worker in workers]})


@service_routes.put("/api/v1/workers")
@document_request(WorkersIn)
@document_response(WorkerList)
@document_response(ErrorOut, 422)
async def resize_workers() -> Response:
    """Resize the worker pool at run time; answers with the workers after the change."""
    require_admin()
    body = await read_body(WorkersIn)
    if not 0 <= body.count <= MAX_WORKERS:
        message = f"count must be between 0 and {MAX_WORKERS}, got {body.count}"
        raise ApiError(422, "invalid_field", message, field="count")
    engine = service().engine
    with service().deadline():
        await engine.resize(workers=body.count)
        workers = await engine.workers()
    return json_response({"workers": [worker_json(worker) for worker in workers]})


@service_routes.get("/api/v1/stats")
@document_response(StatsOut)
async def stats() -> Response:
    """Counts by state and type, queue length and the waiting tasks by priority, busy and idle
    workers, whether paused."""
    with service().deadline():
        current = await service().engine.stats()
    return json_response(attrs.asdict(current))


HEALTH_DEADLINE = 1.0  # seconds /health waits for the store before answering 503


@service_routes.get("/health")
@service_routes.get("/api/v1/health")
@document_response(HealthOut)
@document_response(HealthOut, 503)
async def health() -> Response:
    """`ok` with 200; 503 with `shutting_down` once the server drains, or `unavailable` while
    the store does not answer (for load balancers), with the `reason`. Answers within about
    HEALTH_DEADLINE seconds, whatever the store does."""
    current = service()
    closing = current.engine.closing or current.draining.is_set()
    status, depth, workers, reason = "ok", 0, 0, None
    try:
        with trio.fail_after(min(HEALTH_DEADLINE, current.store_deadline)):
            engine_stats = await current.engine.stats()
            depth, workers = engine_stats.queue_length, len(await current.engine.workers())
    except EngineClosed:
        closing = True
    except trio.TooSlowError:  # the store is stuck in its backend: take us out of rotation
        status = "unavailable"
        reason = f"the task store did not answer within {HEALTH_DEADLINE:g}s"
    except (StoreUnavailable, ActorError) as error:  # the backend fails, the store restarts
        status, reason = "unavailable", unavailable_reason(error)
    if closing:
        status, reason = "shutting_down", None
    body: dict[str, Any] = {
        "status": status,
        "timestamp": iso(time.time()),
        "workers": workers,
        "queue_depth": depth,
        "queue": {"size": depth, "closed": closing},
    }
    if reason is not None:
        body["reason"] = reason
    return json_response(body, 200 if status == "ok" else 503)


@service_routes.get("/metrics")
@hide
async def metrics() -> Response:
    """Prometheus text format."""
    current = service()
    with current.deadline():
        await current.metrics.refresh(current.engine)
    return Response(current.metrics.render(), content_type=CONTENT_TYPE)
