"""Fault injection: the backend fails (raises, or hangs) for a while under the HTTP API.

Submits during the fault get 503 with Retry-After (never a 500, never a hang); nothing that
was accepted is lost; once the fault ends, the service works again by itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from typing import Any

import pytest
import trio
from quart.typing import TestClientProtocol as Client

from oncue.actors import BackendUnavailable, Engine, open_engine
from oncue.actors.backends.memory import MemoryBackend
from oncue.actors.cores.record import TaskRecord
from oncue.http.app import create_app

DEADLINE = 5.0


class FaultyBackend(MemoryBackend):
    """A memory backend whose commits fail while `failing` is set, or hang until `released`.

    It plays a database (durable), so the store guards its commits with a deadline."""

    durable = True

    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self.hang: trio.Event | None = None
        self.faults = 0

    async def commit(self, changed: Collection[TaskRecord], deleted: Collection[str]) -> None:
        if self.failing:
            self.faults += 1
            raise BackendUnavailable("injected: the disk is gone")
        if self.hang is not None:
            self.faults += 1
            await self.hang.wait()
        await super().commit(changed, deleted)


@pytest.fixture
def backend() -> FaultyBackend:
    return FaultyBackend()


@pytest.fixture
async def faulty(backend: FaultyBackend) -> AsyncIterator[tuple[Engine, Client]]:
    async with open_engine(workers=2, store=backend, grace=0) as engine:
        app = create_app(engine, store_deadline=DEADLINE)
        async with app.test_app() as test_app:
            yield engine, test_app.test_client()


async def submit(client: Client, body: dict[str, Any]) -> tuple[int, dict[str, Any], Any]:
    response = await client.post("/api/v1/tasks", json=body)
    return response.status_code, await response.get_json(), response.headers


async def until_not_503(request: Any) -> Any:
    """The store answers 'unavailable' until its next probe of the backend succeeds (backoff
    from 50 ms): ask again, on the mock clock, a bounded number of times."""
    for _ in range(100):
        response = await request()
        if response.status_code != 503:
            return response
        await trio.sleep(0.5)
    raise AssertionError("still 503 after 50 s")


async def test_a_failing_backend_answers_503_then_recovers(
    autojump_clock: trio.abc.Clock, faulty: tuple[Engine, Client], backend: FaultyBackend
) -> None:
    engine, client = faulty
    status, before, _ = await submit(client, {"type": "double", "payload": 1})
    assert status == 201
    backend.failing = True
    status, body, headers = await submit(client, {"type": "double", "payload": 2})
    assert (status, body["error"]["code"]) == (503, "unavailable")
    assert headers["Retry-After"] == "1"
    assert backend.faults == 1
    backend.failing = False
    response = await until_not_503(
        lambda: client.post("/api/v1/tasks", json={"type": "double", "payload": 3})
    )
    assert response.status_code == 201  # the store was restarted from the backend
    after = await response.get_json()
    await engine.wait_idle()
    listed = (await (await client.get("/api/v1/tasks")).get_json())["tasks"]
    assert {task["id"] for task in listed} == {before["id"], after["id"]}
    assert {task["status"] for task in listed} == {"completed"}


async def test_a_hanging_backend_answers_503_within_the_deadline(
    autojump_clock: trio.abc.Clock, faulty: tuple[Engine, Client], backend: FaultyBackend
) -> None:
    engine, client = faulty
    backend.hang = trio.Event()
    started = trio.current_time()
    status, body, headers = await submit(client, {"type": "double", "payload": 2, "key": "k2"})
    assert (status, body["error"]["code"]) == (503, "unavailable")
    assert headers["Retry-After"] == "1"
    assert trio.current_time() - started == pytest.approx(DEADLINE, abs=0.5)
    backend.hang.set()
    backend.hang = None
    # The store carried on once the backend did: the given-up submit may have been admitted,
    # so a client retrying with its key gets that task, never a second one.
    status, retried, _ = await submit(client, {"type": "double", "payload": 2, "key": "k2"})
    assert status in (200, 201)
    status, other, _ = await submit(client, {"type": "double", "payload": 3})
    assert status == 201
    await engine.wait_idle()
    listed = (await (await client.get("/api/v1/tasks")).get_json())["tasks"]
    assert {task["id"] for task in listed} == {retried["id"], other["id"]}


async def test_reads_during_a_hang_answer_503_too(
    autojump_clock: trio.abc.Clock, faulty: tuple[Engine, Client], backend: FaultyBackend
) -> None:
    _, client = faulty
    status, task, _ = await submit(client, {"type": "double", "payload": 1})
    assert status == 201
    backend.hang = trio.Event()
    async with trio.open_nursery() as nursery:
        # a commit that hangs: the store is stuck in it, so every ask waits behind it
        nursery.start_soon(submit, client, {"type": "double", "payload": 2})
        await trio.testing.wait_all_tasks_blocked()
        response = await client.get(f"/api/v1/tasks/{task['id']}")
        assert response.status_code == 503
        health = await client.get("/health")
        assert (health.status_code, (await health.get_json())["status"]) == (503, "unavailable")
        backend.hang.set()
    backend.hang = None
    read = await until_not_503(lambda: client.get(f"/api/v1/tasks/{task['id']}"))
    assert read.status_code == 200
    assert (await client.get("/health")).status_code == 200


async def test_a_long_fault_with_many_submits_is_survived(
    autojump_clock: trio.abc.Clock, faulty: tuple[Engine, Client], backend: FaultyBackend
) -> None:
    _, client = faulty
    backend.failing = True
    for number in range(6):
        status, _, _ = await submit(client, {"type": "double", "payload": number})
        assert status == 503
    backend.failing = False
    for _ in range(100):  # the store restarts once a probe commits again; a 503 or two first
        status, _, _ = await submit(client, {"type": "double", "payload": 99})
        if status != 503:
            break
        await trio.sleep(1)
    assert status == 201
