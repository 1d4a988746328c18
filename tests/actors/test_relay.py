"""The relay's payloads: other nodes' events reach this node's feed; its own are dropped."""

from __future__ import annotations

import json
from typing import Any

import attrs
import trio

from oncue.actors.engine.relay import PAYLOAD_BYTES, Relay, decode, payloads
from oncue.actors.engine.watch import Feed
from oncue.actors.messages import SubscriptionEnded
from oncue.actors.task import TaskEvent, TaskState


def event(number: int) -> TaskEvent:
    return TaskEvent(f"t-{number}", "echo", TaskState.RUNNING, 1.5, 1, "w", number, None, None)


def relay_of(node: str) -> tuple[Relay, Any]:
    feed = Feed()
    relay = Relay(None, None, feed, node)  # type: ignore[arg-type]  # only _deliver is used
    return relay, feed.subscribe(100)


def test_other_nodes_events_reach_the_feed_and_our_own_do_not() -> None:
    relay, heard = relay_of('node "a"')
    for payload in payloads('node "a"', [event(1), event(2)]):
        relay._deliver(payload)
    for payload in payloads('node "a"x', [event(3)]) + payloads("b", [event(4)]):
        relay._deliver(payload)
    assert [heard.receive_nowait().number for _ in range(2)] == [3, 4]
    assert heard.statistics().current_buffer_used == 0


def test_a_payload_not_ours_to_understand_is_logged(caplog) -> None:
    relay, heard = relay_of("a")
    relay._deliver("[1, 2")
    assert heard.statistics().current_buffer_used == 0
    assert [record.msg for record in caplog.records] == ["relay.bad_payload"]


def test_payloads_hold_every_event_in_order_each_within_the_bound() -> None:
    events = [event(number) for number in range(500)]
    chunks = payloads("node-1", events)
    assert len(chunks) > 1
    assert all(len(chunk) <= PAYLOAD_BYTES for chunk in chunks)
    heard = [item for chunk in chunks for item in json.loads(chunk)[1:]]
    assert [decode(item) for item in heard] == events
    assert {json.loads(chunk)[0] for chunk in chunks} == {"node-1"}
    assert payloads("node-1", []) == []


def test_an_event_bigger_than_the_bound_goes_alone() -> None:
    big = attrs.evolve(event(1), error="x" * PAYLOAD_BYTES)
    chunks = payloads("n", [event(0), big, event(2)])
    assert [[item[0] for item in json.loads(chunk)[1:]] for chunk in chunks] == [
        ["t-0"],
        ["t-1"],
        ["t-2"],
    ]


class Channel:
    """A backend's event channel as the relay sees it: who else listens, what was published."""

    def __init__(self, listening: bool) -> None:
        self.listening = listening
        self.published: list[str] = []

    async def others_listening(self) -> bool:
        return self.listening

    async def publish_events(self, payloads: list[str]) -> None:
        self.published += payloads


async def test_events_are_published_only_while_another_node_listens() -> None:
    for listening in (False, True):
        backend = Channel(listening)
        relay = Relay(backend, None, Feed(), "a")  # type: ignore[arg-type]
        send, receive = trio.open_memory_channel[Any](10)
        send.send_nowait([event(1)])  # the store sends a commit's events as one list
        send.send_nowait(SubscriptionEnded("dropped"))
        await relay._publish_from(receive)  # returns at the end of the subscription
        assert backend.published == (payloads("a", [event(1)]) if listening else [])
