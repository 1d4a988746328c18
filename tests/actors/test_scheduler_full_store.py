"""A Record the scheduler cannot send at once (the store's mailbox full) is sent later, in
order, never lost: not even when its waiting scope's timer expired while a message had already
woken it (the old code awaited the send under that cancelled scope; found by the session's
second reader). On a durable store a lost Record also left the worker unanswered for good."""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio
import trio.testing
from test_scheduler_core import job

from oncue.actors import Registry
from oncue.actors.engine.scheduler import Scheduler
from oncue.actors.messages import (
    LoadQueue,
    Record,
    RequestWork,
    SetPaused,
    Started,
    StartsRecorded,
    TasksReady,
)
from oncue.actors.runtime.actor import Actor
from oncue.actors.runtime.supervisor import ChildSpec
from oncue.actors.runtime.tree import open_supervisor


class SlowStore(Actor):
    """Answers LoadQueue; then takes one message and holds it until ``gate`` is set; answers
    a Record's token as the store does."""

    def __init__(self, seen: list[Any], gate: trio.Event, scheduler: Any) -> None:
        self.seen, self.gate, self.scheduler = seen, gate, scheduler

    async def handle(self, message: Any) -> Any:
        if isinstance(message, LoadQueue):
            return []
        self.seen.append(message)
        await self.gate.wait()
        if isinstance(message, Record) and message.confirm is not None:
            self.scheduler.ref.try_tell(StartsRecorded(message.confirm))
        return None


def started_in(seen: list[Any]) -> list[list[str]]:
    return [
        c.ids for m in seen if isinstance(m, Record) for c in m.changes if isinstance(c, Started)
    ]


@pytest.mark.parametrize("woken_first", [False, True])
async def test_a_start_delayed_record_is_never_lost(
    mock_clock: trio.testing.MockClock, woken_first: bool
) -> None:
    seen: list[Any] = []
    gate = trio.Event()
    sched: ChildSpec
    store = ChildSpec("store", lambda: SlowStore(seen, gate, sched), mailbox_size=1)
    sched = ChildSpec(
        "scheduler",
        lambda: Scheduler(store.ref, Registry(), random.Random(0), linger=0.0),
        mailbox_size=float("inf"),
    )
    answers: list[Any] = []
    async with open_supervisor([store, sched]), trio.open_nursery() as nursery:

        async def ask() -> None:
            answers.append(await sched.ref.ask(RequestWork("w1", store.ref, [], True)))

        nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        sched.ref.try_tell(TasksReady([job("a")]))
        await trio.testing.wait_all_tasks_blocked()
        assert [j.id for j in answers[0]] == ["a"]  # handed out; its Started waits START_DELAY
        store.ref.try_tell("filler-1")  # taken: the store holds it at the gate
        await trio.testing.wait_all_tasks_blocked()
        store.ref.try_tell("filler-2")  # the store's one slot: full
        mock_clock.jump(1.0)  # past the Started's flush timer
        if not woken_first:  # control: the timer fires while the scheduler sleeps
            await trio.testing.wait_all_tasks_blocked()
        sched.ref.try_tell(SetPaused(False))  # woken_first: before the timer reached it
        await trio.testing.wait_all_tasks_blocked()
        gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert started_in(seen) == [["a"]], f"the Started of a never reached the store: {seen}"
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("woken_first", [False, True])
async def test_a_durable_stores_worker_gets_its_work_even_if_the_store_was_full(
    mock_clock: trio.testing.MockClock, woken_first: bool
) -> None:
    seen: list[Any] = []
    gate = trio.Event()
    sched: ChildSpec
    store = ChildSpec("store", lambda: SlowStore(seen, gate, sched), mailbox_size=1)
    sched = ChildSpec(  # retention: a purge timer, the deadline the scheduler sleeps towards
        "scheduler",
        lambda: Scheduler(
            store.ref, Registry(), random.Random(0), retention=10.0, confirm_starts=True, linger=0.0
        ),
        mailbox_size=float("inf"),
    )
    answers: list[Any] = []
    async with open_supervisor([store, sched]), trio.open_nursery() as nursery:

        async def ask() -> None:
            answers.append(await sched.ref.ask(RequestWork("w1", store.ref, [], True)))

        nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        store.ref.try_tell("filler-1")
        await trio.testing.wait_all_tasks_blocked()
        store.ref.try_tell("filler-2")  # full
        mock_clock.jump(5.0)  # past the purge timer (1 s)
        if not woken_first:
            await trio.testing.wait_all_tasks_blocked()
        sched.ref.try_tell(TasksReady([job("a")]))
        await trio.testing.wait_all_tasks_blocked()
        gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert started_in(seen) == [["a"]], f"no Record with the Started of a: {seen}"
        assert [[j.id for j in jobs] for jobs in answers] == [["a"]], "the worker waits for ever"
        nursery.cancel_scope.cancel()
