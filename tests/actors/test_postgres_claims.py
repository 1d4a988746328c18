"""The PostgreSQL claim reads the head of each type the node runs (index tasks_claimable_type,
schema version 5), never the backlog of types it does not run; the claim of any type finds
the types first; and a schema of version 4 is migrated in place."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from oncue.actors.backends.postgres import PostgresBackend
from oncue.actors.backends.postgres_pool import split_url
from oncue.actors.backends.postgres_sql import CLAIM_TYPES, MIGRATIONS, migrate

HEAD = 5000  # claimable tasks of a type nobody here runs, ahead of ours in claim order
OURS = 5000  # and as many of ours behind them
INSERT = (
    "INSERT INTO tasks (id, number, type, payload, priority, state, attempts, max_retries,"
    " timeout, created_at, history) SELECT %s || n, n, %s, 'null', %s, 'pending', 0, 3, 60, 0,"
    " '[]' FROM generate_series(%s::bigint, %s::bigint) AS n"
)


def connect(store: str) -> psycopg.Connection[Any]:
    url, schema = split_url(store)
    connection = psycopg.connect(url, autocommit=True)
    connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")  # type: ignore[arg-type]
    connection.execute(f"SET search_path TO {schema}")  # type: ignore[arg-type]
    return connection


def scanned(plan: dict[str, Any]) -> int:
    """The rows the scans of an EXPLAIN ANALYZE plan read, kept or thrown away."""
    read = 0
    if "Scan" in plan["Node Type"]:
        rows = plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)
        read = int(rows) * int(plan.get("Actual Loops", 1))
    return read + sum(scanned(child) for child in plan.get("Plans", []))


@pytest.mark.parametrize("analyzed", ["after both", "before ours"])
async def test_a_claim_by_type_skips_the_backlog_of_types_the_node_does_not_run(
    postgres_store, analyzed
) -> None:
    """`before ours`: the statistics know one type only, which made the planner read the
    backlog once per type through the index of every claimable task (now dropped)."""
    backend = PostgresBackend(postgres_store)
    backend.attach("echo-node", lambda type_: 30.0, runs={"echo", "double"})
    await backend.open()
    try:
        with connect(postgres_store) as connection:
            connection.execute(INSERT, ("s", "special", 5, 1, HEAD))  # higher priority, older
            if analyzed == "before ours":
                connection.execute("ANALYZE tasks")
            connection.execute(INSERT, ("e", "echo", 0, HEAD + 1, HEAD + OURS))
            if analyzed == "after both":
                connection.execute("ANALYZE tasks")
            with connection.transaction(force_rollback=True):
                args = (["double", "echo"], 0.0, 8, 8, "echo-node", 30.0, 30.0)
                [[explained]] = connection.execute(
                    "EXPLAIN (ANALYZE, FORMAT JSON) " + CLAIM_TYPES, args
                ).fetchall()
        plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
        assert "tasks_claimable_type" in json.dumps(plan)
        # Before: the head of the claimable index, filtering out all HEAD tasks of the other
        # type, or every one of ours read and sorted
        assert scanned(plan) < 100
        claimed = await backend.claim(8, 0.0)
        assert [record.id for record in claimed] == [f"e{n}" for n in range(HEAD + 1, HEAD + 9)]
    finally:
        await backend.close()


async def test_a_claim_of_any_type_takes_the_heads_of_every_type_in_claim_order(
    postgres_store,
) -> None:
    backend = PostgresBackend(postgres_store)
    backend.attach("any-node", lambda type_: 30.0)  # runs=None: any type
    await backend.open()
    try:
        with connect(postgres_store) as connection:
            connection.execute(INSERT, ("a", "alpha", 0, 1, 3))
            connection.execute(INSERT, ("b", "beta", 1, 4, 5))
            connection.execute(INSERT, ("c", "gamma", 0, 6, 6))
        claimed = await backend.claim(5, 0.0)
        assert [record.id for record in claimed] == ["b4", "b5", "a1", "a2", "a3"]
        assert [record.id for record in await backend.claim(5, 0.0)] == ["c6"]
    finally:
        await backend.close()


async def test_a_version_4_schema_is_migrated_to_claims_by_type(postgres_store) -> None:
    with connect(postgres_store) as connection:
        real = MIGRATIONS[:]
        try:
            MIGRATIONS[:] = real[:4]
            migrate(connection, split_url(postgres_store)[1])
        finally:
            MIGRATIONS[:] = real
        connection.execute(INSERT, ("s", "special", 5, 1, 50))
        connection.execute(INSERT, ("e", "echo", 0, 51, 52))
    backend = PostgresBackend(postgres_store)
    backend.attach("echo-node", lambda type_: 30.0, runs={"echo"})
    await backend.open()
    try:
        claimed = await backend.claim(10, 0.0)
        assert [record.id for record in claimed] == ["e51", "e52"]
    finally:
        await backend.close()
    with connect(postgres_store) as connection:
        [[version]] = connection.execute("SELECT max(version) FROM schema_version").fetchall()
        indexes = {
            row[0]
            for row in connection.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
            )
        }
    assert version == len(MIGRATIONS) == 5
    assert "tasks_claimable_type" in indexes
    assert "tasks_claimable" not in indexes  # the planner could prefer it, and read the backlog
