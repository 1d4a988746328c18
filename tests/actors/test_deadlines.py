"""Asks bounded by one sweeper (runtime/deadlines.py) instead of a cancel scope each."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from oncue.actors.runtime.deadlines import SWEEP_EVERY, AskDeadlines, AskTimedOut
from oncue.actors.runtime.mailbox import Mailbox


async def answer_all(mailbox: Mailbox) -> None:
    async for envelope in mailbox:
        envelope.reply(envelope.message * 2)


async def test_an_unanswered_ask_fails_at_its_deadline_and_is_abandoned(autojump_clock) -> None:
    deadlines = AskDeadlines(5.0)
    mailbox = Mailbox("silent")
    async with trio.open_nursery() as nursery:
        await nursery.start(deadlines.run)
        began = trio.current_time()
        with deadlines.bound(), pytest.raises(AskTimedOut, match="within 5s"):
            await mailbox.ref.ask(1)
        assert trio.current_time() - began == pytest.approx(5.0)
        envelope = mailbox.receive_nowait()
        assert envelope.abandoned  # the actor may drop it, as a cancelled ask's
        nursery.cancel_scope.cancel()


async def test_answered_asks_return_and_are_forgotten(autojump_clock) -> None:
    deadlines = AskDeadlines(5.0)
    mailbox = Mailbox("doubler")
    async with trio.open_nursery() as nursery:
        await nursery.start(deadlines.run)
        nursery.start_soon(answer_all, mailbox)
        with deadlines.bound():
            assert [await mailbox.ref.ask(n) for n in range(100)] == [n * 2 for n in range(100)]
        await trio.sleep(SWEEP_EVERY)
        await trio.testing.wait_all_tasks_blocked()
        assert len(deadlines._due) == 0
        await trio.sleep(10)  # long past every deadline: nothing fails late
        nursery.cancel_scope.cancel()


async def test_only_asks_inside_the_block_are_bounded(autojump_clock) -> None:
    deadlines = AskDeadlines(1.0)
    mailbox = Mailbox("slow")

    async def answer_late() -> None:
        envelope = await mailbox.receive()
        await trio.sleep(3)
        envelope.reply("late")

    async with trio.open_nursery() as nursery:
        await nursery.start(deadlines.run)
        nursery.start_soon(answer_late)
        assert await mailbox.ref.ask("unbounded") == "late"
        nursery.cancel_scope.cancel()


async def test_waiting_for_room_in_a_full_mailbox_is_bounded_too(autojump_clock) -> None:
    deadlines = AskDeadlines(2.0)
    mailbox = Mailbox("full", size=1)
    mailbox.ref.try_tell("filler")
    async with trio.open_nursery() as nursery:
        await nursery.start(deadlines.run)
        began = trio.current_time()
        with deadlines.bound(), pytest.raises(AskTimedOut):
            await mailbox.ref.ask(1)
        assert trio.current_time() - began == pytest.approx(2.0)
        nursery.cancel_scope.cancel()


def test_a_bound_needs_the_sweeper_running() -> None:
    with pytest.raises(RuntimeError, match="start it in a nursery"):
        AskDeadlines(1.0).bound()


async def test_a_late_answer_to_a_timed_out_ask_leaves_nothing_in_flight(autojump_clock) -> None:
    deadlines = AskDeadlines(1.0)
    mailbox = Mailbox("late")
    async with trio.open_nursery() as nursery:
        await nursery.start(deadlines.run)
        with deadlines.bound(), pytest.raises(AskTimedOut):
            await mailbox.ref.ask(1)
        envelope = await mailbox.receive()  # the actor takes it after its asker gave up
        assert mailbox.statistics().in_flight == 1
        envelope.reply(2)
        assert mailbox.statistics().in_flight == 0
        nursery.cancel_scope.cancel()


async def test_a_deadline_under_the_sweep_interval_fires_on_time(autojump_clock) -> None:
    deadlines = AskDeadlines(0.2)
    mailbox = Mailbox("silent")
    async with trio.open_nursery() as nursery:
        await nursery.start(deadlines.run)
        await trio.sleep(0.7)  # the sweeper idles with nothing due
        began = trio.current_time()
        with deadlines.bound(), pytest.raises(AskTimedOut):
            await mailbox.ref.ask(1)
        assert trio.current_time() - began == pytest.approx(0.2)
        nursery.cancel_scope.cancel()


async def test_asks_waiting_when_the_sweeper_stops_fail_at_once(autojump_clock) -> None:
    deadlines = AskDeadlines(60.0)
    mailbox = Mailbox("silent")
    failed: list[BaseException] = []

    async def ask() -> None:
        with deadlines.bound():
            try:
                await mailbox.ref.ask(1)
            except AskTimedOut as error:
                failed.append(error)

    async with trio.open_nursery() as outer:
        async with trio.open_nursery() as sweeping:
            await sweeping.start(deadlines.run)
            outer.start_soon(ask)
            await trio.testing.wait_all_tasks_blocked()
            sweeping.cancel_scope.cancel()  # the app's lifespan ends
        await trio.testing.wait_all_tasks_blocked()
        assert len(failed) == 1
        assert not deadlines.running


async def test_the_answer_is_not_kept_by_the_sweeper(autojump_clock) -> None:
    deadlines = AskDeadlines(5.0)
    mailbox = Mailbox("doubler")
    async with trio.open_nursery() as nursery:
        await nursery.start(deadlines.run)
        nursery.start_soon(answer_all, mailbox)
        with deadlines.bound():
            assert await mailbox.ref.ask(21) == 42
        assert [reply.value for _, reply in deadlines._due] == [None]
        nursery.cancel_scope.cancel()
