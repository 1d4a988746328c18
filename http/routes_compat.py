"""The routes of the queues oncue replaces, shaped exactly as their READMEs document.

- `POST /tasks` `{"status": "new", "result": 21}` and `GET /tasks/<n>`: small integer ids,
  the task doubles `result` (the built-in `double` type).
- `POST /submit` `{"id"?, "type", "payload"}`, `GET /status/<task_id>`, `GET /stats`.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from quart import Blueprint, Response
from quart_schema import document_request, document_response

from oncue.actors import Submission, Task, TaskNotFound, TaskState

from .body import read_body
from .models import Int64, Key, TaskType, iso
from .reply import json_response
from .service import service
from .tenancy import current_owner, scoped_key, visible

compat = Blueprint("compat", __name__)

_SIMPLE_STATUS = {
    TaskState.PENDING: "queued",
    TaskState.RETRYING: "queued",
    TaskState.RUNNING: "processing",
    TaskState.COMPLETED: "completed",
    TaskState.FAILED: "failed",
    TaskState.CANCELLED: "cancelled",
}


class SimpleTaskIn(msgspec.Struct):
    """`POST /tasks`: the value to double; `status` is accepted and ignored (always "new")."""

    result: Int64 | float
    status: Annotated[str, msgspec.Meta(max_length=20)] = "new"


class SubmitIn(msgspec.Struct):
    """`POST /submit`: a typed task; a given `id` becomes its id here (and its idempotency key)."""

    type: TaskType
    payload: Any = None
    id: Key | None = None


class SimpleTaskOut(msgspec.Struct):
    """A `/tasks` task: its small integer id, queued/processing/completed/failed/cancelled,
    and `result` (the value given until it completes, then the handler's result)."""

    id: int
    status: str
    result: Any


class SubmittedOut(msgspec.Struct):
    """`POST /submit`: `{"message": "Task submitted successfully", "task_id", "status"}`."""

    message: str
    task_id: str
    status: str


class StatusOut(msgspec.Struct):
    """`GET /status/<task_id>`: `{task_id, status}` (pending or processing) until it finishes,
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
        (admitted,) = await service().engine.admit(
            [Submission("double", {"result": body.result}, owner=current_owner())]
        )
    task = admitted.task
    return json_response({"id": task.number, "status": "queued", "result": body.result}, 201)


@compat.get("/tasks/<int:number>")
@document_response(SimpleTaskOut)
async def get_simple_task(number: int) -> Response:
    with service().deadline():
        task = visible(await service().engine.get(number), number)
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
async def submit() -> Response:
    body = await read_body(SubmitIn)
    current = service()
    current.check_payload(body.payload)
    owner = current_owner()
    with current.deadline():
        (admitted,) = await current.engine.admit(
            [Submission(body.type, body.payload, key=scoped_key(body.id, owner), owner=owner)]
        )
    task_id = admitted.task.id if body.id is None else body.id
    return json_response(
        {"message": "Task submitted successfully", "task_id": task_id, "status": "pending"}, 202
    )


@compat.get("/status/<task_id>")
@document_response(StatusOut)
async def status(task_id: str) -> Response:
    task = await _by_id_or_key(task_id)
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


async def _by_id_or_key(task_id: str) -> Task:
    """A client's own id (stored as the task's idempotency key, so it survives restarts),
    else oncue's task id."""
    current = service()
    with current.deadline():
        try:
            task = await current.engine.get_by_key(scoped_key(task_id, current_owner()) or task_id)
        except TaskNotFound:
            task = await current.engine.get(task_id)
    return visible(task, task_id)


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
