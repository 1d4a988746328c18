"""The task resource: `/api/v1/tasks` and its alias `/api/v1/jobs` (job_id, completed_at).

Routes only translate: JSON in, one engine call, JSON out. The engine's errors become status
codes in errors.py, never here. The submit routes' work is an `Accept` function of the body's
bytes, which their Quart views call and which the gateway calls directly for `/api/v1/tasks`
(see direct.py): one implementation, two ways in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import msgspec
import trio
from quart import Blueprint, Response, request
from quart_schema import document_querystring, document_request, document_response

from oncue.actors import InvalidField, Submission, Task, TaskAlreadyFinished, TaskState
from oncue.actors.cores.rules import check_one_schedule
from oncue.actors.engine.handle import MAX_LIST_LIMIT  # the engine's own bound

from .body import decode, query_float, query_int, request_data
from .errors import ApiError
from .models import (
    JOB_NAMES,
    BatchIn,
    ErrorOut,
    JobBatch,
    JobList,
    JobOut,
    TaskBatch,
    TaskIn,
    TaskList,
    TaskOut,
    WaitManyIn,
    epoch,
    task_json,
)
from .reply import Reply, json_reply, json_response
from .service import Service, service
from .tenancy import current_owner, owner_filter, scoped_key, visible

DEFAULT_WAIT = 30.0
MAX_WAIT = 300.0

Render = Callable[[Task], dict[str, Any]]
# A submit route's work: (service, the caller's owner, the request body, render) -> the answer.
Accept = Callable[[Service, str | None, bytes, Render], Awaitable[Reply]]


class ListQuery(msgspec.Struct):
    """`GET /api/v1/tasks` query string (documentation only; parsed by hand for 422s)."""

    status: str | None = None
    type: str | None = None
    limit: int = 50
    cursor: str | None = None


def submission(
    item: TaskIn, field: str = "payload", *, current: Service, owner: str | None
) -> Submission:
    """The engine's `Submission` for one request item; `delay` and `run_at` exclude each other.

    `field` names the payload in errors (`tasks[3].payload` inside a batch); `current` and
    `owner` are looked up once per request (a batch would otherwise pay for them per task).
    The payload is encoded once: its size is measured from that JSON, which a durable store
    then commits as it is.
    """
    payload_json = current.check_payload(item.payload, field)
    try:
        check_one_schedule(item.delay, item.run_at)
    except InvalidField as error:
        raise ApiError(422, "invalid_field", str(error), field=error.field) from None
    return Submission(
        item.type,
        item.payload,
        priority=item.priority,
        max_retries=item.max_retries,
        timeout=item.timeout,
        delay=item.delay,
        run_at=None if item.run_at is None else epoch(item.run_at),
        key=None if item.key is None else scoped_key(item.key, owner),
        owner=owner,
        payload_json=payload_json,
        headers=item.headers,
    )


@attrs.frozen
class Resource:
    """One name of the task resource: where it lives, how it renders and documents a task."""

    name: str
    prefix: str
    render: Render
    one: type = TaskOut
    page: type = TaskList
    batch: type = TaskBatch
    states: dict[str, TaskState] = attrs.field(factory=lambda: {s.value: s for s in TaskState})

    @property
    def plural(self) -> str:
        """The key of a list of them in an answer ("tasks", "jobs")."""
        return self.name


@attrs.frozen
class Route:
    """A task route: `handler(resource, **path)` answers; `responses` documents it.

    A response model given by name ("one", "page", "batch") is the resource's own.
    """

    method: str
    rule: str
    handler: Callable[..., Awaitable[Response]]
    responses: dict[int, type | str]
    body: type | None = None
    query: type | None = None
    accept: Accept | None = None  # a submit route's work, which the gateway may call directly

    def view(self, resource: Resource) -> Callable[..., Awaitable[Response]]:
        """The view function for `resource`, documented for the OpenAPI spec."""
        handler = self.handler

        async def view(**path: Any) -> Response:
            return await handler(resource, **path)

        view.__name__ = handler.__name__
        view.__doc__ = handler.__doc__
        for status, model in self.responses.items():
            shown = getattr(resource, model) if isinstance(model, str) else model
            view = document_response(shown, status)(view)
        if self.body is not None:
            view = document_request(self.body)(view)
        if self.query is not None:
            view = document_querystring(self.query)(view)
        return view


async def accept_task(current: Service, owner: str | None, data: bytes, render: Render) -> Reply:
    """Submit the task `data` describes; 201 with it, or 200 with the task its key names."""
    task = submission(decode(TaskIn, data), current=current, owner=owner)
    with current.deadline():
        (admitted,) = await current.engine.admit([task])
    return json_reply(render(admitted.task), 201 if admitted.created else 200)


async def accept_batch(
    current: Service, owner: str | None, data: bytes, render: Render, plural: str = "tasks"
) -> Reply:
    """Submit the tasks `data` lists, all or none; 201 with them (under `plural`)."""
    batch = decode(BatchIn, data)
    limit = current.batch_limit
    if not 1 <= len(batch.tasks) <= limit:
        message = f"tasks must hold 1 to {limit} tasks, got {len(batch.tasks)}"
        raise ApiError(422, "invalid_field", message, field="tasks")
    submissions = [
        submission(item, f"tasks[{n}].payload", current=current, owner=owner)
        for n, item in enumerate(batch.tasks)
    ]
    with current.deadline():
        submitted = await current.engine.submit_many(submissions)
    return json_reply({plural: [render(task) for task in submitted]}, 201)


async def submit(resource: Resource) -> Response:
    """Submit a task (an existing `key` returns that task with 200 instead of 201)."""
    data = await request_data()
    return (await accept_task(service(), current_owner(), data, resource.render)).response()


async def submit_batch(resource: Resource) -> Response:
    """Submit several tasks, all or nothing."""
    data = await request_data()
    reply = await accept_batch(service(), current_owner(), data, resource.render, resource.plural)
    return reply.response()


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


async def wait_task(resource: Resource, task_id: str) -> Response:
    """Long-poll: the task once finished, or as it is when `timeout` seconds pass.

    Also answers early, with the task as it is, when the server starts draining.
    """
    timeout = query_float("timeout", DEFAULT_WAIT, low=0, high=MAX_WAIT)
    await own_task(task_id)
    current = service()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_cancel_on, current.draining, nursery.cancel_scope)
        try:
            with trio.move_on_after(timeout):
                return json_response(resource.render(await current.engine.wait(task_id)))
        finally:
            nursery.cancel_scope.cancel()
    return json_response(resource.render(await current.engine.get(task_id)))


async def wait_tasks(resource: Resource) -> Response:
    """Long-poll on many tasks: them all, in the order asked, once every one is finished, or
    as they are when `timeout` seconds pass (or the server starts draining). Check `status`.
    """
    body = decode(WaitManyIn, await request_data())
    current = service()
    if not 1 <= len(body.ids) <= current.batch_limit:
        message = f"ids must hold 1 to {current.batch_limit} task ids, got {len(body.ids)}"
        raise ApiError(422, "invalid_field", message, field="ids")
    timeout = body.timeout
    if timeout is None:
        timeout = query_float("timeout", DEFAULT_WAIT, low=0, high=MAX_WAIT)
    with current.deadline():
        tasks = await current.engine.get_many(body.ids)  # one message, for tenancy and 404s
    for task, task_id in zip(tasks, body.ids, strict=True):
        visible(task, task_id)
    if not all(task.state.finished for task in tasks):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_on, current.draining, nursery.cancel_scope)
            with trio.move_on_after(timeout):
                tasks = await current.engine.wait_many(body.ids)
            nursery.cancel_scope.cancel()
    if not all(task.state.finished for task in tasks):  # timed out, or draining: as they are
        with current.deadline():
            tasks = await current.engine.get_many(body.ids)
    return json_response({"tasks": [resource.render(task) for task in tasks]})


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


async def own_task(task_id: str) -> Task:
    """The task, if the caller may see it; 404 (TaskNotFound) for another tenant's task."""
    with service().deadline():
        task = await service().engine.get(task_id)
    return visible(task, task_id)


async def _cancel_on(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


def job_json(task: Task) -> dict[str, Any]:
    """A task under the names the "Task Queue System" README used: job_id, completed_at, and
    its states pending → processing → completed / failed → retrying."""
    job = {JOB_NAMES.get(name, name): value for name, value in task_json(task).items()}
    job["status"] = JOB_STATES.get(task.state, job["status"])
    return job


JOB_STATES = {TaskState.RUNNING: "processing"}
TASKS = Resource("tasks", "/api/v1/tasks", task_json)
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
