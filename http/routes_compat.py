"""The routes of the queues oncue replaces, shaped exactly as their READMEs document.

- `POST /tasks` `{"status": "new", "result": 21}` and `GET /tasks/<n>`: small integer ids,
  the task doubles `result` (the built-in `double` type).
- `POST /submit` `{"id"?, "type", "payload"}`, `GET /status/<task_id>`, `GET /stats`.

These routes show only the tasks made through them: each such task carries an idempotency key
marked with its route (`/tasks` or `/submit`, then the client's id; see `route_key`), which a
client of the main API cannot send, since the mark is set off by the unit separator.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Annotated, Any

import msgspec
from quart import Blueprint, Response
from quart_schema import document_request, document_response

from oncue.actors import Submission, Task, TaskNotFound, TaskState
from oncue.actors.cores.rules import MAX_KEY_LENGTH

from .body import read_body
from .errors import ApiError
from .models import ErrorOut, Int64, TaskType, iso
from .reply import json_response
from .service import service
from .tenancy import SEPARATOR, current_owner, scoped_key, visible

compat = Blueprint("compat", __name__)

_SIMPLE_STATUS = {
    TaskState.PENDING: "queued",
    TaskState.RETRYING: "queued",
    TaskState.RUNNING: "processing",
    TaskState.COMPLETED: "completed",
    TaskState.FAILED: "failed",
    TaskState.CANCELLED: "cancelled",
}
SUBMIT_MARK = "/submit"
# A client's id, kept as its task's idempotency key with the route's mark and a separator.
ClientId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=MAX_KEY_LENGTH - len(SUBMIT_MARK) - 1)
]
NOT_FOUND = "pending or not found"  # what the REST queue's /status says of an id it lacks


def route_key(route: str, client_id: str, owner: str | None) -> str:
    """The idempotency key of a task made through `route` with `client_id`: scoped to its
    owner like any key (see tenancy.py), and marked with the route."""
    scoped = scoped_key(client_id, owner)
    assert scoped is not None
    head, separator, tail = scoped.rpartition(SEPARATOR)
    return f"{head}{separator}{route}{SEPARATOR}{tail}"


def made_through(route: str, task: Task) -> bool:
    """Whether `task` was made through `route` (its key carries that route's mark)."""
    parts = (task.key or "").split(SEPARATOR)
    return len(parts) >= 2 and parts[-2] == route


class SimpleTaskIn(msgspec.Struct):
    """`POST /tasks`: the value to double; `status` is accepted and ignored (always "new")."""

    result: Int64 | float
    status: Annotated[str, msgspec.Meta(max_length=20)] = "new"


class SubmitIn(msgspec.Struct):
    """`POST /submit`: a typed task; a given `id` becomes its id here (and its idempotency key)."""

    type: TaskType
    payload: Any = None
    id: ClientId | None = None


class SimpleTaskOut(msgspec.Struct):
    """A `/tasks` task: its small integer id, queued/processing/completed/failed/cancelled,
    and `result` (the value given until it completes, then the handler's result)."""

    id: int
    status: str
    result: Any


class SubmittedOut(msgspec.Struct):
    """`POST /submit`: `{"message": "Task submitted successfully", "task_id", "status":
    "pending"}` (202); for an `id` already used, "Task already submitted" and that task's
    status: pending, processing, completed, failed or cancelled (200)."""

    message: str
    task_id: str
    status: str


class StatusOut(msgspec.Struct):
    """`GET /status/<task_id>`: `{task_id, status}` (pending or processing) until it finishes
    ("pending or not found" for an id never submitted through `/submit`),
    then `{task_id, success: true, data, processed_at}` or `{task_id, success: false, error,
    processed_at}`."""

    task_id: str
    status: str | msgspec.UnsetType = msgspec.UNSET
    success: bool | msgspec.UnsetType = msgspec.UNSET
    data: Any = msgspec.UNSET
    error: str | msgspec.UnsetType = msgspec.UNSET
    processed_at: str | msgspec.UnsetType | None = msgspec.UNSET


class CompatStatsOut(msgspec.Struct):
    """`GET /stats`, the four counts the README showed."""

    total_processed: int
    successful: int
    failed: int
    queue_length: int


@compat.post("/tasks")
@document_request(SimpleTaskIn)
@document_response(SimpleTaskOut, 201)
async def create_simple_task() -> Response:
    body = await read_body(SimpleTaskIn)
    with service().deadline():
        owner = current_owner()
        key = route_key("/tasks", secrets.token_hex(8), owner)
        (admitted,) = await service().engine.admit(
            [Submission("double", {"result": body.result}, key=key, owner=owner)]
        )
    task = admitted.task
    return json_response({"id": task.number, "status": "queued", "result": body.result}, 201)


@compat.get("/tasks/<int:number>")
@document_response(SimpleTaskOut)
async def get_simple_task(number: int) -> Response:
    with service().deadline():
        task = visible(await service().engine.get(number), number)
    if not made_through("/tasks", task):
        raise TaskNotFound(number)
    result = task.result if task.state is TaskState.COMPLETED else _original(task)
    return json_response(
        {"id": task.number, "status": _SIMPLE_STATUS[task.state], "result": result}
    )


def _original(task: Task) -> Any:
    payload = task.payload
    return payload.get("result") if isinstance(payload, dict) else payload


@compat.post("/submit")
@document_request(SubmitIn)
@document_response(SubmittedOut, 202)
@document_response(SubmittedOut, 200)
@document_response(ErrorOut, 409)
async def submit() -> Response:
    """Submit a task; an `id` already used answers with that task (200), or 409 if its type or
    payload differ."""
    body = await read_body(SubmitIn)
    current = service()
    current.check_payload(body.payload)
    owner = current_owner()
    task_id = str(uuid.uuid4()) if body.id is None else body.id
    key = route_key(SUBMIT_MARK, task_id, owner)
    with current.deadline():
        (admitted,) = await current.engine.admit(
            [Submission(body.type, body.payload, key=key, owner=owner)]
        )
    task = admitted.task
    if admitted.created:
        answer = {"message": "Task submitted successfully", "task_id": task_id}
        return json_response({**answer, "status": "pending"}, 202)
    for field, given, kept in (
        ("type", body.type, task.type),
        ("payload", body.payload, task.payload),
    ):
        if given != kept:
            message = f"task {task_id!r} exists with another {field}: {kept!r}"
            raise ApiError(409, "id_in_use", message, field=field)
    answer = {"message": "Task already submitted", "task_id": task_id}
    return json_response({**answer, "status": _STATUS_WORD[task.state]}, 200)


_STATUS_WORD = {**_SIMPLE_STATUS, TaskState.PENDING: "pending", TaskState.RETRYING: "pending"}


@compat.get("/status/<path:task_id>")  # a client id may hold a slash
@document_response(StatusOut)
async def status(task_id: str) -> Response:
    """A task made through `/submit`, by its `task_id`; one never made there is "pending or
    not found", as the REST queue answered."""
    current = service()
    try:
        with current.deadline():
            task = await current.engine.get_by_key(route_key(SUBMIT_MARK, task_id, current_owner()))
    except TaskNotFound:
        return json_response({"task_id": task_id, "status": NOT_FOUND})
    if not task.state.finished:
        state = "processing" if task.state is TaskState.RUNNING else "pending"
        return json_response({"task_id": task_id, "status": state})
    body: dict[str, Any] = {"task_id": task_id, "success": task.state is TaskState.COMPLETED}
    if task.state is TaskState.COMPLETED:
        body["data"] = task.result
    else:
        body["error"] = task.error.message if task.error is not None else task.state.value
    body["processed_at"] = iso(task.finished_at)
    return json_response(body)


@compat.get("/stats")
@document_response(CompatStatsOut)
async def stats() -> Response:
    with service().deadline():
        current = await service().engine.stats()
    body = {
        "total_processed": current.total_processed,
        "successful": current.successful,
        "failed": current.failed,
        "queue_length": current.queue_length,
    }
    return json_response(body)
