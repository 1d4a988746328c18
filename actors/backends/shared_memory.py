"""Several engines of one process sharing one in-memory store: the SharedBackend reference.

``SharedMemory`` (shared_memory_hub.py) plays the database; each engine gets a
``SharedMemoryBackend`` on it, which holds one node's rules: what its commits may change,
its claims and leases, and its notices. Used by the tests of many nodes; the PostgreSQL and
Redis backends implement the same contract (see SharedBackend in base.py).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import trio

from ..cores.record import TaskRecord
from ..task import TaskState
from .base import Notice
from .shared_memory_hub import Lease, SharedMemory, copy_record

__all__ = ["SharedMemory", "SharedMemoryBackend"]

NUMBER_BLOCK = 1024  # task numbers a node reserves at a time


class SharedMemoryBackend:
    """One engine's view of a SharedMemory (durable: the hub outlives each engine on it)."""

    durable = True
    shared = True

    def __init__(self, hub: SharedMemory) -> None:
        self.hub = hub
        self.node = ""
        self._held: set[str] = set()  # what this node's store holds: renew() renews these
        self._lease_for: Callable[[str], float] = lambda name: 30.0
        self._runs: frozenset[str] | None = None  # the types this node claims (None: any)

    def attach(
        self,
        node: str,
        lease_for: Callable[[str], float],
        runs: Collection[str] | None = None,
    ) -> None:
        self.node = node
        self._lease_for = lease_for
        self._runs = None if runs is None else frozenset(runs)

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def _owned(self) -> list[str]:
        return [task_id for task_id, lease in self.hub.leases.items() if lease.node == self.node]

    async def load_unfinished(self) -> list[TaskRecord]:
        tasks = self.hub.tasks
        owned = [tasks[task_id] for task_id in self._owned()]
        self._held = {record.id for record in owned}
        return sorted((copy_record(r) for r in owned), key=lambda record: record.number)

    async def last_number(self) -> int:
        return 0

    async def reserve_numbers(self) -> range:
        first = self.hub.next_number
        self.hub.next_number += NUMBER_BLOCK
        return range(first, first + NUMBER_BLOCK)

    async def commit(
        self, changed: Collection[TaskRecord], deleted: Collection[str]
    ) -> Collection[str]:
        hub = self.hub
        lost: list[str] = []
        finished: list[str] = []
        cancelled: list[str] = []
        ready = False
        for record in changed:
            stored = hub.tasks.get(record.id)
            if stored is None and record.key is not None and self._key_taken(record):
                lost.append(record.id)  # another node's task took the key meanwhile
                continue
            if stored is None and record.node is not None and record.node == self.node:
                seconds = self._lease_for(record.type)  # kept by the node it was submitted to
                hub.leases[record.id] = Lease(self.node, trio.current_time() + seconds, seconds)
            elif stored is None:
                ready = ready or record.state in (TaskState.PENDING, TaskState.RETRYING)
            elif record.node is not None and record.node == self.node:
                lease = hub.leases.get(record.id)
                if lease is None or lease.node != self.node:
                    lost.append(record.id)
                    continue
                if record.state.finished:
                    del hub.leases[record.id]
            elif (record.state is TaskState.CANCELLED and not stored.state.finished) or (
                record.state is TaskState.PENDING and stored.state is TaskState.FAILED
            ):
                if hub.leases.pop(record.id, None) is not None:
                    cancelled.append(record.id)
                ready = ready or record.state is TaskState.PENDING
            else:
                lost.append(record.id)
                continue
            copy = copy_record(record)
            if record.state.finished or record.node != self.node:
                copy.node = None
                hub.leases.pop(record.id, None)
            if record.state.finished and (stored is None or not stored.state.finished):
                finished.append(record.id)
            hub.tasks[record.id] = copy
        for record in changed:
            if record.node == self.node and not record.state.finished and record.id not in lost:
                self._held.add(record.id)
            else:
                self._held.discard(record.id)
        for task_id in deleted:
            stored = hub.tasks.get(task_id)
            if stored is not None and stored.state.finished:
                del hub.tasks[task_id]
        if ready:
            hub.publish(self.node, Notice("ready"))
        if cancelled:
            hub.publish(self.node, Notice("cancelled", tuple(cancelled)))
        if finished:
            hub.publish(self.node, Notice("finished", tuple(finished)))
        return lost

    def _key_taken(self, record: TaskRecord) -> bool:
        return any(t.key == record.key and t.id != record.id for t in self.hub.tasks.values())

    async def claim(self, limit: int, within: float) -> list[TaskRecord]:
        hub = self.hub
        now = trio.current_time()
        due = hub.wall() + within
        runs = self._runs
        candidates = [
            record
            for record in hub.tasks.values()
            if record.state in (TaskState.PENDING, TaskState.RETRYING)
            and (runs is None or record.type in runs)
            and (record.run_at is None or record.run_at <= due)
            and (record.id not in hub.leases or hub.leases[record.id].until < now)
        ]
        candidates.sort(key=lambda record: (-record.priority, record.number))
        claimed = []
        for record in candidates[:limit]:
            seconds = self._lease_for(record.type)
            hub.leases[record.id] = Lease(self.node, now + seconds, seconds)
            record.node = self.node
            claimed.append(copy_record(record))
        self._held.update(record.id for record in claimed)
        return claimed

    async def renew(self) -> Collection[str]:
        leases = self.hub.leases
        now = trio.current_time()
        lost = []
        for task_id in self._held:
            lease = leases.get(task_id)
            if lease is not None and lease.node == self.node:
                leases[task_id] = lease._replace(until=now + lease.seconds)
            else:
                lost.append(task_id)
        self._held.difference_update(lost)
        self.hub.release(self.node, [id_ for id_ in self._owned() if id_ not in self._held])
        return lost

    async def reap(self) -> int:
        now = trio.current_time()
        expired = [task_id for task_id, lease in self.hub.leases.items() if lease.until < now]
        return self.hub.release(self.node, expired)

    async def release(self) -> int:
        self._held.clear()
        return self.hub.release(self.node, self._owned())

    async def unfinished_count(self) -> int:
        return sum(1 for record in self.hub.tasks.values() if not record.state.finished)

    async def queued_by_priority(self) -> dict[int, int]:
        # a scan: the reference for tests, where a database would read an index or a count
        queued: dict[int, int] = {}
        for record in self.hub.tasks.values():
            if record.state is TaskState.PENDING or record.state is TaskState.RETRYING:
                queued[record.priority] = queued.get(record.priority, 0) + 1
        return queued

    async def listen(self, deliver: Callable[[Notice], None]) -> None:
        listener = (self.node, deliver)
        self.hub.listeners.append(listener)
        try:
            deliver(Notice("listening"))
            await trio.sleep_forever()
        finally:
            self.hub.listeners.remove(listener)

    async def publish_events(self, payloads: Sequence[str]) -> None:
        for deliver in list(self.hub.event_listeners):
            for payload in payloads:
                deliver(payload)

    async def others_listening(self) -> bool:
        return True  # in process: publishing costs nothing worth saving

    async def listen_events(
        self,
        deliver: Callable[[str], None],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        self.hub.event_listeners.append(deliver)
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            self.hub.event_listeners.remove(deliver)

    # Reads: the hub answers them, with copies

    async def get(self, task_id: str) -> TaskRecord | None:
        return self.hub.get(task_id)

    async def get_many(self, ids: Sequence[str]) -> list[TaskRecord]:
        return self.hub.get_many(ids)

    async def get_by_number(self, number: int) -> TaskRecord | None:
        return self.hub.find(lambda record: record.number == number)

    async def find_key(self, key: str) -> TaskRecord | None:
        return self.hub.find(lambda record: record.key == key)

    async def query(
        self,
        state: TaskState | None,
        type: str | None,
        limit: int,
        before: int | None,
        owner: str | None = None,
    ) -> list[TaskRecord]:
        return self.hub.query(state, type, limit, before, owner)

    async def finished_since(
        self, after: float, limit: int, owner: str | None = None
    ) -> list[TaskRecord]:
        return self.hub.finished_since(after, limit, owner)

    async def counts(self) -> dict[tuple[str, TaskState], int]:
        return self.hub.counts()

    async def purge(self, before: float, limit: int) -> dict[tuple[str, TaskState], int]:
        return self.hub.purge(before, limit)
