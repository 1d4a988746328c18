"""The long-polls of the task resource: wait for one task, or for many, until finished.

Each answers when its tasks are finished, when `timeout` seconds pass, or early when the
server starts draining, with the tasks as they are (check `status`).
"""

from __future__ import annotations

import trio
from quart import Response

from .body import decode, query_float, request_data
from .errors import ApiError
from .models import WaitManyIn
from .reply import json_response
from .routes_resource import Resource, own_task
from .service import service
from .tenancy import visible

DEFAULT_WAIT = 30.0
MAX_WAIT = 300.0


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


async def _cancel_on(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()
