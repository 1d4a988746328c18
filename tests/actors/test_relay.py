"""The relay's payloads: other nodes' events reach this node's feed; its own are dropped."""

from __future__ import annotations

from typing import Any

from oncue.actors.engine.relay import Relay, payloads
from oncue.actors.engine.watch import Feed
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
