"""One engine flow for counting instructions a task with callgrind (docs/performance.md).

    valgrind --tool=callgrind python -m bench.cost_flow VARIANT N

VARIANT: ``many`` (submit_many, 1,000 a call), ``results`` (the same, then every result
read back with ``wait_many`` and checked, as bench/engine.py does), ``nowait`` (submit_nowait
per task), ``one`` (one awaited submit() per task), ``sqlite`` (submit_many on a fresh SQLite
file), ``http`` (``POST /api/v1/tasks`` through the app in process, 32 callers, as
bench/http_inproc.py does: the app's and the engine's instructions a request, not
Hypercorn's). Count with N
and with a smaller N and divide the difference by the difference in tasks, so start-up cancels
out. The flow runs on a MockClock that jumps when everything waits, and ``time.time`` reads
that clock, so the engine's timer-driven choices are the same every run (counts agree to 0.1%).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

import trio
import trio.lowlevel
import trio.testing

from oncue.actors import Registry, Submission, TaskContext, open_engine
from oncue.actors.engine.guard import BackendGuard

CLOCK = trio.testing.MockClock(autojump_threshold=5.0 if sys.argv[1:2] == ["sqlite"] else 0)
EPOCH = 1.7e9

registry = Registry()


@registry.task("noop", timeout=60)
async def noop(ctx: TaskContext, x: Any) -> Any:
    return x


async def main(variant: str, count: int) -> None:
    store = "memory://"
    if variant == "sqlite":
        store = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "tasks.db")
    async with open_engine(registry=registry, workers=8, queue_size=200_000, store=store) as engine:
        if variant in ("many", "sqlite", "results"):
            tasks = []
            for first in range(0, count, 1000):
                chunk = range(first, min(count, first + 1000))
                tasks += await engine.submit_many(Submission("noop", x) for x in chunk)
            if variant == "results":
                done = await engine.wait_many([task.id for task in tasks])
                assert [task.result for task in done] == list(range(count))
                return
        elif variant == "nowait":
            for x in range(count):
                while True:
                    try:
                        engine.submit_nowait("noop", x)
                        break
                    except trio.WouldBlock:
                        await trio.lowlevel.checkpoint()
        elif variant == "http":
            await http_requests(engine, count)
        else:
            for x in range(count):
                await engine.submit("noop", x)
        await engine.wait_idle()


async def http_requests(engine: Any, count: int) -> None:
    """`count` single submits through the served app (the gateway's direct route)."""
    import json

    from bench.http_inproc import CONCURRENCY, call, scope_for
    from oncue.http.app import create_app

    app = create_app(engine)
    body = json.dumps({"type": "noop", "payload": 1}).encode()
    scope = scope_for("/api/v1/tasks", body)

    async def caller(each: int) -> None:
        for _ in range(each):
            await call(app, scope, body)

    async with app.test_app():
        async with trio.open_nursery() as nursery:
            for _ in range(CONCURRENCY):
                nursery.start_soon(caller, count // CONCURRENCY)
        await engine.wait_idle()


if __name__ == "__main__":
    time.time = lambda: EPOCH + CLOCK.current_time()  # wall clock from the mock clock
    BackendGuard.commit_deadline = 1e9  # valgrind makes a commit 50x slower: never failing
    trio.run(main, sys.argv[1], int(sys.argv[2]), clock=CLOCK)
