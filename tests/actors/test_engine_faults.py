"""Crashes injected at every actor, and graceful shutdown: no task is lost or stuck."""

from __future__ import annotations

import logging
import threading

import pytest
import trio

from oncue.actors import (
    BackendUnavailable,
    EventKind,
    EventsDropped,
    LifecycleEvent,
    StoreUnavailable,
    Submission,
    TaskNotFound,
    TaskState,
    open_engine,
)
from oncue.actors.backends.memory import MemoryBackend
from oncue.actors.cores.scheduler_core import SchedulerCore
from oncue.actors.cores.store_core import StoreCore
from oncue.actors.engine.store import Store
from oncue.actors.engine.worker import Worker


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
    original = Worker._attempt_untraced
    crashed = []

    async def attempt(self, job):
        if job.payload == "crash" and not crashed:
            crashed.append(job.id)
            raise Injected("worker broke outside the handler")
        return await original(self, job)

    monkeypatch.setattr(Worker, "_attempt_untraced", attempt)
    events: list[LifecycleEvent] = []
    async with open_engine(registry=registry, workers=1, observer=events.append) as engine:
        task = await engine.submit("record", "crash")
        with trio.fail_after(10):
            done = await engine.wait(task.id)
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
    crash_once(monkeypatch, SchedulerCore, "_dispatch", after=5)
    events: list[LifecycleEvent] = []
    async with open_engine(registry=registry, workers=4, observer=events.append) as engine:
        tasks = await run_all(engine)
    assert {task.state for task in tasks} == {TaskState.COMPLETED}
    assert all(task.result == task.payload * 2 for task in tasks)
    assert restarted(events)[0] == "/oncue/scheduler"
    assert "/oncue/workers" in restarted(events)


async def test_a_store_crash_restarts_everything_after_it(monkeypatch, registry) -> None:
    crash_once(monkeypatch, Store, "_record", after=1)
    events: list[LifecycleEvent] = []
    async with open_engine(registry=registry, workers=4, observer=events.append) as engine:
        tasks = await run_all(engine)
        stats = await engine.stats()
    assert {task.state for task in tasks} == {TaskState.COMPLETED}
    assert stats.successful == 200
    assert restarted(events)[:3] == ["/oncue/store", "/oncue/scheduler", "/oncue/workers"]


async def test_a_store_crash_during_submit_fails_that_submit_only(monkeypatch, registry) -> None:
    crash_once(monkeypatch, StoreCore, "create", after=0)
    async with open_engine(registry=registry, workers=1) as engine:
        with pytest.raises(Exception, match="crashed while handling"):
            await engine.submit("double", 1)
        task = await engine.submit("double", 2)
        assert (await engine.wait(task.id)).result == 4
        assert (await engine.stats()).successful == 1


async def test_repeated_crashes_in_many_places_lose_nothing(monkeypatch, registry) -> None:
    dispatches = crash_once(monkeypatch, SchedulerCore, "_dispatch", after=3)
    records = crash_once(monkeypatch, Store, "_record", after=4)
    original = Worker._attempt_untraced
    seen = set()

    async def attempt(self, job):
        if job.payload % 37 == 0 and job.payload not in seen:
            seen.add(job.payload)
            raise Injected("worker crash")
        return await original(self, job)

    monkeypatch.setattr(Worker, "_attempt_untraced", attempt)
    async with open_engine(registry=registry, workers=4) as engine:
        tasks = await run_all(engine, 300)
    assert {task.state for task in tasks} == {TaskState.COMPLETED}
    assert all(task.result == task.payload * 2 for task in tasks)
    assert dispatches[0] > 3  # every injected fault did fire
    assert records[0] > 4
    assert len(seen) == 9


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
    [lost] = [r for r in caplog.records if r.getMessage() == "engine.shutdown_lost"]
    assert lost.unfinished == 3


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
        crash_once(monkeypatch, SchedulerCore, "_dispatch", after=0)
        tasks = await run_all(engine, 50)
        names = [worker.name for worker in await engine.workers()]
    assert "/oncue/workers" in restarted(events)
    assert names == ["worker-1", "worker-2", "worker-3"]
    assert {task.state for task in tasks} == {TaskState.COMPLETED}


