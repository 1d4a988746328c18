"""The PostgreSQL listener's reconnects: doubling waits after failures, back to the shortest
once a connection had worked. The pump (the thread that LISTENs) is replaced, so no server is
needed; the MockClock measures the waits. The test waits on events, never on timers of its
own, so the clock cannot jump while a pump thread runs."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import trio

from oncue.actors.backends.base import Notice
from oncue.actors.backends.postgres import LISTEN_RETRY, PostgresBackend


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
    backend = PostgresBackend("postgresql://127.0.0.1/test")
    pump = ScriptedPump(hold_at=8)  # after 8 failures, a connection that works a while
    monkeypatch.setattr(backend, "_pump", pump)
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
