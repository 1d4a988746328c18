"""The PostgreSQL backend's SQL: the statements of a shared schema, its migrations, and the
transactions that run them on one connection (in a thread of postgres_pool.py's pool).

postgres.py decides what to run; this module imports without psycopg (each function imports
what it needs), kept apart as redis_lua.py is for the Redis backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..task import FINISHED, UNFINISHED
from .rows import COLUMN_COUNT, COLUMNS

KEY_PLACE = COLUMNS.replace(" ", "").split(",").index("key")  # its place in a row

if TYPE_CHECKING:
    import psycopg

NOW = "extract(epoch FROM clock_timestamp())"  # the database's clock: one for every node
LIVE = "('pending', 'running', 'retrying')"

# One row of a commit (SharedBackend's rules): a new task is inserted (owned, with a lease, if
# this node keeps it); an owner's write lands only while the row is still this node's; anyone
# else may only cancel an unfinished task or retry a failed one. The parameters after the
# columns: the new row's owner and lease (twice), keep the owner (bool, twice), an owner write
# (bool), this node. A row it did not write returns nothing: its id is lost.
RETURNING = ", ".join(f"tasks.{name.strip()}" for name in COLUMNS.split(","))
UPSERT = (
    f"INSERT INTO tasks ({COLUMNS}, node, lease, lease_until)"
    f" VALUES ({', '.join(['%s'] * COLUMN_COUNT)}, %s, %s, {NOW} + %s)"
    " ON CONFLICT (id) DO UPDATE SET priority=excluded.priority, state=excluded.state,"
    " attempts=excluded.attempts, run_at=excluded.run_at, started_at=excluded.started_at,"
    " finished_at=excluded.finished_at, result=excluded.result, error=excluded.error,"
    " worker=excluded.worker, progress=excluded.progress, history=excluded.history,"
    " node = CASE WHEN %s THEN tasks.node END,"
    " lease_until = CASE WHEN %s THEN tasks.lease_until END"
    " WHERE CASE WHEN %s THEN tasks.node = %s"
    f" ELSE (excluded.state = 'cancelled' AND tasks.state IN {LIVE})"
    " OR (excluded.state = 'pending' AND tasks.state = 'failed') END"
    " RETURNING id"
)
# A claim: the first `limit` claimable tasks in priority order, each held under a lease from
# now. It reads the head of each type's claimable tasks (index tasks_claimable_type): at most
# `limit` of each, the first `limit` of those taken. So a node that runs some types (every
# engine: its registry's) never reads the claimable tasks of other types, however many sit
# ahead. CLAIM_TYPES is given the types; CLAIM (any type) finds those that have claimable
# tasks by a loose index scan, one index descent per type. The parameters: the types
# (CLAIM_TYPES only), within (seconds a delayed task may be early), the limit twice, then the
# node and its default lease (twice).
CLAIMABLE = (
    "state IN ('pending', 'retrying')"
    f" AND (run_at IS NULL OR run_at <= {NOW} + %s)"
    f" AND (node IS NULL OR lease_until < {NOW})"
)
HEADS = (
    " LATERAL (SELECT id, priority, number FROM tasks WHERE tasks.type = runs.type"
    f" AND {CLAIMABLE} ORDER BY priority DESC, number LIMIT %s FOR UPDATE SKIP LOCKED) AS head"
    " ORDER BY head.priority DESC, head.number LIMIT %s)"
    f" UPDATE tasks SET node = %s, lease = %s, lease_until = {NOW} + %s"
    f" FROM picked WHERE tasks.id = picked.id RETURNING {RETURNING}"
)
CLAIM_TYPES = "WITH picked AS (SELECT head.id FROM unnest(%s::text[]) AS runs (type)," + HEADS
KINDS = (  # the types that have claimable tasks, the next one found from the last
    "WITH RECURSIVE kinds (type) AS ("
    "(SELECT type FROM tasks WHERE state IN ('pending', 'retrying') ORDER BY type LIMIT 1)"
    " UNION ALL SELECT (SELECT type FROM tasks WHERE state IN ('pending', 'retrying')"
    " AND type > kinds.type ORDER BY type LIMIT 1) FROM kinds WHERE kinds.type IS NOT NULL)"
)
CLAIM = KINDS + ", picked AS (SELECT head.id FROM kinds AS runs," + HEADS
RENEW = (
    f"UPDATE tasks SET lease_until = {NOW} + lease"
    f" WHERE node = %s AND id = ANY(%s) AND state IN {LIVE} RETURNING id"
)
LEASE = f"UPDATE tasks SET lease = %s, lease_until = {NOW} + %s WHERE node = %s AND id = ANY(%s)"
# Give tasks back (an expired lease, or a graceful stop): a running one is pending again, with
# the step in its history (kept as JSON text: drop the closing bracket, append the step).
RELEASE = (
    "UPDATE tasks SET node = NULL, lease_until = NULL,"
    " state = CASE WHEN state = 'running' THEN 'pending' ELSE state END,"
    " history = CASE WHEN state = 'running'"
    f" THEN left(history, -1) || ',[\"pending\",' || {NOW} || ']]' ELSE history END"
    f" WHERE state IN {LIVE} AND "
)
# The waiting tasks by priority: its WHERE is the claimable index's (tasks_claimable_type), so
# a scan of that partial index (the waiting tasks only, never the finished ones) answers it.
QUEUED_BY_PRIORITY = (
    "SELECT priority, count(*) FROM tasks WHERE state IN ('pending', 'retrying') GROUP BY priority"
)
PURGE = (
    "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks"
    " WHERE finished_at < %s AND state = ANY(%s) ORDER BY finished_at LIMIT %s)"
    " RETURNING type, state"
)
FINISHED_VALUES = sorted(state.value for state in FINISHED)
UNFINISHED_VALUES = sorted(state.value for state in UNFINISHED)
DELETE_FINISHED = (  # a delete that may remove only a finished task
    f"DELETE FROM tasks WHERE id = %s AND state = ANY('{{{','.join(FINISHED_VALUES)}}}')"
)

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
    # Many nodes: an owner and its lease per task; claims read the head of the claimable index
    """
    ALTER TABLE tasks ADD COLUMN node TEXT;
    ALTER TABLE tasks ADD COLUMN lease DOUBLE PRECISION;
    ALTER TABLE tasks ADD COLUMN lease_until DOUBLE PRECISION;
    CREATE INDEX tasks_claimable ON tasks (priority DESC, number)
        WHERE state IN ('pending', 'retrying');
    CREATE INDEX tasks_owned ON tasks (node) WHERE node IS NOT NULL;
    CREATE INDEX tasks_leased ON tasks (lease_until) WHERE node IS NOT NULL;
    CREATE SEQUENCE task_numbers INCREMENT BY 1024;
    SELECT setval('task_numbers', (SELECT coalesce(max(number), 0) + 1 FROM tasks), false);
    """,
    # a task's headers (JSON object of strings; NULL: none), fixed at submit like the payload
    """
    ALTER TABLE tasks ADD COLUMN headers TEXT;
    """,
    # Claims read each type's claimable head (CLAIM, CLAIM_TYPES), so a node never walks past
    # a backlog of types it does not run. The index they replace goes, so the planner cannot
    # pick it (with one type in the statistics it did, and read the whole backlog per type).
    """
    CREATE INDEX tasks_claimable_type ON tasks (type, priority DESC, number)
        WHERE state IN ('pending', 'retrying');
    DROP INDEX tasks_claimable;
    """,
]


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


# The health probe's own table: one row a node, written and deleted in one transaction.
PROBE_TABLE = "CREATE TABLE IF NOT EXISTS probe (node text PRIMARY KEY, data bytea NOT NULL)"
PROBE_BLOCKS = 4096  # of 16 random bytes: 64 KiB, pages a full disk has no room for


def probe_write(connection: psycopg.Connection[Any], node: str) -> None:
    """64 KiB of random bytes in ``node``'s row of the probe table, deleted in the same
    transaction: refused by a read-only server or a full disk; nothing is left behind."""
    with connection.transaction():
        connection.execute(PROBE_TABLE)
        connection.execute(
            "INSERT INTO probe SELECT %s, decode(string_agg(md5(random()::text), ''), 'hex')"
            " FROM generate_series(1, %s) ON CONFLICT (node) DO UPDATE SET data = excluded.data",
            (node, PROBE_BLOCKS),
        )
        connection.execute("DELETE FROM probe WHERE node = %s", (node,))


def fetch(
    connection: psycopg.Connection[Any], text: str, args: tuple[Any, ...]
) -> list[tuple[Any, ...]]:
    return connection.execute(text, args).fetchall()


def commit_rows(
    connection: psycopg.Connection[Any],
    rows: list[tuple[Any, ...]],
    deleted: list[tuple[str]],
    notices: list[tuple[str, str]],
) -> set[str]:
    """One transaction: the rows (UPSERT), the deletes and the notices; the ids of the rows
    written.

    A new task whose idempotency key another node's task took meanwhile is left out (lost):
    the transaction is tried again without it.
    """
    import psycopg

    try:
        return _commit_once(connection, rows, deleted, notices)
    except psycopg.errors.UniqueViolation as error:
        if error.diag.constraint_name != "tasks_key_key":
            raise
    keys = [row[KEY_PLACE] for row in rows if row[KEY_PLACE] is not None]
    taken = dict(connection.execute("SELECT key, id FROM tasks WHERE key = ANY(%s)", (keys,)))
    rows = [
        row for row in rows if row[KEY_PLACE] is None or taken.get(row[KEY_PLACE], row[0]) == row[0]
    ]
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
            cursor.executemany(DELETE_FINISHED, deleted)
        if notices and (written or deleted):
            cursor.executemany("SELECT pg_notify(%s, %s)", notices)
    return written


def execute(
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


def notify(connection: psycopg.Connection[Any], notices: list[tuple[str, str]]) -> None:
    with connection.transaction():
        connection.cursor().executemany("SELECT pg_notify(%s, %s)", notices)


def purge_rows(connection: psycopg.Connection[Any], before: float, limit: int) -> list[Any]:
    """Delete up to ``limit`` tasks finished before ``before``, oldest first; their types
    and states."""
    with connection.transaction():
        return connection.execute(PURGE, (before, FINISHED_VALUES, limit)).fetchall()
