"""The task resource: `/api/v1/tasks` and its alias `/api/v1/jobs` (job_id, completed_at).

Routes only translate: JSON in, one engine call, JSON out. The engine's errors become status
codes in errors.py, never here. This module lists every route of the resource (ROUTES) and
makes one blueprint per name; the submits are routes_submit.py's, the long-polls
routes_wait.py's, and how a route is declared routes_resource.py's.
"""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.structs
from quart import Blueprint, Response, request

from oncue.actors import Task, TaskAlreadyFinished, TaskState
from oncue.actors.engine.handle import MAX_LIST_LIMIT  # the engine's own bound

from .body import query_int
from .errors import ApiError
from .models import (
    JOB_NAMES,
    BatchIn,
    ErrorOut,
    JobBatch,
    JobList,
    JobOut,
    TaskIn,
    WaitManyIn,
    task_out,
)
from .reply import json_response
from .routes_resource import Accept, Render, Resource, Route, own_task
from .routes_submit import accept_batch, accept_task, submit, submit_batch
from .routes_wait import wait_task, wait_tasks
from .service import service
from .tenancy import owner_filter

__all__ = ["JOBS", "TASKS", "Accept", "Render", "direct_routes", "jobs", "tasks"]


class ListQuery(msgspec.Struct):
    """`GET /api/v1/tasks` query string (documentation only; parsed by hand for 422s)."""

    status: str | None = None
    type: str | None = None
    limit: int = 50
    cursor: str | None = None


async def list_tasks(resource: Resource) -> Response:
    """List tasks newest first, filtered by status and type, a page at a time."""
    status = request.args.get("status") or None
    if status is not None and status not in resource.states:
        message = f"status must be one of {', '.join(resource.states)}, got {status!r}"
        raise ApiError(422, "invalid_field", message, field="status")
    limit = query_int("limit", 50, low=1, high=MAX_LIST_LIMIT)
    with service().deadline():
        page = await service().engine.list(
            state=None if status is None else resource.states[status],
            type=request.args.get("type") or None,
            limit=limit,
            cursor=request.args.get("cursor") or None,
            owner=owner_filter(),
        )
    tasks = [resource.render(task) for task in page.tasks]
    return json_response({resource.plural: tasks, "next_cursor": page.next_cursor})


async def get_task(resource: Resource, task_id: str) -> Response:
    """One task."""
    return json_response(resource.render(await own_task(task_id)))


async def delete_task(resource: Resource, task_id: str) -> Response:
    """Cancel an unfinished task (200 with it), or forget a finished one (204)."""
    engine = service().engine
    await own_task(task_id)
    try:
        return json_response(resource.render(await engine.cancel(task_id)))
    except TaskAlreadyFinished:
        await engine.delete(task_id)
        return Response(b"", status=204)


async def cancel_task(resource: Resource, task_id: str) -> Response:
    """Cancel an unfinished task; a finished one is a 409."""
    await own_task(task_id)
    with service().deadline():
        task = await service().engine.cancel(task_id)
    return json_response(resource.render(task))


async def retry_task(resource: Resource, task_id: str) -> Response:
    """Run a failed task again."""
    await own_task(task_id)
    return json_response(resource.render(await service().engine.retry(task_id)), 200)


ROUTES = [
    Route("POST", "", submit, {201: "one", 200: "one", 422: ErrorOut}, TaskIn, accept=accept_task),
    Route("POST", "/batch", submit_batch, {201: "batch"}, BatchIn, accept=accept_batch),
    Route("POST", "/wait", wait_tasks, {200: "batch", 422: ErrorOut}, WaitManyIn),
    Route("GET", "", list_tasks, {200: "page"}, query=ListQuery),
    Route("GET", "/<task_id>", get_task, {200: "one"}),
    Route("GET", "/<task_id>/wait", wait_task, {200: "one"}),
    Route("DELETE", "/<task_id>", delete_task, {200: "one"}),
    Route("POST", "/<task_id>/cancel", cancel_task, {200: "one", 409: ErrorOut}),
    Route("POST", "/<task_id>/retry", retry_task, {200: "one", 409: ErrorOut}),
]


def direct_routes(resource: Resource) -> list[tuple[str, str, Accept, Render]]:
    """The submit routes of `resource`: (method, URL rule, their work, how a task renders)."""
    return [
        (route.method, resource.prefix + route.rule, route.accept, resource.render)
        for route in ROUTES
        if route.accept is not None
    ]


def task_blueprint(resource: Resource) -> Blueprint:
    """Every task route under `resource.prefix`, each task rendered by `resource.render`."""
    blueprint = Blueprint(resource.name, __name__, url_prefix=resource.prefix)
    for route in ROUTES:
        blueprint.add_url_rule(route.rule, view_func=route.view(resource), methods=[route.method])
    return blueprint


def job_json(task: Task) -> dict[str, Any]:
    """A task under the names the "Task Queue System" README used: job_id, completed_at, and
    its states pending → processing → completed / failed → retrying."""
    shown = msgspec.structs.asdict(task_out(task))
    job = {JOB_NAMES.get(name, name): value for name, value in shown.items()}
    job["status"] = JOB_STATES.get(task.state, job["status"])
    return job


JOB_STATES = {TaskState.RUNNING: "processing"}
TASKS = Resource("tasks", "/api/v1/tasks", task_out)
JOBS = Resource(
    "jobs",
    "/api/v1/jobs",
    job_json,
    JobOut,
    JobList,
    JobBatch,
    # The README's names, and the engine's "running" too.
    states={**TASKS.states, **{name: state for state, name in JOB_STATES.items()}},
)
tasks = task_blueprint(TASKS)
jobs = task_blueprint(JOBS)
