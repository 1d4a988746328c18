"""What one Redis submit_many flow costs, on both sides of the socket (docs/performance.md).

    python -m bench.redis_cost [N] [RUNS] [URL]

The bench's oncue-redis-batch flow (bench/engine.py: N no-op tasks, ``submit_many`` 1,000 a
call, every result read back with ``wait_many``), RUNS times in one engine, on a prefix of its
own (``redis_cost``, emptied first) of URL (default redis://127.0.0.1:6379/9). Each run
prints its wall time, this process's CPU time, the Redis server's CPU time (``INFO cpu``), the
commands run inside scripts and outside (``INFO commandstats``) and the bytes Redis received
(``INFO stats``); then the medians. CPU times are what a loaded machine distorts least: wall
time is the two added up when the machine is quiet (the store waits on Redis, Redis on the
store). Redis's counters are the whole server's: run it on a Redis nobody else uses.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import redis
import trio

from bench.engine import registry
from oncue.actors import Submission, open_engine

PREFIX = "redis_cost"


def server(client: redis.Redis) -> dict[str, Any]:
    """The server's counters: CPU seconds, bytes received, calls of each command."""
    cpu, stats = client.info("cpu"), client.info("stats")
    calls = {name[8:]: value["calls"] for name, value in client.info("commandstats").items()}
    return {
        "cpu": cpu["used_cpu_user"] + cpu["used_cpu_sys"],
        "bytes": stats["total_net_input_bytes"],
        "calls": calls,
    }


def difference(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    calls = {k: v - before["calls"].get(k, 0) for k, v in after["calls"].items()}
    scripts = calls.pop("evalsha", 0)
    calls.pop("info", None)  # ours
    return {
        "redis_cpu_ms": (after["cpu"] - before["cpu"]) * 1000,
        "received_kb": (after["bytes"] - before["bytes"]) / 1024,
        "scripts": scripts,
        "commands": sum(n for n in calls.values() if n > 0),  # inside scripts too
    }


async def run_once(engine: Any, client: redis.Redis, n: int) -> dict[str, Any]:
    before, cpu, began = server(client), time.process_time(), time.perf_counter()
    tasks = []
    for first in range(0, n, 1000):
        chunk = range(first, min(n, first + 1000))
        tasks += await engine.submit_many(Submission("bench.double", x) for x in chunk)
    done = await engine.wait_many([task.id for task in tasks])
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    assert [task.result[0] for task in done] == [2 * x for x in range(n)]
    figures = {"wall_ms": wall * 1000, "python_cpu_ms": cpu * 1000}
    figures |= difference(before, server(client))
    for task in tasks:
        await engine.delete(task.id)
    return figures


async def main(n: int, runs: int, url: str) -> None:
    with redis.Redis.from_url(url) as client:
        stale = list(client.scan_iter(match=f"{{{PREFIX}}}:*", count=1000))
        for start in range(0, len(stale), 1000):
            client.delete(*stale[start : start + 1000])
        store = f"{url}?prefix={PREFIX}"
        async with open_engine(registry=registry, workers=8, queue_size=10**6, store=store) as e:
            warm = await e.submit_many(Submission("bench.double", x) for x in range(20))
            await e.wait_many([task.id for task in warm])
            results = []
            for _ in range(runs):
                results.append(await run_once(e, client, n))
                print(" ".join(f"{k} {v:,.0f}" for k, v in results[-1].items()), flush=True)
    medians = {k: statistics.median(r[k] for r in results) for k in results[0]}
    print("median " + " ".join(f"{k} {v:,.0f}" for k, v in medians.items()))


if __name__ == "__main__":
    arguments = sys.argv[1:]
    count = int(arguments[0]) if arguments else 2000
    rounds = int(arguments[1]) if len(arguments) > 1 else 5
    trio.run(
        main, count, rounds, arguments[2] if len(arguments) > 2 else "redis://127.0.0.1:6379/9"
    )
