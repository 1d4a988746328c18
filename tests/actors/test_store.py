"""The store actor's batches on a durable store: a producer awaiting each submit() gets one
commit a task, its next admission joining the starts and outcomes that came in meanwhile."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from simulation import Disk, FaultyBackend

from oncue.actors import Registry, StoreUnavailable, TaskContext, open_engine
from oncue.actors.backends.memory import MemoryBackend
from oncue.actors.engine.guard import BackendGuard

registry = Registry()


@registry.task("echo", timeout=60)
async def echo(ctx: TaskContext, x: Any) -> Any:
    return x


class Timed:
    """Remembers, per commit, how many of its records were new (admissions)."""

    def __init__(self) -> None:
        self.commits: list[int] = []  # new records in each commit, in order
        self.known: set[str] = set()

    def note(self, changed: Any) -> None:
        new = {record.id for record in changed} - self.known
        self.known |= new
        self.commits.append(len(new))


class SlowDisk(FaultyBackend):
    """A durable backend whose commit takes 0.3 ms (a thread's hop and a write)."""

    def __init__(self, disk: Disk, seen: Timed) -> None:
        super().__init__(disk)
        self.seen = seen

    async def commit(self, changed: Any, deleted: Any) -> Any:
        await trio.sleep(0.0003)
        self.seen.note(changed)
        return await super().commit(changed, deleted)


class SlowMemory(MemoryBackend):
    """The memory backend (not durable), its commit as slow as SlowDisk's."""

    def __init__(self, seen: Timed) -> None:
        super().__init__()
        self.seen = seen

    async def commit(self, changed: Any, deleted: Any) -> Any:
        await trio.sleep(0.0003)
        self.seen.note(changed)
        return await super().commit(changed, deleted)


async def serially(backend: Any, count: int, seed: int, linger: float) -> None:
    options = {"workers": 2, "seed": seed, "linger": linger}
    async with open_engine(registry=registry, store=backend, **options) as engine:
        tasks = [await engine.submit("echo", x) for x in range(count)]
        done = await engine.wait_many([task.id for task in tasks])
    assert [task.result for task in done] == list(range(count))


@pytest.mark.parametrize("linger", [0.0, 0.001])
@pytest.mark.parametrize("seed", range(4))
async def test_a_serial_producer_pays_one_commit_a_task_on_a_durable_store(
    autojump_clock: trio.testing.MockClock, seed: int, linger: float
) -> None:
    seen = Timed()
    await serially(SlowDisk(Disk(), seen), 40, seed, linger)
    first = seen.commits.index(1)
    last = len(seen.commits) - seen.commits[::-1].index(1)
    # From its first admission to its last, every commit admits a task: the starts and the
    # outcomes ride along; none is committed alone while the producer waits.
    assert seen.commits[first:last] == [1] * 40


async def test_a_memory_store_does_not_wait_for_the_answered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Not durable: a batch of outcomes commits as soon as it is taken, before the next submit.
    seen = Timed()
    await serially(SlowMemory(seen), 40, 0, 0.0)
    assert 0 in seen.commits[seen.commits.index(1) : len(seen.commits) - 1]


async def test_a_commit_past_its_deadline_fails_its_batch_and_the_store_recovers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The store's one cancel scope, its deadline moved per commit, cuts a commit that hangs
    # as fail_after did: the batch's callers hear StoreUnavailable(TooSlowError), the store
    # restarts once the backend writes again, and nothing committed before is lost.
    disk = Disk()
    async with open_engine(registry=registry, store=FaultyBackend(disk), workers=2) as engine:
        first = await engine.submit("echo", 1)
        assert (await engine.wait(first.id)).result == 1
        disk.faults.append("hang")
        began = trio.current_time()
        with pytest.raises(StoreUnavailable) as raised:
            await engine.submit("echo", 2)
        assert isinstance(raised.value.error, trio.TooSlowError)
        assert trio.current_time() - began == pytest.approx(BackendGuard.commit_deadline)
        while True:  # recovers on its own (the probe writes)
            try:
                task = await engine.submit("echo", 3)
                break
            except StoreUnavailable:
                await trio.sleep(0.5)
        assert (await engine.wait(task.id)).result == 3
        assert (await engine.get(first.id)).result == 1
