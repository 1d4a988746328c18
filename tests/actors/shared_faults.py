"""The shared store of simulation_shared.py, with the faults a database server has (issue 17).

``FaultyHub`` is the SharedMemory reference (backends/shared_memory.py) that can go down, hang
past the commit deadline, refuse writes while it answers reads, or fail the next commits
before or after writing; ``NodeBackend`` is one node's connection to it, every call passing
those faults, and a dead node's calls never returning.
"""

from __future__ import annotations

import time
from typing import Any

import trio

from oncue.actors.backends.shared_memory import SharedMemory, SharedMemoryBackend
from oncue.actors.errors import BackendUnavailable


class FaultyHub(SharedMemory):
    """The shared store, with the faults a database server has: down, hanging, refusing
    writes while it answers reads (read-only, out of memory or disk), failing commits."""

    def __init__(self) -> None:
        epoch = time.time()  # run_at is written on the wall clock; leases run on trio's
        super().__init__(wall_clock=lambda: epoch + trio.current_time())
        self.down = False
        self.read_only = False
        self.hang: trio.Event | None = None  # set: the hang is over
        self.commit_faults: list[str] = []

    async def gate(self) -> None:
        if self.hang is not None:
            await self.hang.wait()
        if self.down:
            raise BackendUnavailable("injected: the shared store is down")

    def refuse_writes(self) -> None:
        if self.read_only:
            raise BackendUnavailable("injected: the shared store refuses writes (read-only)")

    def heal(self) -> None:
        self.down = self.read_only = False
        self.commit_faults.clear()
        if self.hang is not None:
            self.hang.set()
            self.hang = None


def _gated(name: str, writes: bool) -> Any:
    async def call(self: NodeBackend, *args: Any, **kwargs: Any) -> Any:
        await self.gate()
        if writes:
            self.hub.refuse_writes()
        return await getattr(SharedMemoryBackend, name)(self, *args, **kwargs)

    call.__name__ = name
    return call


class NodeBackend(SharedMemoryBackend):
    """One node's connection to the hub: every call passes the hub's faults; a dead node's
    calls never return (its process is gone; its scope is being cancelled)."""

    hub: FaultyHub

    def __init__(self, hub: FaultyHub) -> None:
        super().__init__(hub)
        self.dead = False

    async def gate(self) -> None:
        if self.dead:
            await trio.sleep_forever()
        await self.hub.gate()

    async def commit(self, changed: Any, deleted: Any) -> Any:
        await self.gate()
        if changed or deleted:  # committing nothing succeeds on a read-only server
            self.hub.refuse_writes()
        faults = self.hub.commit_faults
        fate = faults.pop(0) if faults and (changed or deleted) else None
        if fate == "before":
            raise BackendUnavailable("injected: commit failed before writing")
        lost = await super().commit(changed, deleted)
        if fate == "after":
            raise BackendUnavailable("injected: commit failed after writing")
        return lost

    async def probe(self) -> None:  # writes, as the real backends' probes do
        await self.gate()
        self.hub.refuse_writes()

    async def close(self) -> None:
        pass


WRITES = {"reserve_numbers", "claim", "renew", "reap", "release", "purge"}
for _name in (
    "load_unfinished",
    "reserve_numbers",
    "claim",
    "renew",
    "reap",
    "release",
    "unfinished_count",
    "get",
    "get_many",
    "get_by_number",
    "find_key",
    "query",
    "finished_since",
    "counts",
    "purge",
):
    setattr(NodeBackend, _name, _gated(_name, _name in WRITES))
