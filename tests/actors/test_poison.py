"""Poison tasks: a handler that takes its node down every time it runs (issue 17 items 2, 3).

The node dies as a process would (its engine cancelled at once: nothing drained, released or
committed after). Its attempts must still be counted, each before it runs, even when the
handler kills the node in its first instant (within the scheduler's START_DELAY), so the task
ends failed (NodeLost) after max_retries + 2 starts (a node lost during the last attempt grants
one more: settlement.attempts_exhausted) instead of taking every node down forever. On a local
store the task comes back by recovery; on a shared one, run by nodes of other names, by lease
expiry and another node's claim.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
import trio
from simulation import Disk, FaultyBackend

from oncue.actors import Registry, TaskContext, TaskState, open_engine
from oncue.actors.backends import Backend
from oncue.actors.backends.shared_memory import SharedMemory, SharedMemoryBackend

MAX_RETRIES = 1
DEATHS = 20  # a poison task that is never counted kills far more nodes than this


def poison_registry(runs: list[str], kill: Callable[[str | None], None]) -> Registry:
    registry = Registry()

    @registry.task("poison", timeout=1000.0)
    async def poison(ctx: TaskContext, payload: Any) -> None:
        runs.append(f"{ctx.node or 'local'}:{ctx.attempt}")
        kill(ctx.node)  # at once: no await between the start and the death
        await trio.sleep_forever()

    return registry


async def live_until_failed(
    backend_for: Callable[[int], Backend], node_for: Callable[[int], str | None], **options: Any
) -> tuple[Any, list[str]]:
    """Start node after node (each named ``node_for(life)``) until the poison task ends;
    returns it and where it ran."""
    runs: list[str] = []
    scopes: dict[str | None, trio.CancelScope] = {}
    registry = poison_registry(runs, lambda node: scopes[node].cancel())
    task_id = None
    for life in itertools.count():
        assert life < DEATHS, f"the poison task took {DEATHS} nodes down; ran {len(runs)} times"
        node = node_for(life)
        with trio.CancelScope() as scopes[node]:
            async with open_engine(
                registry=registry, store=backend_for(life), node=node, workers=2, **options
            ) as engine:
                if task_id is None:
                    task_id = (await engine.submit("poison", None, max_retries=MAX_RETRIES)).id
                task = await engine.wait(task_id)
                return task, runs
    raise AssertionError("unreachable")


async def test_a_task_that_kills_its_node_at_once_ends_failed_on_a_local_store(
    autojump_clock,
) -> None:
    disk = Disk()
    task, runs = await live_until_failed(lambda life: FaultyBackend(disk), lambda life: None)
    assert task.state is TaskState.FAILED
    assert task.error.type == "NodeLost"
    assert len(runs) == task.attempts == MAX_RETRIES + 2  # every start counted, before it ran


async def test_a_task_that_kills_its_node_ends_failed_on_a_shared_store(autojump_clock) -> None:
    hub = SharedMemory()
    task, runs = await live_until_failed(
        lambda life: SharedMemoryBackend(hub), lambda life: f"node-{life}", lease=2.0
    )
    assert task.state is TaskState.FAILED
    assert task.error.type == "NodeLost"
    assert len(runs) == task.attempts == MAX_RETRIES + 2
    assert len(set(runs)) == len(runs)  # back by lease expiry, each time on another node


@pytest.mark.parametrize("store", ["postgres_store", "redis_store"])
async def test_a_task_that_kills_its_node_ends_failed_on_a_real_shared_store(
    store: str, request: pytest.FixtureRequest
) -> None:
    """Real servers, real time: the dead nodes' leases (0.3 s) expire, the next node claims."""
    from oncue.actors.backends import open_backend

    url = request.getfixturevalue(store)
    with trio.fail_after(30):
        task, runs = await live_until_failed(
            lambda life: open_backend(url), lambda life: f"node-{life}", lease=0.3
        )
    assert task.state is TaskState.FAILED
    assert task.error.type == "NodeLost"
    assert len(runs) == task.attempts == MAX_RETRIES + 2
