"""arq functions and worker settings for the bench (Redis db from BENCH_REDIS_URL).

The worker runs `python -m arq bench.peers.arq_tasks.WorkerSettings`; ARQ_MAX_JOBS sets
`max_jobs`.  `poll_delay` is 0.01 s: the 0.5 s default caps arq near 200 tasks/s when its
queue runs dry between polls (measured, see shared PEERS.md).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, ClassVar
from urllib.parse import urlparse

from arq.connections import RedisSettings

from bench.peers._common import REDIS_URL


def redis_settings() -> RedisSettings:
    url = urlparse(REDIS_URL)
    database = int(url.path.strip("/") or 0)
    return RedisSettings(host=url.hostname or "127.0.0.1", port=url.port or 6379, database=database)


async def double(ctx: dict[str, Any], x: int) -> list[Any]:
    return [2 * x, time.time()]


async def nap(ctx: dict[str, Any], x: int) -> list[Any]:
    started = time.time()
    await asyncio.sleep(0.01)
    return [x, started]


class WorkerSettings:
    functions: ClassVar = [double, nap]
    redis_settings = redis_settings()
    max_jobs = int(os.environ.get("ARQ_MAX_JOBS", "8"))
    poll_delay = 0.01
    keep_result = 3600
    handle_signals = True
