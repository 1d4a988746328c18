"""Mailboxes and refs: tell, ask, try_tell, replies, timeouts, crashes and stopped actors."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest
import trio
import trio.testing

from oncue.actors import (
    Actor,
    ActorCrashed,
    ActorStopped,
    ChildSpec,
    Context,
    EventKind,
    LifecycleEvent,
    Mailbox,
    MailboxFull,
    open_supervisor,
)


class Boom(Exception):
    pass


class Echo(Actor):
    """Replies with the message; raises it if it is an exception; KeyError is an answer."""

    reply_errors = (KeyError,)

    def __init__(self, seen: list[Any] | None = None) -> None:
        self.seen = seen if seen is not None else []

    async def on_start(self, context: Context) -> None:
        self.incarnation = context.incarnation

    async def handle(self, message: Any) -> Any:
        self.seen.append((self.incarnation, message))
        if isinstance(message, BaseException):
            raise message
        return message


class Gated(Actor):
    """Takes one message, then waits on ``gate`` before replying to it."""

    def __init__(self, gate: trio.Event) -> None:
        self.gate = gate

    async def handle(self, message: Any) -> Any:
        await self.gate.wait()
        return message


class Deaf(Actor):
    """Signals readiness and never reads its mailbox."""

    async def run(self, context: Context) -> None:
        context.started()
        await trio.sleep_forever()


# -- the mailbox on its own --------------------------------------------------------------------


async def test_ask_is_answered_through_its_envelope() -> None:
    mailbox = Mailbox("/m", size=1)
    async with trio.open_nursery() as nursery:
        answers: list[Any] = []

        async def asker() -> None:
            answers.append(await mailbox.ref.ask("ping"))

        nursery.start_soon(asker)
        envelope = await mailbox.receive()
        assert envelope.is_ask
        assert envelope.message == "ping"
        envelope.reply("pong")
    assert answers == ["pong"]


async def test_tell_envelope_is_not_an_ask_and_replies_are_ignored() -> None:
    mailbox = Mailbox("/m", size=1)
    mailbox.ref.try_tell("hello")
    envelope = mailbox.receive_nowait()
    assert not envelope.is_ask
    envelope.reply("ignored")
    envelope.fail(Boom())
    with pytest.raises(trio.WouldBlock):
        mailbox.receive_nowait()


async def test_fail_in_flight_fails_taken_unanswered_asks_only() -> None:
    mailbox = Mailbox("/m", size=2)
    async with trio.open_nursery() as nursery:
        outcomes: dict[str, Any] = {}

        async def asker(message: str) -> None:
            try:
                outcomes[message] = await mailbox.ref.ask(message)
            except ActorCrashed as error:
                outcomes[message] = error

        nursery.start_soon(asker, "first")
        nursery.start_soon(asker, "second")
        await trio.testing.wait_all_tasks_blocked()
        answered = await mailbox.receive()
        answered.reply("ok")
        taken = await mailbox.receive()
        mailbox.fail_in_flight(lambda: ActorCrashed("/m", Boom("bang")))
    assert outcomes[answered.message] == "ok"
    assert isinstance(outcomes[taken.message], ActorCrashed)
    assert isinstance(outcomes[taken.message].error, Boom)


async def test_close_then_fail_queued_stops_queued_asks_and_refuses_new_messages() -> None:
    mailbox = Mailbox("/m", size=2)
    async with trio.open_nursery() as nursery:
        errors: list[BaseException] = []

        async def asker() -> None:
            with pytest.raises(ActorStopped) as info:
                await mailbox.ref.ask("queued")
            errors.append(info.value)

        nursery.start_soon(asker)
        await trio.testing.wait_all_tasks_blocked()
        mailbox.close()
        assert mailbox.closed
        mailbox.fail_queued()
    assert errors[0].path == "/m"  # type: ignore[attr-defined]
    with pytest.raises(ActorStopped):
        mailbox.ref.try_tell("late")
    with pytest.raises(ActorStopped):
        await mailbox.ref.tell("late")
    with pytest.raises(ActorStopped):
        await mailbox.ref.ask("late")


@pytest.mark.parametrize("size", [-1, 1.5, "3", None])
def test_mailbox_size_must_be_a_non_negative_int_or_inf(size: Any) -> None:
    with pytest.raises(ValueError, match="mailbox size"):
        Mailbox("/m", size=size)


def test_unbounded_mailbox_is_allowed() -> None:
    assert Mailbox("/m", size=math.inf).size == math.inf


# -- talking to a supervised actor -------------------------------------------------------------


async def test_tell_delivers_messages_in_order() -> None:
    seen: list[Any] = []
    spec = ChildSpec("echo", lambda: Echo(seen))
    async with open_supervisor([spec]):
        for n in range(3):
            await spec.ref.tell(n)
        assert await spec.ref.ask("last") == "last"
    assert [message for _, message in seen] == [0, 1, 2, "last"]


async def test_ref_is_valid_before_start_and_named_by_its_path() -> None:
    spec = ChildSpec("echo", Echo)
    ref = spec.ref
    async with open_supervisor([spec], name="app"):
        assert ref.path == "/app/echo"
        assert repr(ref) == "<ActorRef /app/echo>"
        assert await ref.ask(1) == 1


async def test_try_tell_raises_mailbox_full_instead_of_waiting() -> None:
    gate = trio.Event()
    spec = ChildSpec("gated", lambda: Gated(gate), mailbox_size=1)
    async with open_supervisor([spec]):
        spec.ref.try_tell("held")  # taken by the actor, which waits on the gate
        await trio.testing.wait_all_tasks_blocked()
        spec.ref.try_tell("queued")  # fills the one slot
        with pytest.raises(MailboxFull, match="/root/gated") as info:
            spec.ref.try_tell("refused")
        assert isinstance(info.value, trio.WouldBlock)
        gate.set()


async def test_tell_waits_for_room_when_the_mailbox_is_full() -> None:
    gate = trio.Event()
    spec = ChildSpec("gated", lambda: Gated(gate), mailbox_size=1)
    sent = []
    async with open_supervisor([spec]), trio.open_nursery() as nursery:
        spec.ref.try_tell("held")
        await trio.testing.wait_all_tasks_blocked()
        spec.ref.try_tell("queued")

        async def sender() -> None:
            await spec.ref.tell("waiting")
            sent.append("waiting")

        nursery.start_soon(sender)
        await trio.testing.wait_all_tasks_blocked()
        assert sent == []  # backpressure: the sender waits while the mailbox is full
        gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert sent == ["waiting"]


async def test_reply_error_reraises_in_the_asker_and_the_actor_lives_on() -> None:
    spec = ChildSpec("echo", Echo)
    events: list[LifecycleEvent] = []
    async with open_supervisor([spec], observer=events.append) as root:
        with pytest.raises(KeyError, match="missing"):
            await spec.ref.ask(KeyError("missing"))
        assert await spec.ref.ask("still here") == "still here"
        [child] = await root.children()
    assert child.restarts == 0
    assert child.last_error is None
    assert all(event.kind is not EventKind.CRASHED for event in events)


async def test_reply_error_from_a_tell_is_logged_and_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spec = ChildSpec("echo", Echo)
    async with open_supervisor([spec]):
        await spec.ref.tell(KeyError("nobody asked"))
        assert await spec.ref.ask("after") == "after"
    [record] = [r for r in caplog.records if "tell_refused" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "/root/echo" in record.getMessage()


async def test_an_ask_is_bounded_by_the_callers_cancel_scope(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = trio.Event()
    spec = ChildSpec("gated", lambda: Gated(gate))
    async with open_supervisor([spec]):
        start = trio.current_time()
        with pytest.raises(trio.TooSlowError), trio.fail_after(2):
            await spec.ref.ask("slow")
        assert trio.current_time() - start == pytest.approx(2)
        gate.set()
        with trio.fail_after(2):
            assert await spec.ref.ask("fast") == "fast"


async def test_ask_to_an_actor_that_crashes_raises_actor_crashed() -> None:
    spec = ChildSpec("echo", Echo)
    async with open_supervisor([spec]):
        with pytest.raises(ActorCrashed) as info:
            await spec.ref.ask(Boom("kaput"))
    assert info.value.path == "/root/echo"
    assert isinstance(info.value.error, Boom)
    assert "/root/echo" in str(info.value)
    assert "kaput" in str(info.value)


async def test_messages_queued_during_a_restart_reach_the_next_incarnation() -> None:
    seen: list[Any] = []
    restarting = trio.Event()
    resume = trio.Event()

    class SlowToRestart(Echo):
        async def on_start(self, context: Context) -> None:
            await super().on_start(context)
            if context.incarnation > 1:
                restarting.set()
                await resume.wait()

    spec = ChildSpec("echo", lambda: SlowToRestart(seen))
    async with open_supervisor([spec]):
        await spec.ref.tell(Boom("first life ends"))
        await restarting.wait()
        for n in range(3):
            await spec.ref.tell(n)
        resume.set()
        assert await spec.ref.ask("done") == "done"
    assert seen[1:] == [(2, 0), (2, 1), (2, 2), (2, "done")]


async def test_ask_queued_behind_a_crash_is_answered_by_the_next_incarnation() -> None:
    seen: list[Any] = []
    spec = ChildSpec("echo", lambda: Echo(seen))
    async with open_supervisor([spec]), trio.open_nursery() as nursery:
        answers: list[Any] = []

        async def ask_later() -> None:
            answers.append(await spec.ref.ask("queued"))

        await spec.ref.tell(Boom("crash"))
        nursery.start_soon(ask_later)
        await trio.testing.wait_all_tasks_blocked()
        assert answers == ["queued"]
    assert [incarnation for incarnation, _ in seen] == [1, 2]
    assert seen[1] == (2, "queued")


# -- stopped actors never hang a sender --------------------------------------------------------


async def test_sending_to_a_stopped_child_raises_actor_stopped() -> None:
    spec = ChildSpec("echo", Echo)
    async with open_supervisor([spec]) as root:
        await root.stop_child("echo")
        with pytest.raises(ActorStopped, match="/root/echo"):
            await spec.ref.tell("hello?")
        with pytest.raises(ActorStopped):
            spec.ref.try_tell("hello?")
        with pytest.raises(ActorStopped):
            await spec.ref.ask("hello?")


async def test_sending_after_the_tree_exits_raises_actor_stopped() -> None:
    spec = ChildSpec("echo", Echo)
    async with open_supervisor([spec]) as root:
        pass
    with pytest.raises(ActorStopped):
        await spec.ref.tell("anyone?")
    with pytest.raises(ActorStopped):
        await root.children()


async def test_sender_blocked_on_a_full_mailbox_gets_actor_stopped_when_it_closes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    spec = ChildSpec("deaf", Deaf, mailbox_size=1, shutdown=1)
    async with open_supervisor([spec]) as root, trio.open_nursery() as nursery:
        spec.ref.try_tell("fills the mailbox")
        outcome: list[BaseException] = []

        async def blocked_sender() -> None:
            with pytest.raises(ActorStopped) as info:
                await spec.ref.tell("waits for room")
            outcome.append(info.value)

        async def blocked_asker() -> None:
            with pytest.raises(ActorStopped) as info:
                await spec.ref.ask("waits for room too")
            outcome.append(info.value)

        nursery.start_soon(blocked_sender)
        nursery.start_soon(blocked_asker)
        await trio.testing.wait_all_tasks_blocked()
        await root.stop_child("deaf")
    assert len(outcome) == 2


async def test_queued_ask_fails_with_actor_stopped_when_its_actor_stops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    spec = ChildSpec("deaf", Deaf, shutdown=1)
    async with open_supervisor([spec]) as root, trio.open_nursery() as nursery:

        async def asker() -> None:
            with pytest.raises(ActorStopped):
                await spec.ref.ask("never read")

        nursery.start_soon(asker)
        await trio.testing.wait_all_tasks_blocked()
        await root.stop_child("deaf")


async def test_ask_held_by_an_actor_that_is_cancelled_fails_with_actor_stopped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = trio.Event()  # never set: the actor holds the ask until it is cancelled
    spec = ChildSpec("gated", lambda: Gated(gate), shutdown=1)
    async with open_supervisor([spec]) as root, trio.open_nursery() as nursery:

        async def asker() -> None:
            with pytest.raises(ActorStopped, match="stopped first"):
                await spec.ref.ask("held")

        nursery.start_soon(asker)
        await trio.testing.wait_all_tasks_blocked()
        await root.stop_child("gated")
