"""The procrastinate app for the bench, on PostgreSQL (BENCH_PG_DSN, database oncue_bench).

The worker runs `python -m procrastinate --app=bench.peers.procrastinate_tasks.app worker
--concurrency N` and wakes on LISTEN/NOTIFY.  procrastinate stores no results: the driver reads
job status and the `started` event from its tables.
"""

from __future__ import annotations

import asyncio

from procrastinate import App, PsycopgConnector

from bench.peers._common import PG_DSN

app = App(connector=PsycopgConnector(conninfo=PG_DSN))


@app.task(name="double")
async def double(x: int) -> int:
    return 2 * x


@app.task(name="nap")
async def nap(x: int) -> int:
    await asyncio.sleep(0.01)
    return x
