"""Several engines on one Redis prefix, in one process: what test_many_nodes.py checks on the
in-process reference, here through Redis's scripts and pub/sub, on the real clock.

No lease expires in these tests (that is test_shared_contract.py's and the SIGKILL test's
part), so they wait on events and notices only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from oncue.actors import Engine, Registry, Submission, TaskContext, TaskState, open_engine


@pytest.fixture
def counting(registry: Registry) -> Registry:
    """The test handlers (conftest.py), plus ``count``: counts the runs of each payload."""
    registry.runs = Counter()  # type: ignore[attr-defined]

    @registry.task("count", timeout=100.0)
    async def count(ctx: TaskContext, payload: Any) -> Any:
        registry.runs[payload] += 1  # type: ignore[attr-defined]
        await trio.sleep(0.002)
        return payload

    return registry


@asynccontextmanager
async def node(
    store: str, name: str, registry: Registry, workers: int = 2
) -> AsyncIterator[Engine]:
    async with open_engine(
        registry=registry, store=store, workers=workers, node=name, queue_size=10_000
    ) as engine:
        yield engine


async def test_two_engines_share_the_work_and_each_task_runs_once(redis_store, counting) -> None:
    async with node(redis_store, "a", counting) as a, node(redis_store, "b", counting):
        tasks = await a.submit_many([Submission("count", n) for n in range(200)])
        with trio.fail_after(30):
            done = [await a.wait(task.id) for task in tasks]
    assert [task.result for task in done] == list(range(200))
    assert counting.runs == Counter(range(200))  # type: ignore[attr-defined]
    assert {task.worker.split("/")[0] for task in done if task.worker} == {"a", "b"}


async def test_cancel_from_another_engine_interrupts_the_owner(redis_store, counting) -> None:
    async with node(redis_store, "front", counting, workers=0) as front:
        async with node(redis_store, "back", counting, workers=1) as back:
            task = await front.submit("gate", "x")
            async with back.events() as events:
                if (await back.get(task.id)).state is not TaskState.RUNNING:
                    async for event in events:
                        if event.task_id == task.id and event.state is TaskState.RUNNING:
                            break
            assert (await front.cancel(task.id)).state is TaskState.CANCELLED
            with trio.fail_after(10):
                # the owner hears of the cancel over Redis: nothing here to wait on but its workers
                while (await back.workers())[0].current_task is not None:  # noqa: ASYNC110
                    await trio.sleep(0.01)
            counting.gate.set()  # type: ignore[attr-defined]
        final = await front.get(task.id)
    assert (final.state, final.attempts) == (TaskState.CANCELLED, 1)


async def test_a_failed_task_retried_on_one_engine_runs_on_another(redis_store, counting) -> None:
    front_node = node(redis_store, "front", counting, workers=0)
    async with front_node as front, node(redis_store, "back", counting):
        with trio.fail_after(10):
            failed = await front.wait((await front.submit("fatal", None)).id)
        assert failed.state is TaskState.FAILED
        assert (await front.retry(failed.id)).state is TaskState.PENDING
        with trio.fail_after(10):
            final = await front.wait(failed.id)
    assert final.state is TaskState.FAILED
    assert [step.state for step in final.history].count(TaskState.RUNNING) == 2
    assert final.worker is not None
    assert final.worker.startswith("back/")
