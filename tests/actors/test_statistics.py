"""engine.statistics(): trio's local, synchronous introspection (no message to any actor)."""

from __future__ import annotations

import math

from oncue.actors import EngineStatistics, MailboxStatistics, open_engine


async def test_statistics_reports_the_pool_and_the_mailboxes(registry) -> None:
    async with open_engine(registry=registry, workers=3) as engine:
        statistics = engine.statistics()
        assert isinstance(statistics, EngineStatistics)
        assert statistics.workers == 3
        assert statistics.closing is False
        assert statistics.durable is False
        assert statistics.node is None
        assert isinstance(statistics.store, MailboxStatistics)
        assert statistics.store.path.endswith("store")
        assert statistics.scheduler.path.endswith("scheduler")
        assert statistics.store.closed is False
        assert statistics.store.capacity > 0 or statistics.store.capacity == math.inf
        await engine.resize(5)
        assert engine.statistics().workers == 5


async def test_statistics_counts_what_waits_without_asking_anyone(registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        await engine.pause()
        # Nothing has run since these were handed over: they wait in the engine and the store's
        # mailbox, and statistics() sees them without a message (it is synchronous).
        for n in range(5):
            engine.submit_nowait("double", n)
        seen = engine.statistics()
        assert seen.nowait_pending + seen.store.queued >= 1
        assert seen.nowait_pending == 5
        await engine.resume()
        await engine.wait_idle()
        after = engine.statistics()
        assert after.nowait_pending == 0
        assert after.store.queued == 0
        assert after.store.in_flight == 0


async def test_statistics_says_closing_once_shutdown_began(registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        await engine.submit("double", 1)
        await engine.shutdown()
        assert engine.statistics().closing is True


async def test_a_mailbox_counts_queued_messages_and_asks_in_flight() -> None:
    from oncue.actors import Mailbox

    mailbox = Mailbox("probe", size=4)
    await mailbox.ref.tell("a")
    await mailbox.ref.tell("b")
    assert mailbox.ref.statistics() == MailboxStatistics(
        path="probe", queued=2, capacity=4, in_flight=0, closed=False
    )
    mailbox.close()
    assert mailbox.ref.statistics().closed is True
