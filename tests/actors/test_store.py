"""The store actor's batches on a durable store: a producer awaiting each submit() gets one
commit a task, its next admission joining the starts and outcomes that came in meanwhile."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from simulation import Disk, FaultyBackend

from oncue.actors import Registry, TaskContext, open_engine
from oncue.actors.backends.memory import MemoryBackend

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
