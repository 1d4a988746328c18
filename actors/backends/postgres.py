"""The PostgreSQL backend, single node: sync psycopg 3 and its pool, driven through trio threads.

psycopg's AsyncConnection is asyncio-only, so every call runs the sync API in a worker thread
(``trio.to_thread.run_sync`` with a CapacityLimiter as large as the pool). A call cancelled
mid-query is abandoned by trio and the server-side query is cancelled, so the connection comes
back to the pool promptly. One transaction per store batch, as with SQLite. Rows and JSON are
stored as in SQLite (same columns, JSON as text), so the two share their row conversions.

This backend holds one engine's tasks; several engines on one database need claims and leases
(docs/stores.md, "Many nodes").
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import trio

if TYPE_CHECKING:  # the postgres extra: imported when a backend opens, so this module always
    import psycopg  # imports (the wheel test imports every module without extras)
    from psycopg_pool import ConnectionPool

from ..record import TaskRecord
from ..task import FINISHED, UNFINISHED, TaskState
from .sqlite import COLUMNS, from_row, query_sql, to_row

T = TypeVar("T")
POOL_SIZE = 2  # the store calls one at a time; the second serves a call while one reconnects

_UPSERT = (
    f"INSERT INTO tasks ({COLUMNS}) VALUES ({', '.join(['%s'] * 20)})"
    " ON CONFLICT (id) DO UPDATE SET priority=excluded.priority, state=excluded.state,"
    " attempts=excluded.attempts, run_at=excluded.run_at, started_at=excluded.started_at,"
    " finished_at=excluded.finished_at, result=excluded.result, error=excluded.error,"
    " worker=excluded.worker, progress=excluded.progress, history=excluded.history"
)
_PURGE = (
    "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks"
    " WHERE finished_at < %s AND state = ANY(%s) ORDER BY finished_at LIMIT %s)"
    " RETURNING type, state"
)
_FINISHED = sorted(state.value for state in FINISHED)
_UNFINISHED = sorted(state.value for state in UNFINISHED)

# Each entry migrates the schema from version N to N+1; never edit one that has shipped.
MIGRATIONS = [
    """
    CREATE TABLE tasks (
        id TEXT PRIMARY KEY,
        number BIGINT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        payload TEXT NOT NULL,
        priority INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        max_retries INTEGER NOT NULL,
        timeout DOUBLE PRECISION NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        run_at DOUBLE PRECISION,
        started_at DOUBLE PRECISION,
        finished_at DOUBLE PRECISION,
        result TEXT,
        error TEXT,
        worker TEXT,
        progress TEXT,
        key TEXT UNIQUE,
        history TEXT NOT NULL,
        owner TEXT
    );
    CREATE INDEX tasks_state_number ON tasks (state, number);
    CREATE INDEX tasks_type_number ON tasks (type, number);
    CREATE INDEX tasks_owner_number ON tasks (owner, number);
    CREATE INDEX tasks_finished_at ON tasks (finished_at) WHERE finished_at IS NOT NULL;
    """,
    """
    CREATE INDEX tasks_type_state ON tasks (type, state);
    """,
]


def split_url(url: str) -> tuple[str, str]:
    """The libpq URL without oncue's own ``schema`` option, and that schema (default public)."""
    parts = urlsplit(url)
    options = parse_qsl(parts.query)
    schema = dict(options).get("schema", "public")
    rest = urlencode([(name, value) for name, value in options if name != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


class PostgresBackend:
    """Tasks in one PostgreSQL schema (created, and migrated, on open)."""

    def __init__(self, url: str) -> None:
        self.url, self.schema = split_url(url)
        self._limiter = trio.CapacityLimiter(POOL_SIZE)
        self._pool: ConnectionPool | None = None

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(connection, *args)`` in a thread; on cancellation, cancel the query."""
        if self._pool is None:
            raise RuntimeError("the PostgreSQL backend is not open")
        pool = self._pool
        held: list[psycopg.Connection[Any]] = []

        def call() -> T:
            with pool.connection() as connection:
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
            if not finished and held:
                held[0].cancel_safe(timeout=2.0)

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

    async def load_unfinished(self) -> list[TaskRecord]:
        return await self._select(
            f"SELECT {COLUMNS} FROM tasks WHERE state = ANY(%s) ORDER BY number", (_UNFINISHED,)
        )

    async def last_number(self) -> int:
        rows = await self._run(_fetch, "SELECT max(number) FROM tasks", ())
        return int(rows[0][0] or 0)

    async def commit(
        self, changed: Collection[TaskRecord], deleted: Collection[str]
    ) -> Collection[str]:
        rows = [to_row(record) for record in changed]  # now: the store mutates them later
        await self._run(_commit, rows, [(task_id,) for task_id in deleted])
        return ()

    async def get(self, task_id: str) -> TaskRecord | None:
        found = await self._select(f"SELECT {COLUMNS} FROM tasks WHERE id = %s", (task_id,))
        return found[0] if found else None

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

    async def counts(self) -> dict[tuple[str, TaskState], int]:
        rows = await self._run(
            _fetch, "SELECT type, state, count(*) FROM tasks GROUP BY type, state", ()
        )
        return {(type_, TaskState(state)): count for type_, state, count in rows}

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
    connection: psycopg.Connection[Any], rows: list[tuple[Any, ...]], deleted: list[tuple[str]]
) -> None:
    with connection.transaction(), connection.cursor() as cursor:
        if rows:
            cursor.executemany(_UPSERT, rows)
        if deleted:
            cursor.executemany("DELETE FROM tasks WHERE id = %s", deleted)


def _purge(connection: psycopg.Connection[Any], before: float, limit: int) -> list[Any]:
    with connection.transaction():
        return connection.execute(_PURGE, (before, _FINISHED, limit)).fetchall()


def migrate(connection: psycopg.Connection[Any], schema: str) -> None:
    """Bring the schema up to date in one transaction; concurrent starts take turns."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"oncue:{schema}",))
        connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = connection.execute("SELECT max(version) FROM schema_version").fetchone()
        version = (row[0] if row else None) or 0
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"database schema version {version} is newer than this oncue knows"
                f" ({len(MIGRATIONS)}); upgrade oncue"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in (part.strip() for part in script.split(";")):
                if statement:
                    connection.execute(statement)
            connection.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))
