"""The SQLite backend: stdlib sqlite3 in WAL mode on one dedicated thread, one transaction a batch.

The store actor calls it; every call runs in a worker thread through a CapacityLimiter of 1,
so the event loop never blocks on the disk and the connection is used by one thread at a time.
WAL with synchronous=NORMAL survives a killed process (kill -9) without losing a committed
transaction; ``?synchronous=full`` also survives a power cut, at a cost per commit.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TextIO, TypeVar

import trio

from ..errors import DatabaseInUse
from ..record import TaskRecord
from ..task import FINISHED, UNFINISHED, Progress, TaskError, TaskState, Transition

T = TypeVar("T")

COLUMNS = (
    "id, number, type, payload, priority, state, attempts, max_retries, timeout, created_at,"
    " run_at, started_at, finished_at, result, error, worker, progress, key, history, owner"
)
_UPSERT = (
    f"INSERT INTO tasks ({COLUMNS}) VALUES ({', '.join('?' * 20)})"
    " ON CONFLICT(id) DO UPDATE SET priority=excluded.priority, state=excluded.state,"
    " attempts=excluded.attempts, run_at=excluded.run_at, started_at=excluded.started_at,"
    " finished_at=excluded.finished_at, result=excluded.result, error=excluded.error,"
    " worker=excluded.worker, progress=excluded.progress, history=excluded.history"
)

# Each entry migrates the schema from version N to N+1; never edit one that has shipped.
MIGRATIONS = [
    """
    CREATE TABLE tasks (
        id TEXT PRIMARY KEY,
        number INTEGER NOT NULL UNIQUE,
        type TEXT NOT NULL,
        payload TEXT NOT NULL,
        priority INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        max_retries INTEGER NOT NULL,
        timeout REAL NOT NULL,
        created_at REAL NOT NULL,
        run_at REAL,
        started_at REAL,
        finished_at REAL,
        result TEXT,
        error TEXT,
        worker TEXT,
        progress TEXT,
        key TEXT UNIQUE,
        history TEXT NOT NULL
    );
    CREATE INDEX tasks_state_number ON tasks (state, number);
    CREATE INDEX tasks_type_number ON tasks (type, number);
    """,
    """
    ALTER TABLE tasks ADD COLUMN owner TEXT;
    CREATE INDEX tasks_owner_number ON tasks (owner, number);
    """,
    """
    CREATE INDEX tasks_finished_at ON tasks (finished_at) WHERE finished_at IS NOT NULL;
    """,
    # counts() at every start: a covering index scan (0.2 s at 1M rows) instead of a scan of the
    # type index with a row lookup each and a sort (4 s)
    """
    CREATE INDEX tasks_type_state ON tasks (type, state);
    """,
]
COUNTS = "SELECT type, state, count(*) FROM tasks GROUP BY type, state"
_FINISHED = tuple(sorted(state.value for state in FINISHED))
# Retention: the oldest finished tasks first, through the partial index on finished_at (the
# unary + keeps the planner off the state index, which would read every finished row and sort).
PURGE = (
    "DELETE FROM tasks WHERE rowid IN (SELECT rowid FROM tasks"
    " WHERE finished_at < ? AND +state IN (?, ?, ?) ORDER BY finished_at LIMIT ?)"
    " RETURNING type, state"
)


def dumps(value: Any) -> str:
    """JSON for the database; a value JSON cannot hold is kept as its repr, never a crash."""
    try:
        return json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError):
        return json.dumps({"__repr__": repr(value)})


def to_row(record: TaskRecord) -> tuple[Any, ...]:
    error = record.error
    progress = record.progress
    return (
        record.id,
        record.number,
        record.type,
        dumps(record.payload),
        record.priority,
        record.state.value,
        record.attempts,
        record.max_retries,
        record.timeout,
        record.created_at,
        record.run_at,
        record.started_at,
        record.finished_at,
        None if record.result is None else dumps(record.result),
        None if error is None else dumps([error.type, error.message, error.traceback]),
        record.worker,
        None if progress is None else dumps([progress.fraction, progress.message]),
        record.key,
        dumps([[step.state.value, step.at] for step in record.history]),
        record.owner,
    )


def from_row(row: tuple[Any, ...]) -> TaskRecord:
    (
        id_,
        number,
        type_,
        payload,
        priority,
        state,
        attempts,
        max_retries,
        timeout,
        created_at,
        run_at,
        started_at,
        finished_at,
        result,
        error,
        worker,
        progress,
        key,
        history,
        owner,
    ) = row
    return TaskRecord(
        id=id_,
        number=number,
        type=type_,
        payload=json.loads(payload),
        priority=priority,
        state=TaskState(state),
        attempts=attempts,
        max_retries=max_retries,
        timeout=timeout,
        created_at=created_at,
        run_at=run_at,
        started_at=started_at,
        finished_at=finished_at,
        result=None if result is None else json.loads(result),
        error=None if error is None else TaskError(*json.loads(error)),
        worker=worker,
        progress=None if progress is None else Progress(*json.loads(progress)),
        key=key,
        history=[Transition(TaskState(state), at) for state, at in json.loads(history)],
        owner=owner,
    )


class SqliteBackend:
    """Tasks in one SQLite file (created, and its schema migrated, on open)."""

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL") -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be off, normal, full or extra, got {synchronous!r}")
        self.path = str(path)
        self._synchronous = synchronous.upper()
        self._limiter = trio.CapacityLimiter(1)
        self._connection: sqlite3.Connection | None = None
        self._lock_file: TextIO | None = None

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        # Abandoned on cancel (a commit past its deadline): the thread still holds the limiter
        # until it returns, so the next call waits for it and the connection is never shared.
        return await trio.to_thread.run_sync(
            function, *args, limiter=self._limiter, abandon_on_cancel=True
        )

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise RuntimeError("the SQLite backend is not open")
        return self._connection

    async def open(self) -> None:
        if self._connection is None:
            self._connection = await self._run(self._open)

    def _open(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._lock()
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={self._synchronous}")
        connection.execute("PRAGMA busy_timeout=5000")
        migrate(connection)
        return connection

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await self._run(connection.close)
        if self._lock_file is not None:
            self._lock_file.close()  # closing the file releases the lock
            self._lock_file = None

    def _lock(self) -> None:
        """Own the database: one engine (one process) per SQLite file, or task numbers and
        queues would clash. The lock lives as long as the open file, so a killed process
        releases it with its file descriptors."""
        if self._lock_file is not None:
            return
        lock_file = open(f"{self.path}.lock", "a+")  # noqa: SIM115 - held while open
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            raise DatabaseInUse(self.path) from None
        self._lock_file = lock_file

    async def load_unfinished(self) -> list[TaskRecord]:
        states = tuple(state.value for state in UNFINISHED)
        return await self._select(
            f"SELECT {COLUMNS} FROM tasks WHERE state IN (?, ?, ?) ORDER BY number", states
        )

    async def last_number(self) -> int:
        rows = await self._run(self._fetch, "SELECT max(number) FROM tasks", ())
        return int(rows[0][0] or 0)

    async def commit(
        self, changed: Collection[TaskRecord], deleted: Collection[str]
    ) -> Collection[str]:
        rows = [to_row(record) for record in changed]  # now: the store mutates them later
        await self._run(self._commit, rows, [(task_id,) for task_id in deleted])
        return ()

    def _commit(self, rows: list[tuple[Any, ...]], deleted: list[tuple[str]]) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        with db:  # commits, or rolls back if anything raises
            db.executemany(_UPSERT, rows)
            db.executemany("DELETE FROM tasks WHERE id = ?", deleted)

    async def get(self, task_id: str) -> TaskRecord | None:
        found = await self._select(f"SELECT {COLUMNS} FROM tasks WHERE id = ?", (task_id,))
        return found[0] if found else None

    async def get_by_number(self, number: int) -> TaskRecord | None:
        found = await self._select(f"SELECT {COLUMNS} FROM tasks WHERE number = ?", (number,))
        return found[0] if found else None

    async def find_key(self, key: str) -> TaskRecord | None:
        found = await self._select(f"SELECT {COLUMNS} FROM tasks WHERE key = ?", (key,))
        return found[0] if found else None

    async def query(
        self,
        state: TaskState | None,
        type: str | None,
        limit: int,
        before: int | None,
        owner: str | None = None,
    ) -> list[TaskRecord]:
        sql, args = query_sql(state, type, owner, before)
        return await self._select(sql, (*args, limit))

    async def counts(self) -> dict[tuple[str, TaskState], int]:
        rows = await self._run(self._fetch, COUNTS, ())
        return {(type_, TaskState(state)): count for type_, state, count in rows}

    async def purge(self, before: float, limit: int) -> dict[tuple[str, TaskState], int]:
        rows = await self._run(self._purge, before, limit)
        purged: dict[tuple[str, TaskState], int] = {}
        for type_, state in rows:
            purged[type_, TaskState(state)] = purged.get((type_, TaskState(state)), 0) + 1
        return purged

    def _purge(self, before: float, limit: int) -> list[tuple[Any, ...]]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        with db:  # commits, or rolls back if anything raises
            return db.execute(PURGE, (before, *_FINISHED, limit)).fetchall()

    async def _select(self, sql: str, args: tuple[Any, ...]) -> list[TaskRecord]:
        return [from_row(row) for row in await self._run(self._fetch, sql, args)]

    def _fetch(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, args).fetchall()


def query_sql(
    state: TaskState | None, type: str | None, owner: str | None, before: int | None
) -> tuple[str, list[Any]]:
    """The listing's SQL (newest first, ``LIMIT ?`` last) and its arguments but the limit.

    Every filter has an index ending in ``number``, so a page is an index range read in
    order, never a sort: it stays fast at millions of rows (a test checks the query plan).
    """
    where: list[str] = ["1=1"]
    args: list[Any] = []
    if state is not None:
        where.append("state = ?")
        args.append(state.value)
    if type is not None:
        where.append("type = ?")
        args.append(type)
    if owner is not None:
        where.append("owner = ?")
        args.append(owner)
    if before is not None:
        where.append("number < ?")
        args.append(before)
    sql = f"SELECT {COLUMNS} FROM tasks WHERE {' AND '.join(where)} ORDER BY number DESC LIMIT ?"
    return sql, args


def migrate(connection: sqlite3.Connection) -> None:
    """Bring the schema up to date, one transaction per step, recorded in schema_version."""
    connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = connection.execute("SELECT max(version) FROM schema_version").fetchone()
    version = row[0] or 0
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"database schema version {version} is newer than this oncue knows"
            f" ({len(MIGRATIONS)}); upgrade oncue"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        statements = [part.strip() for part in script.split(";") if part.strip()]
        connection.execute("BEGIN IMMEDIATE")
        with connection:  # commits, or rolls back if anything raises
            for statement in statements:
                connection.execute(statement)
            connection.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
