"""The event hub (hub.py): one subscription, each event encoded once, deliveries paced."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import trio
import trio.testing

from oncue.actors import Engine, Submission, TaskEvent, TaskState
from oncue.http import hub as hub_module
from oncue.http.auth import Principal
from oncue.http.hub import LINGER, Delivery, EventHub, Listener
from oncue.http.sse import EventFilter

ADMIN = Principal("root", admin=True)


def deliveries(listener: Listener) -> list[Delivery]:
    found = []
    while True:
        try:
            item = listener.receive.receive_nowait()
        except trio.WouldBlock:
            return found
        assert isinstance(item, Delivery)
        found.append(item)


async def test_streams_wanting_everything_share_one_encoding(autojump_clock, engine) -> None:
    seen: list[TaskEvent] = []
    hub = EventHub(engine, seen.extend)
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        first = await hub.join(EventFilter.parse({}, ADMIN), 100)
        second = await hub.join(EventFilter.parse({}, ADMIN), 100)
        only_failed = await hub.join(EventFilter.parse({"status": "failed"}, ADMIN), 100)
        await engine.submit_many([Submission("double", n) for n in range(3)])
        await engine.wait_idle()
        await trio.sleep(LINGER)
        await trio.testing.wait_all_tasks_blocked()  # the pump has handed out all it took
        got_first, got_second = deliveries(first), deliveries(second)
        assert [a.data is b.data for a, b in zip(got_first, got_second, strict=True)] == [
            True
        ] * len(got_first)  # the same bytes object: no per-stream encoding
        events = [event for delivery in got_first for event in delivery.events or ()]
        assert len(events) == 9  # pending, running, completed each
        assert b"".join(d.data for d in got_first).count(b"event: task") == 9
        assert deliveries(only_failed) == []
        assert seen == events  # the task log saw the same batches
        nursery.cancel_scope.cancel()


async def test_under_load_a_stream_gets_one_delivery_a_linger(autojump_clock, engine) -> None:
    hub = EventHub(engine)
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        listener = await hub.join(EventFilter.parse({}, ADMIN), 10_000)
        started = trio.current_time()
        for number in range(20):  # a store commit every LINGER / 4
            await engine.submit("echo", number)
            await trio.sleep(LINGER / 4)
        await engine.wait_idle()
        await trio.sleep(LINGER)
        await trio.testing.wait_all_tasks_blocked()
        elapsed = trio.current_time() - started
        got = deliveries(listener)
        assert sum(len(delivery.events or ()) for delivery in got) == 60
        assert len(got) <= elapsed / LINGER + 1  # not one per commit (there were 20+)
        nursery.cancel_scope.cancel()


async def test_a_new_stream_gets_nothing_published_before_it_joined(
    autojump_clock, engine: Engine
) -> None:
    hub = EventHub(engine)
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        early = await hub.join(EventFilter.parse({}, ADMIN), 100)
        await engine.submit("echo", 1)  # the hub delivers it at once (it was quiet)
        await trio.testing.wait_all_tasks_blocked()
        before = await engine.submit("echo", 2)  # lingers in the hub: just delivered
        late = await hub.join(EventFilter.parse({}, ADMIN), 100)
        after = await engine.submit("echo", 3)
        await engine.wait_idle()
        await trio.sleep(LINGER)
        await trio.testing.wait_all_tasks_blocked()  # the pump has handed out all it took
        late_seen = {(e.task_id, e.state) for d in deliveries(late) for e in d.events or ()}
        early_seen = {(e.task_id, e.state) for d in deliveries(early) for e in d.events or ()}
        assert (before.id, TaskState.PENDING) in early_seen
        assert (before.id, TaskState.PENDING) not in late_seen  # published before it joined
        assert (before.id, TaskState.COMPLETED) in late_seen  # after
        assert (after.id, TaskState.PENDING) in late_seen
        nursery.cancel_scope.cancel()


async def test_the_hub_takes_all_that_arrived_in_a_linger_past_a_batch(
    autojump_clock, engine: Engine, monkeypatch
) -> None:
    """However many events a linger brings, they all go out after it (BATCH at a time): the
    hub keeps up at any rate instead of falling behind until the engine drops it."""
    monkeypatch.setattr(hub_module, "BATCH", 7)
    seen: list[TaskEvent] = []
    hub = EventHub(engine, seen.extend)
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        listener = await hub.join(EventFilter.parse({}, ADMIN), 1000)
        await engine.submit("echo", 0)  # delivered at once: the hub was quiet
        await trio.testing.wait_all_tasks_blocked()
        await engine.submit_many([Submission("echo", n) for n in range(1, 11)])
        await engine.wait_idle()  # all of it within one linger (the clock jumps only idle)
        await trio.sleep(LINGER)
        await trio.testing.wait_all_tasks_blocked()
        assert len(seen) == 33  # pending, running, completed: 11 tasks
        assert sum(len(delivery.events or ()) for delivery in deliveries(listener)) == 33
        nursery.cancel_scope.cancel()


class Subscriptions:
    """An engine whose event subscriptions are counted while open (the rest is the engine's)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.open = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def events(self, capacity: int) -> Any:
        return self._counted(self._engine.events(capacity))

    @contextlib.asynccontextmanager
    async def _counted(self, stream: Any) -> AsyncIterator[Any]:
        async with stream as entered:
            self.open += 1
            try:
                yield entered
            finally:
                self.open -= 1


async def test_the_hub_subscribes_only_while_a_stream_is_open(
    autojump_clock, engine: Engine
) -> None:
    """With no stream and no task log the store builds no events at all: the hub holds no
    subscription until a stream joins, and lets go when the last one leaves."""
    spy = Subscriptions(engine)
    hub = EventHub(spy)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        await engine.submit("echo", 0)
        await trio.testing.wait_all_tasks_blocked()
        assert spy.open == 0
        first = await hub.join(EventFilter.parse({}, ADMIN), 100)
        assert spy.open == 1
        second = await hub.join(EventFilter.parse({}, ADMIN), 100)
        hub.leave(first)
        task = await engine.submit("echo", 1)
        await engine.wait_idle()
        await trio.sleep(LINGER)
        await trio.testing.wait_all_tasks_blocked()
        assert spy.open == 1  # one stream is still open
        got = [(e.task_id, e.state) for d in deliveries(second) for e in d.events or ()]
        assert got == [(task.id, state) for state in ("pending", "running", "completed")]
        hub.leave(second)
        await trio.testing.wait_all_tasks_blocked()
        assert spy.open == 0
        third = await hub.join(EventFilter.parse({}, ADMIN), 100)  # subscribes again
        later = await engine.submit("echo", 2)
        await engine.wait_idle()
        await trio.sleep(LINGER)
        await trio.testing.wait_all_tasks_blocked()
        assert [e.task_id for d in deliveries(third) for e in d.events or ()] == [later.id] * 3
        nursery.cancel_scope.cancel()


async def test_a_stream_joining_as_the_last_one_leaves_misses_nothing(
    autojump_clock, engine: Engine
) -> None:
    spy = Subscriptions(engine)
    hub = EventHub(spy)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        for number in range(3):
            leaving = await hub.join(EventFilter.parse({}, ADMIN), 100)
            hub.leave(leaving)  # the hub is told to let go: it has not yet
            joined = await hub.join(EventFilter.parse({}, ADMIN), 100)
            task = await engine.submit("echo", number)
            await engine.wait_idle()
            await trio.sleep(LINGER)
            await trio.testing.wait_all_tasks_blocked()
            assert [e.task_id for d in deliveries(joined) for e in d.events or ()] == [task.id] * 3
            hub.leave(joined)
            await trio.testing.wait_all_tasks_blocked()
            assert spy.open == 0
        nursery.cancel_scope.cancel()


async def test_the_task_log_keeps_the_hub_subscribed(autojump_clock, engine: Engine) -> None:
    logged: list[TaskEvent] = []
    spy = Subscriptions(engine)
    hub = EventHub(spy, logged.extend)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        assert spy.open == 1
        task = await engine.submit("echo", 0)
        await engine.wait_idle()
        await trio.sleep(LINGER)
        await trio.testing.wait_all_tasks_blocked()
        assert [(e.task_id, e.state) for e in logged] == [
            (task.id, state) for state in ("pending", "running", "completed")
        ]
        nursery.cancel_scope.cancel()


async def test_streams_end_when_the_engine_stops() -> None:
    from oncue.actors import open_engine

    async with trio.open_nursery() as nursery:
        async with open_engine(workers=1) as engine:
            hub = EventHub(engine)
            await nursery.start(hub.run)
            listener = await hub.join(EventFilter.parse({}, ADMIN), 100)
        ended = await listener.receive.receive()
        assert ended == "the engine stopped; reconnect with Last-Event-ID"
        late = await hub.join(EventFilter.parse({}, ADMIN), 100)  # the hub has returned
        assert await late.receive.receive() == "the engine stopped"


async def test_a_subscribe_the_store_refuses_ends_the_waiting_stream_and_the_hub_carries_on(
    autojump_clock, engine: Engine
) -> None:
    """During an outage the store answers the subscribe 'unavailable': the stream that
    waited for it is ended (its client reconnects), and a later one is served."""
    from oncue.actors import StoreUnavailable

    spy = Subscriptions(engine)
    refusals = [StoreUnavailable(OSError("injected: the disk is gone"))]

    def events(capacity: int) -> Any:
        if refusals:
            raise refusals.pop()
        return Subscriptions.events(spy, capacity)

    spy.events = events  # type: ignore[method-assign]
    hub = EventHub(spy)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        refused = await hub.join(EventFilter.parse({}, ADMIN), 100)
        ended = await refused.receive.receive()
        assert isinstance(ended, str)
        assert ended.startswith("the store did not take the subscription")
        served = await hub.join(EventFilter.parse({}, ADMIN), 100)
        task = await engine.submit("echo", 1)
        await engine.wait_idle()
        await trio.sleep(LINGER)
        await trio.testing.wait_all_tasks_blocked()
        assert [e.task_id for d in deliveries(served) for e in d.events or ()] == [task.id] * 3
        nursery.cancel_scope.cancel()


async def test_a_stream_joining_after_the_engine_stopped_while_the_hub_idled_is_ended() -> None:
    from oncue.actors import open_engine

    async with trio.open_nursery() as nursery:
        async with open_engine(workers=1) as engine:
            hub = EventHub(engine)
            await nursery.start(hub.run)  # idle: no stream, no log
        with trio.fail_after(5):
            late = await hub.join(EventFilter.parse({}, ADMIN), 100)
            assert (
                await late.receive.receive() == "the engine stopped; reconnect with Last-Event-ID"
            )


async def test_a_hub_run_again_serves_again(autojump_clock, engine: Engine) -> None:
    """An app served twice (two lifespans) runs its hub twice: the second starts afresh."""
    hub = EventHub(engine)
    for number in range(2):
        async with trio.open_nursery() as nursery:
            await nursery.start(hub.run)
            listener = await hub.join(EventFilter.parse({}, ADMIN), 100)
            task = await engine.submit("echo", number)
            await engine.wait_idle()
            await trio.sleep(LINGER)
            await trio.testing.wait_all_tasks_blocked()
            assert [e.task_id for d in deliveries(listener) for e in d.events or ()] == [
                task.id
            ] * 3
            nursery.cancel_scope.cancel()
