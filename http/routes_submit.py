"""The submit routes' work: a request body's bytes to admitted tasks, one or a batch.

Each is an `Accept` function, which the Quart view calls and which the gateway calls directly
for `/api/v1/tasks` (see direct.py): one implementation, two ways in. The payload is encoded
once here: its size is measured from that JSON, which a durable store then commits as it is.
"""

from __future__ import annotations

from quart import Response

from oncue.actors import InvalidField, Submission
from oncue.actors.cores.rules import check_one_schedule

from .body import decode, request_data
from .errors import ApiError
from .models import BatchIn, TaskIn, epoch
from .reply import Reply, json_reply
from .routes_resource import Render, Resource
from .service import Service, service
from .tenancy import current_owner, scoped_key


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
    delay, run_at, key = item.delay, item.run_at, item.key
    if delay is not None and run_at is not None:
        try:
            check_one_schedule(delay, run_at)
        except InvalidField as error:
            raise ApiError(422, "invalid_field", str(error), field=error.field) from None
    # Positional, in Submission's field order (a batch builds 100; keywords cost ~40% more);
    # tests/http/test_routes_submit.py pins the order.
    return Submission(
        item.type,
        item.payload,
        item.priority,
        item.max_retries,
        item.timeout,
        delay,
        None if run_at is None else epoch(run_at),
        None if key is None else scoped_key(key, owner),
        owner,
        payload_json,
        item.headers,
    )


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