async def test_a_store_crash_while_the_scheduler_reloads_is_survived(monkeypatch, registry):
    """The restarted store crashing again while the scheduler loads from it used to leave
    the supervisor waiting on the scheduler, and nobody to restart the store."""
    original = Store._record
    calls = [0]

    async def record(self, message, envelope):
        calls[0] += 1
        if calls[0] == 3:
            raise Injected("first crash")
        if calls[0] == 4:  # the restarted store, on the old scheduler's last Record: crash
            await trio.sleep(0.01)  # after the new scheduler has asked it for the queue
            raise Injected("second crash, while the scheduler waits for its queue")
        return await original(self, message, envelope)

    monkeypatch.setattr(Store, "_record", record)
    events: list[LifecycleEvent] = []
    async with open_engine(registry=registry, workers=2, observer=events.append) as engine:
        with trio.fail_after(10):
            tasks = await run_all(engine, 1000)  # enough Records: a fast batch holds up to 128
    assert {task.state for task in tasks} == {TaskState.COMPLETED}
    assert restarted(events).count("/oncue/store") == 2


async def test_a_number_beyond_64_bits_is_simply_not_found(tmp_path, registry) -> None:
    async with open_engine(registry=registry, store=f"sqlite:///{tmp_path}/x.db") as engine:
        with pytest.raises(TaskNotFound):
            await engine.get(2**70)
        assert (await engine.submit("echo", 1)).number == 1  # the store is still there


async def test_event_streams_end_with_a_notice_when_the_store_restarts(monkeypatch, registry):
    crash_once(monkeypatch, Store, "_record", after=0)
    async with open_engine(registry=registry, workers=1) as engine:
        async with engine.events() as events:
            await engine.submit("echo", 1)
            with pytest.raises(EventsDropped, match="the store restarted"):
                async for _ in events:
                    pass
        async with engine.events() as again:  # subscribing again works
            task = await engine.submit("echo", 2)
            async for event in again:
                if event.task_id == task.id and event.state is TaskState.COMPLETED:
                    break


async def test_threads_abandoned_at_timeout_are_counted_and_fail_fast(registry) -> None:
    release = threading.Event()

    @registry.task("stuck", timeout=0.05, max_retries=0)
    def stuck(ctx, payload):
        release.wait(10)

    @registry.task("quick_sync", max_retries=0)
    def quick_sync(ctx, payload):
        return payload

    async with open_engine(registry=registry, workers=1, threads=2) as engine:
        for _ in range(2):
            with trio.fail_after(5):
                hung = await engine.wait((await engine.submit("stuck")).id)
            assert hung.error is not None
            assert hung.error.type == "TaskTimeout"
        with trio.fail_after(5):
            starved = await engine.wait((await engine.submit("quick_sync", 1)).id)
        release.set()
        assert starved.error is not None
        assert starved.error.type == "NoThreadLeft"
        while True:  # the abandoned threads finish and give their places back
            with trio.fail_after(5):
                done = await engine.wait((await engine.submit("quick_sync", 2)).id)
            if done.state is TaskState.COMPLETED:
                break
            await trio.sleep(0.01)
        assert done.result == 2


class FlakyBackend(MemoryBackend):
    """A memory backend whose commits can be made to fail, or to hang, for a while.

    It plays a database (durable), so the store guards its commits with a deadline."""

    durable = True

    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self.hanging = False

    async def commit(self, changed, deleted) -> None:
        if self.failing:
            raise BackendUnavailable("the disk is on fire")
        if self.hanging:
            await trio.sleep_forever()
        await super().commit(changed, deleted)


@pytest.mark.parametrize("fault", ["failing", "hanging"])
async def test_a_long_backend_outage_answers_unavailable_and_then_recovers(
    autojump_clock, registry, fault
) -> None:
    backend = FlakyBackend()
    events: list[LifecycleEvent] = []
    async with open_engine(
        registry=registry, store=backend, workers=2, observer=events.append
    ) as engine:
        before = await engine.submit_many([Submission("double", n) for n in range(20)])
        setattr(backend, fault, True)
        for _ in range(30):  # a minute and more of outage: every submit is refused, quickly
            with pytest.raises(StoreUnavailable):
                await engine.submit("double", 1)
            await trio.sleep(2)
        setattr(backend, fault, False)
        while True:  # the store restarts once the backend answers, and takes work again
            try:
                after = await engine.submit("double", 100)
                break
            except StoreUnavailable:
                await trio.sleep(1)
        await engine.wait_idle()
        tasks = [await engine.get(task.id) for task in [*before, after]]
    assert {task.state for task in tasks} == {TaskState.COMPLETED}
    assert [task.result for task in tasks] == [n * 2 for n in range(20)] + [200]
    assert restarted(events).count("/oncue/store") == 1
