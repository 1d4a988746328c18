"""Redis killed (-9) and restarted mid-run: every accepted task completes (issue 17 item 4).

Before, a few tasks stayed pending for good: the restarted scheduler handed them to the asks
of the workers stopped with it (left in its mailbox), so nobody ran them while the node kept
renewing their leases. A private redis-server on its own port, started and stopped by pid.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import trio

from bench.chaos_servers import PrivateRedis, Skipped
from oncue.actors import (
    Engine,
    Registry,
    StoreUnavailable,
    Task,
    TaskContext,
    TaskState,
    open_engine,
)

pytest.importorskip("redis")

COUNT = 300
RESTARTS = 2
BOUND = 30.0  # seconds: a safety bound on every wait, never a timing assertion


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    try:
        server = PrivateRedis(tmp_path)  # the server bench/chaos.py attacks, on its own port
    except Skipped as reason:
        pytest.skip(str(reason))
    server.start()
    yield server
    server.kill()


async def test_every_task_completes_across_a_redis_kill_and_restart(private_redis) -> None:
    registry = Registry()
    ran = trio.Event()

    @registry.task("brief", max_retries=-1, retry_base=0.01, retry_cap=0.1)
    async def brief(ctx: TaskContext, payload: Any) -> Any:
        ran.set()  # the one of this round of the loop below
        await trio.sleep(0.002)
        return payload

    store = f"{private_redis.url}?prefix=restart"
    with trio.fail_after(2 * BOUND):
        async with open_engine(registry=registry, store=store, workers=8, lease=2.0) as engine:
            tasks = [await engine.submit("brief", number) for number in range(COUNT)]
            for _ in range(RESTARTS):
                await ran.wait()  # mid-run
                ran = trio.Event()
                await trio.to_thread.run_sync(restart, private_redis)
            finished = [await wait_through_outage(engine, task.id) for task in tasks]
    assert {task.state for task in finished} == {TaskState.COMPLETED}
    assert sorted(task.result for task in finished) == list(range(COUNT))


async def wait_through_outage(engine: Engine, task_id: str) -> Task:
    """`engine.wait(task_id)`, asked again while the store answers 'unavailable' (it does
    until Redis is back and the store has reloaded)."""
    while True:
        try:
            return await engine.wait(task_id)
        except StoreUnavailable:
            await trio.sleep(0.05)  # a refusal, asked again: the store answers it at once


def restart(server: PrivateRedis) -> None:
    """kill -9, then start again on the same port and append-only file."""
    server.kill()
    server.start()
