"""On a durable store a worker gets its batch once the store committed its Started (so an
attempt is counted before it runs). A cancel the store commits in the same batch as that
Started must keep the task from beginning: the store tells the cancel first, and the scheduler
hands out the batch without it (found by the session's second reader)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from simulation import Disk, FaultyBackend

from oncue.actors import Registry, TaskContext, TaskState, open_engine

registry = Registry()
log: list[str] = []


@registry.task("probe", timeout=60)
async def probe(ctx: TaskContext, x: Any) -> Any:
    log.append(f"began {x}")
    await trio.sleep(5)
    return x


class SlowOnce(FaultyBackend):
    """Commits as the simulation's backend does; the commit after ``slow_next`` takes 1 s."""

    slow_next = False

    async def commit(self, changed: Any, deleted: Any) -> Any:
        if self.slow_next:
            self.slow_next = False
            await trio.sleep(1.0)
        lost = await super().commit(changed, deleted)
        log.extend(f"committed {record.id} {record.state.value}" for record in changed)
        return lost


@pytest.mark.parametrize("seed", range(6))
async def test_a_task_cancelled_as_its_start_commits_never_begins(
    autojump_clock: trio.testing.MockClock, seed: int
) -> None:
    log.clear()
    backend = SlowOnce(Disk())
    async with open_engine(registry=registry, store=backend, workers=1, seed=seed) as engine:
        await engine.pause()
        a = await engine.submit("probe", "a")
        backend.slow_next = True
        engine.submit_nowait("probe", "filler", delay=1000)  # the store commits it slowly
        await trio.sleep(0.1)
        await engine.resume()  # a goes out; its Started (and the worker's answer) wait
        await trio.sleep(0.1)  # the Record waits behind the slow commit
        cancelled = await engine.cancel(a.id)  # in the same store batch as that Record
        await trio.sleep(1.0)
        assert cancelled.state is TaskState.CANCELLED
        assert (await engine.get(a.id)).state is TaskState.CANCELLED
        assert "began a" not in log, log
        # The worker is free again: the next task runs.
        b = await engine.submit("probe", "b")
        with trio.fail_after(30):
            assert (await engine.wait(b.id)).state is TaskState.COMPLETED
