"""Waiters on many tasks at once: what one WaitMany or WatchMany leaves with the store.

The store's Listeners keep, for each unfinished task somebody waits on, a list of waiters and
call ``reply(task)`` on each when the task's end is committed. A plain ``wait()`` is its ask's
Envelope; the two kinds here stand in for one message naming many tasks, so waiting on 10,000
tasks is one message and one waiter, not 10,000 asks.
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

import trio

from ..runtime.mailbox import Envelope
from ..task import Task


class Waiter(Protocol):
    """What the Listeners call on whoever waits for a task (an Envelope is one)."""

    @property
    def abandoned(self) -> bool: ...

    def drop(self) -> None: ...

    def reply(self, value: Any = None) -> None: ...


class Gather:
    """A WaitMany: answers its ask with every task, in the order asked, once the last is
    finished."""

    def __init__(self, envelope: Envelope, ids: tuple[str, ...], found: dict[str, Task]) -> None:
        self._envelope = envelope
        self._ids = ids
        self._found = found  # finished already, by id
        self._missing = {task_id for task_id in ids if task_id not in found}

    @property
    def missing(self) -> set[str]:
        """The ids still unfinished (the store registers the gather for each)."""
        return self._missing

    @property
    def abandoned(self) -> bool:
        return self._envelope.abandoned

    def drop(self) -> None:
        self._envelope.drop()

    def reply(self, value: Any = None) -> None:
        """One of the tasks finished (``value`` is its snapshot); answer once all have."""
        if self._envelope.abandoned:  # the asker gave up: keep nothing for it
            self._found.clear()
            return
        task: Task = value
        self._found[task.id] = task
        self._missing.discard(task.id)
        if not self._missing:
            self._envelope.reply([self._found[task_id] for task_id in self._ids])


class Watch:
    """A WatchMany: sends each task into the watcher's channel as it finishes. The channel
    has room for every task it watches, so a send never waits; a closed one is given up."""

    def __init__(self, channel: trio.MemorySendChannel[Any]) -> None:
        self._channel = channel
        self._gone = False

    @property
    def abandoned(self) -> bool:
        return self._gone

    def drop(self) -> None:
        self.close()

    def reply(self, value: Any = None) -> None:
        try:
            self._channel.send_nowait(value)
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.WouldBlock):
            self.close()  # the watcher stopped reading (WouldBlock: it sent a repeat id)

    def close(self) -> None:
        """End the watcher's stream (it asks again for what it still waits on, if anything)."""
        self._gone = True
        with contextlib.suppress(trio.ClosedResourceError):
            self._channel.close()
