"""The submit routes' pure part: a request item as the engine's `Submission`."""

from __future__ import annotations

import json
from collections.abc import Callable

import msgspec
import pytest

from oncue.actors import Submission, open_engine
from oncue.http.body import decode
from oncue.http.errors import ApiError
from oncue.http.metrics import Metrics
from oncue.http.models import BatchIn, TaskIn
from oncue.http.routes_submit import decode_batch, submission
from oncue.http.service import Service
from oncue.http.tenancy import SEPARATOR


async def test_a_submission_carries_every_field_of_the_item_where_it_belongs() -> None:
    """`submission` builds the Submission positionally (it is built 100 times a batch): each
    option lands in the field of its name."""
    item = msgspec.convert(
        {
            "type": "double",
            "payload": {"n": 1},
            "priority": "high",
            "max_retries": 7,
            "timeout": 9.5,
            "run_at": 2_000_000_000.0,
            "key": "order-7",
            "headers": {"traceparent": "00-1-2-01"},
        },
        TaskIn,
    )
    async with open_engine() as engine:
        current = Service(engine, Metrics(), batch_limit=10)
        built = submission(item, current=current, owner="alice")
        delayed = submission(TaskIn("double", delay=3.0), current=current, owner=None)
    assert built == Submission(
        type="double",
        payload={"n": 1},
        priority="high",
        max_retries=7,
        timeout=9.5,
        delay=None,
        run_at=2_000_000_000.0,
        key=f"alice{SEPARATOR}order-7",
        owner="alice",
        payload_json='{"n":1}',
        headers={"traceparent": "00-1-2-01"},
    )
    assert delayed == Submission("double", None, delay=3.0, payload_json="null")


async def test_delay_and_run_at_together_are_a_422_naming_run_at() -> None:
    async with open_engine() as engine:
        current = Service(engine, Metrics(), batch_limit=10)
        with pytest.raises(ApiError) as raised:
            submission(TaskIn("double", delay=1.0, run_at=5.0), current=current, owner=None)
    assert (raised.value.status, raised.value.field) == (422, "run_at")


BODIES = [
    {"tasks": [{"type": "double", "payload": 1}, {"type": "echo", "priority": "high"}]},
    {"tasks": [{"type": "double"}, {"type": "Bad Type"}]},  # the name's pattern
    {"tasks": [{"type": "ok\n"}]},  # msgspec's pattern is searched: `$` takes a last newline
    {"tasks": [{"type": "-starts-with-a-dash"}, {"type": "double", "priority": 1.5}]},
    {"tasks": [{"type": "double", "priority": 1.5}, {"type": "Bad Type"}]},  # the first wins
    {"tasks": [{"type": "x" * 101}]},
    {"tasks": [{"type": 5}]},
    {"tasks": [{"type": "double", "colour": "red"}]},
    {"tasks": [{"payload": 1}]},
    {"tasks": [{"type": "double", "max_retries": 1001}]},
    {"tasks": [{"type": "double", "run_at": "2030-01-01T00:00:00"}]},
    {"tasks": []},
    {"jobs": []},
    [],
]


@pytest.mark.parametrize("body", BODIES)
def test_a_batch_decodes_and_fails_exactly_as_batch_in(body: object) -> None:
    """`decode_batch` checks each type's name once a name: every answer and error is still
    the one `decode(BatchIn, ...)` gives (the first problem in the body, naming its field)."""
    data = json.dumps(body).encode()
    assert outcome(decode_batch, data) == outcome(lambda data: decode(BatchIn, data), data)


@pytest.mark.parametrize("data", [b"", b"{", b"[" * 300 + b"]" * 300])
def test_a_batch_that_is_not_json_fails_as_batch_in(data: bytes) -> None:
    assert outcome(decode_batch, data) == outcome(lambda data: decode(BatchIn, data), data)


def outcome(decoding: Callable[[bytes], object], data: bytes) -> object:
    try:
        return msgspec.to_builtins(decoding(data))
    except ApiError as error:
        return (error.status, error.code, error.message, error.field)
