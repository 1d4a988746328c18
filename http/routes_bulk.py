"""`POST /api/v1/tasks/bulk`: retry, cancel or delete every task a filter matches.

One request looks at up to `limit` tasks (at most `MAX_BULK`) of the filter, newest first, and
acts on those the action applies to (retry: failed; cancel: unfinished; delete: finished).
When there may be more, the answer's `next_cursor` is not null: send the same request again
with `"cursor": next_cursor` until it is. Tenancy holds: a tenant's filter sees only its own
tasks (an admin's, everyone's). The engine is asked one page at a time (paging by number,
through the indexes every store has), never for a full scan.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Literal

import msgspec
from quart import Blueprint, Response
from quart_schema import document_request, document_response

from oncue.actors import Engine, OncueError, Task, TaskState

from .body import read_body
from .errors import ApiError
from .models import MAX_EPOCH, ErrorOut, TaskType, epoch
from .reply import json_response
from .service import service
from .tenancy import owner_filter

MAX_BULK = 1000  # tasks one request may look at
Action = Literal["retry", "cancel", "delete"]
Moment = Annotated[float, msgspec.Meta(ge=0, le=MAX_EPOCH)] | datetime.datetime
# The states each action applies to; a filter's status outside them is a 422.
APPLIES = {
    "retry": frozenset({TaskState.FAILED}),
    "cancel": frozenset({TaskState.PENDING, TaskState.RUNNING, TaskState.RETRYING}),
    "delete": frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED}),
}

bulk_routes = Blueprint("bulk", __name__)


class BulkFilter(msgspec.Struct, forbid_unknown_fields=True):
    """Which tasks: all given conditions hold. Times are epoch seconds or ISO 8601."""

    type: TaskType | None = None
    status: str | None = None
    created_before: Moment | None = None
    created_after: Moment | None = None


class BulkIn(msgspec.Struct, forbid_unknown_fields=True):
    action: Action
    filter: BulkFilter = msgspec.field(default_factory=BulkFilter)
    limit: int = MAX_BULK
    cursor: str | None = None


class BulkFailure(msgspec.Struct):
    id: str
    error: str


class BulkOut(msgspec.Struct):
    """`matched`: tasks looked at that the filter and action fit; `done`: acted on; `failed`:
    those that changed meanwhile; `next_cursor`: send it back to go on (null: done)."""

    action: str
    matched: int
    done: int
    failed: list[BulkFailure]
    next_cursor: str | None


@bulk_routes.post("/api/v1/tasks/bulk")
@document_request(BulkIn)
@document_response(BulkOut)
@document_response(ErrorOut, 422)
async def bulk() -> Response:
    """Retry, cancel or delete the tasks a filter matches, up to `limit` per request."""
    body = await read_body(BulkIn)
    states = _states(body)
    after, before = epoch(body.filter.created_after), epoch(body.filter.created_before)
    if not 1 <= body.limit <= MAX_BULK:
        message = f"limit must be from 1 to {MAX_BULK} (tasks per request), got {body.limit}"
        raise ApiError(422, "invalid_field", message, field="limit")
    current = service()
    with current.deadline():
        page, next_cursor = await _page(current.engine, body, states)
        chosen = [task for task in page if _fits(task, states, after, before)]
        failed = await _act(current.engine, body.action, chosen)
    answer = {
        "action": body.action,
        "matched": len(chosen),
        "done": len(chosen) - len(failed),
        "failed": failed,
        "next_cursor": next_cursor,
    }
    return json_response(answer)


def _states(body: BulkIn) -> frozenset[TaskState]:
    """The states to act on: the filter's status (422 unless the action applies to it)."""
    applies = APPLIES[body.action]
    status = body.filter.status
    if status is None:
        return applies
    names = [state.value for state in TaskState]
    if status not in names:
        message = f"status must be one of {', '.join(names)}, got {status!r}"
        raise ApiError(422, "invalid_field", message, field="filter.status")
    if TaskState(status) not in applies:
        shown = ", ".join(sorted(state.value for state in applies))
        message = f"{body.action} applies to tasks that are {shown}, not {status}"
        raise ApiError(422, "invalid_field", message, field="filter.status")
    return frozenset({TaskState(status)})


async def _page(
    engine: Engine, body: BulkIn, states: frozenset[TaskState]
) -> tuple[list[Task], str | None]:
    """One page of candidates, newest first, and the cursor after it (None: no more)."""
    state = next(iter(states)) if len(states) == 1 else None
    page = await engine.list(
        state=state,
        type=body.filter.type,
        limit=body.limit,
        cursor=body.cursor,
        owner=owner_filter(),
    )
    return page.tasks, page.next_cursor


def _fits(
    task: Task, states: frozenset[TaskState], after: float | None, before: float | None
) -> bool:
    if task.state not in states:
        return False
    if after is not None and not task.created_at > after:
        return False
    return before is None or task.created_at < before


async def _act(engine: Engine, action: str, tasks: list[Task]) -> list[dict[str, str]]:
    """Apply `action` to each task; the ones that changed meanwhile, with why."""
    call = {"retry": engine.retry, "cancel": engine.cancel, "delete": engine.delete}[action]
    failed = []
    for task in tasks:
        try:
            await call(task.id)
        except OncueError as error:  # it changed since it was listed (finished, deleted...)
            failed.append({"id": task.id, "error": str(error)})
    return failed
