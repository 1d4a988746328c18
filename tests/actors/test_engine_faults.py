"""Crashes injected at every actor, and graceful shutdown: no task is lost or stuck."""

from __future__ import annotations

import logging

import pytest
import trio

from oncue.actors import EventKind, LifecycleEvent, Submission, TaskState, open_engine
from oncue.actors.scheduler import Scheduler
from oncue.actors.store import Store
from oncue.actors.worker import Worker


class Injected(Exception):
    """A fault the test put there."""


def crash_once(monkeypatch, cls, method: str, *, after: int = 0) -> list[int]:
    """Make ``cls.method`` raise Injected on its call number ``after`` (once)."""
    original = getattr(cls, method)
    calls = [0]

    def wrapper(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == after + 1:
            raise Injected(f"{cls.__name__}.{method} call {calls[0]}")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, method, wrapper)
    return calls


def restarted(events: list[LifecycleEvent]) -> list[str]:
    return [event.path for event in events if event.kind is EventKind.RESTARTED]


async def run_all(engine, count: int = 200) -> list:
    tasks = await engine.submit_many([Submission("double", n) for n in range(count)])
    await engine.wait_idle()
    return [await engine.get(task.id) for task in tasks]


async def test_a_worker_crash_requeues_its_task_and_counts_the_attempt(
    monkeypatch, registry
) -> None:
    original = Worker._attempt
    crashed = []

    async def attempt(self, job):
        if job.payload == "crash" and not crashed:
            crashed.append(job.id)
            raise Injected("worker broke outside the handler")
        return await original(self, job)

    monkeypatch.setattr(Worker, "_attempt", attempt)
    events: list[LifecycleEvent] = []
    async with open_engine(registry=registry, workers=1, observer=events.append) as engine:
        task = await engine.submit("record", "crash")
        done = await engine.wait(task.id, timeout=10)
        workers = await engine.workers()
    assert done.state is TaskState.COMPLETED
    assert done.attempts == 2
    assert registry.ran == ["crash"]
    assert restarted(events) == ["/oncue/workers/worker-1"]
    assert workers[0].restarts == 1
    assert "worker broke" in (workers[0].last_error or "")


async def test_handler_exceptions_never_crash_a_worker(registry) -> None:
    events: list[LifecycleEvent] = []
    async with open_engine(registry=registry, workers=2, observer=events.append) as engine:
        await engine.submit_many([Submission("fail", None) for _ in range(20)])
        await engine.wait_idle()
        assert (await engine.stats()).failed == 20
    assert restarted(events) == []


async def test_a_scheduler_crash_restarts_it_and_the_workers(monkeypatch, registry) -> None:
    crash_once(monkeypatch, Scheduler, "_dispatch", after=5)
    events: list[LifecycleEvent] = []
    async with open_engine(registry=registry, workers=4, observer=events.append) as engine:
        tasks = await run_all(engine)
    assert {task.state for task in tasks} == {TaskState.COMPLETED}
    assert all(task.result == task.payload * 2 for task in tasks)
    assert restarted(events)[0] == "/oncue/scheduler"
    assert "/oncue/workers" in restarted(events)


async def test_a_store_crash_restarts_everything_after_it(monkeypatch, registry) -> None:
    crash_once(monkeypatch, Store, "_record", after=3)
    events: list[LifecycleEvent] = []
    async with open_engine(registry=registry, workers=4, observer=events.append) as engine:
        tasks = await run_all(engine)
        stats = await engine.stats()
    assert {task.state for task in tasks} == {TaskState.COMPLETED}
    assert stats.successful == 200
    assert restarted(events)[:3] == ["/oncue/store", "/oncue/scheduler", "/oncue/workers"]


