"""The submit routes' work: a request body's bytes to admitted tasks, one or a batch.

Each is an `Accept` function, which the Quart view calls and which the gateway calls directly
for `/api/v1/tasks` (see direct.py): one implementation, two ways in. The payload is encoded
once here: its size is measured from that JSON, which a durable store then commits as it is.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any, cast

import msgspec
import msgspec.structs
from quart import Response

from oncue.actors import InvalidField, Submission
from oncue.actors.cores.rules import MAX_TYPE_LENGTH, check_one_schedule

from .body import decode, request_data
from .errors import ApiError
from .models import TYPE_REGEX, BatchIn, TaskIn, epoch
from .reply import Reply, json_reply
from .routes_resource import Render, Resource
from .service import Service, service
from .tenancy import current_owner, scoped_key


# A batch's task types are checked against TaskType's pattern once a name, not once a task (a
# regex match each was ~80% of decoding a batch): UncheckedBatchIn is BatchIn whose tasks' type
# is any string of TaskType's length; `decode_batch` takes it only when every name passes.
def _default(field: msgspec.structs.FieldInfo) -> Any:
    if field.default_factory is msgspec.NODEFAULT:
        return field.default
    return msgspec.field(default_factory=field.default_factory)


_UncheckedType = Annotated[str, msgspec.Meta(max_length=MAX_TYPE_LENGTH)]
_UncheckedTaskIn = msgspec.defstruct(
    "UncheckedTaskIn",
    [
        (
            field.name,
            _UncheckedType if field.name == "type" else field.type,
            *(() if field.required else (_default(field),)),
        )
        for field in msgspec.structs.fields(TaskIn)
    ],
    forbid_unknown_fields=True,
)
_UncheckedBatchIn = msgspec.defstruct(
    "UncheckedBatchIn",
    [("tasks", list[_UncheckedTaskIn])],  # type: ignore[valid-type]
    forbid_unknown_fields=True,
)


@functools.lru_cache(maxsize=1024)
def _type_fits(name: str) -> bool:
    """Whether `name` matches TaskType's pattern, as msgspec matches it (`re.search`)."""
    return re.search(TYPE_REGEX, name) is not None


def decode_batch(data: bytes) -> BatchIn:
    """`decode(BatchIn, data)`, the task types' names checked once a name.

    A body the unchecked model refuses, or with a name that does not fit, is decoded again as
    BatchIn, so every answer and every error (the first in the body, naming its field) is the
    one BatchIn gives.
    """
    try:
        batch: Any = decode(_UncheckedBatchIn, data)
    except ApiError:
        return decode(BatchIn, data)
    if not all(_type_fits(item.type) for item in batch.tasks):
        return decode(BatchIn, data)
    return cast(BatchIn, batch)  # the same fields, each type checked


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
    with current.deadline(asks_only=True):
        (admitted,) = await current.engine.admit([task])
    return json_reply(render(admitted.task), 201 if admitted.created else 200)


async def accept_batch(
    current: Service, owner: str | None, data: bytes, render: Render, plural: str = "tasks"
) -> Reply:
    """Submit the tasks `data` lists, all or none; 201 with them (under `plural`)."""
    batch = decode_batch(data)
    limit = current.batch_limit
    if not 1 <= len(batch.tasks) <= limit:
        message = f"tasks must hold 1 to {limit} tasks, got {len(batch.tasks)}"
        raise ApiError(422, "invalid_field", message, field="tasks")
    submissions = [
        submission(item, f"tasks[{n}].payload", current=current, owner=owner)
        for n, item in enumerate(batch.tasks)
    ]
    with current.deadline(asks_only=True):
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
