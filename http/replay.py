"""Resuming an event stream: what a client missed after its `Last-Event-ID`, from the tasks'
history (every task keeps each state it entered, when, on which worker, with the error).

The route subscribes to the live events first, then reads the replay, so nothing is lost in
between; a live event the replay already sent is skipped (`Replay.covers`). When the replay
cannot be whole, it ends with `event: reset` saying why: the client should reload what it
shows from the API. That happens when the id is not one of ours, when it is older than the
store's retention (finished tasks were purged), or when more than `REPLAY_LIMIT` tasks changed
since. Tasks deleted since are not replayed.
"""

from __future__ import annotations

import time

import attrs

from oncue.actors import Engine, Task, TaskEvent, TaskState

from .sse import EventFilter, EventKey, event_key, frame, parse_event_id, task_frame

REPLAY_LIMIT = 10_000  # tasks read for one resume (of each kind: unfinished, finished since)

Seen = tuple[str, TaskState, float]  # (task id, state, at): one transition


@attrs.frozen
class Replay:
    """The frames a resumed stream starts with, and what they covered."""

    frames: list[bytes] = attrs.field(factory=list)
    after: EventKey | None = None  # the client's resume point: nothing at or before it is sent
    sent: frozenset[Seen] = frozenset()

    def covers(self, event: TaskEvent) -> bool:
        """Whether the client has `event` already (before its resume point, or replayed)."""
        if self.after is None:
            return False
        return event_key(event) <= self.after or (event.task_id, event.state, event.at) in self.sent


async def start_replay(engine: Engine, wanted: EventFilter, last_event_id: str | None) -> Replay:
    """The replay after `last_event_id` (None: a fresh stream, nothing to replay)."""
    if last_event_id is None:
        return Replay()
    after = parse_event_id(last_event_id)
    if after is None:
        return Replay([reset(f"Last-Event-ID {last_event_id!r} is not an event id of oncue")])
    retention = engine.retention
    if retention is not None and after[0] < time.time() - retention:
        reason = f"Last-Event-ID is older than the store's retention ({retention:g}s)"
        return Replay([reset(reason)], after)
    tasks, complete = await engine.changed_since(after[0], owner=wanted.owner, limit=REPLAY_LIMIT)
    events = sorted(
        (event for task in tasks for event in transitions(task) if event_key(event) > after),
        key=event_key,
    )
    events = [event for event in events if wanted.matches(event)]
    frames = [task_frame(event) for event in events]
    if not complete:
        frames.append(reset(f"more than {REPLAY_LIMIT} tasks changed since Last-Event-ID"))
    sent = frozenset((event.task_id, event.state, event.at) for event in events)
    return Replay(frames, after, sent)


def transitions(task: Task) -> list[TaskEvent]:
    """The events `task`'s history records, as the store published them."""
    events = []
    attempts, worker, previous = 0, None, None
    for step in task.history:
        if step.state is TaskState.RUNNING:
            attempts += 1
            worker = step.worker
        elif step.state is TaskState.PENDING and previous is TaskState.FAILED:
            attempts, worker = 0, None  # retried by hand: a fresh set of attempts
        previous = step.state
        event = TaskEvent(
            task.id,
            task.type,
            step.state,
            step.at,
            attempts,
            worker,
            task.number,
            task.owner,
            step.error,
        )
        events.append(event)
    return events


def reset(reason: str) -> bytes:
    """`event: reset`: what the client shows may miss events; reload it from the API."""
    return frame("reset", {"reason": reason})
