"""The clients' plans, driven by hand: retries on connection errors, and reading answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from oncue import (
    EngineClosed,
    InvalidField,
    QueueFull,
    ServerUnreachable,
    StoreUnavailable,
    UnknownTaskType,
)
from oncue.http.client_plans import RETRY_DELAYS, Calls, Pause, Request

URL = "http://oncue.test"
STATS = {
    "total_processed": 1,
    "successful": 1,
    "failed": 0,
    "cancelled": 0,
    "queue_length": 0,
    "running": 0,
    "by_state": {},
    "by_type": {},
    "workers_busy": 0,
    "workers_idle": 2,
    "paused": False,
}


def respond(request: Request, status: int = 200, body: Any = STATS, **headers: str) -> Any:
    sent = httpx.Request(request.method, URL + request.path)
    return httpx.Response(status, json=body, headers=headers, request=sent)


def finish(plan: Any, value: Any) -> Any:
    with pytest.raises(StopIteration) as done:
        plan.send(value)
    return done.value.value


def test_a_connection_that_never_opened_is_tried_again_after_a_pause() -> None:
    plan = Calls(URL, retries=2).stats()
    request = next(plan)
    assert plan.throw(httpx.ConnectError("refused")) == Pause(RETRY_DELAYS[0])
    assert plan.send(None) == request
    assert plan.throw(httpx.ConnectTimeout("slow")) == Pause(RETRY_DELAYS[1])
    assert plan.send(None) == request
    assert finish(plan, respond(request)).workers_idle == 2


def test_stats_read_the_queued_priorities_as_ints_and_do_without_them() -> None:
    plan = Calls(URL, retries=0).stats()
    request = next(plan)
    answer = {**STATS, "queued_by_priority": {"2": 3, "-1": 1}}
    assert finish(plan, respond(request, body=answer)).queued_by_priority == {2: 3, -1: 1}
    plan = Calls(URL, retries=0).stats()  # a server older than the client: none
    request = next(plan)
    assert finish(plan, respond(request)).queued_by_priority == {}


def test_after_the_last_retry_the_error_names_the_url() -> None:
    plan = Calls(URL, retries=1).stats()
    next(plan)
    plan.throw(httpx.ConnectError("refused"))
    plan.send(None)
    with pytest.raises(ServerUnreachable, match=f"cannot reach oncue at {URL}: refused"):
        plan.throw(httpx.ConnectError("refused"))


def test_a_broken_connection_retries_reads_and_keyed_submits_only() -> None:
    broken = httpx.ReadError("connection reset")
    read = Calls(URL, retries=3).get("task-1")
    next(read)
    assert isinstance(read.throw(broken), Pause)  # a read may be sent twice
    keyed = Calls(URL, retries=3).submit("echo", None, {"key": "k"})
    assert next(keyed).idempotent
    assert isinstance(keyed.throw(broken), Pause)  # the server dedupes by key
    unkeyed = Calls(URL, retries=3).submit("echo", None, {"key": None})
    assert not next(unkeyed).idempotent
    with pytest.raises(ServerUnreachable) as unreachable:  # it may have been admitted
        unkeyed.throw(broken)
    assert str(unreachable.value) == (
        f"the connection to oncue at {URL} broke after the request was sent (connection"
        " reset): it may have been done; not sent again, as it is not idempotent (a submit"
        " with a key is)"
    )
    cancel = Calls(URL, retries=3).cancel("task-1")
    next(cancel)
    assert isinstance(cancel.throw(httpx.ConnectError("refused")), Pause)  # never arrived


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [(503, "shutting_down", EngineClosed), (503, "unavailable", StoreUnavailable)],
)
def test_error_codes_become_the_engines_classes(status: int, code: str, expected: type) -> None:
    plan = Calls(URL, retries=0).stats()
    request = next(plan)
    body = {"error": {"code": code, "message": "from the server"}}
    with pytest.raises(expected, match="from the server") as raised:
        plan.send(respond(request, status, body, **{"Retry-After": "3"}))
    assert raised.value.retry_after == 3.0


def test_a_submit_refused_carries_the_type_only_where_the_class_has_it() -> None:
    """A submit's subject is its type: UnknownTaskType.name, never a task_id of another class."""
    answers = {
        "queue_full": (429, QueueFull),
        "invalid_field": (422, InvalidField),
        "unknown_task_type": (422, UnknownTaskType),
    }
    for code, (status, expected) in answers.items():
        plan = Calls(URL, retries=0).submit("echo", None, {})
        request = next(plan)
        with pytest.raises(expected) as raised:
            plan.send(respond(request, status, {"error": {"code": code, "message": "no"}}))
        assert not hasattr(raised.value, "task_id"), code
    assert raised.value.name == "echo"


def test_options_left_out_take_the_servers_defaults() -> None:
    plan = Calls(URL, retries=0).submit("echo", [1], {"priority": None, "delay": 2.5})
    assert next(plan).json == {"type": "echo", "payload": [1], "delay": 2.5}


def test_task_ids_are_quoted_in_paths() -> None:
    assert next(Calls(URL, retries=0).get("a/b c")).path == "/api/v1/tasks/a%2Fb%20c"


def test_every_code_the_server_sends_for_an_engine_error_has_its_class() -> None:
    from oncue.actors import OncueError
    from oncue.actors import errors as engine_errors
    from oncue.http.client_errors import ENGINE_CLASSES
    from oncue.http.errors import ENGINE_ERRORS

    for server_class, _, code in ENGINE_ERRORS:
        client_class = getattr(engine_errors, ENGINE_CLASSES[code])
        if issubclass(server_class, OncueError):  # not the ActorError/ValueError catch-alls
            assert client_class is server_class, code
        assert issubclass(client_class, OncueError), code
