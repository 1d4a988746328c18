"""The Redis backend, shared by many engines: claims and leases, commits, and reads.

Every change is one Lua script (redis_lua.py has the key layout), so claims, commits and reaps
are atomic and need no locks or WATCH retries. Ownership is a node name plus a deadline in a
sorted set on Redis's own clock (``TIME``), the same clock for every node.

The connection is trio's own (redis_wire.py); the store's, with its reconnects and the rule
that a script is sent at most once, is redis_session.py's; the listeners and the publisher
have connections of their own (redis_pubsub.py); what opening checks (the node's name, the
key layout) is redis_opening.py's. Why not a client library: docs/stores.md.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Sequence
from typing import Any

import trio

from ..cores.record import TaskRecord
from ..errors import (
    BackendError,
    BackendFull,
    BackendReadOnly,
    BackendUnavailable,
    NodeNameInUse,
)
from ..task import UNFINISHED, TaskState
from .base import Notice
from .redis_codec import FIELDS, decode, encode
from .redis_kept import KeptCopies
from .redis_opening import check_layout, check_name, client_name
from .redis_pubsub import Publisher, listen, listen_events
from .redis_session import Session
from .redis_wire import RedisError, parse_url
from .translate import os_error, translating

logger = logging.getLogger(__name__)

NUMBER_BLOCK = 1024  # task numbers a node reserves at a time
FALLBACK_LEASE = 30.0  # a claimed task of a type this node has not seen yet, until corrected
QUERY_BUDGET = 2000  # index entries one listing script reads at most (Redis blocks meanwhile)

_UNFINISHED = [state.value for state in UNFINISHED]
_FINISHED = frozenset(state.value for state in TaskState if state.finished)
_CLAIMABLE = frozenset({TaskState.PENDING, TaskState.RETRYING})


def classify(error: Exception) -> BackendError | None:
    """Redis's errors as BackendErrors: out of memory, or a server that cannot be reached,
    closed the connection or answered an error."""
    if isinstance(error, RedisError):
        if str(error).startswith("OOM"):
            return BackendFull(f"Redis is out of memory: {error}", error)
        if str(error).startswith(("READONLY", "MISCONF")):  # a replica; cannot persist
            return BackendReadOnly(f"Redis refuses writes: {error}", error)
        return BackendUnavailable(f"Redis: {error}", error)
    if isinstance(error, trio.BrokenResourceError | trio.ClosedResourceError):
        return BackendUnavailable(f"the connection to Redis broke: {error!r}", error)
    return os_error(error)


@translating(classify)
class RedisBackend:
    """Tasks in one Redis database under one key prefix, shared by every node attached to it.

    Raises ValueError at construction for a URL it cannot use.
    """

    durable = True
    shared = True

    def __init__(self, url: str) -> None:
        self.address, self.prefix = parse_url(url)
        self.keys = f"{{{self.prefix}}}:"
        self.node = ""
        self._lease_for: Callable[[str], float] = lambda name: FALLBACK_LEASE
        self._leases: dict[str, float] = {}  # lease_for of each type seen: claim passes them
        # Tasks this node's store holds (claimed or loaded, not finished): renew() renews these
        # and gives back any other it owns; their rows exist, so a write sends what a
        # transition changes, not the payload again (a row missing after all: the write is lost).
        self._known: set[str] = set()
        self._session = Session(self.address, self.keys)
        self._publisher = Publisher(self.address, self.keys)  # the relay's (relay.py)
        self._runs: list[str] | None = None  # the types this node claims (None: any)
        self._claims: frozenset[str] | None = None  # the same, to look a type up
        self._kept = KeptCopies()  # waiting tasks of those types this node wrote whole

    def attach(
        self,
        node: str,
        lease_for: Callable[[str], float],
        runs: Collection[str] | None = None,
    ) -> None:
        self.node = node
        self._lease_for = lease_for
        self._runs = None if runs is None else sorted(runs)
        self._claims = None if runs is None else frozenset(runs)

    def _lease(self, type_: str) -> float:
        lease = self._leases.get(type_)
        if lease is None:
            lease = self._leases[type_] = float(self._lease_for(type_))
        return lease

    async def open(self) -> None:
        """Connect; RuntimeError for a Redis older than 6.2 (the scripts use ZRANGE BYLEX)."""
        self._session.open(self._name(""))
        info = await self._call("INFO", "server")
        version = re.search(r"redis_version:(\d+)\.(\d+)", info)
        if version is None or (int(version[1]), int(version[2])) < (6, 2):
            found = version[0] if version else "no redis_version in INFO"
            raise RuntimeError(f"the redis store needs Redis 6.2 or newer ({found})")
        try:  # redis_opening.py
            await check_name(self._call, self.prefix, self.node)
            await self._log_durability()
            await check_layout(self._call, self._script, self.prefix)
        except (NodeNameInUse, RuntimeError):
            await self.close()
            raise
        await self._script("count_queued")

    def _name(self, role: str) -> str:
        """The client name of this node's connection of ``role`` (``''``: the store's)."""
        return client_name(role, self.prefix, self.node)

    async def _log_durability(self) -> None:
        """Say once, at open, what a crash of Redis itself would lose (docs/stores.md)."""
        try:
            flat = await self._call("CONFIG", "GET", "append*")
        except RedisError:  # CONFIG is often disabled on managed servers: nothing to say
            return
        config = dict(zip(flat[::2], flat[1::2], strict=True))
        if config.get("appendonly") != "yes":
            logger.warning(
                "redis.not_durable",
                extra={
                    "appendonly": "no",
                    "risk": "a restart of Redis loses the tasks written since its last snapshot,"
                    " or all of them without snapshots",
                },
            )
        else:
            logger.info("redis.durable", extra={"appendfsync": config.get("appendfsync")})

    async def close(self) -> None:
        await self._session.close()
        await self._publisher.aclose()

    async def _call(self, *args: object) -> Any:
        return await self._session.call(*args)

    async def _script(self, name: str, *args: object, read: bool = False) -> Any:
        return await self._session.script(name, *args, read=read)

    async def probe(self) -> None:
        """Whether Redis takes writes again after a failed commit (redis_session.py)."""
        await self._session.probe(self.node)

    async def load_unfinished(self) -> list[TaskRecord]:
        owned = await self._call("SMEMBERS", f"{self.keys}owned:{self.node}")
        records = [r for r in await self._hashes(owned) if r.state in UNFINISHED]
        self._known = {record.id for record in records}
        return sorted(records, key=lambda record: record.number)

    async def _hashes(self, ids: Sequence[str]) -> list[TaskRecord]:
        if not ids:
            return []
        keys = self.keys
        found = await self._session.read([["HMGET", f"{keys}task:{i}", *FIELDS] for i in ids])
        return [decode(values) for values in found if values[0] is not None]

    async def last_number(self) -> int:
        return int(await self._call("GET", f"{self.keys}number") or 0)

    async def reserve_numbers(self) -> range:
        # sent again after a failed connection, it may waste a block: numbers stay unique
        last = int(await self._call("INCRBY", f"{self.keys}number", NUMBER_BLOCK))
        return range(last - NUMBER_BLOCK + 1, last + 1)

    async def commit(
        self, changed: Collection[TaskRecord], deleted: Collection[str]
    ) -> Collection[str]:
        args: list[str] = [self.node, str(len(changed))]
        known = self._known
        claims = self._claims
        waiting: list[tuple[list[str], TaskRecord]] = []
        for record in changed:  # encoded now: the store mutates the records later
            whole = record.id not in known or record.node != self.node
            values = encode(record, self._lease(record.type), full=whole)
            args.extend(values)
            if (
                whole
                and record.node is None
                and record.state in _CLAIMABLE
                and (claims is None or record.type in claims)
            ):
                waiting.append((values, record.copy()))
        args.extend(deleted)
        lost: list[str] = await self._script("commit", *args)
        for record in changed:
            if record.state.finished:
                known.discard(record.id)
            elif record.node == self.node:
                known.add(record.id)
        known.difference_update(lost)
        if waiting:
            self._kept.keep(waiting, lost)
        return lost

    async def claim(self, limit: int, within: float) -> list[TaskRecord]:
        leases = [str(item) for pair in self._leases.items() for item in pair]
        runs = [] if self._runs is None else self._runs
        count = -1 if self._runs is None else len(runs)
        found = await self._script(
            "claim", self.node, limit, within, FALLBACK_LEASE, count, *runs, *leases
        )
        claimed = [self._claimed(values) for values in found]
        self._known.update(record.id for record in claimed)
        unknown = [record for record in claimed if record.type not in self._leases]
        if unknown:  # types first seen here: their lease was the fallback until now
            pairs = [str(item) for r in unknown for item in (r.id, self._lease(r.type))]
            await self._script("set_leases", self.node, *pairs)
        return claimed

    def _claimed(self, values: list[str]) -> TaskRecord:
        """A claimed task from its FIELDS and rank: the copy kept when this node wrote it, if
        still what was written (redis_kept.py), else decoded."""
        kept = self._kept.take(values)
        return decode(values) if kept is None else kept

    async def renew(self) -> Collection[str]:
        """Renew what this node's store holds (``_known``); give back what it owns without
        knowing it (a claim whose reply was lost: cancelled, or the connection failed)."""
        _renewed, gone = await self._script("renew", self.node, *self._known)
        self._known.difference_update(gone)
        return list(gone)

    async def reap(self) -> int:
        return int(await self._script("reap", self.node))

    async def release(self) -> int:
        self._known.clear()
        return int(await self._script("release", self.node))

    async def unfinished_count(self) -> int:
        commands = [["ZCARD", f"{self.keys}state:{state}"] for state in _UNFINISHED]
        return sum(await self._session.read(commands))

    async def get(self, task_id: str) -> TaskRecord | None:
        found = await self._hashes([task_id])
        return found[0] if found else None

    async def get_many(self, ids: Sequence[str]) -> list[TaskRecord]:
        return await self._hashes(ids)  # one pipelined round trip

    async def get_finished(self, ids: Sequence[str]) -> tuple[list[TaskRecord], set[str]]:
        """The finished tasks of ``ids`` whole, and the ids of the unfinished ones (an id of no
        task is in neither): what a wait on them needs, without reading and decoding the hashes
        of tasks still running (two pipelined round trips: the states, then those hashes)."""
        if not ids:
            return [], set()
        states = await self._session.read([["HGET", f"{self.keys}task:{i}", "state"] for i in ids])
        done: list[str] = []
        unfinished: set[str] = set()
        for task_id, state in zip(ids, states, strict=True):
            if state in _FINISHED:
                done.append(task_id)
            elif state is not None:
                unfinished.add(task_id)
        return await self._hashes(done), unfinished

    async def get_by_number(self, number: int) -> TaskRecord | None:
        flat = await self._script("find", "number", number, read=True)
        return decode(flat) if flat else None

    async def find_key(self, key: str) -> TaskRecord | None:
        flat = await self._script("find", "key", key, read=True)
        return decode(flat) if flat else None

    async def query(
        self,
        state: TaskState | None,
        type: str | None,
        limit: int,
        before: int | None,
        owner: str | None = None,
    ) -> list[TaskRecord]:
        indexes = [
            f"{kind}:{value}"
            for kind, value in (("state", state), ("type", type), ("owner", owner))
            if value is not None
        ]
        filters = [state or "", type or "", owner or ""]
        upper = "+inf" if before is None else f"({before}"
        found: list[TaskRecord] = []
        while upper and len(found) < limit:
            flats, upper = await self._script(
                "query", upper, limit - len(found), QUERY_BUDGET, *filters, *indexes, read=True
            )
            found.extend(decode(flat) for flat in flats)
        return found

    async def finished_since(
        self, after: float, limit: int, owner: str | None = None
    ) -> list[TaskRecord]:
        # The retention index (finished ids by finished_at), then the hashes; the owner is
        # filtered here, so a tenant may get fewer than `limit` of a full page.
        finished = f"{self.keys}finished"
        ids = await self._call("ZRANGEBYSCORE", finished, f"({after!r}", "+inf", "LIMIT", 0, limit)
        records = await self._hashes(ids)
        return [record for record in records if owner is None or record.owner == owner]

    async def counts(self) -> dict[tuple[str, TaskState], int]:
        flat = await self._call("HGETALL", f"{self.keys}counts")
        counts: dict[tuple[str, TaskState], int] = {}
        for field, value in zip(flat[::2], flat[1::2], strict=True):
            state, _, type_ = field.partition(":")
            counts[type_, TaskState(state)] = int(value)
        return counts

    async def queued_by_priority(self) -> dict[int, int]:
        flat = await self._call("HGETALL", f"{self.keys}queued")
        return {int(k): int(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}

    async def purge(self, before: float, limit: int) -> dict[tuple[str, TaskState], int]:
        gone = await self._script("purge", repr(before), limit)
        purged: dict[tuple[str, TaskState], int] = {}
        for type_, state in zip(gone[::2], gone[1::2], strict=True):
            purged[type_, TaskState(state)] = purged.get((type_, TaskState(state)), 0) + 1
        return purged

    async def listen(self, deliver: Callable[[Notice], None]) -> None:
        """Subscribe on a connection of its own; after an error, reconnect with backoff."""
        name = self._name("-listen")
        await listen(self.address, f"{self.keys}notices", name, self.node, deliver)

    async def publish_events(self, payloads: Sequence[str]) -> None:
        """Tell every node these task events (relay.py encodes them), on a channel of their own,
        over a connection of the relay's own. Best effort: an error drops these (logged)."""
        await self._publisher.publish(payloads, self._name("-publish"))

    async def others_listening(self) -> bool:
        """Whether a node other than this one subscribes to the events now (redis_pubsub.py:
        our own listener is counted apart, by the channel only it subscribes to)."""
        name = self._name("-publish")
        return await self._publisher.others_listening(name, self._own_events)

    async def listen_events(
        self,
        deliver: Callable[[str], None],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Hand each payload `publish_events` sent (by any node) to ``deliver``, for as long as
        it runs; reconnect with backoff after an error. Started once it first listens."""
        name = self._name("-events")
        channels = (f"{self.keys}events", self._own_events)
        await listen_events(self.address, channels, name, deliver, task_status)

    @property
    def _own_events(self) -> str:
        return f"{self.keys}events:{self.node}"  # nothing is published on it
