"""One engine flow for counting instructions a task with callgrind (docs/performance.md).

    valgrind --tool=callgrind python -m bench.cost_flow VARIANT N [LINGER]

VARIANT: ``many`` (submit_many, 1,000 a call), ``results`` (the same, then every result
read back with ``wait_many`` and checked, as bench/engine.py does), ``nowait`` (submit_nowait
per task), ``one`` (one awaited submit() per task), ``sqlite`` (submit_many on a fresh SQLite
file), ``http`` (``POST /api/v1/tasks`` through the app in process, 32 callers, as
bench/http_inproc.py does: the app's and the engine's instructions a request, not
Hypercorn's; the event hub follows without a linger), ``http-batch`` (``POST
/api/v1/tasks/batch``, 100 tasks a request, from 8 callers as the served benchmark's 8
connections; N counts tasks). Count with N
and with a smaller N and divide the difference by the difference in tasks, so start-up cancels
out. LINGER: the scheduler's linger in seconds (default: what open_engine gives on a real
clock, cores/linger.py's LINGER; a MockClock alone would turn it off). The flow runs on a
MockClock that jumps when everything waits, and ``time.time`` reads that clock, so the
engine's timer-driven choices are the same every run (counts agree to 0.1%).
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
from oncue.actors.cores.linger import LINGER
from oncue.actors.engine.guard import BackendGuard

CLOCK = trio.testing.MockClock(autojump_threshold=5.0 if sys.argv[1:2] == ["sqlite"] else 0)
EPOCH = 1.7e9
BATCH = 100  # tasks a request of the http-batch variant

registry = Registry()


@registry.task("noop", timeout=60)
async def noop(ctx: TaskContext, x: Any) -> Any:
    return x


async def main(variant: str, count: int, linger: float = LINGER) -> None:
    store = "memory://"
    if variant == "sqlite":
        store = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "tasks.db")
    options = {"workers": 8, "queue_size": 200_000, "store": store, "linger": linger}
    async with open_engine(registry=registry, **options) as engine:
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
        elif variant == "http-batch":
            await http_requests(engine, count // BATCH, batch=BATCH, callers=8)
        else:
            for x in range(count):
                await engine.submit("noop", x)
        await engine.wait_idle()


async def http_requests(
    engine: Any, count: int, batch: int = 0, callers: int | None = None
) -> None:
    """`count` requests through the served app (the gateway's direct route): single submits,
    or batches of `batch` tasks; from `callers` concurrent callers (default: CONCURRENCY)."""
    import json

    from bench.http_inproc import CONCURRENCY, call, scope_for
    from oncue.http import hub
    from oncue.http.app import create_app

    # On the MockClock the event hub's linger would not end while the flow keeps every task
    # busy: the hub (and the task metrics it feeds) would follow nothing until the end. With
    # none it takes each commit's events as a served hub takes 50 ms of them.
    hub.LINGER = 0.0
    app = create_app(engine)
    if batch:
        tasks = [{"type": "noop", "payload": n} for n in range(batch)]
        body = json.dumps({"tasks": tasks}).encode()
        scope = scope_for("/api/v1/tasks/batch", body)
    else:
        body = json.dumps({"type": "noop", "payload": 1}).encode()
        scope = scope_for("/api/v1/tasks", body)
    callers = callers or CONCURRENCY

    async def caller(each: int) -> None:
        for _ in range(each):
            await call(app, scope, body)

    async with app.test_app():
        async with trio.open_nursery() as nursery:
            for _ in range(callers):
                nursery.start_soon(caller, count // callers)
        await engine.wait_idle()


if __name__ == "__main__":
    time.time = lambda: EPOCH + CLOCK.current_time()  # wall clock from the mock clock
    BackendGuard.commit_deadline = 1e9  # valgrind makes a commit 50x slower: never failing
    linger = float(sys.argv[3]) if len(sys.argv) > 3 else LINGER
    trio.run(main, sys.argv[1], int(sys.argv[2]), linger, clock=CLOCK)
