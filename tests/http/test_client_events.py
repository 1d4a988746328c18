"""`Client.events()` and `AsyncClient.events()` against a real `oncue serve` (trio and asyncio),
and what each kind of frame becomes (the decoder and the streams on canned answers)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator

import httpx
import pytest
from servers import Server, running_server

from oncue import (
    ActorEvent,
    AsyncClient,
    Client,
    EventsDropped,
    EventsReset,
    EventStream,
    InvalidField,
    RequestRejected,
    ServerUnreachable,
    TaskEvent,
    TaskState,
)
from oncue.http import client_events
from oncue.http.client_events import RECONNECT_TRIES, EventDecoder

TOKEN = "events-test-token"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    tokens = {"ONCUE_API_TOKENS": f"tester:{TOKEN}:admin"}
    with running_server("--workers", "2", env=tokens) as served:
        yield served


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url, token=TOKEN) as connected:
        yield connected


def test_a_submitted_task_is_seen_pending_then_completed(client: Client) -> None:
    with client.events(type="double") as stream:  # subscribed once entered
        task = client.submit("double", 21)
        states = []
        for event in stream:
            assert isinstance(event, TaskEvent)
            assert (event.task_id, event.type) == (task.id, "double")
            states.append(event.state)
            if event.state.finished:
                break
        last_id = stream.last_event_id
    assert states[0] is TaskState.PENDING
    assert states[-1] is TaskState.COMPLETED
    assert event.number == task.number
    assert event.attempts == 1
    assert last_id is not None
    assert last_id.endswith(f"-{task.number}")


def test_the_filters_leave_other_tasks_out(client: Client) -> None:
    with client.events(task=None, type="double", status=["completed", "failed"]) as stream:
        client.submit("echo", "not this type")
        failed = client.submit("fail", None)
        done = client.submit("double", 2)
        event = next(stream)
    assert isinstance(event, TaskEvent)
    assert (event.task_id, event.state) == (done.id, TaskState.COMPLETED)
    later = client.submit("echo", "later", delay=3600)
    with client.events(task=str(later.number)) as stream:  # a task by its number
        client.submit("echo", "another task")
        client.cancel(later.id)
        event = next(stream)
    assert isinstance(event, TaskEvent)
    assert (event.task_id, event.state) == (later.id, TaskState.CANCELLED)
    assert failed.id != done.id


def test_a_resume_after_last_event_id_replays_what_came_after(client: Client) -> None:
    with client.events(type="double") as stream:
        task = client.submit("double", 5)
        pending = next(stream)
        assert (pending.task_id, pending.state) == (task.id, TaskState.PENDING)
        resume_from = stream.last_event_id
    client.wait(task.id, timeout=30)
    with client.events(task=task.id, last_event_id=resume_from) as resumed:
        states = []
        for event in resumed:
            assert isinstance(event, TaskEvent)
            states.append(event.state)
            if event.state.finished:
                break
    assert TaskState.PENDING not in states
    assert states[-1] is TaskState.COMPLETED


def test_bad_filters_and_tokens_raise_as_every_call(client: Client, server: Server) -> None:
    with pytest.raises(InvalidField) as invalid, client.events(status="done"):
        pass  # pragma: no cover
    assert invalid.value.field == "status"
    with Client(server.url) as anonymous, pytest.raises(RequestRejected) as rejected:
        next(anonymous.events())
    assert rejected.value.status == 401


async def test_trio_program_iterates_and_closes_the_stream(server: Server) -> None:
    async with AsyncClient(server.url, token=TOKEN) as client:
        async with client.events(type="double", status="completed") as stream:
            task = await client.submit("double", 8)
            async for event in stream:
                assert isinstance(event, TaskEvent)
                assert (event.task_id, event.state) == (task.id, TaskState.COMPLETED)
                break
        with pytest.raises(StopAsyncIteration):  # closed on leaving the `async with`
            await stream.__anext__()


def test_asyncio_program(server: Server) -> None:
    async def main() -> list[TaskState]:
        async with (
            AsyncClient(server.url, token=TOKEN) as client,
            client.events(type="double") as stream,
        ):
            task = await client.submit("double", 3)
            states = []
            async for event in stream:
                assert isinstance(event, TaskEvent)
                assert event.task_id == task.id
                states.append(event.state)
                if event.state.finished:
                    return states
        return []  # pragma: no cover

    states = asyncio.run(main())
    assert (states[0], states[-1]) == (TaskState.PENDING, TaskState.COMPLETED)


def test_the_decoder_reads_every_kind_of_frame() -> None:
    decoder = EventDecoder()
    text = (
        "retry: 2000\n: connected\n\n: keep-alive\n\n"
        'event: actor\ndata: {"kind":"crashed","path":"root/worker-1","restarts":1,'
        '"error":"ValueError()"}\n\n'
        'event: reset\ndata: {"reason":"older than the retention"}\n\n'
        'id: 1796461241.5429924-17\nevent: task\ndata: {"id":"t17","number":17,"type":"email",'
        '"status":"failed","attempt":3,"worker":"worker-2","at":"2026-12-05T09:00:41.542992Z",'
        '"error":"SMTPError: 421"}\n\nevent: future-kind\ndata: {}\n\n'
        'event: end\ndata: {"reason":"the server is shutting down"}\n\nid: 1-2\nevent: ta'
    )
    values = decoder.feed(text[:50]) + decoder.feed(text[50:])
    assert values[0] == ActorEvent("crashed", "root/worker-1", 1, "ValueError()")
    assert values[1] == EventsReset("older than the retention")
    assert values[2] == TaskEvent(
        "t17",
        "email",
        TaskState.FAILED,
        1796461241.5429924,
        3,
        "worker-2",
        17,
        None,
        "SMTPError: 421",
    )
    assert type(values[3]).__name__ == "Ended"
    assert len(values) == 4
    assert decoder.last_event_id == "1796461241.5429924-17"
    with pytest.raises(EventsDropped, match="fell behind"):
        EventDecoder().feed('event: dropped\ndata: {"reason":"fell behind"}\n\n')


def canned(body: str) -> EventStream:
    """A stream whose server answers `body` and closes the connection (not reopened)."""
    answer = httpx.Response(200, text=body, headers={"Content-Type": "text/event-stream"})
    return EventStream("http://oncue.test", lambda after: answer, None, reconnect=False)


def task_frame(number: int, at: float) -> str:
    return (
        f'id: {at!r}-{number}\nevent: task\ndata: {{"id":"t{number}","number":{number},'
        '"type":"echo","status":"pending","attempt":0,"worker":null,'
        '"at":"2026-12-05T09:00:05Z","error":null}\n\n'
    )


def test_a_broken_stream_reconnects_after_the_last_event_seen(monkeypatch) -> None:
    monkeypatch.setattr(client_events, "RECONNECT_DELAYS", (0.0,))
    answers = [
        task_frame(1, 5.0) + "id: 6.0-2\nevent: ta",  # then the connection breaks mid-frame
        httpx.ConnectError("refused"),  # the server is restarting
        task_frame(2, 6.0) + "event: end\ndata: {}\n\n",
    ]
    asked: list[str | None] = []

    def open(after: str | None) -> httpx.Response:
        asked.append(after)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise ServerUnreachable("http://oncue.test", str(answer))
        return httpx.Response(200, text=answer, headers={"Content-Type": "text/event-stream"})

    with EventStream("http://oncue.test", open, None) as stream:
        numbers = [event.number for event in stream]  # type: ignore[union-attr]
    assert numbers == [1, 2]  # the half frame of the broken connection is not read as one
    assert asked == [None, "5.0-1", "5.0-1"]


def test_a_stream_gives_up_after_its_reconnects_and_fails_at_once_on_a_wrong_url(
    monkeypatch,
) -> None:
    monkeypatch.setattr(client_events, "RECONNECT_DELAYS", (0.0,))
    opened = []

    def open(after: str | None) -> httpx.Response:
        if opened:
            raise ServerUnreachable("http://oncue.test", "cannot reach oncue")
        opened.append(after)
        body = task_frame(1, 5.0)
        return httpx.Response(200, text=body, headers={"Content-Type": "text/event-stream"})

    stream = EventStream("http://oncue.test", open, None)
    assert next(stream).number == 1  # type: ignore[union-attr]
    message = rf"broke off and {RECONNECT_TRIES} reconnects failed; .*last_event_id='5.0-1'"
    with pytest.raises(ServerUnreachable, match=message):
        next(stream)
    never: list[str | None] = []

    def refuse(after: str | None) -> httpx.Response:
        never.append(after)
        raise ServerUnreachable("http://oncue.test", "cannot reach oncue at http://oncue.test")

    with pytest.raises(ServerUnreachable, match="cannot reach oncue at"):
        next(EventStream("http://oncue.test", refuse, None))
    assert never == [None]  # the first opening is not retried by the stream


def test_a_stream_stops_at_end_and_says_so_when_it_breaks_off() -> None:
    task = 'id: 5.0-1\nevent: task\ndata: {"id":"a","number":1,"type":"echo","status":"pending",'
    task += '"attempt":0,"worker":null,"at":"2026-12-05T09:00:05Z","error":null}\n\n'
    assert [event.state for event in canned(task + "event: end\ndata: {}\n\n")] == [  # type: ignore[union-attr]
        TaskState.PENDING
    ]
    stream = canned(task)
    assert next(stream).at == 5.0  # type: ignore[union-attr]
    with pytest.raises(ServerUnreachable, match=r"broke off; .*last_event_id='5.0-1'"):
        next(stream)
    with pytest.raises(EventsDropped):
        next(canned('event: dropped\ndata: {"reason":"fell behind"}\n\n'))


def test_a_stream_follows_a_server_killed_and_restarted_on_its_port(tmp_path) -> None:
    """kill -9, a new process on the same port and store: the stream opens again by itself
    with Last-Event-ID, and the new server replays from the tasks' history what it missed."""
    store = f"sqlite:///{tmp_path / 'oncue.db'}"
    first = Server("--workers", "1", store=store)
    port = first.url.rsplit(":", 1)[1]
    try:
        with Client(first.url) as client, client.events(type="double") as stream:
            before = client.submit("double", 1)
            seen = [(e.task_id, e.state) for e in until_completed(stream, before.id)]
            first.stop(signal.SIGKILL)
            with running_server("--workers", "1", "--port", port, store=store) as second:
                with Client(second.url) as other:  # while the stream is away
                    missed = other.submit("double", 2)
                    other.wait(missed.id, timeout=30)
                seen += [(e.task_id, e.state) for e in until_completed(stream, missed.id)]
    finally:
        first.close()
    assert (before.id, TaskState.COMPLETED) in seen
    assert [state for task_id, state in seen if task_id == missed.id] == [
        TaskState.PENDING,
        TaskState.RUNNING,
        TaskState.COMPLETED,
    ]


def until_completed(stream: EventStream, task_id: str) -> list[TaskEvent]:
    events = []
    for event in stream:
        assert isinstance(event, TaskEvent)
        events.append(event)
        if event.task_id == task_id and event.state is TaskState.COMPLETED:
            return events
    raise AssertionError("the stream ended")


def test_last_event_id_is_the_last_yielded_and_a_drop_comes_after_what_preceded_it() -> None:
    """Several frames come in one chunk (the server batches them): the id to resume after is
    the last one the caller got, and a `dropped` frame does not swallow the events before it."""
    body = task_frame(1, 5.0) + task_frame(2, 6.0) + task_frame(3, 7.0)
    stream = canned(body + 'event: dropped\ndata: {"reason":"fell behind"}\n\n')
    assert next(stream).number == 1  # type: ignore[union-attr]
    assert stream.last_event_id == "5.0-1"  # not 7.0-3: events 2 and 3 are still to come
    assert [next(stream).number, next(stream).number] == [2, 3]  # type: ignore[union-attr]
    assert stream.last_event_id == "7.0-3"
    with pytest.raises(EventsDropped, match="fell behind"):
        next(stream)
