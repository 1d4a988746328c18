"""`GET /api/v1/events`: task transitions as Server-Sent Events, through the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

import httpx
import pytest
import trio
import trio.testing
from quart.typing import TestClientProtocol as Client
from sse_client import open_stream

from oncue.actors import Engine, Registry, open_engine, register_builtins
from oncue.actors.engine.worker import Worker
from oncue.http.app import create_app
from oncue.http.auth import AuthSettings, parse_api_tokens
from oncue.http.routes_events import StreamSettings
from oncue.http.serve import serve

ALICE = {"Authorization": "Bearer token-a"}
BOB = {"Authorization": "Bearer token-b"}
ADMIN = {"Authorization": "Bearer token-root"}


async def submit(client: Client, body: dict, headers: dict[str, str] | None = None) -> dict:
    response = await client.post("/api/v1/tasks", json=body, headers=headers)
    assert response.status_code == 201, await response.get_data()
    task: dict = await response.get_json()
    return task


async def test_a_task_is_followed_from_pending_to_completed(client: Client) -> None:
    async with open_stream(client) as stream:
        task = await submit(client, {"type": "double", "payload": 21})
        pending = await stream.until("task", id=task["id"], status="pending")
        running = await stream.until("task", id=task["id"], status="running")
        completed = await stream.until("task", id=task["id"], status="completed")
    assert pending.data["number"] == task["number"]
    assert pending.data["type"] == "double"
    assert running.data["attempt"] == 1
    assert running.data["worker"] is not None
    assert completed.data["at"].endswith("Z")
    assert completed.id is not None
    assert completed.id.endswith(f"-{task['number']}")


async def test_filters_by_type_status_and_task(client: Client) -> None:
    async with open_stream(client, "type=boom&status=failed,completed") as stream:
        await submit(client, {"type": "double", "payload": 1})
        boom = await submit(client, {"type": "boom"})
        failed = await stream.next()
    assert (failed.kind, failed.data["id"], failed.data["status"]) == ("task", boom["id"], "failed")
    assert failed.data["error"] == "Fatal: boom on purpose"
    async with open_stream(client, "task=" + str(boom["number"] + 1)) as stream:
        await submit(client, {"type": "double", "payload": 2})
        first = await stream.next()
    assert first.data["number"] == boom["number"] + 1


@pytest.mark.parametrize(
    ("query", "field"),
    [("status=finished", "status"), ("status=pending,nope", "status"), ("kind=x", "kind")],
)
async def test_bad_filters_are_a_422_naming_the_field(client: Client, query: str, field: str):
    response = await client.get(f"/api/v1/events?{query}")
    assert response.status_code == 422
    assert (await response.get_json())["error"]["field"] == field


async def test_an_idle_stream_carries_heartbeat_comments(autojump_clock, client: Client):
    async with open_stream(client) as stream:
        before = trio.current_time()
        beat = await stream.next()
    assert beat.kind == "comment"
    assert trio.current_time() - before >= StreamSettings().heartbeat


@pytest.fixture
async def small_buffer(engine: Engine) -> AsyncIterator[Client]:
    settings = StreamSettings(capacity=5, write_timeout=3600)
    app = create_app(engine, events=settings)
    async with app.test_app() as test_app:
        yield test_app.test_client()


async def test_a_slow_client_is_dropped_with_a_final_event(
    small_buffer: Client, engine: Engine
) -> None:
    async with open_stream(small_buffer) as stream:
        for number in range(40):  # the client reads nothing meanwhile
            await submit(small_buffer, {"type": "double", "payload": number})
        await engine.wait_idle()  # the store never waited for the client
        frames = await stream.rest()
    assert frames[-1].kind == "dropped"
    assert "fell 5 events behind" in frames[-1].data["reason"]
    assert all(frame.kind == "task" for frame in frames[:-1])


async def test_a_client_that_never_reads_is_disconnected(autojump_clock, engine: Engine):
    app = create_app(engine, events=StreamSettings(capacity=10_000, write_timeout=5))
    sent: list[dict] = []

    async def receive() -> dict:
        await trio.sleep_forever()  # the client never says anything more, nor leaves
        raise AssertionError

    async def send(message: dict) -> None:
        if len(sent) == 3:  # then its socket is full: no write completes again
            await trio.sleep_forever()
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/api/v1/events", "query_string": b""}
    scope |= {"headers": [], "root_path": "", "client": ("127.0.0.1", 1), "scheme": "http"}
    async with app.test_app(), trio.open_nursery() as nursery:
        nursery.start_soon(app, scope, receive, send)
        await trio.testing.wait_all_tasks_blocked()
        for number in range(5):  # the client reads none of these
            await engine.submit("double", number)
        await engine.wait_idle()
        # the route gives up on the client within its write timeout, and returns
    assert sent[0]["status"] == 200
    assert trio.current_time() < 3600


@pytest.fixture
async def tenants(engine: Engine) -> AsyncIterator[Client]:
    tokens = parse_api_tokens("alice:token-a,bob:token-b,root:token-root:admin")
    app = create_app(engine, auth=AuthSettings(api_tokens=tokens))
    async with app.test_app() as test_app:
        yield test_app.test_client()


async def test_a_tenant_sees_only_its_own_tasks_events(tenants: Client) -> None:
    assert (await tenants.get("/api/v1/events")).status_code == 401
    async with open_stream(tenants, headers=ALICE) as alice:
        await submit(tenants, {"type": "echo", "payload": "bob's"}, BOB)
        mine = await submit(tenants, {"type": "echo", "payload": "alice's"}, ALICE)
        first = await alice.next()
    assert first.data["id"] == mine["id"]


async def test_admins_see_supervision_events(monkeypatch, client: Client) -> None:
    original = Worker._attempt_untraced
    crashed: list[str] = []

    async def attempt(self, job):
        if job.payload == "crash" and not crashed:
            crashed.append(job.id)
            raise RuntimeError("the worker broke outside the handler")
        return await original(self, job)

    monkeypatch.setattr(Worker, "_attempt_untraced", attempt)
    async with open_stream(client) as stream:
        task = await submit(client, {"type": "double", "payload": "crash"})
        crash = await stream.until("actor", kind="crashed")
        restart = await stream.until("actor", kind="restarted")
        await stream.until("task", id=task["id"], status="running", attempt=2)  # requeued
    assert crash.data["path"] == restart.data["path"]
    assert crash.data["path"].startswith("/oncue/workers/worker-")
    assert "the worker broke" in crash.data["error"]
    assert restart.data["restarts"] == 1


async def test_a_stream_ends_with_an_event_when_the_server_drains(client: Client, engine):
    async with open_stream(client) as stream:
        client.app.extensions["oncue"].draining.set()  # the app's Service  # type: ignore[attr-defined]
        frames = await stream.rest()
    assert frames[-1].kind == "end"
    assert "shutting down" in frames[-1].data["reason"]


async def test_resume_replays_what_was_missed(client: Client, engine: Engine) -> None:
    async with open_stream(client) as stream:
        first = await submit(client, {"type": "double", "payload": 1})
        seen = await stream.until("task", id=first["id"], status="completed")
    second = await submit(client, {"type": "double", "payload": 2})
    await engine.wait_idle()
    async with open_stream(client, headers={"Last-Event-ID": seen.id}) as stream:
        replayed = [await stream.next() for _ in range(3)]
        third = await submit(client, {"type": "double", "payload": 3})
        live = await stream.next()
    assert [(f.data["id"], f.data["status"]) for f in replayed] == [
        (second["id"], "pending"),
        (second["id"], "running"),
        (second["id"], "completed"),
    ]
    assert replayed[1].data["worker"] is not None
    assert (live.data["id"], live.data["status"]) == (third["id"], "pending")


async def test_resume_says_so_when_it_cannot(client: Client) -> None:
    async with open_stream(client, headers={"Last-Event-ID": "yesterday"}) as stream:
        reset = await stream.next()
    assert reset.kind == "reset"
    assert "not an event id" in reset.data["reason"]
    async with open_stream(client, headers={"Last-Event-ID": "1.5-3"}) as stream:
        reset = await stream.next()
    assert reset.kind == "reset"
    assert "retention" in reset.data["reason"]


async def test_resume_on_sqlite_replays_from_the_stored_history(tmp_path) -> None:
    store = f"sqlite:///{tmp_path / 'tasks.db'}"
    async with open_engine(
        registry=register_builtins(Registry()), store=store, workers=1
    ) as engine:
        app = create_app(engine)
        async with app.test_app() as test_app:
            client = test_app.test_client()
            async with open_stream(client) as stream:
                task = await submit(client, {"type": "fail", "max_retries": 1})
                cursor = (await stream.until("task", id=task["id"], status="running")).id
            await engine.wait_idle()
    async with open_engine(
        registry=register_builtins(Registry()), store=store, workers=1
    ) as engine:  # a restart in between
        app = create_app(engine)
        async with app.test_app() as test_app:
            client = test_app.test_client()
            async with open_stream(client, headers={"Last-Event-ID": cursor}) as stream:
                steps = [await stream.next() for _ in range(3)]
    assert [step.data["status"] for step in steps] == ["retrying", "running", "failed"]
    assert steps[0].data["error"].startswith("RuntimeError: ")
    assert steps[2].data["attempt"] == 2


async def test_end_to_end_on_hypercorn_a_client_leaves_cleanly(engine: Engine, caplog) -> None:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve, engine, "127.0.0.1", 0, shutdown=stop))
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(b"GET /api/v1/events HTTP/1.1\r\nHost: test\r\n\r\n")
            seen = b""
            while b": connected" not in seen:
                seen += await stream.receive_some()
            task = await engine.submit("double", 2)
            while b'"status":"completed"' not in seen:
                seen += await stream.receive_some()
        # the client left mid-stream; the server goes on serving
        assert b"content-type: text/event-stream" in seen.lower()
        assert task.id.encode() in seen
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/health")).status_code == 200
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)  # the route saw it leave
        stop.set()
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


async def test_nothing_is_sent_after_the_client_left(engine: Engine) -> None:
    """Hypercorn refuses a send after http.disconnect (an 'Error in ASGI Framework')."""
    app = create_app(engine)
    left = trio.Event()
    late: list[dict] = []

    async def receive() -> dict:
        await left.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if left.is_set():
            late.append(message)

    scope = {"type": "http", "method": "GET", "path": "/api/v1/events", "query_string": b""}
    scope |= {"headers": [], "root_path": "", "client": ("127.0.0.1", 1), "scheme": "http"}
    async with app.test_app(), trio.open_nursery() as nursery:
        nursery.start_soon(app, scope, receive, send)
        await trio.testing.wait_all_tasks_blocked()
        left.set()
    assert late == []
