"""A real PostgreSQL or Redis that answers reads but refuses writes keeps the engine up,
answering 'unavailable' with the reason, without a false recovery, until it takes writes
again; then the engine recovers on its own (issue 17 items 3 and 4).

The store's probe writes something real (backends' ``probe()``): committing nothing succeeds
on a read-only PostgreSQL or a Redis out of memory, so the store used to declare the backend
recovered, reload and fail again, over and over. Real servers, real time: the faults are kept
to what this test owns (triggers in its own PostgreSQL schema; a private redis-server).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import pytest
import trio
from test_outages import store_restarts
from test_redis_restart import private_redis  # noqa: F401 (a fixture)

from oncue.actors import Engine, LifecycleEvent, Registry, StoreUnavailable, open_engine
from oncue.http.app import create_app

REFUSING = 2.0  # seconds of refused writes: several probes (0.05 s, then doubling)
BOUND = 30.0  # seconds: a safety bound on every wait, never a timing assertion


async def ride_out_refused_writes(
    url: str,
    registry: Registry,
    refuse: Callable[[], None],
    accept: Callable[[], None],
    reason: str,
) -> None:
    """Submit while ``refuse``d: StoreUnavailable naming ``reason`` (and /health: 503 with
    it), and no store restart;
    once ``accept``ed, the engine takes work again by itself (one restart: the reload)."""
    events: list[LifecycleEvent] = []
    async with open_engine(
        registry=registry, store=url, node="probed", observer=events.append
    ) as engine:
        with trio.fail_after(BOUND):
            assert (await engine.wait((await engine.submit("double", 1)).id)).result == 2
        refuse()
        try:
            for _ in range(int(REFUSING / 0.25)):
                with pytest.raises(StoreUnavailable) as raised:
                    await engine.submit("double", 2)
                assert reason in str(raised.value), raised.value
                await trio.sleep(0.25)
            assert store_restarts(events) == 0  # no false recovery: the probe writes
            health = await create_app(engine).test_client().get("/health")
            assert health.status_code == 503
            assert reason in (await health.get_json())["reason"]
        finally:
            accept()
        with trio.fail_after(BOUND):
            task = await patiently(engine, lambda: engine.submit("double", 4))
            assert (await engine.wait(task.id)).result == 8
    assert store_restarts(events) == 1


async def patiently(engine: Engine, call: Callable[[], Awaitable[object]]) -> object:
    while True:
        try:
            return await call()
        except StoreUnavailable:
            await trio.sleep(0.1)


@pytest.fixture
def admin(postgres_store: str) -> Iterator[tuple[str, object]]:
    """A connection to the test's own schema, for what the test does to it."""
    import psycopg

    from oncue.actors.backends.postgres_pool import split_url

    url, schema = split_url(postgres_store)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")  # type: ignore[arg-type]
        connection.execute(f"SET search_path TO {schema}")  # type: ignore[arg-type]
        yield postgres_store, connection


async def test_a_read_only_postgresql_keeps_the_engine_up_until_it_takes_writes(
    admin, registry
) -> None:
    from oncue.actors.backends.postgres_sql import PROBE_TABLE

    url, connection = admin
    tables = ("tasks", "probe")

    def refuse() -> None:  # as a standby or default_transaction_read_only would, here only
        connection.execute(PROBE_TABLE)
        connection.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " RAISE EXCEPTION 'cannot execute % in a read-only transaction', TG_OP"
            " USING ERRCODE = 'read_only_sql_transaction'; END $$"
        )
        for table in tables:
            connection.execute(
                f"CREATE TRIGGER refuse BEFORE INSERT OR UPDATE OR DELETE ON {table}"
                " FOR EACH STATEMENT EXECUTE FUNCTION refuse()"
            )

    def accept() -> None:
        connection.execute("DROP FUNCTION IF EXISTS refuse() CASCADE")

    await ride_out_refused_writes(url, registry, refuse, accept, "read-only")


async def test_a_redis_out_of_memory_keeps_the_engine_up_until_it_takes_writes(
    private_redis,  # noqa: F811
    registry,
) -> None:
    import redis

    server = redis.Redis(port=private_redis.port)

    def refuse() -> None:  # a private server: nobody else's writes are refused
        server.config_set("maxmemory-policy", "noeviction")
        server.config_set("maxmemory", 1)

    def accept() -> None:
        server.config_set("maxmemory", 0)

    try:
        await ride_out_refused_writes(private_redis.url, registry, refuse, accept, "memory")
    finally:
        server.close()
