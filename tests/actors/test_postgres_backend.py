"""What the PostgreSQL backend does under trio beyond the contract suites: an abandoned query
is cancelled on the server, and the listener reconnects with backoff."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable

import pytest
import trio

from oncue.actors.backends import postgres
from oncue.actors.backends.base import Notice
from oncue.actors.backends.postgres import PostgresBackend
from oncue.actors.backends.postgres_listen import LISTEN_RETRY
from oncue.actors.backends.postgres_sql import fetch


async def test_a_query_abandoned_by_a_cancel_is_cancelled_on_the_server(
    autojump_clock, postgres_store
) -> None:
    """trio abandons the thread at once; the backend then cancels the server's query, so the
    connection goes back to the pool instead of sleeping on for a minute."""
    tag = secrets.token_hex(8)  # this test's query, whatever else runs on the server
    backend = PostgresBackend(postgres_store)
    backend.attach("canceller", lambda type_: 30.0)
    await backend.open()
    try:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(backend._pool.run, fetch, f"SELECT pg_sleep(60) -- {tag}", ())
                await until_sleeping(backend, tag, count=1)
                scope.cancel()
        assert scope.cancelled_caught
        await until_sleeping(backend, tag, count=0)  # cancelled on the server, not just abandoned
        assert await backend._pool.run(fetch, "SELECT 2", ()) == [(2,)]
    finally:
        await backend.close()


async def until_sleeping(backend: PostgresBackend, tag: str, count: int) -> None:
    """Until ``count`` sessions run the tagged pg_sleep on the server (polls pg_stat_activity)."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND state = 'active'"
    for _ in range(3000):  # each a round trip: seconds of real time in all
        if (await backend._pool.run(fetch, query, (f"SELECT pg_sleep(%-- {tag}",)))[0][0] == count:
            return
        await trio.sleep(0.01)
    raise AssertionError(f"never {count} sessions in pg_sleep")


class ScriptedPump:
    """Each call fails at once, except call number ``hold_at`` (from 0), which first stays
    connected until the test lets it go, as a connection that worked for a while."""

    def __init__(self, hold_at: int) -> None:
        self.calls: list[float] = []  # trio time of each connection attempt
        self.failed: list[float] = []  # and of its failure
        self.hold_at = hold_at
        self.release = threading.Event()
        self._called = trio.Event()

    def __call__(self, deliver: Callable[[Notice], None], stop: threading.Event) -> None:
        trio.from_thread.run_sync(self._note, self.calls)
        if len(self.calls) - 1 == self.hold_at:
            self.release.wait(timeout=30)
        trio.from_thread.run_sync(self._note, self.failed)
        raise OSError("connection refused")

    def _note(self, times: list[float]) -> None:
        times.append(trio.current_time())
        self._called.set()
        self._called = trio.Event()

    async def until_called(self, times: int) -> None:
        while len(self.calls) < times:
            await self._called.wait()


async def test_the_listener_backs_off_doubling_and_starts_over_after_a_good_connection(
    autojump_clock, monkeypatch
) -> None:
    """The pump (the thread that LISTENs) is replaced, so no server is needed. The test waits
    on events, never on timers of its own, so the clock cannot jump while a pump runs."""
    backend = PostgresBackend("postgresql://127.0.0.1/test")
    pump = ScriptedPump(hold_at=8)  # after 8 failures, a connection that works a while
    monkeypatch.setattr(postgres, "pump_notices", lambda *args: pump(*args[-2:]))
    shortest, longest = LISTEN_RETRY
    async with trio.open_nursery() as nursery:
        nursery.start_soon(backend.listen, lambda notice: None)
        await pump.until_called(9)
        await trio.sleep(longest * 2)
        pump.release.set()
        await pump.until_called(11)
        nursery.cancel_scope.cancel()
    waits = [
        start - failed for failed, start in zip(pump.failed[:10], pump.calls[1:11], strict=True)
    ]
    doubling = [min(shortest * 2**attempt, longest) for attempt in range(7)]
    assert waits[:7] == pytest.approx(doubling)
    assert pump.failed[8] - pump.calls[8] > longest  # this connection worked a while...
    assert waits[8:10] == pytest.approx([shortest, shortest * 2])  # ...so start over


async def test_the_queue_by_priority_is_read_from_the_claimable_index(postgres_store) -> None:
    """What keeps /api/v1/stats cheap at a million rows: the waiting tasks' partial index
    serves it (the finished tasks are never visited; an index-only scan once vacuumed)."""
    from oncue.actors.backends.postgres_sql import QUEUED_BY_PRIORITY

    backend = PostgresBackend(postgres_store)
    backend.attach("planner", lambda type_: 30.0)
    await backend.open()

    def plan(connection: object, text: str) -> str:
        connection.execute("SET enable_seqscan = off")  # type: ignore[attr-defined]
        rows = connection.execute(f"EXPLAIN {text}").fetchall()  # type: ignore[attr-defined]
        connection.execute("RESET enable_seqscan")  # type: ignore[attr-defined]
        return " / ".join(row[0] for row in rows)

    try:
        found = await backend._pool.run(plan, QUEUED_BY_PRIORITY)
    finally:
        await backend.close()
    assert "on tasks_claimable_type" in found, found
    assert "Seq Scan" not in found, found
