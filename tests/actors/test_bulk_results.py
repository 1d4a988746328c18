"""Reading back many results at once: get_many, wait_many, as_completed (one message each)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from oncue.actors import InvalidField, Submission, TaskNotFound, TaskState, open_engine
from oncue.actors.backends.sqlite import SqliteBackend
from oncue.actors.engine.store import Store
from oncue.actors.runtime.mailbox import ActorRef

READS = {"GetTask", "WaitTask", "GetMany", "WaitMany", "WatchMany"}


def count_asks(monkeypatch) -> list[str]:
    """Record the type of every message that reads tasks asked of the store."""
    asked: list[str] = []
    original = ActorRef.ask

    async def ask(self, message, *args, **kwargs):
        if type(message).__name__ in READS:
            asked.append(type(message).__name__)
        return await original(self, message, *args, **kwargs)

    monkeypatch.setattr(ActorRef, "ask", ask)
    return asked


async def test_wait_many_returns_every_task_finished_in_the_order_given(
    monkeypatch, registry
) -> None:
    async with open_engine(registry=registry, workers=2) as engine:
        tasks = await engine.submit_many([Submission("double", n) for n in range(50)])
        ids = [task.id for task in reversed(tasks)] + [tasks[0].id]  # a repeat is fine
        asked = count_asks(monkeypatch)
        done = await engine.wait_many(ids)
    assert asked == ["WaitMany"]
    assert [task.id for task in done] == ids
    assert {task.state for task in done} == {TaskState.COMPLETED}
    assert [task.result for task in done] == [2 * n for n in reversed(range(50))] + [0]


async def test_wait_many_waits_for_the_last_one(registry) -> None:
    async with open_engine(registry=registry, workers=2) as engine:
        quick = await engine.submit("record", "quick")
        held = await engine.submit("gate", "held")
        await engine.wait(quick.id)
        async with trio.open_nursery() as nursery:
            got = []

            async def waiter() -> None:
                got.extend(await engine.wait_many([held.id, quick.id]))

            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            assert got == []
            registry.gate.set()
    assert [(task.id, task.result) for task in got] == [(held.id, "held"), (quick.id, "quick")]


async def test_wait_many_names_an_unknown_id_before_waiting(registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        held = await engine.submit("gate", None)
        with pytest.raises(TaskNotFound, match="nope"):
            await engine.wait_many([held.id, "nope"])
        registry.gate.set()


async def test_bad_ids_are_refused_naming_the_field(registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        with pytest.raises(InvalidField, match=r"ids\[1\] must be a task id") as refused:
            await engine.wait_many(["a", 3])  # type: ignore[list-item]
        assert refused.value.field == "ids"
        with pytest.raises(InvalidField, match="not one string"):
            await engine.get_many("abc")
        assert await engine.wait_many([]) == []


async def test_get_many_is_one_message_and_shows_tasks_as_they_are(monkeypatch, registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        await engine.pause()
        queued = await engine.submit("double", 1)
        await engine.resume()
        done = await engine.submit("double", 2)
        await engine.wait(done.id)
        await engine.pause()
        also_queued = await engine.submit("double", 3)
        asked = count_asks(monkeypatch)
        got = await engine.get_many([also_queued.id, done.id])
        assert asked == ["GetMany"]
        assert [task.state for task in got] == [TaskState.PENDING, TaskState.COMPLETED]
        with pytest.raises(TaskNotFound, match="missing"):
            await engine.get_many([queued.id, "missing"])
        await engine.resume()


async def test_as_completed_yields_each_task_as_it_finishes(monkeypatch, registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        first = await engine.submit("record", "first")
        await engine.wait(first.id)
        await engine.pause()  # one worker: they finish in priority order once resumed
        low = await engine.submit("record", "low", priority="low")
        high = await engine.submit("record", "high", priority="high")
        asked = count_asks(monkeypatch)
        seen = []
        async with engine.as_completed([low.id, high.id, first.id, low.id]) as finished:
            async for task in finished:
                seen.append(task.result)
                if len(seen) == 1:
                    await engine.resume()
    assert seen == ["first", "high", "low"]
    assert asked == ["WatchMany"]


async def test_as_completed_carries_on_after_the_store_restarts(monkeypatch, registry) -> None:
    calls = [0]
    original = Store._record

    async def crash_on_the_second(self, message, envelope):
        calls[0] += 1
        if calls[0] == 2:
            raise RuntimeError("injected")
        return await original(self, message, envelope)

    monkeypatch.setattr(Store, "_record", crash_on_the_second)
    async with open_engine(registry=registry, workers=1) as engine:
        tasks = await engine.submit_many([Submission("record", n) for n in range(20)])
        got = [task.result async for task in engine.as_completed([t.id for t in tasks])]
    assert sorted(got) == list(range(20))
    assert calls[0] > 2  # it did crash, and went on


async def test_a_task_just_finished_is_read_back_without_the_database(tmp_path, registry) -> None:
    reads: list[str] = []
    original = SqliteBackend.get

    async def counted(self, task_id):
        reads.append(task_id)
        return await original(self, task_id)

    store = SqliteBackend(str(tmp_path / "x.db"))
    store.get = counted.__get__(store)  # type: ignore[method-assign]
    async with open_engine(registry=registry, workers=2, store=store) as engine:
        tasks = await engine.submit_many([Submission("double", n) for n in range(30)])
        await engine.wait_many([task.id for task in tasks])
        got = await engine.get_many([task.id for task in tasks])
        assert (await engine.get(tasks[0].id)).result == 0
        assert reads == []
        assert [task.result for task in got] == [2 * n for n in range(30)]
        await engine.delete(tasks[0].id)  # forgotten by the cache too
        with pytest.raises(TaskNotFound):
            await engine.get(tasks[0].id)


async def test_a_retried_task_is_not_read_back_finished(tmp_path, registry) -> None:
    async with open_engine(registry=registry, workers=1, store=f"sqlite:///{tmp_path}/x.db") as e:
        failed = await e.wait((await e.submit("fatal", None)).id)
        assert failed.state is TaskState.FAILED
        await e.pause()
        await e.retry(failed.id)
        assert (await e.get(failed.id)).state is TaskState.PENDING
        await e.resume()


async def test_no_cache_reads_the_database(tmp_path, registry) -> None:
    reads: list[str] = []
    store = SqliteBackend(str(tmp_path / "x.db"))
    original = store.get

    async def counted(task_id):
        reads.append(task_id)
        return await original(task_id)

    store.get = counted  # type: ignore[method-assign]
    async with open_engine(registry=registry, store=store, recent_results=0) as engine:
        task = await engine.submit("double", 1)
        await engine.wait(task.id)
        await engine.get(task.id)
    assert task.id in reads


async def test_waits_on_redis_read_only_the_finished_tasks_whole(redis_store, registry) -> None:
    """Nothing kept in memory, so every id is read: the states, then the finished ones."""
    options = {"registry": registry, "workers": 1, "store": redis_store, "recent_results": 0}
    async with open_engine(**options) as engine:
        done = await engine.submit("double", 2)
        await engine.wait(done.id)
        held = await engine.submit("gate", "held")
        with pytest.raises(TaskNotFound, match="nope"):
            await engine.wait_many([done.id, held.id, "nope"])
        got = []
        async for task in engine.as_completed([held.id, done.id]):
            got.append(task)
            registry.gate.set()  # the finished one first; then the held one may end
        both = await engine.wait_many([held.id, done.id])
    assert [(task.id, task.result) for task in got] == [(done.id, 4), (held.id, "held")]
    assert [task.state for task in both] == [TaskState.COMPLETED] * 2


async def test_recent_results_is_validated() -> None:
    with pytest.raises(ValueError, match="recent_results must be an int >= 0"):
        async with open_engine(recent_results=-1):
            pass


async def test_wait_many_given_up_on_does_not_pile_up(autojump_clock, registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        held = await engine.submit("gate", 1)
        other = await engine.submit("gate", 2)
        for _ in range(50):
            with pytest.raises(trio.TooSlowError), trio.fail_after(1):
                await engine.wait_many([held.id, other.id])
        async with trio.open_nursery() as nursery:
            results = []

            async def wait_for_them() -> None:
                results.extend(await engine.wait_many([other.id, held.id]))

            nursery.start_soon(wait_for_them)
            await trio.testing.wait_all_tasks_blocked()
            store = engine._store._mailbox  # the store's mailbox: how many asks it holds
            assert len(store._in_flight) <= 2  # this wait, and at most one stale one
            registry.gate.set()
    assert [task.result for task in results] == [2, 1]
