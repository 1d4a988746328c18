"""The SQLite backend: stdlib sqlite3 in WAL mode on one dedicated thread, one transaction a batch.

The store actor calls it; every call runs on the backend's own thread (one_thread.py), in
order, so the event loop never blocks on the disk and the connection is used by one thread at
a time. A batch whose rows are all at hand is one statement (see commit).
WAL with synchronous=NORMAL survives a killed process (kill -9) without losing a committed
transaction; ``?synchronous=full`` also survives a power cut, at a cost per commit.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import sqlite3
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, TextIO, TypeVar

from ..cores.record import TaskRecord
from ..errors import BackendError, BackendFull, BackendUnavailable, DatabaseInUse
from ..task import UNFINISHED, TaskState
from .one_thread import OneThread
from .rows import COLUMNS, finished_since_sql, from_row, to_row, update_row
from .sqlite_sql import (
    CHUNK,
    COUNTS,
    FINISHED_VALUES,
    PURGE,
    execute_rows,
    insert_missing,
    insert_sql,
    migrate,
    query_sql,
    update_sql,
)
from .translate import os_error, translating

T = TypeVar("T")

MANY_AT_ONCE = 500  # ids per SELECT of get_many (SQLite allows 32,766 parameters)
# Checkpoint once the WAL holds this many pages (~40 MB), not SQLite's 1,000 (~4 MB): with
# synchronous=normal the fsyncs happen at checkpoints, inside the commit that triggers one, and
# the pages every batch rewrites (the ends of the indexes) are copied back once per checkpoint.
# Measured: 40-row commits 0.64x the wall time (0.86x the CPU) on a busy machine. The WAL
# file keeps that size on disk.
WAL_PAGES = 10_000
PROBE_BYTES = 64 * 1024  # what a probe writes: pages a full disk has no room for


def _as_null(value: None) -> None:
    return value


# sqlite3 binds None through its adaptation protocol: with no adapter registered for it, each
# None looks up __adapt__ on a type, which formats an AttributeError and drops it (~0.2 us a
# None; a new row has 10 of its 21 columns None). An adapter found in the registry is called
# instead. It returns None unchanged (NULL, as before), for every sqlite3 user of the process:
# registered only if no one registered another. Measured: a 1-row upsert 37.5 -> 35.5 us.
sqlite3.adapters.setdefault((type(None), sqlite3.PrepareProtocol), _as_null)


def _whole_rows_at_hand(changed: Collection[TaskRecord], top: int) -> bool:
    """Whether ``changed`` commits as one statement of whole rows: few enough for one, and
    every record new or with its payload's JSON text still at hand (what admission made; a
    record read back from the file would have its payload encoded again for nothing)."""
    if not changed or len(changed) > CHUNK:
        return False
    return all(record.number > top or record.payload_json is not None for record in changed)


def classify(error: Exception) -> BackendError | None:
    """sqlite3's errors as BackendErrors: a full disk, or a database that cannot be used now
    (locked, I/O error, corrupt). Misuse (ProgrammingError, IntegrityError) is a bug: kept."""
    if isinstance(
        error, sqlite3.ProgrammingError | sqlite3.IntegrityError | sqlite3.InterfaceError
    ):
        return None
    if isinstance(error, sqlite3.DatabaseError):
        if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in str(error):
            return BackendFull(f"the SQLite database cannot grow: {error}", error)
        return BackendUnavailable(f"SQLite: {error}", error)
    return os_error(error)


@translating(classify)
class SqliteBackend:
    """Tasks in one SQLite file (created, and its schema migrated, on open)."""

    durable = True
    shared = False

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL") -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be off, normal, full or extra, got {synchronous!r}")
        self.path = str(path)
        self._synchronous = synchronous.upper()
        self._thread = OneThread(f"oncue-sqlite {self.path}")
        self._connection: sqlite3.Connection | None = None
        self._lock_file: TextIO | None = None
        # Numbers grow: a record numbered above every committed one is new (an INSERT), any
        # other exists already (an UPDATE of what a transition changes; see _commit).
        self._top_number = 0

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        # Abandoned on cancel (a commit past its deadline): the thread finishes it before the
        # next call, so the connection is never shared (one_thread.py).
        return await self._thread.run(function, *args)

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
        with contextlib.ExitStack() as on_failure:  # e.g. a schema newer than this oncue
            on_failure.callback(connection.close)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={self._synchronous}")
            connection.execute("PRAGMA busy_timeout=5000")
            connection.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
            migrate(connection)
            top = connection.execute("SELECT max(number) FROM tasks").fetchone()[0]
            self._top_number = top or 0
            on_failure.pop_all()
        return connection

    async def close(self) -> None:
        try:
            if self._connection is not None:
                connection, self._connection = self._connection, None
                await self._run(connection.close)
        finally:
            self._thread.stop()  # even if cancelled waiting for an abandoned commit's thread
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
        self._top_number = int(rows[0][0] or 0)
        return self._top_number

    async def commit(
        self, changed: Collection[TaskRecord], deleted: Collection[str]
    ) -> Collection[str]:
        # Rows now: the store mutates the records later.
        top = self._top_number
        if not deleted and _whole_rows_at_hand(changed, top):
            rows = [to_row(record) for record in changed]
            await self._run(self._upsert, rows)
            self._top_number = max(top, max(row[1] for row in rows))
            return ()
        new = [to_row(record) for record in changed if record.number > top]
        updates = [update_row(record) for record in changed if record.number <= top]
        if new:
            top = max(top, max(row[1] for row in new))
        await self._run(self._commit, new, updates, [(task_id,) for task_id in deleted], changed)
        self._top_number = top
        return ()

    def _upsert(self, rows: list[tuple[Any, ...]]) -> None:
        """One statement, so its own transaction: a new row is inserted, an existing one
        has what a transition may change updated, a missing one is written whole (as
        insert_missing does), and the GIL is handed back once, not once a statement."""
        self._db.execute(insert_sql(len(rows)), tuple(itertools.chain.from_iterable(rows)))

    def _commit(
        self,
        new: list[tuple[Any, ...]],
        updates: list[tuple[Any, ...]],
        deleted: list[tuple[str]],
        changed: Collection[TaskRecord],
    ) -> None:
        # Every statement is a hand-back of the GIL, taken again after it (waiting for the
        # event loop's thread while that runs Python): COMMIT as a statement, not commit()'s
        # three, and no DELETE when nothing is deleted.
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            execute_rows(db, insert_sql, new)
            if execute_rows(db, update_sql, updates) < len(updates):
                insert_missing(db, {row[0] for row in updates}, changed)
            if deleted:
                db.executemany("DELETE FROM tasks WHERE id = ?", deleted)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # a failed COMMIT (a full disk) leaves it open
                db.execute("ROLLBACK")
            raise

    async def probe(self) -> None:
        """Write something real (a committed blob of PROBE_BYTES): after a failed commit,
        whether the database takes writes again. Committing nothing succeeds on a full disk.
        """
        await self._run(self._probe)

    def _probe(self) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        with db:
            db.execute("CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, data BLOB)")
            db.execute("INSERT OR REPLACE INTO probe VALUES (1, randomblob(?))", (PROBE_BYTES,))

    async def get(self, task_id: str) -> TaskRecord | None:
        found = await self._select(f"SELECT {COLUMNS} FROM tasks WHERE id = ?", (task_id,))
        return found[0] if found else None

    async def get_many(self, ids: Sequence[str]) -> list[TaskRecord]:
        return [from_row(row) for row in await self._run(self._fetch_many, ids)]

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

    async def finished_since(
        self, after: float, limit: int, owner: str | None = None
    ) -> list[TaskRecord]:
        args = (after, limit) if owner is None else (after, owner, limit)
        return await self._select(finished_since_sql(owner), args)

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
            return db.execute(PURGE, (before, *FINISHED_VALUES, limit)).fetchall()

    async def _select(self, sql: str, args: tuple[Any, ...]) -> list[TaskRecord]:
        return [from_row(row) for row in await self._run(self._fetch, sql, args)]

    def _fetch(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, args).fetchall()

    def _fetch_many(self, ids: Sequence[str]) -> list[tuple[Any, ...]]:
        """The rows of these ids, MANY_AT_ONCE a statement, in one visit to the thread."""
        rows: list[tuple[Any, ...]] = []
        for first in range(0, len(ids), MANY_AT_ONCE):
            chunk = tuple(ids[first : first + MANY_AT_ONCE])
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {COLUMNS} FROM tasks WHERE id IN ({marks})"
            rows += self._db.execute(sql, chunk).fetchall()
        return rows