async def test_a_store_crash_during_submit_fails_that_submit_only(monkeypatch, registry) -> None:
    crash_once(monkeypatch, Store, "_create", after=0)
    async with open_engine(registry=registry, workers=1) as engine:
        with pytest.raises(Exception, match="crashed while handling"):
            await engine.submit("double", 1)
        task = await engine.submit("double", 2)
        assert (await engine.wait(task.id)).result == 4
        assert (await engine.stats()).successful == 1


async def test_repeated_crashes_in_many_places_lose_nothing(monkeypatch, registry) -> None:
    crash_once(monkeypatch, Scheduler, "_dispatch", after=3)
    crash_once(monkeypatch, Store, "_record", after=9)
    original = Worker._attempt
    seen = set()

    async def attempt(self, job):
        if job.payload % 37 == 0 and job.payload not in seen:
            seen.add(job.payload)
            raise Injected("worker crash")
        return await original(self, job)

    monkeypatch.setattr(Worker, "_attempt", attempt)
    async with open_engine(registry=registry, workers=4) as engine:
        tasks = await run_all(engine, 300)
    assert {task.state for task in tasks} == {TaskState.COMPLETED}
    assert all(task.result == task.payload * 2 for task in tasks)


async def test_shutdown_lets_running_tasks_finish_within_grace(autojump_clock, registry) -> None:
    async with open_engine(registry=registry, workers=2) as engine:
        quick = await engine.submit("slow", 3)
        await trio.sleep(1)
        start = trio.current_time()
        report = await engine.shutdown(grace=10)
        assert trio.current_time() - start == pytest.approx(2, abs=0.1)
        assert (await engine.get(quick.id)).state is TaskState.COMPLETED
    assert report.unfinished == []
    assert report.interrupted == 0


async def test_shutdown_interrupts_after_grace_and_leaves_tasks_pending(
    autojump_clock, registry, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="oncue")
    async with open_engine(registry=registry, workers=1) as engine:
        running = await engine.submit("slow", 100)
        queued = await engine.submit("slow", 1)
        delayed = await engine.submit("slow", 1, delay=3600)
        await trio.sleep(1)
        start = trio.current_time()
        report = await engine.shutdown(grace=5)
        assert trio.current_time() - start == pytest.approx(5, abs=0.1)
        states = {task_id: (await engine.get(task_id)).state for task_id in report.unfinished}
    assert report.interrupted == 1
    assert set(report.unfinished) == {running.id, queued.id, delayed.id}
    assert set(states.values()) == {TaskState.PENDING}
    assert any("shutdown_lost unfinished=3" in r.getMessage() for r in caplog.records)


async def test_leaving_the_block_shuts_down_within_the_engine_grace(autojump_clock, registry):
    start = trio.current_time()
    async with open_engine(registry=registry, workers=1, grace=3) as engine:
        await engine.submit("hang", None, timeout=1000)
        await trio.sleep(1)
    assert trio.current_time() - start == pytest.approx(4, abs=0.1)


async def test_leaving_the_block_with_an_error_cancels_at_once(autojump_clock, registry):
    start = trio.current_time()
    with pytest.raises(Injected):
        async with open_engine(registry=registry, workers=1, grace=30) as engine:
            await engine.submit("hang", None, timeout=1000)
            await trio.sleep(1)
            raise Injected("the caller failed")
    assert trio.current_time() - start == pytest.approx(1, abs=0.1)


async def test_a_resized_pool_keeps_its_size_when_its_supervisor_restarts(
    monkeypatch, registry
) -> None:
    events: list[LifecycleEvent] = []
    async with open_engine(registry=registry, workers=2, observer=events.append) as engine:
        await engine.resize(4)
        await engine.resize(3)
        crash_once(monkeypatch, Scheduler, "_dispatch", after=0)
        tasks = await run_all(engine, 50)
        names = [worker.name for worker in await engine.workers()]
    assert "/oncue/workers" in restarted(events)
    assert names == ["worker-1", "worker-2", "worker-3"]
    assert {task.state for task in tasks} == {TaskState.COMPLETED}
