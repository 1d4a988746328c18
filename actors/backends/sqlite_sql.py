"""The SQLite backend's SQL: its schema and migrations, the statements that write many rows
at once, and the listing's query (which the PostgreSQL backend shares).

sqlite.py runs them on its connection, in its thread; kept apart as postgres_sql.py is.
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections.abc import Callable, Collection
from typing import Any

from ..cores.record import TaskRecord
from ..task import FINISHED, TaskState
from .rows import COLUMN_COUNT, COLUMNS, MUTABLE, to_row

CHUNK = 128  # rows per statement at most (21 columns: far below SQLite's 32,766 parameters)
_ROW = f"({', '.join('?' * COLUMN_COUNT)})"
_CHANGE = f"({', '.join('?' * (1 + len(MUTABLE)))})"


@functools.cache
def insert_sql(count: int) -> str:
    """Insert ``count`` whole rows (to_row), overwriting what a transition may change if the
    id exists."""
    return (
        f"INSERT INTO tasks ({COLUMNS}) VALUES {', '.join([_ROW] * count)}"
        " ON CONFLICT(id) DO UPDATE SET "
        + ", ".join(f"{name} = excluded.{name}" for name in MUTABLE)
    )


@functools.cache
def update_sql(count: int) -> str:
    """Update ``count`` tasks by id with what a transition may change (update_row)."""
    return (
        "UPDATE tasks SET "
        + ", ".join(f"{name} = v.column{place}" for place, name in enumerate(MUTABLE, start=2))
        + f" FROM (VALUES {', '.join([_CHANGE] * count)}) AS v WHERE tasks.id = v.column1"
    )


def execute_rows(db: sqlite3.Connection, sql: Callable[[int], str], rows: list[Any]) -> int:
    """Run ``sql`` over ``rows``, many rows a statement; how many rows it changed.

    One statement per row (executemany) pays sqlite3's per-statement work on every row (in the
    engine, ~29 us of CPU a row against ~17 us this way); chunks of power-of-two sizes keep
    the statements few and their texts cached.
    """
    changed = 0
    start, size = 0, CHUNK
    while start < len(rows):
        while size > len(rows) - start:
            size //= 2
        part = itertools.chain.from_iterable(rows[start : start + size])
        changed += db.execute(sql(size), tuple(part)).rowcount
        start += size
    return changed


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
    # a task's headers (JSON object of strings; NULL: none), fixed at submit like the payload
    """
    ALTER TABLE tasks ADD COLUMN headers TEXT;
    """,
    # A listing filtered on type and status read the type's index and skipped the other
    # statuses: 172 ms at 1M tasks for a combination with no match (the whole type walked;
    # bench/dashboard.py). With number last, both filters are one range read in order; counts()
    # scans it as it scanned (type, state), which it replaces.
    """
    CREATE INDEX tasks_type_state_number ON tasks (type, state, number);
    DROP INDEX tasks_type_state;
    """,
]
COUNTS = "SELECT type, state, count(*) FROM tasks GROUP BY type, state"
FINISHED_VALUES = tuple(sorted(state.value for state in FINISHED))
# Retention: the oldest finished tasks first, through the partial index on finished_at (the
# unary + keeps the planner off the state index, which would read every finished row and sort).
PURGE = (
    "DELETE FROM tasks WHERE rowid IN (SELECT rowid FROM tasks"
    " WHERE finished_at < ? AND +state IN (?, ?, ?) ORDER BY finished_at LIMIT ?)"
    " RETURNING type, state"
)


def insert_missing(db: sqlite3.Connection, ids: set[str], changed: Collection[TaskRecord]) -> None:
    """Write in full the records an UPDATE missed: old records that were never committed, or
    were deleted meanwhile (a caller's order the numbers cannot tell)."""
    found = set()
    for task_id in ids:
        if db.execute("SELECT 1 FROM tasks WHERE id = ?", (task_id,)).fetchone():
            found.add(task_id)
    execute_rows(db, insert_sql, [to_row(r) for r in changed if r.id in ids and r.id not in found])


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
