"""Connections to one PostgreSQL schema: a pool whose calls run in trio threads.

psycopg's AsyncConnection is asyncio-only, so every call runs the sync API in a worker thread
(``trio.to_thread.run_sync`` with a CapacityLimiter as large as the pool). A call cancelled
mid-query is abandoned by trio and the server-side query is cancelled, so the connection comes
back to the pool promptly. Opening the pool sets each connection's ``search_path`` to the
schema (created if missing) and migrates it (postgres_sql.py). A node's name is held by a
session lock on a connection of its own, outside the pool.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import trio

if TYPE_CHECKING:  # the postgres extra: imported when a pool opens, so this module always
    import psycopg  # imports (the wheel test imports every module without extras)
    from psycopg_pool import ConnectionPool

from .postgres_sql import migrate

T = TypeVar("T")
POOL_SIZE = 2  # the store calls one at a time; the second serves a call while one reconnects
POOL_WAIT = 10.0  # seconds a call waits for a connection of the pool
OPEN_WAIT = 10.0  # seconds opening the pool waits for its first connection
CANCEL_WAIT = 2.0  # seconds the cancel of an abandoned query may take


def split_url(url: str) -> tuple[str, str]:
    """The libpq URL without oncue's own ``schema`` option, and that schema (default public)."""
    parts = urlsplit(url)
    options = parse_qsl(parts.query)
    schema = dict(options).get("schema", "public")
    rest = urlencode([(name, value) for name, value in options if name != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


class Pool:
    """The connections of one schema; ``run`` calls a function on one of them in a thread."""

    def __init__(self, url: str, schema: str) -> None:
        self.url = url
        self.schema = schema
        self._limiter = trio.CapacityLimiter(POOL_SIZE)
        self._pool: ConnectionPool | None = None

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    async def open(self) -> None:
        """Connect (waiting up to OPEN_WAIT for a first connection), then migrate the schema."""
        from psycopg_pool import ConnectionPool

        pool = ConnectionPool(
            self.url,
            min_size=1,
            max_size=POOL_SIZE,
            open=False,
            configure=self._configure,
            kwargs={"autocommit": True},
        )
        await trio.to_thread.run_sync(lambda: pool.open(wait=True, timeout=OPEN_WAIT))
        self._pool = pool
        await self.run(migrate, self.schema)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await trio.to_thread.run_sync(pool.close)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
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

    def _configure(self, connection: psycopg.Connection[Any]) -> None:
        from psycopg import sql

        connection.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
        )
        connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))

    async def hold_name(self, node: str) -> psycopg.Connection[Any] | None:
        """A connection holding a session lock on ``node``'s name in this schema, or None if a
        live node holds it already. The server frees the lock when the connection closes (or
        its process dies): two live nodes of one name would renew each other's tasks away."""
        import psycopg

        name = f"oncue:{self.schema}:{node}"

        def lock() -> psycopg.Connection[Any] | None:
            connection = psycopg.connect(self.url, autocommit=True)
            row = connection.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (name,))
            if (row.fetchone() or (False,))[0]:
                return connection
            connection.close()
            return None

        return await trio.to_thread.run_sync(lock)
