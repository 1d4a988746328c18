"""Several engines on one shared store: claims, leases, reaping, notices, across engines.

They run on SharedMemory (backends/shared_memory.py), the in-process reference of the
SharedBackend contract, so trio's MockClock drives leases and every run is deterministic.
The same behaviour on PostgreSQL and Redis is checked by tests/actors/test_shared_contract.py
(the backend contract) and tests/http/test_two_nodes.py (real processes, SIGKILL).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from oncue.actors import (
    BackendUnavailable,
    Engine,
    QueueFull,
    Registry,
    StoreUnavailable,
    Submission,
    Task,
    TaskContext,
    TaskState,
    open_engine,
)
from oncue.actors.backends.shared_memory import SharedMemory, SharedMemoryBackend

LEASE = 3.0


@pytest.fixture
def counting(registry: Registry) -> Registry:
    """The test handlers (conftest.py), plus ``count``: counts the runs of each payload."""
    registry.runs = Counter()  # type: ignore[attr-defined]

    @registry.task("count", timeout=1000.0)
    async def count(ctx: TaskContext, payload: Any) -> Any:
        registry.runs[payload["n"]] += 1  # type: ignore[attr-defined]
        await trio.sleep(payload.get("takes", 0))
        return payload["n"]

    return registry


async def running(engine: Engine, tasks: list[Task]) -> int:
    return sum([(await engine.get(task.id)).state is TaskState.RUNNING for task in tasks])


async def until_running(engine: Engine, tasks: list[Task], count: int) -> None:
    """Poll (on the mock clock) until the store has ``count`` of ``tasks`` running."""
    for _ in range(10_000):
        if await running(engine, tasks) >= count:
            return
        await trio.sleep(0.1)
    raise AssertionError(f"{count} of the tasks never ran at once")


def counts(n: int, takes: float) -> list[Submission]:
    return [Submission("count", {"n": number, "takes": takes}) for number in range(n)]


@asynccontextmanager
async def node(
    hub: SharedMemory, name: str, registry: Registry, workers: int = 2, **options: Any
) -> AsyncIterator[Engine]:
    options.setdefault("store", SharedMemoryBackend(hub))
    async with open_engine(
        registry=registry,
        workers=workers,
        node=name,
        lease=LEASE,
        **{"queue_size": 100_000, **options},
    ) as engine:
        yield engine


async def test_two_engines_share_the_work_and_each_task_runs_once(autojump_clock, counting) -> None:
    hub = SharedMemory()
    registry = counting
    async with node(hub, "a", registry) as a, node(hub, "b", registry) as b:
        tasks = await a.submit_many(counts(200, takes=0.01))
        with trio.fail_after(60):
            done = [await b.wait(task.id) for task in tasks]
        await a.wait_idle()
    assert [task.result for task in done] == list(range(200))
    assert set(registry.runs.values()) == {1}  # type: ignore[attr-defined]
    assert len(registry.runs) == 200  # type: ignore[attr-defined]
    workers = {task.worker.split("/")[0] for task in done if task.worker}
    assert workers == {"a", "b"}, workers  # both engines ran some


async def test_claims_take_the_highest_priority_first(autojump_clock, counting) -> None:
    hub = SharedMemory()
    registry = counting
    async with node(hub, "submitter", registry, workers=0) as submitter:
        for n, priority in enumerate(["low", "normal", "critical", "high", "low", "critical"]):
            await submitter.submit("record", n, priority=priority)
        async with node(hub, "runner", registry, workers=1):
            await submitter.wait_idle()
    assert registry.ran == [2, 5, 3, 1, 0, 4]  # type: ignore[attr-defined]


async def test_a_killed_engines_tasks_run_elsewhere_once_its_leases_expire(
    autojump_clock, counting
) -> None:
    hub = SharedMemory()
    registry = counting
    async with node(hub, "survivor", registry, workers=0) as survivor:
        tasks = await survivor.submit_many(counts(6, takes=50))
        with trio.CancelScope() as killed:
            async with node(hub, "doomed", registry, workers=2):
                await until_running(survivor, tasks, 2)
                killed.cancel()  # no graceful stop: nothing released, leases left to expire
        await survivor.resize(workers=3)
        with trio.fail_after(600):
            done = [await survivor.wait(task.id) for task in tasks]
    assert all(task.state is TaskState.COMPLETED for task in done)
    runs = registry.runs  # type: ignore[attr-defined]
    assert sorted(runs) == list(range(6))
    twice = [n for n, count in runs.items() if count > 1]
    assert len(twice) <= 2  # what "doomed" was running
    assert all(runs[n] == 2 for n in twice)
    for task in done:
        assert task.attempts == runs[task.result]


async def test_a_task_ten_times_longer_than_its_lease_runs_once(autojump_clock, counting) -> None:
    hub = SharedMemory()
    registry = counting
    async with node(hub, "a", registry, workers=1) as a, node(hub, "b", registry, workers=1):
        task = await a.submit("count", {"n": 1, "takes": 10 * LEASE})
        with trio.fail_after(100 * LEASE):
            done = await a.wait(task.id)
    assert done.state is TaskState.COMPLETED
    assert registry.runs == {1: 1}  # type: ignore[attr-defined]


async def test_cancel_from_another_engine_interrupts_the_owner(autojump_clock, counting) -> None:
    hub = SharedMemory()
    registry = counting
    async with node(hub, "front", registry, workers=0) as front:
        async with node(hub, "back", registry, workers=1) as back:
            task = await front.submit("gate", "x")
            await until_running(back, [task], 1)
            cancelled = await front.cancel(task.id)
            assert cancelled.state is TaskState.CANCELLED
            with trio.fail_after(10):
                waited = await front.wait(task.id)
            assert waited.state is TaskState.CANCELLED
            await back.wait_idle()
            assert (await back.workers())[0].current_task is None  # interrupted, not running on
            registry.gate.set()  # type: ignore[attr-defined]
        final = await front.get(task.id)
    assert final.state is TaskState.CANCELLED
    assert final.attempts == 1


async def test_a_failed_task_retried_on_one_engine_runs_on_another(
    autojump_clock, counting
) -> None:
    hub = SharedMemory()
    registry = counting
    front_node, back_node = node(hub, "front", registry, workers=0), node(hub, "back", registry)
    async with front_node as front, back_node:
        with trio.fail_after(10):
            failed = await front.wait((await front.submit("fatal", None)).id)
        assert failed.state is TaskState.FAILED
        again = await front.retry(failed.id)
        assert again.state is TaskState.PENDING
        with trio.fail_after(10):
            final = await front.wait(failed.id)
    assert final.state is TaskState.FAILED
    assert [step.state for step in final.history].count(TaskState.RUNNING) == 2


async def test_a_graceful_stop_gives_claimed_tasks_back_at_once(autojump_clock, counting) -> None:
    hub = SharedMemory()
    registry = counting
    async with node(hub, "stays", registry, workers=0) as stays:
        async with node(hub, "leaves", registry, workers=1, grace=0.5) as leaves:
            tasks = await stays.submit_many(counts(4, takes=5))
            await until_running(stays, tasks, 1)
            await leaves.shutdown(grace=0.5)
        assert all(lease.node != "leaves" for lease in hub.leases.values())  # given back
        assert await running(stays, tasks) == 0  # the interrupted one is pending again
        await stays.resize(workers=4)
        with trio.fail_after(100):
            done = [await stays.wait(task.id) for task in tasks]
    assert all(task.state is TaskState.COMPLETED for task in done)


async def test_stats_wait_idle_and_admission_count_the_whole_store(
    autojump_clock, counting
) -> None:
    hub = SharedMemory()
    registry = counting
    one = {"workers": 0, "queue_size": 5}
    async with node(hub, "a", registry, **one) as a, node(hub, "b", registry, **one) as b:
        await a.submit_many([Submission("record", n) for n in range(3)])
        stats = await b.stats()
        assert stats.queue_length == 3
        await trio.sleep(2)  # past the admission count's age
        with pytest.raises(QueueFull):
            await b.submit_many([Submission("record", n) for n in range(3)])
        async with node(hub, "runner", registry, workers=2):
            await b.wait_idle()
        assert (await a.stats()).successful == 3


async def test_a_paused_engine_keeps_nothing_submitted_to_it(autojump_clock, counting) -> None:
    hub = SharedMemory()
    registry = counting
    async with node(hub, "front", registry, workers=2) as front:
        await front.wait((await front.submit("record", "warm-up")).id)  # it has room now
        await front.pause()
        task = await front.submit("record", "while paused")
        async with node(hub, "back", registry, workers=1):
            with trio.fail_after(10):
                done = await front.wait(task.id)
    assert done.worker is not None
    assert done.worker.startswith("back/")


class SlowKeys(SharedMemoryBackend):
    """Looks keys up slowly, so two engines admit the same key before either commits."""

    async def find_key(self, key: str) -> Any:
        found = await super().find_key(key)
        await trio.sleep(0.01)  # the other engine looks meanwhile, and finds nothing either
        return found


async def test_one_key_submitted_on_two_engines_at_once_makes_one_task(
    autojump_clock, counting
) -> None:
    hub = SharedMemory()
    answers: list[Any] = []
    options: dict[str, Any] = {"registry": counting, "workers": 0, "queue_size": 10}
    async with (
        open_engine(store=SlowKeys(hub), node="a", **options) as a,
        open_engine(store=SlowKeys(hub), node="b", **options) as b,
        trio.open_nursery() as nursery,
    ):
        for engine, delay in ((a, 0), (b, 0.001)):
            nursery.start_soon(submit_later, engine, delay, answers)
    assert len(answers) == 2
    assert answers[0].id == answers[1].id
    assert [task.key for task in hub.tasks.values()] == ["same"]


async def submit_later(engine: Engine, delay: float, answers: list[Any]) -> None:
    await trio.sleep(delay)
    answers.append(await engine.submit("record", "x", key="same"))


async def test_an_engine_restarted_under_its_name_takes_its_tasks_back_at_once(
    autojump_clock, counting
) -> None:
    hub = SharedMemory()
    with trio.CancelScope() as killed:
        async with node(hub, "steady", counting, workers=1) as first:
            task = await first.submit("count", {"n": 1, "takes": 1})
            await until_running(first, [task], 1)
            killed.cancel()  # killed while running it: nothing released
    restarted_at = trio.current_time()
    async with node(hub, "steady", counting, workers=1) as again:
        with trio.fail_after(100):
            done = await again.wait(task.id)
        assert trio.current_time() - restarted_at < LEASE  # not waited out (mock clock)
    assert done.attempts == 2


async def test_long_tasks_spread_over_the_engines_with_idle_workers(
    autojump_clock, counting
) -> None:
    hub = SharedMemory()
    async with (
        node(hub, "small", counting, workers=2) as small,
        node(hub, "big", counting, workers=8),
    ):
        tasks = await small.submit_many(counts(10, takes=1000))
        await until_running(small, tasks, 10)  # none waits on a busy engine
        for task in tasks:
            await small.cancel(task.id)


class Flaky(SharedMemoryBackend):
    """Fails its next ``failures`` counts of unfinished tasks, and its next ``get_failures``
    reads of tasks, as a database that blips."""

    failures = 0
    get_failures = 0

    async def unfinished_count(self) -> int:
        if self.failures:
            self.failures -= 1
            raise BackendUnavailable("connection reset")
        return await super().unfinished_count()

    async def get(self, task_id: str) -> Any:
        if self.get_failures:
            self.get_failures -= 1
            raise BackendUnavailable("connection reset")
        return await super().get(task_id)

    async def get_many(self, ids: Any) -> Any:
        if self.get_failures:
            self.get_failures -= 1
            raise OSError("connection reset")
        return await super().get_many(ids)


async def test_a_failed_read_answers_that_request_and_nothing_restarts(
    autojump_clock, counting
) -> None:
    hub = SharedMemory()
    backend = Flaky(hub)
    async with node(hub, "n", counting, workers=1, store=backend) as engine:
        running = await engine.submit("count", {"n": 1, "takes": 5})
        await until_running(engine, [running], 1)
        await trio.sleep(2)  # past the admission count's age: the next submit reads it
        backend.failures = 1
        with pytest.raises(StoreUnavailable):
            await engine.submit("record", "refused")
        later = await engine.submit("record", "accepted")
        with trio.fail_after(60):
            assert (await engine.wait(later.id)).state is TaskState.COMPLETED
        with trio.fail_after(60):
            done = await engine.wait(running.id)
    assert done.attempts == 1  # ran once: the store did not crash and restart the tree


async def test_a_waiter_on_a_task_finished_elsewhere_is_answered_after_a_failed_read(
    autojump_clock, counting
) -> None:
    """The recheck of a task another engine finished fails once: it stays asked for, and the
    next batch (a lease renewal at the latest) answers the waiter."""
    hub = SharedMemory()
    backend = Flaky(hub)
    async with (
        node(hub, "front", counting, workers=0, store=backend) as front,
        node(hub, "back", counting, workers=1),
    ):
        task = await front.submit("count", {"n": 1, "takes": 5})
        async with trio.open_nursery() as nursery:
            waited: list[Task] = []

            async def wait() -> None:
                with trio.fail_after(60):
                    waited.append(await front.wait(task.id))

            nursery.start_soon(wait)
            await until_running(front, [task], 1)  # on "back"; the waiter asked first
            backend.get_failures = 1
        assert backend.get_failures == 0  # the recheck did fail once
        assert waited[0].state is TaskState.COMPLETED
        assert counting.runs[1] == 1  # type: ignore[attr-defined]


async def test_an_engine_stops_running_a_task_another_took_at_its_next_renewal(
    autojump_clock, counting
) -> None:
    """An engine that stalled past its lease learns at its next renewal that another engine
    took the task, and interrupts its own run (not only at the task's next write)."""
    interrupted: list[str] = []

    @counting.task("hold", timeout=1000.0)
    async def hold(ctx: TaskContext, payload: Any) -> Any:
        try:
            await trio.sleep(500)
        except trio.Cancelled:
            interrupted.append(ctx.task_id)
            raise

    hub = SharedMemory()
    async with node(hub, "a", counting, workers=1) as a:
        task = await a.submit("hold")
        await until_running(a, [task], 1)
        stalled = hub.leases[task.id]  # as if "a" had not renewed in time:
        hub.leases[task.id] = stalled._replace(until=trio.current_time() - 1)
        other = SharedMemoryBackend(hub)
        other.attach("b", lambda type_: LEASE)
        assert await other.reap() == 1
        [taken] = await other.claim(1, 0.0)
        assert taken.id == task.id
        await trio.sleep(LEASE)  # a renewal comes every third of it
        assert interrupted == [task.id]
        assert hub.leases[task.id].node == "b"


async def test_many_tasks_run_on_another_engine_are_waited_for_with_one_message(
    autojump_clock, counting
) -> None:
    hub = SharedMemory()
    async with (
        node(hub, "front", counting, workers=0) as front,
        node(hub, "back", counting, workers=2),
    ):
        tasks = await front.submit_many(
            [Submission("count", {"n": n, "takes": 1}) for n in range(20)]
        )
        ids = [task.id for task in tasks]
        done = await front.wait_many(ids)
        assert [task.result for task in done] == list(range(20))
        assert {task.worker.split("/")[0] for task in done if task.worker} == {"back"}
        seen = [task.id async for task in front.as_completed(ids[:5])]
        assert sorted(seen) == sorted(ids[:5])
