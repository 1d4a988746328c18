"""The PostgreSQL backend, shared by many engines: claims and leases, commits, and reads.

Several engines (nodes) share one schema (a SharedBackend, see base.py): a node claims tasks
with ``FOR UPDATE SKIP LOCKED`` in priority order and owns them under a lease (``node``,
``lease_until`` on the database's clock) that it renews; expired leases are reaped by any node;
NOTIFY on one channel per schema, in the committing transaction, wakes the others. One
transaction per store batch, as with SQLite; rows and JSON are stored as in SQLite (same
columns, JSON as text), so the two share their row conversions. The connections (sync psycopg
in trio threads) are postgres_pool.py's, the SQL postgres_sql.py's, the listening threads
postgres_listen.py's.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:  # the postgres extra: imported when a backend opens, so this module always
    import psycopg  # imports (the wheel test imports every module without extras)

from ..cores.record import TaskRecord
from ..errors import (
    BackendError,
    BackendFull,
    BackendReadOnly,
    BackendUnavailable,
    BadQuery,
    NodeNameInUse,
)
from ..task import TaskState
from .base import Notice
from .postgres_listen import channels, keep_listening, notices, pump_events, pump_notices
from .postgres_pool import Pool, split_url
from .postgres_sql import (
    CLAIM,
    CLAIM_TYPES,
    LEASE,
    LIVE,
    NOW,
    QUEUED_BY_PRIORITY,
    RELEASE,
    RENEW,
    UNFINISHED_VALUES,
    commit_rows,
    execute,
    fetch,
    notify,
    probe_write,
    purge_rows,
)
from .rows import COLUMNS, finished_since_sql, from_row, to_row
from .sqlite_sql import query_sql
from .translate import os_error, translating

__all__ = ["PostgresBackend", "classify", "split_url"]

logger = logging.getLogger(__name__)

DEFAULT_LEASE = 30.0
NUMBER_BLOCK = 1024  # the sequence's increment: numbers a node reserves at a time


def classify(error: Exception) -> BackendError | None:
    """psycopg's errors as BackendErrors: a full disk, a value out of range, a server that
    cannot be reached or answered with an operational error (the pool's timeout included)."""
    import psycopg
    import psycopg.errors

    if isinstance(error, psycopg.errors.DiskFull):
        return BackendFull(f"PostgreSQL is out of disk space: {error}", error)
    if isinstance(error, psycopg.errors.ReadOnlySqlTransaction):  # a standby, or read-only
        return BackendReadOnly(f"PostgreSQL refuses writes (read-only): {error}", error)
    if isinstance(error, psycopg.errors.InsufficientResources):  # memory, connections
        return BackendUnavailable(f"PostgreSQL is short of resources: {error}", error)
    if isinstance(error, psycopg.DataError):
        return BadQuery(f"PostgreSQL refused a value: {error}", error)
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return BackendUnavailable(f"PostgreSQL: {error}", error)
    return os_error(error)


@translating(classify)
class PostgresBackend:
    """Tasks in one PostgreSQL schema (created, and migrated, on open), shared by every engine
    that opens it."""

    durable = True
    shared = True

    def __init__(self, url: str) -> None:
        self.url, self.schema = split_url(url)
        self.channel, self._events_channel = channels(self.schema)
        self._pool = Pool(self.url, self.schema)
        self.node = "unattached"
        self._lease_for: Callable[[str], float] = lambda name: DEFAULT_LEASE
        # What this node's store holds: renew() renews these and gives back anything else
        # the node owns (a claim whose answer was lost to a cancel or a broken connection).
        self._known: set[str] = set()
        self._name_lock: psycopg.Connection[Any] | None = None  # holds our node name
        self._runs: list[str] | None = None  # the types this node claims (None: any)

    def attach(
        self,
        node: str,
        lease_for: Callable[[str], float],
        runs: Collection[str] | None = None,
    ) -> None:
        self.node = node
        self._lease_for = lease_for
        self._runs = None if runs is None else sorted(runs)

    async def open(self) -> None:
        """Connect and migrate; NodeNameInUse if a live node holds this node's name."""
        if self._pool.is_open:
            return
        await self._pool.open()
        if self.node != "unattached":
            self._name_lock = await self._pool.hold_name(self.node)
            if self._name_lock is None:
                await self.close()
                raise NodeNameInUse(self.node)

    async def close(self) -> None:
        await self._pool.close()
        if self._name_lock is not None:
            name_lock, self._name_lock = self._name_lock, None
            await trio.to_thread.run_sync(name_lock.close)

    async def probe(self) -> None:
        """Write something real: after a failed commit, whether the database takes writes
        again (committing nothing succeeds on a full disk or a read-only server)."""
        await self._pool.run(probe_write, self.node)

    # Ownership: claims, leases, and giving tasks back

    async def load_unfinished(self) -> list[TaskRecord]:
        self._known = set()
        return self._owned(
            await self._select(
                f"SELECT {COLUMNS} FROM tasks WHERE node = %s AND state = ANY(%s) ORDER BY number",
                (self.node, UNFINISHED_VALUES),
            )
        )

    def _owned(self, records: list[TaskRecord]) -> list[TaskRecord]:
        for record in records:
            record.node = self.node
            self._known.add(record.id)
        return records

    async def reserve_numbers(self) -> range:
        rows = await self._pool.run(fetch, "SELECT nextval('task_numbers')", ())
        first = int(rows[0][0])
        return range(first, first + NUMBER_BLOCK)

    async def claim(self, limit: int, within: float) -> list[TaskRecord]:
        default = self._lease_for("")  # no type is named "": the engine's default lease
        take = (self.node, default, default)
        if self._runs is None:
            records = await self._select(CLAIM, (within, limit, limit, *take))
        else:
            records = await self._select(CLAIM_TYPES, (self._runs, within, limit, limit, *take))
        records = self._owned(records)
        records.sort(key=lambda record: (-record.priority, record.number))
        own: dict[float, list[str]] = {}  # types with a lease of their own: one update each
        for record in records:
            lease = self._lease_for(record.type)
            if lease != default:
                own.setdefault(lease, []).append(record.id)
        for lease, ids in own.items():
            await self._pool.run(execute, LEASE, (lease, lease, self.node, ids), None)
        return records

    async def renew(self) -> Collection[str]:
        known = sorted(self._known)
        renewed = {row[0] for row in await self._pool.run(fetch, RENEW, (self.node, known))}
        unknown = RELEASE + "node = %s AND NOT (id = ANY(%s))"
        await self._pool.run(execute, unknown, (self.node, known), self._notice("ready"))
        lost = [task_id for task_id in known if task_id not in renewed]
        self._known.difference_update(lost)
        return lost

    async def reap(self) -> int:
        where = f"node IS NOT NULL AND lease_until < {NOW}"
        return await self._pool.run(execute, RELEASE + where, (), self._notice("ready"))

    async def release(self) -> int:
        self._known.clear()
        ready = self._notice("ready")
        return await self._pool.run(execute, RELEASE + "node = %s", (self.node,), ready)

    async def unfinished_count(self) -> int:
        text = f"SELECT count(*) FROM tasks WHERE state IN {LIVE}"
        return int((await self._pool.run(fetch, text, ()))[0][0])

    # Telling the other nodes

    def _notice(self, kind: str, ids: Collection[str] = ()) -> list[tuple[str, str]]:
        return notices(self.channel, self.node, kind, ids)

    async def listen(self, deliver: Callable[[Notice], None]) -> None:
        pump = functools.partial(pump_notices, self.url, self.channel, self.node, deliver)
        await keep_listening(pump, "listen")

    async def publish_events(self, payloads: Sequence[str]) -> None:
        """Tell every node these task events (relay.py encodes them), on a channel of their own."""
        try:
            await self._pool.run(notify, [(self._events_channel, p) for p in payloads])
        except Exception as error:  # the driver's errors: best effort, these are dropped
            logger.warning(
                "postgres.publish_failed",
                extra={"events_lost": len(payloads), "error": repr(error)},
            )

    async def others_listening(self) -> bool:
        return True  # LISTEN has no count another session can read cheaply: always publish

    async def listen_events(
        self,
        deliver: Callable[[str], None],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Hand each payload `publish_events` sent (by any node) to ``deliver``, for as long as
        it runs; reconnect with backoff after an error. Started once it first listens."""
        started: list[Callable[[], None]] = [lambda: task_status.started()]
        pump = functools.partial(pump_events, self.url, self._events_channel, deliver, started)
        await keep_listening(pump, "events", reset=False)

    # Writes

    async def last_number(self) -> int:
        rows = await self._pool.run(fetch, "SELECT max(number) FROM tasks", ())
        return int(rows[0][0] or 0)

    async def commit(
        self, changed: Collection[TaskRecord], deleted: Collection[str]
    ) -> Collection[str]:
        node = self.node
        rows = []  # now: the store mutates the records later
        finished: list[str] = []
        ready = False
        for record in changed:
            owner = record.node == node
            keep = owner and not record.state.finished
            lease = self._lease_for(record.type) if keep else None
            row = to_row(record)
            rows.append((*row, node if keep else None, lease, lease, keep, keep, owner, node))
            if record.state.finished:
                finished.append(record.id)
            elif not owner and record.state is TaskState.PENDING:
                ready = True  # a new task, or a retried one
        cancelled = [r.id for r in changed if r.node != node and r.state is TaskState.CANCELLED]
        told = self._notice("finished", finished) if finished else []
        if cancelled:
            told += self._notice("cancelled", cancelled)
        if ready:
            told += self._notice("ready")
        gone = [(task_id,) for task_id in deleted]
        written = await self._pool.run(commit_rows, rows, gone, told)
        for record in changed:
            if record.node == node and not record.state.finished and record.id in written:
                self._known.add(record.id)
            else:
                self._known.discard(record.id)
        return [record.id for record in changed if record.id not in written]

    async def purge(self, before: float, limit: int) -> dict[tuple[str, TaskState], int]:
        purged: dict[tuple[str, TaskState], int] = {}
        for type_, state in await self._pool.run(purge_rows, before, limit):
            purged[type_, TaskState(state)] = purged.get((type_, TaskState(state)), 0) + 1
        return purged

    # Reads

    async def get(self, task_id: str) -> TaskRecord | None:
        found = await self._select(f"SELECT {COLUMNS} FROM tasks WHERE id = %s", (task_id,))
        return found[0] if found else None

    async def get_many(self, ids: Sequence[str]) -> list[TaskRecord]:
        return await self._select(f"SELECT {COLUMNS} FROM tasks WHERE id = ANY(%s)", (list(ids),))

    async def get_by_number(self, number: int) -> TaskRecord | None:
        found = await self._select(f"SELECT {COLUMNS} FROM tasks WHERE number = %s", (number,))
        return found[0] if found else None

    async def find_key(self, key: str) -> TaskRecord | None:
        found = await self._select(f"SELECT {COLUMNS} FROM tasks WHERE key = %s", (key,))
        return found[0] if found else None

    async def query(
        self,
        state: TaskState | None,
        type: str | None,
        limit: int,
        before: int | None,
        owner: str | None = None,
    ) -> list[TaskRecord]:
        text, args = query_sql(state, type, owner, before)
        return await self._select(text.replace("?", "%s"), (*args, limit))

    async def finished_since(
        self, after: float, limit: int, owner: str | None = None
    ) -> list[TaskRecord]:
        args = (after, limit) if owner is None else (after, owner, limit)
        return await self._select(finished_since_sql(owner).replace("?", "%s"), args)

    async def counts(self) -> dict[tuple[str, TaskState], int]:
        text = "SELECT type, state, count(*) FROM tasks GROUP BY type, state"
        rows = await self._pool.run(fetch, text, ())
        return {(type_, TaskState(state)): count for type_, state, count in rows}

    async def queued_by_priority(self) -> dict[int, int]:
        rows = await self._pool.run(fetch, QUEUED_BY_PRIORITY, ())
        return {int(priority): int(count) for priority, count in rows}

    async def _select(self, text: str, args: tuple[Any, ...]) -> list[TaskRecord]:
        return [from_row(row) for row in await self._pool.run(fetch, text, args)]
