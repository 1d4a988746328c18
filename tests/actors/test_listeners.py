"""Listeners: a commit's events reach each subscriber as one list, and a subscriber more than
``capacity`` events behind is dropped with a notice after what fitted."""

from __future__ import annotations

import trio

from oncue.actors.engine.listeners import Subscriber
from oncue.actors.messages import SubscriptionEnded
from oncue.actors.task import TaskEvent, TaskState


def events(*numbers: int) -> list[TaskEvent]:
    return [
        TaskEvent(f"t-{n}", "echo", TaskState.PENDING, 1.0, 0, None, n, None, None) for n in numbers
    ]


def subscriber(capacity: int) -> tuple[Subscriber, trio.MemoryReceiveChannel[object]]:
    send, receive = trio.open_memory_channel[object](capacity + 1)
    return Subscriber(send, capacity), receive


def test_a_commit_s_events_go_as_one_item_and_taking_them_makes_room() -> None:
    follower, receive = subscriber(4)
    assert follower.offer(events(1, 2, 3))
    assert receive.statistics().current_buffer_used == 1
    assert follower.offer(events(4))  # 4 behind: at the capacity, not past it
    assert [e.number for e in receive.receive_nowait()] == [1, 2, 3]  # type: ignore[attr-defined]
    assert follower.offer(events(5, 6, 7))  # 1 + 3 behind now
    assert [len(receive.receive_nowait()) for _ in range(2)] == [1, 3]  # type: ignore[arg-type]


def test_past_the_capacity_what_fits_goes_then_the_notice() -> None:
    follower, receive = subscriber(3)
    assert follower.offer(events(1, 2))
    assert not follower.offer(events(3, 4, 5))
    assert [e.number for e in receive.receive_nowait()] == [1, 2]  # type: ignore[attr-defined]
    assert [e.number for e in receive.receive_nowait()] == [3]  # type: ignore[attr-defined]
    ended = receive.receive_nowait()
    assert isinstance(ended, SubscriptionEnded)
    assert ended.reason == "fell 3 events behind"
