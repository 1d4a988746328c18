"""submit / submit_nowait as a trio X / X_nowait pair: the same arguments, the same kind of
answer (a pending Task), the same exceptions (QueueFull, a trio.WouldBlock)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import trio
import trio.testing

from oncue.actors import Engine, QueueFull, Registry, TaskContext, TaskState, open_engine


def test_the_pair_takes_the_same_arguments() -> None:
    awaited = inspect.signature(Engine.submit)
    nowait = inspect.signature(Engine.submit_nowait)
    assert list(nowait.parameters.items()) == list(awaited.parameters.items())
    assert nowait.return_annotation == awaited.return_annotation == "Task"


async def test_the_pair_answers_the_same_task_but_its_number(registry: Any) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        await engine.pause()
        options: dict[str, Any] = {"priority": "high", "max_retries": 2, "timeout": 7}
        options |= {"delay": 30, "key": "k-nowait", "headers": {"a": "b"}}
        handed = engine.submit_nowait("echo", {"x": 1}, **options)
        stored = await engine.get(handed.id)
        awaited = await engine.submit("echo", {"x": 1}, **{**options, "key": "k-awaited"})
    assert handed.state is TaskState.PENDING
    assert handed.number == 0  # the store numbers a task as it takes it
    assert stored.number > 0
    assert handed == _numbered(stored, 0)  # everything else as the store recorded it
    assert handed.created_at == stored.created_at
    assert type(handed) is type(awaited)
    assert _same_but_ids(handed, awaited)


async def test_submit_nowait_keeps_the_first_task_of_a_key(registry: Any) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        await engine.pause()
        existing = await engine.submit("echo", 1, key="order-42")
        again = engine.submit_nowait("echo", 2, key="order-42")
        twins = [engine.submit_nowait("echo", n, key="order-43") for n in (3, 4)]
        await engine.stats()  # the store has taken them once this is answered
        assert (await engine.get_by_key("order-42")).id == existing.id
        assert (await engine.get_by_key("order-43")).id == twins[0].id
        for dropped in (again, twins[1]):  # the store's answer: not created
            with pytest.raises(LookupError):
                await engine.get(dropped.id)
        assert (await engine.stats()).by_state["pending"] == 2


async def test_submit_nowait_raises_queue_full_as_submit_does(registry: Any) -> None:
    async with open_engine(registry=registry, workers=1, queue_size=3) as engine:
        await engine.pause()
        for number in range(3):
            engine.submit_nowait("echo", number)
        await trio.testing.wait_all_tasks_blocked()  # the store took them: the queue is full
        with pytest.raises(QueueFull) as raised:
            engine.submit_nowait("echo", 3)
        assert isinstance(raised.value, trio.WouldBlock)
        with pytest.raises(QueueFull):
            await engine.submit("echo", 3)
        await engine.resume()
        await engine.wait_idle()  # room again, but the store's last look saw it full:
        with pytest.raises(QueueFull):
            engine.submit_nowait("echo", 4)
        await trio.testing.wait_all_tasks_blocked()  # ... so it looks again
        task = engine.submit_nowait("echo", 4)
        assert (await engine.wait(task.id)).result == 4
        stats = await engine.stats()
    assert stats.by_state["failed"] == 0  # refused at the call, never recorded failed


def _numbered(task: Any, number: int) -> Any:
    import attrs

    return attrs.evolve(task, number=number)


def _same_but_ids(one: Any, other: Any) -> bool:
    import attrs

    skip = {"id", "number", "key", "created_at", "history", "run_at"}
    fields = [field.name for field in attrs.fields(type(one)) if field.name not in skip]
    return all(getattr(one, name) == getattr(other, name) for name in fields)


async def test_a_first_burst_of_submit_nowait_stops_at_the_queue_size(autojump_clock) -> None:
    """Before the store's first answer the engine goes by the configured queue_size: a burst on
    a fresh engine raises QueueFull there instead of handing over tasks recorded failed."""
    registry = Registry()

    @registry.task("slow", timeout=60)
    async def slow(ctx: TaskContext, x: Any) -> Any:
        await trio.sleep(100)

    async with open_engine(registry=registry, workers=1, queue_size=10) as engine:
        handed, refused = [], 0
        for number in range(30):
            try:
                handed.append(engine.submit_nowait("slow", number))
            except QueueFull:
                refused += 1
        await trio.sleep(1)
        states = [(await engine.get(task.id)).state for task in handed]
        assert TaskState.FAILED not in states
        assert (len(handed), refused) == (10, 20)
