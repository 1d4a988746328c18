"""A backend that fails for long keeps the engine up, answering 'unavailable' with the cause,
and the engine recovers on its own once the backend takes writes again (issue 17 item 3)."""

from __future__ import annotations

import errno
from collections.abc import Collection

import pytest
import trio

from oncue.actors import (
    Engine,
    EventKind,
    LifecycleEvent,
    StoreUnavailable,
    Task,
    TaskState,
    open_engine,
)
from oncue.actors.backends.memory import MemoryBackend
from oncue.actors.cores.record import TaskRecord
from oncue.actors.errors import BackendFull, BackendUnavailable
from oncue.http.app import create_app


def disk_full() -> BackendFull:  # as a real backend raises it, translated
    cause = OSError(errno.ENOSPC, "database or disk is full")
    return BackendFull(f"the disk is full: {cause}", cause)


class FullDisk(MemoryBackend):
    """A disk that can fill: committing tasks fails; committing nothing succeeds (as SQLite's
    does on a full disk); `probe()` writes something real, so it fails too."""

    def __init__(self) -> None:
        super().__init__()
        self.full = False

    async def commit(self, changed: Collection[TaskRecord], deleted: Collection[str]):
        if self.full and (changed or deleted):
            raise disk_full()
        return await super().commit(changed, deleted)

    async def probe(self) -> None:
        if self.full:
            raise disk_full()


class Flaky(MemoryBackend):
    """Fails one commit of tasks in `every`."""

    def __init__(self, every: int) -> None:
        super().__init__()
        self.every = every
        self.commits = 0

    async def commit(self, changed: Collection[TaskRecord], deleted: Collection[str]):
        if changed or deleted:
            self.commits += 1
            if self.commits % self.every == 0:
                raise BackendUnavailable("injected write error")
        return await super().commit(changed, deleted)


def store_restarts(events: list[LifecycleEvent]) -> int:
    return sum(e.kind is EventKind.RESTARTED and e.path == "/oncue/store" for e in events)


async def test_a_full_disk_keeps_the_engine_up_saying_so_until_space_returns(
    autojump_clock, registry
) -> None:
    backend = FullDisk()
    events: list[LifecycleEvent] = []
    async with open_engine(registry=registry, store=backend, observer=events.append) as engine:
        client = create_app(engine).test_client()
        first = await engine.submit("double", 1)
        assert (await engine.wait(first.id)).result == 2
        backend.full = True
        for _ in range(120):  # two minutes of a full disk
            with pytest.raises(StoreUnavailable) as raised:
                await engine.submit("double", 2)
            assert isinstance(raised.value.error, BackendFull)
            await trio.sleep(1)
        health = await client.get("/health")
        assert health.status_code == 503
        assert "disk is full" in (await health.get_json())["reason"]
        refused = await client.post("/api/v1/tasks", json={"type": "double", "payload": 3})
        assert refused.status_code == 503
        assert "disk is full" in (await refused.get_json())["error"]["message"]
        assert store_restarts(events) == 0  # no false recovery: the probe writes
        backend.full = False
        while True:  # recovers on its own
            try:
                task = await engine.submit("double", 4)
                break
            except StoreUnavailable:
                await trio.sleep(1)
        assert (await engine.wait(task.id)).result == 8
        assert (await client.get("/health")).status_code == 200
    assert store_restarts(events) == 1


async def test_an_engine_with_one_commit_in_twenty_failing_finishes_every_task(
    autojump_clock, registry
) -> None:
    async with open_engine(registry=registry, store=Flaky(every=20), workers=4) as engine:
        accepted = await submit_through_outages(engine, 300)
        tasks = [await wait_through_outages(engine, task_id) for task_id in accepted]
    assert {task.state for task in tasks} == {TaskState.COMPLETED}


async def submit_through_outages(engine: Engine, count: int) -> list[str]:
    """Submit ``count`` "double" tasks, each with a key, asking again while the store answers
    unavailable (retried with its key: admitted once); their ids."""
    accepted = []
    for number in range(count):
        while True:
            try:
                accepted.append((await engine.submit("double", number, key=f"k{number}")).id)
                break
            except StoreUnavailable:
                await trio.sleep(0.5)
    return accepted


async def wait_through_outages(engine: Engine, task_id: str) -> Task:
    """Wait for the task, asking again when a commit failure answers the wait unavailable (what
    the store tells every caller while it recovers: documented, retried as a caller would)."""
    while True:
        try:
            return await engine.wait(task_id)
        except StoreUnavailable:
            await trio.sleep(0.5)


class Hanging(MemoryBackend):
    """A backend that stops answering commits (a PostgreSQL outage: packets dropped)."""

    def __init__(self) -> None:
        super().__init__()
        self.hang = False

    async def commit(self, changed: Collection[TaskRecord], deleted: Collection[str]):
        if self.hang and (changed or deleted):
            await trio.sleep_forever()
        return await super().commit(changed, deleted)


async def test_health_answers_within_a_second_while_the_store_hangs(
    autojump_clock, registry
) -> None:
    backend = Hanging()
    async with open_engine(registry=registry, store=backend) as engine:
        client = create_app(engine).test_client()
        backend.hang = True
        async with trio.open_nursery() as nursery:
            nursery.start_soon(engine.submit, "double", 1)  # the store is stuck committing it
            await trio.sleep(0.1)
            asked = trio.current_time()
            health = await client.get("/health")
            assert trio.current_time() - asked <= 1.1  # the mock clock's seconds
            assert health.status_code == 503
            assert "did not answer within 1s" in (await health.get_json())["reason"]
            backend.hang = False
            nursery.cancel_scope.cancel()
