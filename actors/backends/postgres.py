"""The PostgreSQL backend, shared by many engines: sync psycopg 3 and its pool, in trio threads.

psycopg's AsyncConnection is asyncio-only, so every call runs the sync API in a worker thread
(``trio.to_thread.run_sync`` with a CapacityLimiter as large as the pool). A call cancelled
mid-query is abandoned by trio and the server-side query is cancelled, so the connection comes
back to the pool promptly. One transaction per store batch, as with SQLite. Rows and JSON are
stored as in SQLite (same columns, JSON as text), so the two share their row conversions.

Several engines (nodes) share one schema (a SharedBackend, see base.py): a node claims tasks
with ``FOR UPDATE SKIP LOCKED`` in priority order and owns them under a lease (``node``,
``lease_until`` on the database's clock) that it renews; expired leases are reaped by any node;
NOTIFY on one channel per schema, in the committing transaction, wakes the others (a thread
per node blocks in LISTEN).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import trio

if TYPE_CHECKING:  # the postgres extra: imported when a backend opens, so this module always
    import psycopg  # imports (the wheel test imports every module without extras)
    from psycopg_pool import ConnectionPool

from ..cores.record import TaskRecord
from ..errors import BackendError, BackendFull, BackendUnavailable, BadQuery, NodeNameInUse
from ..task import TaskState
from .base import Notice
from .postgres_sql import (
    CLAIM,
    DELETE_FINISHED,
    FINISHED_VALUES,
    LEASE,
    LIVE,
    NOW,
    PURGE,
    QUEUED_BY_PRIORITY,
    RELEASE,
    RENEW,
    UNFINISHED_VALUES,
    UPSERT,
    migrate,
)
from .rows import COLUMNS, finished_since_sql, from_row, to_row
from .sqlite import query_sql
from .translate import os_error, translating

logger = logging.getLogger(__name__)

T = TypeVar("T")
POOL_SIZE = 2  # the store calls one at a time; the second serves a call while one reconnects
POOL_WAIT = 10.0  # seconds a call waits for a connection of the pool
CANCEL_WAIT = 2.0  # seconds the cancel of an abandoned query may take
DEFAULT_LEASE = 30.0
NOTICE_IDS = 250  # ids per NOTIFY: a payload must stay under 8,000 bytes
LISTEN_RETRY = (0.1, 5.0)  # seconds between reconnects of the listener, doubling
NUMBER_BLOCK = 1024  # the sequence's increment: numbers a node reserves at a time
_KEY = COLUMNS.replace(" ", "").split(",").index("key")  # its place in a row


def split_url(url: str) -> tuple[str, str]:
    """The libpq URL without oncue's own ``schema`` option, and that schema (default public)."""
    parts = urlsplit(url)
    options = parse_qsl(parts.query)
    schema = dict(options).get("schema", "public")
    rest = urlencode([(name, value) for name, value in options if name != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


def classify(error: Exception) -> BackendError | None:
    """psycopg's errors as BackendErrors: a full disk, a value out of range, a server that
    cannot be reached or answered with an operational error (the pool's timeout included)."""
    import psycopg
    import psycopg.errors

    if isinstance(error, psycopg.errors.DiskFull):
        return BackendFull(f"PostgreSQL is out of disk space: {error}", error)
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
        self.channel = f"oncue_{self.schema}"[:63]
        self._limiter = trio.CapacityLimiter(POOL_SIZE)
        self._pool: ConnectionPool | None = None
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

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(connection, *args)`` in a thread; on cancellation, cancel the query."""
        if self._pool is None:
            raise RuntimeError("the PostgreSQL backend is not open")
        pool = self._pool
        held: list[psycopg.Connection[Any]] = []

        def call() -> T:
            with pool.connection(timeout=POOL_WAIT) as connection:
                held.append(connection)
                return function(connection, *args)

        finished = False
        try:
            result = await trio.to_thread.run_sync(
                call, abandon_on_cancel=True, limiter=self._limiter
            )
            finished = True
            return result
        finally:
            if not finished and held:  # cancel the server's query, off the event loop, briefly
                with (
                    trio.CancelScope(shield=True),
                    trio.move_on_after(CANCEL_WAIT),
                    contextlib.suppress(Exception),
                ):
                    await trio.to_thread.run_sync(held[0].cancel_safe, abandon_on_cancel=True)

    async def open(self) -> None:
        if self._pool is None:
            from psycopg_pool import ConnectionPool

            pool = ConnectionPool(
                self.url,
                min_size=1,
                max_size=POOL_SIZE,
                open=False,
                configure=self._configure,
                kwargs={"autocommit": True},
            )
            await trio.to_thread.run_sync(lambda: pool.open(wait=True, timeout=10.0))
            self._pool = pool
            await self._run(migrate, self.schema)
            await self._hold_name()

    async def _hold_name(self) -> None:
        """Hold a session lock on this node's name for as long as the backend is open (the
        server frees it when the process dies): two live nodes of one name would renew each
        other's tasks away and run them twice."""
        import psycopg

        if self.node == "unattached":
            return
        name = f"oncue:{self.schema}:{self.node}"

        def lock() -> psycopg.Connection[Any] | None:
            connection = psycopg.connect(self.url, autocommit=True)
            row = connection.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (name,))
            if (row.fetchone() or (False,))[0]:
                return connection
            connection.close()
            return None

        self._name_lock = await trio.to_thread.run_sync(lock)
        if self._name_lock is None:
            await self.close()
            raise NodeNameInUse(self.node)

    def _configure(self, connection: psycopg.Connection[Any]) -> None:
        from psycopg import sql

        connection.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
        )
        connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await trio.to_thread.run_sync(pool.close)
        if self._name_lock is not None:
            name_lock, self._name_lock = self._name_lock, None
            await trio.to_thread.run_sync(name_lock.close)

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
        rows = await self._run(_fetch, "SELECT nextval('task_numbers')", ())
        first = int(rows[0][0])
        return range(first, first + NUMBER_BLOCK)

    async def claim(self, limit: int, within: float) -> list[TaskRecord]:
        default = self._lease_for("")  # no type is named "": the engine's default lease
        args = (within, self._runs, self._runs, limit, self.node, default, default)
        records = self._owned(await self._select(CLAIM, args))
        records.sort(key=lambda record: (-record.priority, record.number))
        own: dict[float, list[str]] = {}  # types with a lease of their own: one update each
        for record in records:
            lease = self._lease_for(record.type)
            if lease != default:
                own.setdefault(lease, []).append(record.id)
        for lease, ids in own.items():
            await self._run(_execute, LEASE, (lease, lease, self.node, ids), None)
        return records

    async def renew(self) -> Collection[str]:
        known = sorted(self._known)
        renewed = {row[0] for row in await self._run(_fetch, RENEW, (self.node, known))}
        unknown = RELEASE + "node = %s AND NOT (id = ANY(%s))"
        await self._run(_execute, unknown, (self.node, known), self._notice("ready"))
        lost = [task_id for task_id in known if task_id not in renewed]
        self._known.difference_update(lost)
        return lost

    async def reap(self) -> int:
        where = f"node IS NOT NULL AND lease_until < {NOW}"
        return await self._run(_execute, RELEASE + where, (), self._notice("ready"))

    async def release(self) -> int:
        self._known.clear()
        ready = self._notice("ready")
        return await self._run(_execute, RELEASE + "node = %s", (self.node,), ready)

    async def unfinished_count(self) -> int:
        rows = await self._run(_fetch, f"SELECT count(*) FROM tasks WHERE state IN {LIVE}", ())
        return int(rows[0][0])

    def _notice(self, kind: str, ids: Collection[str] = ()) -> list[tuple[str, str]]:
        """pg_notify arguments for a notice, its ids spread over payloads small enough."""
        if not ids:
            return [(self.channel, json.dumps([kind, self.node]))]
        listed = list(ids)
        return [
            (self.channel, json.dumps([kind, self.node, *listed[start : start + NOTICE_IDS]]))
            for start in range(0, len(listed), NOTICE_IDS)
        ]

    async def listen(self, deliver: Callable[[Notice], None]) -> None:
        delay = LISTEN_RETRY[0]
        while True:
            stop = threading.Event()
            began = trio.current_time()
            try:
                await trio.to_thread.run_sync(
                    self._pump, deliver, stop, abandon_on_cancel=True, limiter=_own_thread()
                )
            except Exception as error:  # the connection's errors: reconnect
                logger.warning(
                    "postgres.listen_failed", extra={"error": repr(error), "retry_in": delay}
                )
            finally:
                stop.set()  # an abandoned pump sees it within its poll
            if trio.current_time() - began > LISTEN_RETRY[1]:  # it had worked: start over
                delay = LISTEN_RETRY[0]
            await trio.sleep(delay)
            delay = min(delay * 2, LISTEN_RETRY[1])

    async def publish_events(self, payloads: Sequence[str]) -> None:
        """Tell every node these task events (relay.py encodes them), on a channel of their own."""
        notices = [(f"{self.channel}_events"[:63], payload) for payload in payloads]
        try:
            await self._run(_notify, notices)
        except Exception as error:  # the driver's errors: best effort, these are dropped
            logger.warning(
                "postgres.publish_failed",
                extra={"events_lost": len(payloads), "error": repr(error)},
            )

    async def listen_events(
        self,
        deliver: Callable[[str], None],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Hand each payload `publish_events` sent (by any node) to ``deliver``, for as long as
        it runs; reconnect with backoff after an error. Started once it first listens."""
        delay = LISTEN_RETRY[0]
        started: list[Callable[[], None]] = [lambda: task_status.started()]
        while True:
            stop = threading.Event()
            try:
                await trio.to_thread.run_sync(
                    self._pump_events,
                    deliver,
                    stop,
                    started,
                    abandon_on_cancel=True,
                    limiter=_own_thread(),
                )
            except Exception as error:  # the connection's errors: reconnect
                logger.warning(
                    "postgres.events_failed", extra={"error": repr(error), "retry_in": delay}
                )
            finally:
                stop.set()
            await trio.sleep(delay)
            delay = min(delay * 2, LISTEN_RETRY[1])

    def _pump_events(
        self,
        deliver: Callable[[str], None],
        stop: threading.Event,
        started: list[Callable[[], None]],
    ) -> None:
        import psycopg
        from psycopg import sql

        channel = f"{self.channel}_events"[:63]
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            if started:
                trio.from_thread.run_sync(started.pop())
            while not stop.is_set():
                for notify in connection.notifies(timeout=0.5):
                    trio.from_thread.run_sync(deliver, notify.payload)

    def _pump(self, deliver: Callable[[Notice], None], stop: threading.Event) -> None:
        """In a thread: LISTEN on a connection of its own; hand each notice to trio."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            trio.from_thread.run_sync(deliver, Notice("listening"))
            while not stop.is_set():
                for notify in connection.notifies(timeout=0.5):
                    kind, origin, *ids = json.loads(notify.payload)
                    if origin != self.node:  # what we did, we know
                        trio.from_thread.run_sync(deliver, Notice(kind, tuple(ids)))

    async def last_number(self) -> int:
        rows = await self._run(_fetch, "SELECT max(number) FROM tasks", ())
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
        notices = self._notice("finished", finished) if finished else []
        if cancelled:
            notices += self._notice("cancelled", cancelled)
        if ready:
            notices += self._notice("ready")
        written = await self._run(_commit, rows, [(task_id,) for task_id in deleted], notices)
        lost = [record.id for record in changed if record.id not in written]
        for record in changed:
            if record.node == node and not record.state.finished and record.id in written:
                self._known.add(record.id)
            else:
                self._known.discard(record.id)
        return lost

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
        rows = await self._run(
            _fetch, "SELECT type, state, count(*) FROM tasks GROUP BY type, state", ()
        )
        return {(type_, TaskState(state)): count for type_, state, count in rows}

    async def queued_by_priority(self) -> dict[int, int]:
        rows = await self._run(_fetch, QUEUED_BY_PRIORITY, ())
        return {int(priority): int(count) for priority, count in rows}

    async def purge(self, before: float, limit: int) -> dict[tuple[str, TaskState], int]:
        rows = await self._run(_purge, before, limit)
        purged: dict[tuple[str, TaskState], int] = {}
        for type_, state in rows:
            purged[type_, TaskState(state)] = purged.get((type_, TaskState(state)), 0) + 1
        return purged

    async def _select(self, text: str, args: tuple[Any, ...]) -> list[TaskRecord]:
        return [from_row(row) for row in await self._run(_fetch, text, args)]


def _fetch(
    connection: psycopg.Connection[Any], text: str, args: tuple[Any, ...]
) -> list[tuple[Any, ...]]:
    return connection.execute(text, args).fetchall()


def _commit(
    connection: psycopg.Connection[Any],
    rows: list[tuple[Any, ...]],
    deleted: list[tuple[str]],
    notices: list[tuple[str, str]],
) -> set[str]:
    """One transaction: the rows, the deletes and the notices; the ids of the rows written.

    A new task whose idempotency key another node's task took meanwhile is left out (lost):
    the transaction is tried again without it.
    """
    import psycopg

    try:
        return _commit_once(connection, rows, deleted, notices)
    except psycopg.errors.UniqueViolation as error:
        if error.diag.constraint_name != "tasks_key_key":
            raise
    keys = [row[_KEY] for row in rows if row[_KEY] is not None]
    taken = dict(connection.execute("SELECT key, id FROM tasks WHERE key = ANY(%s)", (keys,)))
    rows = [row for row in rows if row[_KEY] is None or taken.get(row[_KEY], row[0]) == row[0]]
    return _commit_once(connection, rows, deleted, notices)


def _commit_once(
    connection: psycopg.Connection[Any],
    rows: list[tuple[Any, ...]],
    deleted: list[tuple[str]],
    notices: list[tuple[str, str]],
) -> set[str]:
    written: set[str] = set()
    with connection.transaction(), connection.cursor() as cursor:
        if rows:
            cursor.executemany(UPSERT, rows, returning=True)
            while True:
                written.update(row[0] for row in cursor.fetchall())
                if not cursor.nextset():
                    break
        if deleted:
            cursor.executemany(
                DELETE_FINISHED,
                deleted,
            )
        if notices and (written or deleted):
            cursor.executemany("SELECT pg_notify(%s, %s)", notices)
    return written


def _execute(
    connection: psycopg.Connection[Any],
    text: str,
    args: tuple[Any, ...],
    notices: list[tuple[str, str]] | None,
) -> int:
    """One statement in a transaction, with notices if it changed any row; the row count."""
    with connection.transaction(), connection.cursor() as cursor:
        cursor.execute(text, args)
        count = cursor.rowcount
        if notices and count:
            cursor.executemany("SELECT pg_notify(%s, %s)", notices)
    return count


def _notify(connection: psycopg.Connection[Any], notices: list[tuple[str, str]]) -> None:
    with connection.transaction():
        connection.cursor().executemany("SELECT pg_notify(%s, %s)", notices)


def _own_thread() -> trio.CapacityLimiter:
    """A limiter of its own for a thread that blocks for as long as the engine runs."""
    return trio.CapacityLimiter(1)


def _purge(connection: psycopg.Connection[Any], before: float, limit: int) -> list[Any]:
    with connection.transaction():
        return connection.execute(PURGE, (before, FINISHED_VALUES, limit)).fetchall()
